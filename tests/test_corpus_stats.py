"""Corpus-scale head statistics: streamed running sums equal a direct computation over traces."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from attention_study import corpus_stats
from attention_study.contextuality import (
    attention_to_classes,
    ethayarajh_corpus_comparisons,
    intra_sentence_similarity,
    max_explainable_variance,
    self_similarity,
    word_sample_mev,
)
from attention_study.corpus_stats import HeadStatistics, frequent_words, head_statistics
from attention_study.heads import first_token_scores, previous_token_scores
from attention_study.information import entropy, normalised_entropy
from attention_study.models import load
from attention_study.tracing import Trace, trace

#: Texts made of the tiny fixtures' vocabulary (tests/conftest.py), of different lengths.
TINY_TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Pulling rabbits out of hats is what magicians do.",
    "Attention weights are probabilities over keys.",
    "The lazy dog jumps.",
    "What magicians do is pulling the fox out of hats, over and over.",
    "Keys are weights.",
    "The brown dog, the quick fox and the lazy magicians.",
    "Rabbits jump over the hats.",
    "Probabilities are what attention weights do over the keys of the dog.",
    "Out!",
]
#: Words that are one token of each tiny model. (The tiny BERT's WordPiece tokenizer reads every word
#: as [UNK] under this transformers release, so it tracks no word; MiniLM covers real WordPiece.)
TINY_WORDS = {"tiny_bert": (), "tiny_gpt2": ("over", "The")}
GPT2_WORDS = TINY_WORDS["tiny_gpt2"]

MINILM_TEXTS = [
    "The magician kept pulling rabbits out of hats.",
    "The dog hesitates.",
    "Do these drums mend every dark map?",
    "The audience never tired of the magician, and the dog slept.",
    "Rabbits, hats and the magician: the show went on.",
]
MINILM_WORDS = ("the", "magician", "rabbits")


@pytest.fixture(scope="module")
def tiny_bert(tiny_bert_dir: Path):
    return load(str(tiny_bert_dir))


@pytest.fixture(scope="module")
def tiny_gpt2(tiny_gpt2_dir: Path):
    return load(str(tiny_gpt2_dir))


@pytest.fixture(scope="module")
def minilm():
    return load("minilm")


# ---------------------------------------------------------------------------------------------
# the reference: one trace per text, the library's single-trace metrics, explicit pairs


def _word_positions(tr: Trace, word: str) -> list[int]:
    """Non-special positions whose token spells ``word`` (GPT-2 marks a leading space with Ġ)."""
    return [i for i, tok in enumerate(tr.tokens) if not bool(tr.special[i]) and tok.removeprefix("Ġ") == word]


def _cross_pair_mean(vectors: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Mean cosine over pairs of rows of ``vectors`` ``[N, layer, d]`` from different groups."""
    u = vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)
    cos = np.einsum("ild,jld->lij", u, u)
    different = groups[:, None] != groups[None, :]
    return cos[:, different].mean(axis=-1)


