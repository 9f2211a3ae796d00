"""Phrase extractors with one interface, their scoring on a benchmark, and paired comparisons.

An **extractor** is a callable ``text -> ranked phrases`` (``list[str]``, best first, normalised by
:func:`attention_study.collocations.normalize_phrase`).  One that can work on many texts at once
(one batched forward pass instead of one per text) also has a method ``many(texts) -> list of
rankings``; :func:`extract_many` uses it when present.  This module makes extractors from

- one attention head of a loaded text model, by the topological method
  (:func:`topological_phrases` for one text, :func:`topological_extractor` as an extractor):
  single linkage of the head's per-word context vectors cut at a scale read from the ``H0``
  barcode (:func:`attention_study.topology.extract_phrases`);
- the baselines: PMI and t-score against n-gram counts of a corpus, TF-IDF against a corpus's
  document frequencies, TextRank, YAKE, KeyBERT on the offline sentence encoder, and a stop-word
  chunker.

Scoring: :func:`score_extractor` on items ``(text, gold phrases)``, :func:`score_on_wordnet` on the
WordNet multi-word-expression benchmark (:func:`attention_study.wordnet.benchmark_items`, a seeded
sample by :func:`wordnet_items`).  Statistics: :func:`bootstrap_prf` (percentile intervals over
items), :func:`paired_bootstrap_f1`, :func:`paired_permutation_test`, :func:`holm`,
:func:`compare_with_baselines` (the verdict of each pair) and :func:`min_detectable_difference`
(the power statement made before a test).

For a choice of head on a development split, :func:`word_clouds` traces many texts in batches and
keeps every head's per-word vectors; :func:`head_grid_f1` scores every head and
:func:`cloud_rankings` gives one head's rankings from them; :func:`random_vector_extractor` is the
control that runs the same pipeline on random vectors.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from . import collocations as co

__all__ = [
    "VERDICTS",
    "Choice",
    "Evaluation",
    "Extractor",
    "PairedComparison",
    "TopologicalExtractor",
    "WordClouds",
    "association_extractor",
    "at_most",
    "best_head",
    "best_setting",
    "bootstrap_f1",
    "bootstrap_prf",
    "choose",
    "choose_settings",
    "chunker_extractor",
    "cloud_rankings",
    "compare_with_baselines",
    "evaluate_choices",
    "extract_many",
    "head_grid_f1",
    "holm",
    "keybert_extractor",
    "min_detectable_difference",
    "minilm_sentence_transformer",
    "overall_verdict",
    "paired_bootstrap_f1",
    "paired_permutation_test",
    "phrases_from_trace",
    "random_vector_extractor",
    "score_extractor",
    "score_on_wordnet",
    "score_rankings",
    "shorter",
    "stopword_chunks",
    "summary_rows",
    "textrank_extractor",
    "tfidf_extractor",
    "topological_extractor",
    "topological_phrases",
    "word_clouds",
    "wordnet_items",
    "yake_extractor",
]

Extractor = Callable[[str], list[str]]

#: Verdicts of :func:`compare_with_baselines` (one pair) and :func:`overall_verdict` (the claim).
VERDICTS = ("better", "worse", "no detectable difference")


def extract_many(extractor: Extractor, texts: Sequence[str]) -> list[list[str]]:
    """The rankings of ``texts`` ``[n_texts]``: ``extractor.many(texts)`` when the extractor has it
    (a batched implementation), else ``extractor(text)`` for each text."""
    many = getattr(extractor, "many", None)
    out = many(list(texts)) if many is not None else [extractor(t) for t in texts]
    if len(out) != len(texts):
        raise ValueError(f"the extractor returned {len(out)} rankings for {len(texts)} texts")
    return [list(r) for r in out]


# --------------------------------------------------------------------------------------------
# input checks


def _check_text(text: Any, what: str = "text") -> str:
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str, got {type(text).__name__}")
    if not text.strip():
        raise ValueError(f"{what} is empty (or white space only): nothing to extract phrases from")
    return text


def _check_texts(texts: Any) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise TypeError(f"texts must be a sequence of str, got {type(texts).__name__}")
    if len(texts) == 0:
        raise ValueError("texts is empty: need at least one text")
    return [_check_text(t, f"texts[{i}]") for i, t in enumerate(texts)]


def _check_int(x: Any, name: str) -> int:
    if isinstance(x, bool) or not isinstance(x, int | np.integer):
        raise TypeError(f"{name} must be an int, got {type(x).__name__}")
    return int(x)


def _check_text_model(loaded: Any) -> None:
    family = getattr(loaded, "family", None)
    if family not in ("bert", "gpt2"):
        raise ValueError(f"the topological method needs a text model (family bert or gpt2), got family {family!r}")


def _check_model_head(loaded: Any, layer: Any, head: Any) -> tuple[int, int]:
    from .validation import check_layer_head

    _check_text_model(loaded)
    layer, head = _check_int(layer, "layer"), _check_int(head, "head")
    check_layer_head(layer, head, loaded.n_layers, loaded.n_heads)
    return layer, head


def _check_options(options: Mapping[str, Any]) -> None:
    """The options of :func:`attention_study.topology.extract_phrases` that this module passes on."""
    from .topology import SCALE_RULES

    allowed = {"q", "rule", "max_len", "min_len", "stopwords", "metric"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise TypeError(f"unknown option(s) {unknown}; valid: {sorted(allowed)}")
    rule = options.get("rule", "quantile")
    if rule not in SCALE_RULES:
        raise ValueError(f"rule must be one of {SCALE_RULES}, got {rule!r}")
    q = options.get("q", 0.3)
    if not 0.0 <= float(q) <= 1.0:
        raise ValueError(f"q must be in [0, 1], got {q}")
    if int(options.get("max_len", 4)) < int(options.get("min_len", 2)):
        raise ValueError(f"need max_len >= min_len, got {options.get('max_len')} < {options.get('min_len', 2)}")


# --------------------------------------------------------------------------------------------
# the topological method


def _word_matrix(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """``[word, token]`` averaging weights: row ``w`` is ``1/n`` on the ``n`` tokens covering word
    ``w`` (:func:`attention_study.topology.word_vectors` applied to the identity)."""
    from . import topology as topo

    return topo.word_vectors(np.eye(len(offsets)), offsets, spans)


def _phrases(text: str, word_vecs: np.ndarray, spans: Sequence[tuple[int, int]], **options: Any) -> list[str]:
    from . import topology as topo

    opts = {"q": 0.3, "max_len": 4, "stopwords": co.STOPWORDS, **options}
    opts["stopwords"] = frozenset(opts["stopwords"])
    got = topo.extract_phrases(text, word_vecs, spans, **opts)
    return [co.normalize_phrase(p.text) for p in got]


def phrases_from_trace(
    trace: Any,
    layer: int,
    head: int,
    *,
    q: float = 0.3,
    rule: str = "quantile",
    max_len: int = 4,
    stopwords: frozenset[str] | set[str] = co.STOPWORDS,
    vectors: np.ndarray | None = None,
) -> list[str]:
    """Ranked phrases of a traced text from head ``(layer, head)``'s context vectors.

    ``trace`` is a :class:`attention_study.tracing.Trace` of one text; its context vectors
    ``contexts[layer, head]`` ``[token, d_head]`` are averaged per word (float64), clustered by
    single linkage cut at a scale read from the ``H0`` deaths (``rule="quantile"``: their
    ``q``-quantile; ``"largest_gap"``), and every maximal run of consecutive words in one cluster,
    trimmed of ``stopwords`` at both ends, with 2..``max_len`` words, is a phrase, ranked by how
    long it has been one piece below the cut (:func:`attention_study.topology.extract_phrases`).
    ``vectors`` ``[token, dim]`` replaces the head's vectors (a random-vector control).
    Layer and head out of range: ``IndexError``/``ValueError`` naming the valid range.
    """
    from . import topology as topo
    from .validation import check_layer_head

    text = trace.text
    if text is None:
        raise ValueError("the trace has no text (it was traced from token ids); trace the text")
    _check_options({"q": q, "rule": rule, "max_len": max_len})
    if vectors is None:
        layer, head = _check_int(layer, "layer"), _check_int(head, "head")
        n_layers, n_heads = trace.contexts.shape[:2]
        check_layer_head(layer, head, n_layers, n_heads)
        vectors = trace.contexts[layer, head].double().numpy()
    vecs = np.asarray(vectors, dtype=np.float64)
    if vecs.ndim != 2 or vecs.shape[0] != len(trace.offsets):
        raise ValueError(f"vectors must be [token, dim] with {len(trace.offsets)} tokens, got shape {vecs.shape}")
    spans = topo.word_spans(text)
    words = _word_matrix(trace.offsets, spans) @ vecs
    return _phrases(text, words, spans, q=q, rule=rule, max_len=max_len, stopwords=stopwords)


@dataclass(frozen=True)
class WordClouds:
    """Per-word context vectors of many texts, for some heads of one model.

    ``vectors[i]`` is ``[n_heads_kept, n_words_i, d_head]`` (float64): for text ``i`` and head
    ``heads[k] = (layer, head)``, the mean of the head's context vectors over each word's tokens
    (words and their character ``spans[i]`` from :func:`attention_study.topology.word_spans`).
    ``shape`` is the model's ``(n_layers, n_heads)``.
    """

    texts: tuple[str, ...]
    spans: tuple[tuple[tuple[int, int], ...], ...]
    vectors: tuple[np.ndarray, ...]
    heads: tuple[tuple[int, int], ...]
    shape: tuple[int, int]

    def index(self, layer: int, head: int) -> int:
        """Position of ``(layer, head)`` in :attr:`heads` (``ValueError`` naming the kept heads)."""
        from .validation import check_layer_head

        layer, head = _check_int(layer, "layer"), _check_int(head, "head")
        check_layer_head(layer, head, *self.shape)
        try:
            return self.heads.index((layer, head))
        except ValueError:
            kept = list(self.heads) if len(self.heads) <= 6 else f"{len(self.heads)} heads"
            raise ValueError(f"head ({layer}, {head}) was not kept in these word clouds (kept: {kept})") from None


def word_clouds(
    loaded: Any,
    texts: Sequence[str],
    heads: Sequence[tuple[int, int]] | None = None,
    batch_size: int = 32,
) -> WordClouds:
    """Trace ``texts`` through ``loaded`` in batches and keep the per-word context vectors of ``heads``.

    Texts are traced in batches of ``batch_size``, grouped by length (so little padding is
    computed) and returned in the input order.  ``heads`` are ``(layer, head)`` pairs (``None``:
    every head).  Empty texts, texts too long for the model, heads out of range: errors naming them.
    """
    from . import topology as topo
    from .tracing import trace

    _check_text_model(loaded)
    texts = _check_texts(texts)
    batch_size = _check_int(batch_size, "batch_size")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n_layers, n_heads = loaded.n_layers, loaded.n_heads
    if heads is None:
        kept = [(layer, head) for layer in range(n_layers) for head in range(n_heads)]
    else:
        kept = [_check_model_head(loaded, layer, head) for layer, head in heads]
        if not kept:
            raise ValueError("heads is empty: name at least one (layer, head) or pass None for all")
    ls, hs = np.array([k[0] for k in kept]), np.array([k[1] for k in kept])
    spans = [tuple(topo.word_spans(t)) for t in texts]
    vectors: list[np.ndarray | None] = [None] * len(texts)
    order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), i))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        batch: Any = trace(loaded, [texts[i] for i in idx])
        for i, t in zip(idx, batch, strict=True):
            c = t.contexts[ls, hs].double().numpy()  # [kept, token, d_head]
            vectors[i] = np.einsum("wt,ktd->kwd", _word_matrix(t.offsets, spans[i]), c)
    return WordClouds(
        tuple(texts), tuple(spans), tuple(v for v in vectors if v is not None), tuple(kept), (n_layers, n_heads)
    )


def cloud_rankings(clouds: WordClouds, layer: int, head: int, **options: Any) -> list[list[str]]:
    """The topological method's ranking of every text of ``clouds`` from head ``(layer, head)``.

    ``options`` go to :func:`attention_study.topology.extract_phrases` (``q``, ``rule``,
    ``max_len``, ``stopwords``; defaults ``q=0.3``, ``rule="quantile"``, ``max_len=4``, stop words
    trimmed).  Equal to :func:`phrases_from_trace` on each text's trace.
    """
    _check_options(options)
    k = clouds.index(layer, head)
    return [_phrases(t, v[k], s, **options) for t, v, s in zip(clouds.texts, clouds.vectors, clouds.spans, strict=True)]


def random_vector_extractor(dim: int, seed: int = 0, **options: Any) -> Extractor:
    """The same pipeline on random vectors: the control that shows what a head's geometry adds.

    Each word of a text gets an i.i.d. standard normal vector of ``dim`` entries, drawn from a
    generator seeded by ``seed`` and the text's SHA-256 (so a text gets the same vectors whatever
    the order texts come in); then the steps of :func:`cloud_rankings` with ``options``.
    """
    from . import topology as topo

    dim = _check_int(dim, "dim")
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    _check_options(options)

    def extract(text: str) -> list[str]:
        spans = topo.word_spans(_check_text(text))
        key = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")
        vecs = np.random.default_rng([seed, key]).normal(size=(len(spans), dim))
        return _phrases(text, vecs, spans, **options)

    return extract


def head_grid_f1(
    clouds: WordClouds, golds: Sequence[Iterable[str]], top: int | None = None, **options: Any
) -> np.ndarray:
    """Micro F1 ``[n_layers, n_heads]`` of every kept head's rankings against ``golds`` (one gold
    list per text of ``clouds``), cut to ``top`` phrases per text; heads not kept are NaN."""
    if len(golds) != len(clouds.texts):
        raise ValueError(f"{len(golds)} gold lists for {len(clouds.texts)} texts")
    grid = np.full(clouds.shape, np.nan)
    for layer, head in clouds.heads:
        grid[layer, head] = score_rankings(cloud_rankings(clouds, layer, head, **options), golds, top).prf.f1
    return grid


def topological_phrases(text: str, loaded: Any, layer: int, head: int, **options: Any) -> list[str]:
    """Ranked phrases of ``text`` from head ``(layer, head)`` of ``loaded`` (a text ``LoadedModel``).

    One forward pass (:func:`attention_study.tracing.trace`), then :func:`phrases_from_trace`
    with ``options`` (``q``, ``rule``, ``max_len``, ``stopwords``).  Errors name the problem: a
    text that is not a ``str`` (``TypeError``) or is empty, a layer or head outside the model's
    ``0..n_layers - 1`` / ``0..n_heads - 1``, a vision model, an unknown option or scale rule.
    """
    _check_text(text)
    layer, head = _check_model_head(loaded, layer, head)
    _check_options(options)
    return cloud_rankings(word_clouds(loaded, [text], [(layer, head)]), layer, head, **options)[0]


class TopologicalExtractor:
    """The topological method on one head as an extractor; ``many(texts)`` traces in batches."""

    def __init__(self, loaded: Any, layer: int, head: int, batch_size: int = 32, **options: Any) -> None:
        self.layer, self.head = _check_model_head(loaded, layer, head)
        _check_options(options)
        self.loaded, self.batch_size, self.options = loaded, batch_size, options

    def __call__(self, text: str) -> list[str]:
        return topological_phrases(text, self.loaded, self.layer, self.head, **self.options)

    def many(self, texts: Sequence[str]) -> list[list[str]]:
        clouds = word_clouds(self.loaded, texts, [(self.layer, self.head)], self.batch_size)
        return cloud_rankings(clouds, self.layer, self.head, **self.options)


def topological_extractor(loaded: Any, layer: int, head: int, **options: Any) -> TopologicalExtractor:
    """The topological method on head ``(layer, head)`` of ``loaded`` as an extractor (checked now)."""
    return TopologicalExtractor(loaded, layer, head, **options)


# --------------------------------------------------------------------------------------------
# baselines


def association_extractor(
    counts: Counter[tuple[str, ...]],
    kind: str = "pmi",
    n_max: int = 4,
    min_count: int = 3,
    stopwords: frozenset[str] = frozenset(),
) -> Extractor:
    """PMI (``kind="pmi"``) or t-score (``"t"``) ranking of a text's n-grams against corpus counts.

    Candidates are the text's n-grams of 2..``n_max`` words within punctuation
    (:func:`~attention_study.collocations.ngram_counts` order) that neither begin nor end with one
    of ``stopwords`` (default: none excluded) and are seen at least ``min_count`` times in
    ``counts`` (n-gram counts of the corpus, e.g. ``ngram_counts(texts, 1, n_max)``); scores are
    :func:`~attention_study.collocations.association_scores`.
    """
    if kind not in ("pmi", "t"):
        raise ValueError(f"kind must be 'pmi' or 't', got {kind!r}")
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    if n_max < 2:
        raise ValueError(f"n_max must be >= 2 (phrases have 2 or more words), got {n_max}")
    total = co.word_total(counts)
    if total <= 0:
        raise ValueError("the counts contain no words (no one-word n-grams)")

    def extract(text: str) -> list[str]:
        grams = co.ngram_counts([_check_text(text)], 2, n_max)
        cands = [
            " ".join(g)
            for g in grams
            if counts.get(g, 0) >= min_count and g[0] not in stopwords and g[-1] not in stopwords
        ]
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
        tf = co.ngram_counts([_check_text(text)], 2, n_max)
        scores = {
            p: tf[tuple(p.split())] * (1 + math.log(n_docs / (1 + df[p])))
            for p in co.keyphrase_candidates(text, 2, n_max)
        }
        return co.top_k(scores, len(scores))

    return extract


def textrank_extractor(n_max: int = 4) -> Extractor:
    """:func:`~attention_study.collocations.textrank_keyphrases` as a ranking."""

    def extract(text: str) -> list[str]:
        s = co.textrank_keyphrases(_check_text(text), n_max=n_max)
        return co.top_k(s, len(s))

    return extract


def yake_extractor(n_max: int = 4, top: int = 20) -> Extractor:
    """:func:`~attention_study.collocations.yake_keyphrases` as a ranking."""

    def extract(text: str) -> list[str]:
        s = co.yake_keyphrases(_check_text(text), n_max=n_max, top=top)
        return co.top_k(s, len(s))

    return extract


_KEYBERT_TOKENS = r"[a-z0-9]+(?:['’][a-z]+)*"


class _KeyBERTExtractor:
    """KeyBERT's cosine ranking of each text's candidates; ``many`` embeds a whole batch at once."""

    def __init__(self, model: Any, n_max: int, top: int | None) -> None:
        from keybert import KeyBERT

        if n_max < 2:
            raise ValueError(f"n_max must be >= 2 (phrases have 2 or more words), got {n_max}")
        _check_top(top)
        self.kw, self.n_max, self.top = KeyBERT(model=model), n_max, top

    def __call__(self, text: str) -> list[str]:
        return self.many([text])[0]

    def many(self, texts: Sequence[str]) -> list[list[str]]:
        from sklearn.feature_extraction.text import CountVectorizer

        texts = _check_texts(texts)
        cands = [co.keyphrase_candidates(t, 2, self.n_max) for t in texts]
        vocab = sorted({c for cs in cands for c in cs})
        if not vocab:
            return [[] for _ in texts]
        vec = CountVectorizer(
            ngram_range=(2, self.n_max), vocabulary=vocab, lowercase=True, token_pattern=_KEYBERT_TOKENS
        )
        got = self.kw.extract_keywords(list(texts), vectorizer=vec, top_n=len(vocab))
        if len(texts) == 1:
            got = [got]
        out = []
        for own, ranked in zip(cands, got, strict=True):
            # the vectorizer ignores punctuation: keep the text's own candidates only
            mine = set(own)
            out.append([p for p, _ in ranked if p in mine][: self.top])
        return out


def keybert_extractor(model: Any = None, n_max: int = 4, top: int | None = None) -> Extractor:
    """KeyBERT (Grootendorst 2020, the ``keybert`` package) over the text's candidates.

    ``model`` is a ``sentence_transformers.SentenceTransformer``; by default the offline sentence
    encoder, built from the local folder of its package (its weights checked by
    :func:`attention_study.models.minilm_folder`'s SHA-256), on the CPU: nothing is downloaded.
    Candidates are :func:`~attention_study.collocations.keyphrase_candidates` (2..``n_max`` words,
    no stop word at either end), ranked by cosine similarity of their embedding to the whole
    text's (KeyBERT's default, without diversification); the first ``top`` are returned (``None``:
    all, so that keeping the phrases of fewer words equals a smaller ``n_max``).  The extractor's
    ``many(texts)`` embeds all texts and all their candidates in batches.
    """
    if model is None:
        model = minilm_sentence_transformer()
    return _KeyBERTExtractor(model, n_max, top)


def minilm_sentence_transformer() -> Any:
    """The offline sentence encoder as a ``SentenceTransformer`` from its local package folder (CPU)."""
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
    for ch in co.chunks(_check_text(text)):
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
    if n_max < 2:
        raise ValueError(f"n_max must be >= 2 (phrases have 2 or more words), got {n_max}")
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


def _check_top(top: int | None) -> None:
    if top is not None and (isinstance(top, bool) or not isinstance(top, int | np.integer) or top < 1):
        raise ValueError(f"top must be an int >= 1 or None, got {top!r}")


def score_rankings(
    rankings: Sequence[Iterable[str]], golds: Sequence[Iterable[str]], top: int | None = None
) -> Evaluation:
    """Exact-match scoring of precomputed ``rankings`` (one per item) against ``golds``.

    Each ranking is cut to its first ``top`` distinct phrases (``None``: all); phrases and gold are
    compared after :func:`~attention_study.collocations.normalize_phrase`.  Micro averaging:
    ``P = sum TP / sum pred``, ``R = sum TP / sum gold``, ``F1 = 2PR / (P + R)``
    (equivalently ``2 sum TP / (sum pred + sum gold)``).
    """
    _check_top(top)
    if len(rankings) != len(golds):
        raise ValueError(f"{len(rankings)} rankings for {len(golds)} gold lists")
    if len(golds) == 0:
        raise ValueError("no items to score")
    tp, n_pred, n_gold = [], [], []
    for ranking, gold in zip(rankings, golds, strict=True):
        ranked = list(dict.fromkeys(q for p in ranking if (q := co.normalize_phrase(p))))
        pred = set(ranked[:top] if top is not None else ranked)
        ref = {q for g in gold if (q := co.normalize_phrase(g))}
        tp.append(len(pred & ref))
        n_pred.append(len(pred))
        n_gold.append(len(ref))
    a = (np.array(tp, dtype=np.int64), np.array(n_pred, dtype=np.int64), np.array(n_gold, dtype=np.int64))
    prf = co._prf(int(a[0].sum()), int(a[1].sum()), int(a[2].sum()))
    return Evaluation(*a, prf)


def score_extractor(
    extractor: Extractor, items: Sequence[tuple[str, Iterable[str]]], top: int | None = None
) -> Evaluation:
    """Exact-match scoring of ``extractor`` on ``items`` ``[(text, gold phrases)]``
    (:func:`extract_many`, then :func:`score_rankings`)."""
    _check_top(top)
    if len(items) == 0:
        raise ValueError("no items to score")
    texts = [text for text, _ in items]
    return score_rankings(extract_many(extractor, texts), [gold for _, gold in items], top)


def wordnet_items(
    split: str, n: int | None = None, seed: int = 0, test_fraction: float = 0.5
) -> list[tuple[str, tuple[str, ...]]]:
    """Items ``[(sentence, gold expressions)]`` of the WordNet benchmark's ``split``, maybe sampled.

    ``n = None``: every item (:func:`attention_study.wordnet.benchmark_items`, sorted by sentence).
    Otherwise ``n`` items drawn without replacement by ``numpy.random.default_rng(seed)``, in the
    order drawn (so the first ``m`` of a draw are themselves a uniform sample of ``m``).
    An unknown split or an ``n`` outside ``1..len(split)`` is a ``ValueError`` naming the range.
    """
    from . import wordnet

    if split not in wordnet.SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(wordnet.SPLITS)}")
    items = wordnet.benchmark_items(split, test_fraction)
    if n is None:
        return items
    n = _check_int(n, "n")
    if not 1 <= n <= len(items):
        raise ValueError(f"n must be in 1..{len(items)} (the {split} split's items), got {n}")
    pick = np.random.default_rng(seed).permutation(len(items))[:n]
    return [items[i] for i in pick]


def score_on_wordnet(
    extractor: Extractor,
    split: str = "dev",
    *,
    n: int | None = None,
    seed: int = 0,
    top: int | None = None,
    test_fraction: float = 0.5,
) -> Evaluation:
    """Score ``extractor`` on the WordNet multi-word-expression benchmark (:func:`wordnet_items`).

    Items are example sentences of WordNet 3.1 with, as gold, every lexicon expression occurring in
    them (:func:`attention_study.wordnet.benchmark_items`); ``n``/``seed`` draw a sample, ``top``
    cuts each ranking (see :func:`score_rankings`).  Returns the per-item counts and micro P/R/F1.
    """
    _check_top(top)
    return score_extractor(extractor, wordnet_items(split, n, seed, test_fraction), top)


def best_setting(f1: Mapping[Any, float]) -> Any:
    """The key of the highest value; ties go to the key listed first (the stated order)."""
    if not f1:
        raise ValueError("no settings to choose from")
    best = max(f1.values())
    return next(k for k, v in f1.items() if v == best)


@dataclass(frozen=True)
class Choice:
    """A setting chosen on a development split: its key, the cut ``k``, the F1 it reached there, the
    longest phrase kept ``n_max`` (``None``: no limit) and (from :func:`choose`) the
    :class:`Evaluation` behind that F1."""

    setting: Hashable
    k: int
    f1: float
    n_max: int | None = None
    evaluation: Evaluation | None = None


def at_most(ranking: Iterable[str], n_max: int | None) -> list[str]:
    """The phrases of ``ranking`` with at most ``n_max`` words, in order (``None``: all)."""
    if n_max is None:
        return list(ranking)
    n_max = _check_int(n_max, "n_max")
    if n_max < 1:
        raise ValueError(f"n_max must be >= 1 or None, got {n_max}")
    return [p for p in ranking if len(co.words(p)) <= n_max]


def shorter(extractor: Extractor, n_max: int | None) -> Extractor:
    """``extractor`` keeping only phrases of at most ``n_max`` words (``many`` kept when it has one).

    For an extractor whose candidates are scored one by one (all of this module's but YAKE, whose
    de-duplication looks at the other candidates), this equals running it with that ``n_max``.
    """
    if n_max is None:
        return extractor
    at_most([], n_max)  # checks n_max

    class _Shorter:
        def __call__(self, text: str) -> list[str]:
            return at_most(extractor(text), n_max)

        def many(self, texts: Sequence[str]) -> list[list[str]]:
            return [at_most(r, n_max) for r in extract_many(extractor, texts)]

    return _Shorter()


def choose(
    rankings: Mapping[Hashable, Sequence[Iterable[str]]],
    golds: Sequence[Iterable[str]],
    ks: Sequence[int],
    n_maxes: Sequence[int | None] = (None,),
) -> Choice:
    """The (setting, ``n_max``, ``k``) whose rankings, kept to phrases of at most ``n_max`` words
    (:func:`at_most`) and cut to ``k`` phrases per text, score the highest micro F1 against
    ``golds``.  Ties go to the setting listed first, then to the smaller ``n_max``, then to the
    smaller ``k``."""
    if not ks or not n_maxes:
        raise ValueError("ks and n_maxes must each hold at least one value")
    evals: dict[tuple[Any, Any, int], Evaluation] = {}
    for key, r in rankings.items():
        for n in sorted(n_maxes, key=lambda n: (n is None, n or 0)):
            kept = [at_most(x, n) for x in r]
            for k in sorted(ks):
                evals[(key, n, k)] = score_rankings(kept, golds, k)
    best: Any = best_setting({key: e.prf.f1 for key, e in evals.items()})
    return Choice(best[0], int(best[2]), evals[best].prf.f1, best[1], evals[best])


def choose_settings(
    candidates: Mapping[str, Mapping[Hashable, Extractor]],
    items: Sequence[tuple[str, Iterable[str]]],
    ks: Sequence[int],
    n_maxes: Sequence[int | None] = (None,),
) -> dict[str, Choice]:
    """For each method, the setting, ``n_max`` and cut chosen on ``items`` (a development split) by
    :func:`choose`.

    ``candidates`` maps a method's name to its settings, each an extractor (one setting: a
    one-entry mapping).  Each extractor runs once on the texts (:func:`extract_many`).
    """
    if not items:
        raise ValueError("no items to choose settings on")
    texts, golds = [t for t, _ in items], [g for _, g in items]
    return {
        name: choose({key: extract_many(e, texts) for key, e in settings.items()}, golds, ks, n_maxes)
        for name, settings in candidates.items()
    }


def evaluate_choices(
    candidates: Mapping[str, Mapping[Hashable, Extractor]],
    choices: Mapping[str, Choice],
    items: Sequence[tuple[str, Iterable[str]]],
) -> dict[str, Evaluation]:
    """Each method's chosen extractor scored once on ``items`` (a test split): its phrases of at
    most the chosen ``n_max`` words, cut at the chosen ``k``."""
    missing = sorted(set(candidates) - set(choices))
    if missing:
        raise ValueError(f"no choice for {missing}")
    out = {}
    for name, settings in candidates.items():
        c = choices[name]
        if c.setting not in settings:
            raise ValueError(f"{name}: the chosen setting {c.setting!r} is not one of {list(settings)}")
        out[name] = score_extractor(shorter(settings[c.setting], c.n_max), items, c.k)
    return out


def best_head(grid: np.ndarray) -> tuple[int, int]:
    """``(layer, head)`` of the highest finite value of ``grid`` ``[n_layers, n_heads]``; ties go to
    the lowest layer, then the lowest head."""
    g = np.asarray(grid, dtype=np.float64)
    if g.ndim != 2 or not np.isfinite(g).any():
        raise ValueError(f"grid must be 2-D [n_layers, n_heads] with a finite value, got shape {g.shape}")
    flat = np.where(np.isfinite(g), g, -np.inf).ravel()
    layer, head = np.unravel_index(int(np.argmax(flat)), g.shape)
    return int(layer), int(head)


def summary_rows(
    evaluations: Mapping[str, Evaluation], n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> list[dict[str, Any]]:
    """One row per method: ``P``, ``R``, ``F1`` with their bootstrap intervals (``P lo``, ``P hi``,
    ...), the number of phrases it returned (``returned``, after the cut) and of items (``items``)."""
    rows = []
    for name, e in evaluations.items():
        b = bootstrap_prf(e, n_boot, level, seed)
        row: dict[str, Any] = {"method": name}
        for key, short in (("precision", "P"), ("recall", "R"), ("f1", "F1")):
            row[short], row[f"{short} lo"], row[f"{short} hi"] = b[key]
        row["returned"], row["items"] = int(e.n_predicted.sum()), int(e.n_gold.shape[0])
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------
# intervals and tests


def _check_pair(a: Evaluation, b: Evaluation) -> None:
    if a.n_gold.shape != b.n_gold.shape or not np.array_equal(a.n_gold, b.n_gold):
        raise ValueError(
            "the two evaluations must score the same items (same length and gold counts), got "
            f"{a.n_gold.shape[0]} and {b.n_gold.shape[0]} items"
        )


def _weights(n: int, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap resample counts ``[n_boot, n]`` (each row sums to ``n``)."""
    if n_boot < 100:
        raise ValueError(f"n_boot must be >= 100, got {n_boot}")
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [rng.multinomial(n, np.full(n, 1.0 / n), size=min(256, n_boot - s)) for s in range(0, n_boot, 256)]
    )


