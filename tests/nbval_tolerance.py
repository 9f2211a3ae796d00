"""nbval plugin: printed decimals may differ by one unit in their last printed place.

Why: a chapter prints a measurement rounded to the precision it means (``4.55 bits``). On another
processor (another set of PyTorch CPU kernels, e.g. ``ATEN_CPU_CAPABILITY=default``) the float32
value moves in its last bits, and when it lies next to a rounding boundary the printed digit flips
(``4.545`` vs ``4.546``). Sanitizing such numbers away would hide the measurement; comparing them
exactly would fail on every machine but the one that wrote the outputs. The stated tolerance:

    Two text outputs match when they are equal after every decimal number in the newly computed
    output that differs from the number at the same place in the committed output by at most one
    unit in the last printed decimal place (``0.001`` for ``4.545``, ``1e-07`` for ``3e-07``) is
    replaced by the committed number.

Numbers are aligned in the text as nbval compares it, after the replacements of
``tests/nbval_sanitize.cfg`` (a bertviz view's random id would otherwise make the text around the
numbers differ). Only numbers written with a decimal point or an exponent are compared with the tolerance; integers
(counts, indices, layer numbers), words and booleans must match exactly, so a claim's verdict is
never tolerated away. The text around the numbers must match exactly too.

Enabled with ``-p nbval_tolerance`` (``tests/`` is on pytest's ``pythonpath``).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

#: A decimal number: digits with a point and/or an exponent (a lone integer is not matched).
NUMBER = re.compile(
    r"(?<![\w.])[-+]?(?:\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+)(?![\w.])"
)
TEXT_KEYS = ("text/plain", "text/html", "text/markdown")


def last_place(number: str) -> Decimal:
    """One unit in the last printed place of ``number``: ``"4.545"`` -> 0.001, ``"3e-07"`` -> 1e-07."""
    exponent = Decimal(number.lstrip("+-")).as_tuple().exponent
    return Decimal(1).scaleb(int(exponent))


def within_last_place(reference: str, computed: str) -> bool:
    """Whether two printed numbers differ by at most one unit in the coarser last place of the two."""
    unit = max(last_place(reference), last_place(computed))
    return abs(Decimal(reference) - Decimal(computed)) <= unit


def align_numbers(reference: str, computed: str) -> str:
    """``computed`` with each decimal number replaced by the reference's number at the same place
    when the two are within one unit of the last printed place; unchanged when the text around the
    numbers differs or the numbers are further apart (so the comparison then fails and shows both)."""
    ref_numbers, new_numbers = NUMBER.findall(reference), NUMBER.findall(computed)
    if len(ref_numbers) != len(new_numbers) or NUMBER.split(reference) != NUMBER.split(computed):
        return computed
    if not all(within_last_place(a, b) for a, b in zip(ref_numbers, new_numbers, strict=True)):
        return computed
    pieces = iter(ref_numbers)
    return NUMBER.sub(lambda _: next(pieces), computed)


def _text(output: Any, key: str) -> Any:
    return output.get("data", {}).get(key) if key in TEXT_KEYS else output.get(key)


def _aligned_output(reference: Any, computed: Any) -> Any:
    """A copy of ``computed`` whose text fields are aligned with ``reference``'s (same output type)."""
    if reference.get("output_type") != computed.get("output_type"):
        return computed
    out = computed.copy()
    if computed.get("output_type") == "stream":
        if reference.get("name") == computed.get("name"):
            out["text"] = align_numbers(reference["text"], computed["text"])
        return out
    if "data" in computed:
        data = dict(computed["data"])
        for key in TEXT_KEYS:
            ref_text, new_text = _text(reference, key), _text(computed, key)
            if isinstance(ref_text, str) and isinstance(new_text, str):
                data[key] = align_numbers(ref_text, new_text)
        out["data"] = data
    return out


def sanitized_text(output: Any, sanitize: Any) -> Any:
    """A copy of ``output`` with its text fields passed through ``sanitize`` (nbval's configured
    replacements, e.g. bertviz's random view ids), so that numbers are aligned in the text nbval
    will compare; ``sanitize`` is idempotent, so nbval applying it again changes nothing."""
    out = dict(output)
    if output.get("output_type") == "stream" and isinstance(output.get("text"), str):
        out["text"] = sanitize(output["text"])
    if "data" in output:
        out["data"] = {key: sanitize(value) if key in TEXT_KEYS and isinstance(value, str) else value
                       for key, value in output["data"].items()}
    return out


def _merged_streams(outputs: list[Any]) -> list[Any]:
    """Consecutive stream outputs of one name joined (the kernel may split a print differently)."""
    merged: list[Any] = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (output.get("output_type") == "stream" and previous is not None
                and previous.get("output_type") == "stream" and previous.get("name") == output.get("name")):
            merged[-1] = {**previous, "text": previous["text"] + output["text"]}
        else:
            merged.append(output)
    return merged


#: ``(cell, committed text, computed text)`` of every output that matched only within the tolerance.
TOLERATED: list[tuple[str, str, str]] = []


def _record_tolerated(cell: str, computed: list[Any], aligned: list[Any]) -> None:
    for before, after in zip(computed, aligned, strict=True):
        for key in ("text", *TEXT_KEYS):
            old, new = _text(before, key), _text(after, key)
            if isinstance(old, str) and old != new:
                TOLERATED.append((cell, new, old))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say which outputs needed the tolerance (none, in a run on the machine that wrote them)."""
    if not TOLERATED:
        return
    terminalreporter.write_line(
        f"nbval_tolerance: {len(TOLERATED)} output(s) matched within one unit in the last place:")
    for cell, committed, computed in TOLERATED:
        pairs = [(a, b) for a, b in zip(NUMBER.findall(committed), NUMBER.findall(computed), strict=True) if a != b]
        terminalreporter.write_line(f"  {cell}: " + ", ".join(f"{b} (committed {a})" for a, b in pairs))


def pytest_configure(config: Any) -> None:
    """Wrap nbval's output comparison so that computed decimals are aligned first."""
    from nbformat import from_dict
    from nbval.plugin import IPyNbCell

    original = IPyNbCell.compare_outputs
    if getattr(original, "_with_tolerance", False):
        return

    def compare_outputs(self: Any, test: list[Any], ref: list[Any], skip_compare: Any = None) -> bool:
        test = [sanitized_text(o, self.sanitize) for o in _merged_streams(list(test))]
        ref = [sanitized_text(o, self.sanitize) for o in _merged_streams(list(ref))]
        if len(test) == len(ref):
            aligned = [from_dict(_aligned_output(r, t)) for r, t in zip(ref, test, strict=True)]
            _record_tolerated(getattr(self, "nodeid", "cell"), test, aligned)
            test = aligned
        else:  # nbval reports the difference itself, from notebook nodes (not plain dicts)
            test = [from_dict(t) for t in test]
        return original(self, test, [from_dict(r) for r in ref], skip_compare)

    compare_outputs._with_tolerance = True  # type: ignore[attr-defined]
    IPyNbCell.compare_outputs = compare_outputs