def reference_statistics(traces: list[Trace], words: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Every statistic of :class:`HeadStatistics`, computed directly from one-at-a-time traces."""
    n = np.array([tr.n_tokens for tr in traces], dtype=float)
    classes = [attention_to_classes(tr.attentions, tr.tokens) for tr in traces]
    per_query = [(c, k) for c, k in zip(classes, n, strict=True)]
    out: dict[str, np.ndarray] = {
        "entropy": sum(entropy(tr.attentions).sum(axis=-1) for tr in traces) / n.sum(),
        "first": sum(first_token_scores(tr.attentions).numpy() * (tr.n_tokens - 1) for tr in traces) / (n - 1).sum(),
        "previous_heads": sum(previous_token_scores(tr.attentions).numpy() * (tr.n_tokens - 1) for tr in traces)
        / (n - 1).sum(),
    }
    for name in ("cls", "sep", "punctuation", "self"):
        out[name] = sum(c[name] * k for c, k in per_query) / n.sum()
    for name in ("previous", "next"):
        out[name] = sum(c[name] * (k - 1) for c, k in per_query) / (n - 1).sum()
    kept = [tr.hidden_states.double().numpy()[:, ~tr.special.numpy()] for tr in traces]  # [L+1, n, d]
    out["intra"] = np.mean([intra_sentence_similarity(h) for h in kept], axis=0)
    pool = np.concatenate([h.transpose(1, 0, 2) for h in kept])  # [N, L+1, d]
    groups = np.concatenate([np.full(h.shape[1], s) for s, h in enumerate(kept)])
    out["anisotropy"] = _cross_pair_mean(pool, groups)
    cross, every, mev, counts = [], [], [], []
    for word in words:
        places = [(s, i) for s, tr in enumerate(traces) for i in _word_positions(tr, word)]
        occ = np.stack([traces[s].hidden_states[:, i].double().numpy() for s, i in places])  # [n, L+1, d]
        cross.append(_cross_pair_mean(occ, np.array([s for s, _ in places])))
        every.append(self_similarity(occ.transpose(1, 0, 2)))
        mev.append(max_explainable_variance(occ.transpose(1, 0, 2)))
        counts.append(len(places))
    out.update(self_cross=np.array(cross), self_all=np.array(every), mev=np.array(mev), counts=np.array(counts))
    return out


def assert_matches(stats: HeadStatistics, ref: dict[str, np.ndarray], atol: float = 1e-6) -> None:
    got = {
        "entropy": stats.entropy,
        "first": stats.first_token,
        "previous_heads": stats.previous_token,
        "intra": stats.intra_similarity,
        "anisotropy": stats.anisotropy,
        **stats.attention_to_classes(),
    }
    if stats.words:
        got.update(
            self_cross=stats.self_similarity(),
            self_all=stats.self_similarity(same_sequence_pairs=True),
            counts=stats.word_counts,
        )
        if "word_gram" in stats.sums:
            got["mev"] = stats.mev
    for key, value in got.items():
        np.testing.assert_allclose(value, ref[key], atol=atol, rtol=1e-6, err_msg=key)


# ---------------------------------------------------------------------------------------------
# equality with the direct computation


@pytest.mark.parametrize("fixture", ["tiny_bert", "tiny_gpt2"])
def test_streamed_statistics_equal_direct_computation_over_single_traces(fixture: str, request) -> None:
    loaded = request.getfixturevalue(fixture)
    words = TINY_WORDS[fixture]
    stats = head_statistics(loaded, TINY_TEXTS, batch_size=4, words=words, word_mev=True, progress=False)
    ref = reference_statistics([trace(loaded, text) for text in TINY_TEXTS], words)
    assert (stats.n_texts, stats.n_sequences) == (len(TINY_TEXTS), len(TINY_TEXTS))
    assert stats.n_tokens == sum(trace(loaded, t).n_tokens for t in TINY_TEXTS)
    assert_matches(stats, ref)


def test_minilm_statistics_equal_direct_computation(minilm) -> None:
    stats = head_statistics(minilm, iter(MINILM_TEXTS), batch_size=2, words=MINILM_WORDS, word_mev=True, progress=False)
    ref = reference_statistics([trace(minilm, text) for text in MINILM_TEXTS], MINILM_WORDS)
    assert stats.entropy.shape == (minilm.n_layers, minilm.n_heads)
    assert stats.anisotropy.shape == (minilm.n_layers + 1,)
    assert_matches(stats, ref)


@pytest.mark.parametrize("fixture", ["tiny_bert", "tiny_gpt2"])
def test_statistics_do_not_depend_on_batch_size(fixture: str, request) -> None:
    loaded, words = request.getfixturevalue(fixture), TINY_WORDS[fixture]
    runs = [head_statistics(loaded, TINY_TEXTS, batch_size=b, words=words, progress=False) for b in (1, 3, 64)]
    for other in runs[1:]:
        for key, value in runs[0].sums.items():
            torch.testing.assert_close(other.sums[key], value, atol=1e-5, rtol=1e-6, msg=key)


def test_padding_never_enters_a_statistic(tiny_bert) -> None:
    # One long text padded next to one short one, against each alone: the sums add up exactly.
    short, long = TINY_TEXTS[9], TINY_TEXTS[8]
    together = head_statistics(tiny_bert, [short, long], batch_size=2, progress=False)
    alone = head_statistics(tiny_bert, [short], progress=False) + head_statistics(tiny_bert, [long], progress=False)
    for key, value in alone.sums.items():
        torch.testing.assert_close(together.sums[key], value, atol=1e-5, rtol=1e-6, msg=key)


def test_word_self_similarity_counts_only_pairs_from_different_texts(minilm) -> None:
    # "the" occurs twice in text 0 and three times in text 6: cross-text pairs differ from all pairs.
    stats = head_statistics(minilm, [TINY_TEXTS[0], TINY_TEXTS[6]], words=("the",), progress=False)
    assert stats.word_counts[0] == 5
    assert not np.allclose(stats.self_similarity(), stats.self_similarity(same_sequence_pairs=True))
    single = head_statistics(minilm, [TINY_TEXTS[0]], words=("the", "fox"), progress=False)
    assert np.isnan(single.self_similarity()).all()  # one text: no pair from different texts
    assert np.isnan(single.self_similarity(same_sequence_pairs=True)[1]).all()  # "fox" occurs once


def test_mev_needs_word_mev(tiny_gpt2) -> None:
    stats = head_statistics(tiny_gpt2, TINY_TEXTS[:2], words=GPT2_WORDS, progress=False)
    with pytest.raises(ValueError, match="word_mev=True"):
        _ = stats.mev


# ---------------------------------------------------------------------------------------------
# streaming and memory


def test_accumulators_do_not_grow_with_the_corpus(tiny_gpt2) -> None:
    small = head_statistics(tiny_gpt2, TINY_TEXTS[:2], words=GPT2_WORDS, word_mev=True, progress=False)
    large = head_statistics(tiny_gpt2, TINY_TEXTS * 6, words=GPT2_WORDS, word_mev=True, progress=False)
    assert large.n_texts == 30 * small.n_texts
    assert large.nbytes == small.nbytes
    assert {k: v.shape for k, v in large.sums.items()} == {k: v.shape for k, v in small.sums.items()}


def test_a_generator_is_read_lazily_batch_by_batch(tiny_bert, monkeypatch) -> None:
    pulled = {"n": 0}
    seen_at_trace: list[int] = []

    def texts() -> Iterator[str]:
        for k in range(40):
            pulled["n"] += 1
            yield TINY_TEXTS[k % len(TINY_TEXTS)]

    def spy(loaded, batch):
        seen_at_trace.append(pulled["n"])
        return trace(loaded, batch)

    monkeypatch.setattr(corpus_stats, "trace", spy)
    stats = head_statistics(tiny_bert, texts(), batch_size=4, progress=False)
    assert stats.n_texts == 40
    assert seen_at_trace[0] <= 4  # the first batch is traced before the fifth text is read
    assert seen_at_trace == sorted(seen_at_trace) and len(seen_at_trace) == 10


def test_merge_of_two_halves_equals_the_whole(tiny_gpt2) -> None:
    whole = head_statistics(tiny_gpt2, TINY_TEXTS, batch_size=1, words=GPT2_WORDS, progress=False)
    first = head_statistics(tiny_gpt2, TINY_TEXTS[:4], batch_size=1, words=GPT2_WORDS, progress=False)
    second = head_statistics(tiny_gpt2, TINY_TEXTS[4:], batch_size=1, words=GPT2_WORDS, progress=False)
    merged = first + second
    for key, value in whole.sums.items():
        torch.testing.assert_close(merged.sums[key], value, atol=1e-9, rtol=1e-9, msg=key)
    other_words = head_statistics(tiny_gpt2, TINY_TEXTS[:1], words=("over",), progress=False)
    with pytest.raises(ValueError, match="same model, words"):
        first.merge(other_words)


def test_progress_bar_counts_texts(tiny_bert, capsys) -> None:
    head_statistics(tiny_bert, TINY_TEXTS, batch_size=4, progress=True)
    err = capsys.readouterr().err
    assert "head statistics" in err and f"{len(TINY_TEXTS)}/{len(TINY_TEXTS)}" in err
    head_statistics(tiny_bert, TINY_TEXTS, batch_size=4, progress=False)
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------------------------------------
# long texts


def _long_text(n_words: int) -> str:
    words = "the quick brown fox jumps over the lazy dog".split()
    return " ".join(words[k % len(words)] for k in range(n_words)) + "."


def test_too_long_text_is_an_error_naming_index_tokens_and_limit(tiny_bert) -> None:
    text = _long_text(60)
    n_tokens = len(tiny_bert.tokenizer(text)["input_ids"])
    with pytest.raises(ValueError, match=rf"corpus item 2 has {n_tokens} tokens .* at most 40; pass max_tokens"):
        head_statistics(tiny_bert, [TINY_TEXTS[0], TINY_TEXTS[1], text], progress=False)


def test_max_tokens_splits_long_texts_into_windows(tiny_bert) -> None:
    text = _long_text(60)
    corpus = [TINY_TEXTS[0], text]
    stats = head_statistics(tiny_bert, corpus, max_tokens=16, progress=False)
    windows = [
        list(w)
        for w in tiny_bert.tokenizer(text, truncation=True, max_length=16, return_overflowing_tokens=True)["input_ids"]
    ]
    assert all(len(w) <= 16 and w[0] == tiny_bert.tokenizer.cls_token_id for w in windows)
    content = sum(len(w) - 2 for w in windows)
    assert content == len(tiny_bert.tokenizer(text, add_special_tokens=False)["input_ids"])  # nothing dropped
    assert (stats.n_texts, stats.n_sequences) == (2, 1 + len(windows))
    traces = [trace(tiny_bert, TINY_TEXTS[0])] + [trace(tiny_bert, w) for w in windows]
    assert_matches(stats, reference_statistics(traces, ()))


@pytest.mark.parametrize("max_tokens", [2, 41, 1.5, True])
def test_max_tokens_out_of_range_is_an_error(tiny_bert, max_tokens) -> None:
    with pytest.raises(ValueError, match="max_tokens must be"):
        head_statistics(tiny_bert, TINY_TEXTS, max_tokens=max_tokens, progress=False)


# ---------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("corpus", [[], (), iter([])], ids=["list", "tuple", "generator"])
def test_empty_corpus_is_an_error(tiny_bert, corpus) -> None:
    with pytest.raises(ValueError, match="corpus is empty"):
        head_statistics(tiny_bert, corpus, progress=False)


@pytest.mark.parametrize(("item", "kind"), [(3, "int"), (None, "NoneType"), (b"bytes", "bytes"), (["a"], "list")])
def test_an_item_that_is_not_a_str_is_named_by_index_and_type(tiny_bert, item, kind) -> None:
    with pytest.raises(TypeError, match=rf"corpus item 1 is a {kind}, not a str"):
        head_statistics(tiny_bert, [TINY_TEXTS[0], item, TINY_TEXTS[1]], progress=False)


def test_an_empty_text_is_named_by_index(tiny_bert) -> None:
    with pytest.raises(ValueError, match="corpus item 2 is an empty text"):
        head_statistics(tiny_bert, (t for t in [TINY_TEXTS[0], TINY_TEXTS[1], "   "]), progress=False)


def test_a_single_string_is_not_a_corpus(tiny_bert) -> None:
    with pytest.raises(TypeError, match="corpus is one string"):
        head_statistics(tiny_bert, TINY_TEXTS[0], progress=False)
    with pytest.raises(TypeError, match="iterable of texts"):
        head_statistics(tiny_bert, 42, progress=False)


@pytest.mark.parametrize("batch_size", [0, -1, 2.0, True])
def test_bad_batch_size_is_an_error(tiny_bert, batch_size) -> None:
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        head_statistics(tiny_bert, TINY_TEXTS, batch_size=batch_size, progress=False)


def test_words_must_be_single_distinct_tokens(minilm, tiny_bert) -> None:
    with pytest.raises(ValueError, match="'hesitates' is not one token"):
        head_statistics(minilm, MINILM_TEXTS, words=("the", "hesitates"), progress=False)
    with pytest.raises(ValueError, match="'The' and 'the' are the same token"):
        head_statistics(minilm, MINILM_TEXTS, words=("The", "the"), progress=False)
    with pytest.raises(ValueError, match="not one token"):
        head_statistics(tiny_bert, TINY_TEXTS, words=("dog",), progress=False)  # [UNK] is no word


def test_vision_model_is_refused(tiny_vit_dir) -> None:
    with pytest.raises(ValueError, match="reads texts"):
        head_statistics(load(str(tiny_vit_dir)), ["a text"], progress=False)


# ---------------------------------------------------------------------------------------------
# Hugging Face datasets (optional)


def test_datasets_dataset_and_iterable_dataset(tiny_bert) -> None:
    datasets = pytest.importorskip(
        "datasets", reason="the `datasets` package is not installed (an optional input type, not a dependency)"
    )
    import pyarrow

    rows = {"text": TINY_TEXTS, "label": list(range(len(TINY_TEXTS)))}
    # A fixed fingerprint: what is tested is reading the column, not datasets' hashing of the table.
    dataset = datasets.Dataset(pyarrow.Table.from_pydict(rows), fingerprint="corpus-stats-test")
    expected = head_statistics(tiny_bert, TINY_TEXTS, progress=False)
    for corpus in (dataset, dataset.to_iterable_dataset()):
        got = head_statistics(tiny_bert, corpus, text_column="text", progress=False)
        np.testing.assert_allclose(got.entropy, expected.entropy, atol=1e-9)
        assert got.n_texts == len(TINY_TEXTS)
        with pytest.raises(ValueError, match="text_column 'body' is not a column"):
            head_statistics(tiny_bert, corpus, text_column="body", progress=False)
    with pytest.raises(TypeError, match="pick one split"):
        head_statistics(tiny_bert, datasets.DatasetDict(train=dataset), progress=False)


#: Set STUDY_TEST_DEVICE=cuda to check the statistics of a model on a GPU against the CPU's.
TEST_DEVICE = os.environ.get("STUDY_TEST_DEVICE", "cpu")


def test_statistics_of_a_model_on_the_test_device_equal_the_cpu_statistics(tiny_gpt2_dir: Path, tiny_gpt2) -> None:
    """The model's device is where batches are traced; the sums come back to the CPU in float64."""
    on_device = load(str(tiny_gpt2_dir), device=TEST_DEVICE)
    kwargs = {"batch_size": 4, "words": GPT2_WORDS, "word_mev": True, "progress": False}
    here = head_statistics(on_device, TINY_TEXTS, **kwargs)
    cpu = head_statistics(tiny_gpt2, TINY_TEXTS, **kwargs)
    for key, value in cpu.sums.items():
        assert here.sums[key].device.type == "cpu", key
        torch.testing.assert_close(here.sums[key], value, atol=1e-5, rtol=1e-5, msg=key)


# ---------------------------------------------------------------------------------------------
# two processes through accelerate


_TWO_PROCESS_SCRIPT = """
import sys
import torch
from accelerate import Accelerator
from attention_study.corpus_stats import head_statistics
from attention_study.models import load

model_dir, out, texts, words = sys.argv[1], sys.argv[2], sys.argv[3].split("|"), tuple(sys.argv[4].split("|"))
accelerator = Accelerator(cpu=True)
assert accelerator.num_processes == 2, accelerator.num_processes
loaded = load(model_dir)
stats = head_statistics(loaded, (t for t in texts), batch_size=3, words=words, word_mev=True, progress=False,
                        accelerator=accelerator)
# a too-long text at index 1 belongs to process 1 only: process 0 must fail too, not hang
try:
    head_statistics(loaded, [texts[0], " ".join(["dog"] * 80)], progress=False, accelerator=accelerator)
    failure = "none"
except Exception as exc:
    failure = f"{type(exc).__name__}: {exc}"
torch.save({"sums": stats.sums, "failure": failure}, f"{out}.{accelerator.process_index}")
"""


def test_two_processes_equal_one_process(tiny_gpt2_dir: Path, tiny_gpt2, tmp_path: Path) -> None:
    script = tmp_path / "two_processes.py"
    script.write_text(textwrap.dedent(_TWO_PROCESS_SCRIPT))
    out = tmp_path / "stats.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(script),
        str(tiny_gpt2_dir),
        str(out),
        "|".join(TINY_TEXTS),
        "|".join(GPT2_WORDS),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    one = head_statistics(tiny_gpt2, TINY_TEXTS, batch_size=3, words=GPT2_WORDS, word_mev=True, progress=False)
    results = [torch.load(f"{out}.{rank}") for rank in (0, 1)]
    for result in results:  # every process holds the combined sums
        for key, value in one.sums.items():
            torch.testing.assert_close(result["sums"][key], value, atol=1e-6, rtol=1e-6, msg=key)
    n_tokens = len(tiny_gpt2.tokenizer(" ".join(["dog"] * 80))["input_ids"])
    assert results[1]["failure"].startswith(f"ValueError: corpus item 1 has {n_tokens} tokens")
    assert results[0]["failure"] == "RuntimeError: head_statistics failed on 1 other process(es); see their error"


# ---------------------------------------------------------------------------------------------
# normalised entropy, blocks and the bootstrap, word samples


@pytest.mark.parametrize("fixture", ["tiny_bert", "tiny_gpt2"])
def test_normalised_entropy_pools_the_per_row_normalised_entropy(fixture: str, request) -> None:
    loaded = request.getfixturevalue(fixture)
    causal = loaded.role == "causal"
    stats = head_statistics(loaded, TINY_TEXTS, batch_size=4, progress=False)
    traces = [trace(loaded, text) for text in TINY_TEXTS]
    rows = [t.n_tokens - 1 if causal else t.n_tokens for t in traces]  # causal row 0 sees one key
    pooled = sum(normalised_entropy(t.attentions, causal=causal) * r for t, r in zip(traces, rows, strict=True))
    np.testing.assert_allclose(stats.normalised_entropy, pooled / sum(rows), atol=1e-6, rtol=1e-6)
    assert np.all((stats.normalised_entropy > 0) & (stats.normalised_entropy < 1))


def test_blocks_add_up_to_the_totals_and_one_block_per_text_is_that_text_alone(tiny_bert) -> None:
    texts = TINY_TEXTS[:4]
    stats = head_statistics(tiny_bert, texts, batch_size=3, blocks=len(texts), progress=False)
    assert stats.n_blocks == 4
    blocks = stats.blocks()
    for key, value in blocks.items():
        np.testing.assert_allclose(value.sum(axis=0), stats.sums[key].numpy(), atol=1e-9, err_msg=key)
    alone = head_statistics(tiny_bert, [texts[2]], progress=False)
    for key in corpus_stats.BLOCK_KEYS:
        np.testing.assert_allclose(blocks[key][2], alone.sums[key].numpy(), atol=1e-6, rtol=1e-6, err_msg=key)
    two = head_statistics(tiny_bert, texts, blocks=2, progress=False).blocks()  # text i in block i mod 2
    np.testing.assert_allclose(two["queries"], [blocks["queries"][[0, 2]].sum(), blocks["queries"][[1, 3]].sum()])
    with pytest.raises(ValueError, match="blocks=K"):
        alone.blocks()
    with pytest.raises(ValueError, match="blocks must be an int >= 0"):
        head_statistics(tiny_bert, texts, blocks=-1, progress=False)


def test_resample_weights_blocks_and_never_pairs_a_text_with_its_copy(minilm) -> None:
    stats = head_statistics(minilm, MINILM_TEXTS, blocks=len(MINILM_TEXTS), progress=False)
    same = stats.resample(np.ones(len(MINILM_TEXTS)))
    np.testing.assert_allclose(same.anisotropy, stats.anisotropy, atol=1e-12)
    np.testing.assert_allclose(same.attention_to_classes()["cls"], stats.attention_to_classes()["cls"], atol=1e-12)
    # text 0 twice, text 1 once, the rest left out: cross-text pairs of that corpus, copies never paired
    drawn = stats.resample(np.bincount([0, 0, 1], minlength=len(MINILM_TEXTS)))
    traces = [trace(minilm, MINILM_TEXTS[k]) for k in (0, 0, 1)]
    kept = [t.hidden_states.double().numpy()[:, ~t.special.numpy()].transpose(1, 0, 2) for t in traces]
    groups = np.concatenate([np.full(len(h), k) for k, h in zip((0, 0, 1), kept, strict=True)])
    np.testing.assert_allclose(drawn.anisotropy, _cross_pair_mean(np.concatenate(kept), groups), atol=1e-6)
    many = stats.resample(np.ones((3, len(MINILM_TEXTS))))
    assert many.entropy.shape == (3, minilm.n_layers, minilm.n_heads) and many.anisotropy.shape[0] == 3
    with pytest.raises(ValueError, match="non-negative counts"):
        stats.resample(np.ones(2))


def test_bootstrap_gives_an_interval_around_the_estimate(minilm) -> None:
    stats = head_statistics(minilm, TINY_TEXTS, blocks=len(TINY_TEXTS), progress=False)
    est, low, high = stats.bootstrap(lambda v: v.attention_to_classes()["cls"], n_resamples=300)
    np.testing.assert_allclose(est, stats.attention_to_classes()["cls"], atol=1e-12)
    assert est.shape == (minilm.n_layers, minilm.n_heads) and np.all((low <= est) & (est <= high))
    _, n_low, n_high = stats.bootstrap(lambda v: v.anisotropy, n_resamples=300, interval="normal", confidence=0.99)
    _, p_low, p_high = stats.bootstrap(lambda v: v.anisotropy, n_resamples=300, confidence=0.5)
    assert np.all(n_high - n_low > p_high - p_low)  # a 99% interval is wider than a 50% one
    with pytest.raises(ValueError, match="interval"):
        stats.bootstrap(lambda v: v.entropy, interval="bca")
    with pytest.raises(ValueError, match="n_resamples"):
        stats.bootstrap(lambda v: v.entropy, n_resamples=10)


def test_word_samples_are_the_first_occurrence_in_the_first_texts(minilm) -> None:
    stats = head_statistics(minilm, MINILM_TEXTS, batch_size=2, words=MINILM_WORDS, word_samples=2, progress=False)
    vectors, texts = stats.word_samples()
    assert vectors.shape == (3, 2, minilm.n_layers + 1, 384)
    the = MINILM_WORDS.index("the")
    assert texts[the].tolist() == [0, 1]  # "The magician ..." and "The dog ...": first two texts
    assert texts[MINILM_WORDS.index("rabbits")].tolist() == [0, 4]
    first = trace(minilm, MINILM_TEXTS[1])
    np.testing.assert_allclose(vectors[the, 1], first.hidden_states[:, _word_positions(first, "the")[0]], atol=1e-5)
    half = head_statistics(minilm, MINILM_TEXTS[:2], words=MINILM_WORDS, word_samples=2, progress=False)
    assert half.word_samples()[1].tolist() == [[0, 1], [0, -1], [0, -1]]
    with pytest.raises(ValueError, match="word_samples=m"):
        head_statistics(minilm, MINILM_TEXTS[:1], words=MINILM_WORDS, progress=False).word_samples()


def test_merge_keeps_the_samples_of_the_earliest_texts() -> None:
    def part(texts: list[list[int]], value: float) -> dict[str, torch.Tensor]:
        return {"texts": torch.tensor(texts), "vectors": torch.full((len(texts), 2, 1, 1), value)}

    merged = corpus_stats._merge_samples(part([[3, 5], [-1, -1]], 1.0), part([[0, 4], [2, -1]], 2.0))
    assert merged["texts"].tolist() == [[0, 3], [2, -1]]
    assert merged["vectors"][:, :, 0, 0].tolist() == [[2.0, 1.0], [2.0, 0.0]]


def test_ethayarajh_corpus_comparisons_run_on_corpus_statistics(minilm) -> None:
    texts = [*MINILM_TEXTS, *TINY_TEXTS]
    stats = head_statistics(
        minilm, texts, words=("the", "magician", "dog"), word_samples=2, blocks=len(texts), progress=False
    )
    mev, baseline = word_sample_mev(*stats.word_samples(), n_draws=20)
    rows = ethayarajh_corpus_comparisons(stats, mev, baseline, stopwords=("the", "dog"), n_resamples=200)
    assert [r.finding.split()[0] for r in rows] == ["Representations", "Upper", "A", "BERT:", "BERT:"]
    assert rows[0].verdict == "agree" and rows[0].confidence == pytest.approx(1 - 0.05 / 5)


def test_frequent_words_are_whole_word_tokens_in_enough_texts(minilm) -> None:
    texts = ["The dog barked.", "the dog slept", "A magician's dog.", "unbelievable"]
    assert frequent_words(minilm, texts, 2) == ("dog", "the")
    assert frequent_words(minilm, texts, 4) == ()
    with pytest.raises(ValueError, match="min_texts"):
        frequent_words(minilm, texts, 0)