def _resampled_f1(evals: Sequence[Evaluation], n_boot: int, seed: int) -> np.ndarray:
    """Micro F1 of each evaluation on ``n_boot`` shared bootstrap resamples of the items:
    ``[n_boot, len(evals)]``."""
    w = _weights(evals[0].n_gold.shape[0], n_boot, seed)
    return np.stack([_micro(w * e.true_positives, w * e.n_predicted, w * e.n_gold) for e in evals], axis=1)


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


def bootstrap_prf(
    a: Evaluation, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> dict[str, tuple[float, float, float]]:
    """``{"precision" | "recall" | "f1": (estimate, low, high)}``: micro scores and percentile
    bootstrap intervals over items (one set of resamples for the three)."""
    w = _weights(a.n_gold.shape[0], n_boot, seed)
    tp, pred, gold = (w * a.true_positives).sum(1), (w * a.n_predicted).sum(1), (w * a.n_gold).sum(1)
    boot = {
        "precision": np.where(pred > 0, tp / np.maximum(pred, 1), 0.0),
        "recall": np.where(gold > 0, tp / np.maximum(gold, 1), 0.0),
        "f1": _micro(w * a.true_positives, w * a.n_predicted, w * a.n_gold),
    }
    est = {"precision": a.prf.precision, "recall": a.prf.recall, "f1": a.prf.f1}
    return {k: (est[k], *_percentiles(boot[k], level)) for k in boot}


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


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values ``[m]`` (Holm 1979): the ``k``-th smallest is multiplied
    by ``m - k + 1``, made non-decreasing in that order, capped at 1.  Rejecting where the adjusted
    value is below ``alpha`` controls the family-wise error rate at ``alpha``."""
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"p_values must be a non-empty 1-D sequence, got shape {p.shape}")
    if not np.all((p >= 0) & (p <= 1)):
        raise ValueError("p-values must lie in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    out = np.empty(m)
    out[order] = adjusted
    return out


@dataclass(frozen=True)
class PairedComparison:
    """One baseline against the method: ``difference = F1_method - F1_baseline`` with its paired
    bootstrap interval ``[low, high]``, the permutation ``p_value``, Holm's ``p_adjusted`` across
    the baselines compared together, and the ``verdict`` (one of :data:`VERDICTS`)."""

    baseline: str
    difference: float
    low: float
    high: float
    p_value: float
    p_adjusted: float
    verdict: str


def compare_with_baselines(
    method: Evaluation,
    baselines: Mapping[str, Evaluation],
    alpha: float = 0.05,
    level: float = 0.95,
    n_boot: int = 2000,
    n_perm: int = 5000,
    seed: int = 0,
) -> list[PairedComparison]:
    """``method`` against each baseline on the same items: paired bootstrap interval of the F1
    difference, permutation p-value, Holm's correction across the baselines, and a verdict:
    ``"better"`` where the adjusted p-value is below ``alpha`` and the difference positive,
    ``"worse"`` where it is below ``alpha`` and the difference negative, otherwise
    ``"no detectable difference"``."""
    if not baselines:
        raise ValueError("no baselines to compare with")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    names = list(baselines)
    diffs = [paired_bootstrap_f1(method, baselines[k], n_boot, level, seed) for k in names]
    ps = [paired_permutation_test(method, baselines[k], n_perm, seed) for k in names]
    adjusted = holm(ps)
    out = []
    for name, (d, lo, hi), p, pa in zip(names, diffs, ps, adjusted, strict=True):
        verdict = VERDICTS[2] if pa >= alpha or d == 0 else (VERDICTS[0] if d > 0 else VERDICTS[1])
        out.append(PairedComparison(name, d, lo, hi, p, float(pa), verdict))
    return out


def overall_verdict(comparisons: Sequence[PairedComparison]) -> str:
    """The claim "the method beats every baseline": ``"supported"`` when every comparison is
    ``"better"``, ``"refuted"`` when at least one is ``"worse"``, else ``"inconclusive"``."""
    if not comparisons:
        raise ValueError("no comparisons")
    verdicts = [c.verdict for c in comparisons]
    if any(v not in VERDICTS for v in verdicts):
        raise ValueError(f"unknown verdicts {sorted(set(verdicts) - set(VERDICTS))}; valid: {VERDICTS}")
    if all(v == "better" for v in verdicts):
        return "supported"
    return "refuted" if "worse" in verdicts else "inconclusive"


def min_detectable_difference(
    a: Evaluation,
    b: Evaluation,
    n_items: int,
    alpha: float = 0.05,
    power: float = 0.8,
    n_boot: int = 2000,
    seed: int = 0,
) -> float:
    """The F1 difference a two-sided test at level ``alpha`` detects with probability ``power`` on
    ``n_items`` items, from the paired spread seen on ``a`` and ``b`` (e.g. the development split).

    The standard error of the paired difference on ``n_items`` items is the bootstrap standard
    deviation on ``a``/``b`` scaled by ``sqrt(n_a / n_items)``; the detectable difference is
    ``se * (z_{1 - alpha/2} + z_power)`` (normal approximation).  Pass ``alpha / m`` for the
    first step of Holm's correction over ``m`` comparisons (the conservative bound).
    """
    _check_pair(a, b)
    if not 0.0 < alpha < 1.0 or not 0.0 < power < 1.0:
        raise ValueError(f"alpha and power must be in (0, 1), got {alpha}, {power}")
    n_items = _check_int(n_items, "n_items")
    if n_items < 1:
        raise ValueError(f"n_items must be >= 1, got {n_items}")
    f = _resampled_f1([a, b], n_boot, seed)
    se = float(np.std(f[:, 0] - f[:, 1], ddof=1)) * math.sqrt(a.n_gold.shape[0] / n_items)
    z = NormalDist()
    return se * (z.inv_cdf(1 - alpha / 2) + z.inv_cdf(power))
