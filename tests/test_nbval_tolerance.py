"""The stated output tolerance: one unit in the last printed decimal place, nothing else."""

from decimal import Decimal

import pytest
from nbformat import from_dict
from nbval_tolerance import _aligned_output, _merged_streams, align_numbers, last_place


@pytest.mark.parametrize(("number", "unit"), [("4.545", "0.001"), ("3e-07", "1e-07"), ("2.5e-3", "1e-4"),
                                              ("-0.50", "0.01"), ("12.", "1")])
def test_last_place_is_one_unit_of_the_last_printed_digit(number, unit):
    assert last_place(number) == Decimal(unit)


def test_a_last_digit_flip_is_aligned_to_the_committed_number():
    assert align_numbers("entropy 4.545 bits", "entropy 4.546 bits") == "entropy 4.545 bits"
    assert align_numbers("max error 3e-07", "max error 4e-07") == "max error 3e-07"
    assert align_numbers("-0.00", "0.00") == "-0.00"


def test_numbers_further_apart_than_one_unit_are_left_to_fail():
    assert align_numbers("entropy 4.545 bits", "entropy 4.547 bits") == "entropy 4.547 bits"
    assert align_numbers("score 0.41", "score 0.47") == "score 0.47"


def test_integers_words_and_verdicts_must_match_exactly():
    assert align_numbers("layer 2, head 3", "layer 2, head 4") == "layer 2, head 4"
    assert align_numbers("4.545 supported", "4.546 refuted") == "4.546 refuted"
    assert align_numbers("0.50 True", "0.51 False") == "0.51 False"


def test_a_changed_number_of_numbers_is_not_aligned():
    assert align_numbers("0.1 0.2", "0.1 0.2 0.3") == "0.1 0.2 0.3"


def test_outputs_of_every_text_kind_are_aligned():
    stream = _aligned_output({"output_type": "stream", "name": "stdout", "text": "x 1.00\n"},
                             {"output_type": "stream", "name": "stdout", "text": "x 1.01\n"})
    assert stream["text"] == "x 1.00\n"
    ref = {"output_type": "execute_result", "data": {"text/plain": "0.25", "text/html": "<td>0.25</td>"}}
    new = {"output_type": "execute_result", "data": {"text/plain": "0.26", "text/html": "<td>0.24</td>"}}
    assert _aligned_output(ref, new)["data"] == ref["data"]


def test_split_prints_are_merged_before_comparison():
    parts = [from_dict({"output_type": "stream", "name": "stdout", "text": t}) for t in ("a 1.0\n", "b 2.0\n")]
    assert [o["text"] for o in _merged_streams(parts)] == ["a 1.0\nb 2.0\n"]


def test_outputs_that_needed_the_tolerance_are_recorded_for_the_summary():
    import nbval_tolerance

    nbval_tolerance.TOLERATED.clear()
    computed = [{"output_type": "stream", "name": "stdout", "text": "4.546 bits\n"}]
    aligned = [_aligned_output({"output_type": "stream", "name": "stdout", "text": "4.545 bits\n"}, computed[0])]
    nbval_tolerance._record_tolerated("chapter::Cell 3", computed, aligned)
    assert nbval_tolerance.TOLERATED == [("chapter::Cell 3", "4.545 bits\n", "4.546 bits\n")]
    nbval_tolerance.TOLERATED.clear()


def test_numbers_are_aligned_in_the_sanitized_text_so_random_ids_do_not_block_the_tolerance():
    import re

    from nbval_tolerance import sanitized_text

    def sanitize(text):
        return re.sub(r"bertviz-[0-9a-f]{32}", "bertviz-VIEW-ID", text)

    ref = {"output_type": "display_data", "data": {"text/html": f'<div id="bertviz-{"a" * 32}">[1.1, 0.25]</div>'}}
    new = {"output_type": "display_data", "data": {"text/html": f'<div id="bertviz-{"b" * 32}">[1.099, 0.26]</div>'}}
    assert _aligned_output(ref, new)["data"] == new["data"]           # the ids differ: nothing aligned
    clean_ref, clean_new = sanitized_text(ref, sanitize), sanitized_text(new, sanitize)
    assert _aligned_output(clean_ref, clean_new)["data"] == clean_ref["data"]
    assert sanitized_text(clean_ref, sanitize) == clean_ref             # idempotent, as nbval re-applies it


def test_an_extra_output_is_reported_by_nbval_not_raised_by_the_plugin():
    from types import SimpleNamespace

    import nbval_tolerance
    from nbval.plugin import IPyNbCell

    nbval_tolerance.pytest_configure(None)
    colors = SimpleNamespace(FAIL="", ENDC="", OKBLUE="")
    cell = SimpleNamespace(sanitize=lambda text: text, nodeid="chapter::Cell 8", colors=colors,
                           parent=SimpleNamespace(skip_compare=("metadata", "execution_count")))
    ref = [{"output_type": "stream", "name": "stdout", "text": "ok\n"}]
    test = [{"output_type": "stream", "name": "stderr", "text": "a warning\n"}, *ref]
    assert IPyNbCell.compare_outputs(cell, test, ref) is False  # nbval's own verdict: outputs differ
    assert "Unexpected output fields" in "".join(cell.comparison_traceback)
