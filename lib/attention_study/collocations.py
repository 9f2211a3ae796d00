"""Collocation and keyphrase baselines that need no network, and precision/recall/F1 scoring.

Everything works on lower-cased word n-grams that never cross punctuation (a *chunk* is a run of
words between punctuation marks).  Corpus statistics (after :cite:`church1990word` and
:cite:`manning1999foundations`):

- pointwise mutual information of an n-gram, ``PMI = log2 P(w1..wn) / prod_i P(wi)``;
- the t-score ``t = (O - E) / sqrt(O)`` of its observed count ``O`` against the count ``E``
  expected if its words were independent.

Per-document keyphrase extractors: TF-IDF over n-grams, a TextRank-style graph ranker of our own
:cite:`mihalcea2004textrank`, and YAKE :cite:`campos2020yake` through the ``yake`` package when it
is installed.  Scores are plain dictionaries ``{phrase: score}``; rankings are lists of phrases.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "PRF",
    "STOPWORDS",
    "association_scores",
    "chunks",
    "collocation_candidates",
    "keyphrase_candidates",
    "maximal_ngrams",
    "ngram_counts",
    "normalize_phrase",
    "pmi_scores",
    "prf",
    "prf_micro",
    "rank_by_documents",
    "t_scores",
    "textrank_keyphrases",
    "tfidf_keyphrases",
    "top_k",
    "word_total",
    "words",
    "yake_keyphrases",
]

STOPWORDS: frozenset[str] = frozenset(
    """a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each either every few
    for from further had has have having he her here hers herself him himself his how i if in into
    is it its itself just me might more most must my myself no nor not now of off on once only or
    other our ours ourselves out over own same shall she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up upon us
    very was we were what when where which while who whom why will with would yet you your yours
    yourself yourselves one two three many much may also already still even never always often
    again whose within without across along around among""".split()
)

_WORD = re.compile(r"[a-z0-9]+(?:['’][a-z]+)*")
_BREAK = re.compile(r"[.,;:!?\"“”()\[\]{}\n—–]+|\s-\s")


def words(text: str) -> list[str]:
    """Lower-cased words of ``text`` (letters/digits with inner apostrophes)."""
    return _WORD.findall(text.lower())


def chunks(text: str) -> list[list[str]]:
    """The word runs of ``text`` between punctuation marks (n-grams never cross a chunk)."""
    return [w for part in _BREAK.split(text) if (w := words(part))]


def normalize_phrase(phrase: str) -> str:
    """Canonical form for matching: lower case, words only, single spaces."""
    return " ".join(words(phrase))


def _check_n(n_min: int, n_max: int) -> None:
    if not 1 <= n_min <= n_max:
        raise ValueError(f"need 1 <= n_min <= n_max, got n_min={n_min}, n_max={n_max}")


def ngram_counts(texts: Iterable[str], n_min: int = 1, n_max: int = 4) -> Counter[tuple[str, ...]]:
    """Counts of every word n-gram (``n_min <= n <= n_max``) in ``texts``, within chunks."""
    _check_n(n_min, n_max)
    c: Counter[tuple[str, ...]] = Counter()
    for text in texts:
        for ch in chunks(text):
            for n in range(n_min, n_max + 1):
                for i in range(len(ch) - n + 1):
                    c[tuple(ch[i : i + n])] += 1
    return c


def maximal_ngrams(counts: Counter[tuple[str, ...]], n_min: int = 2) -> set[tuple[str, ...]]:
    """The n-grams (``n >= n_min``) not absorbed by a one-word-longer n-gram of the same count.

    When every occurrence of ``rabbits out of`` is inside ``pulling rabbits out of hats``, only the
    long form survives; this keeps sub-phrases of a recurring expression from filling a ranking.
    """
    absorbed: set[tuple[str, ...]] = set()
    for g, c in counts.items():
        if len(g) > n_min:
            for sub in (g[:-1], g[1:]):
                if counts.get(sub) == c:
                    absorbed.add(sub)
    return {g for g in counts if len(g) >= n_min and g not in absorbed}


def collocation_candidates(
    texts: Sequence[str], n_min: int = 2, n_max: int = 6, min_count: int = 3, min_docs: int = 3
) -> tuple[list[tuple[str, ...]], Counter[tuple[str, ...]]]:
    """Candidate collocations of a corpus and the n-gram counts (``n <= n_max + 1``) behind them.

    A candidate has ``n_min..n_max`` words, is seen ``>= min_count`` times in ``>= min_docs``
    different texts (so a sentence repeated inside one text does not count as a collocation), is
    maximal (:func:`maximal_ngrams`), and is not a one-word extension of another candidate (so
    ``keeps spilling the beans`` gives way to ``spilling the beans`` when both recur).
    """
    _check_n(n_min, n_max)
    if n_min < 2:
        raise ValueError(f"collocations need n-grams of >= 2 words, got n_min={n_min}")
    if min_count < 1 or min_docs < 1:
        raise ValueError(f"min_count and min_docs must be >= 1, got {min_count}, {min_docs}")
    counts = ngram_counts(texts, 1, n_max + 1)
    if not any(len(g) == 1 for g in counts):
        raise ValueError("the texts contain no words")
    docs: Counter[tuple[str, ...]] = Counter()
    for t in texts:
        docs.update(set(ngram_counts([t], n_min, n_max)))
    base = {
        g for g in maximal_ngrams(counts, n_min) if len(g) <= n_max and counts[g] >= min_count and docs[g] >= min_docs
    }
    keep = sorted(g for g in base if g[1:] not in base and g[:-1] not in base)
    return keep, counts


def word_total(counts: Counter[tuple[str, ...]]) -> int:
    """The number of words behind n-gram ``counts``: the sum of the one-word counts."""
    return sum(c for g, c in counts.items() if len(g) == 1)


def association_scores(
    phrases: Iterable[str],
    counts: Counter[tuple[str, ...]],
    kind: str = "pmi",
    total: int | None = None,
) -> dict[str, float]:
    """PMI (bits) or t-score of each phrase under n-gram ``counts`` (from :func:`ngram_counts`).

    Phrases never seen in ``counts`` are left out (their statistics are undefined).  ``total`` is
    :func:`word_total` of ``counts``, computed when not given (pass it when scoring many texts
    against one large table: summing it is a pass over the whole table).
    """
    if kind not in ("pmi", "t"):
        raise ValueError(f"kind must be 'pmi' or 't', got {kind!r}")
    if total is None:
        total = word_total(counts)
    if total <= 0:
        raise ValueError("the counts contain no words")
    out: dict[str, float] = {}
    for p in phrases:
        g = tuple(words(p))
        o = counts.get(g, 0)
        if len(g) < 2 or o == 0:
            continue
        expected = total * math.prod(counts[(w,)] / total for w in g)
        out[" ".join(g)] = math.log2(o / expected) if kind == "pmi" else (o - expected) / math.sqrt(o)
    return out


def _association(
    texts: Sequence[str], n_min: int, n_max: int, min_count: int, min_docs: int, kind: str
) -> dict[str, float]:
    cands, counts = collocation_candidates(texts, n_min, n_max, min_count, min_docs)
    return association_scores((" ".join(g) for g in cands), counts, kind)


def pmi_scores(
    texts: Sequence[str], n_min: int = 2, n_max: int = 6, min_count: int = 3, min_docs: int = 3
) -> dict[str, float]:
    """Pointwise mutual information (bits) of the candidates of :func:`collocation_candidates`.

    ``PMI(g) = log2(O / E)`` with ``O`` the count of ``g`` and ``E = N * prod_i (c(wi) / N)``,
    ``N`` the number of words.  Rare n-grams get inflated PMI, hence ``min_count``.
    """
    return _association(texts, n_min, n_max, min_count, min_docs, "pmi")


def t_scores(
    texts: Sequence[str], n_min: int = 2, n_max: int = 6, min_count: int = 3, min_docs: int = 3
) -> dict[str, float]:
    """t-score ``(O - E) / sqrt(O)`` of the candidates of :func:`collocation_candidates`."""
    return _association(texts, n_min, n_max, min_count, min_docs, "t")


def keyphrase_candidates(text: str, n_min: int = 2, n_max: int = 4, stopwords: frozenset[str] = STOPWORDS) -> list[str]:
    """Distinct n-grams of ``text`` (within chunks) that neither start nor end with a stopword."""
    _check_n(n_min, n_max)
    seen: dict[str, None] = {}
    for ch in chunks(text):
        for n in range(n_min, n_max + 1):
            for i in range(len(ch) - n + 1):
                g = ch[i : i + n]
                if g[0] not in stopwords and g[-1] not in stopwords:
                    seen.setdefault(" ".join(g), None)
    return list(seen)


def tfidf_keyphrases(
    docs: Sequence[str], n_min: int = 2, n_max: int = 4, stopwords: frozenset[str] = STOPWORDS
) -> list[dict[str, float]]:
    """TF-IDF of each document's candidate n-grams against the collection ``docs``.

    ``tfidf(g, d) = count(g, d) * (1 + log(N_docs / df(g)))`` (the smoothed idf keeps n-grams found
    in every document positive).  Returns one ``{phrase: score}`` per document.
    """
    cands = [keyphrase_candidates(d, n_min, n_max, stopwords) for d in docs]
    df = Counter(p for c in cands for p in set(c))
    n_docs = len(docs)
    out = []
    for d, c in zip(docs, cands, strict=True):
        tf = ngram_counts([d], n_min, n_max)
        out.append({p: tf[tuple(p.split())] * (1 + math.log(n_docs / df[p])) for p in c})
    return out


def textrank_keyphrases(
    text: str,
    window: int = 2,
    damping: float = 0.85,
    n_max: int = 4,
    stopwords: frozenset[str] = STOPWORDS,
) -> dict[str, float]:
    """A TextRank-style extractor: PageRank on the word co-occurrence graph, then phrases.

    Vertices are the non-stopwords; an edge joins two that occur within ``window`` words of each
    other inside a chunk.  Phrases are maximal runs of non-stopwords (2..``n_max`` words) scored by
    the sum of their words' PageRank.
    """
    import networkx as nx

    if window < 2:
        raise ValueError(f"window must be >= 2, got {window}")
    g = nx.Graph()
    runs: list[list[str]] = []
    for ch in chunks(text):
        content = [w if w not in stopwords else None for w in ch]
        for i, w in enumerate(content):
            if w is None:
                continue
            g.add_node(w)
            for v in content[i + 1 : i + window]:
                if v is not None and v != w:
                    g.add_edge(w, v)
        run: list[str] = []
        for w in [*content, None]:
            if w is None:
                if run:
                    runs.append(run)
                run = []
            else:
                run.append(w)
    if g.number_of_nodes() == 0:
        return {}
    rank = nx.pagerank(g, alpha=damping) if g.number_of_edges() else {w: 1.0 for w in g}
    out: dict[str, float] = {}
    for run in runs:
        if 2 <= len(run) <= n_max:
            out[" ".join(run)] = sum(rank[w] for w in run)
    return out


def yake_keyphrases(text: str, n_max: int = 4, top: int = 20) -> dict[str, float]:
    """YAKE keyphrases of ``text`` with 2..``n_max`` words, as ``{phrase: score}`` (higher = better).

    YAKE scores are lower-is-better; they are negated here so every extractor ranks descending.
    Raises ``ImportError`` naming the pin when ``yake`` is not installed.
    """
    try:
        import yake
    except ImportError as e:  # pragma: no cover - yake is pinned in requirements
        raise ImportError("yake_keyphrases needs the 'yake' package (pip install yake==0.7.3)") from e
    kw = yake.KeywordExtractor(lan="en", n=n_max, top=top, dedupLim=0.9)
    out: dict[str, float] = {}
    for phrase, score in kw.extract_keywords(text):
        p = normalize_phrase(phrase)
        if len(p.split()) >= 2 and p not in out:
            out[p] = -float(score)
    return out


def rank_by_documents(per_document: Sequence[Iterable[str]]) -> dict[str, float]:
    """Corpus ranking from per-document phrase lists: the number of documents listing a phrase."""
    c: Counter[str] = Counter()
    for phrases in per_document:
        c.update({normalize_phrase(p) for p in phrases} - {""})
    return {p: float(n) for p, n in c.items()}


def top_k(scores: dict[str, float], k: int) -> list[str]:
    """The ``k`` best phrases of ``{phrase: score}`` (ties broken alphabetically, so stable)."""
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    return [p for p, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]


@dataclass(frozen=True)
class PRF:
    """Precision, recall, F1 and the counts behind them."""

    precision: float
    recall: float
    f1: float
    true_positives: int
    n_predicted: int
    n_gold: int


def _prf(tp: int, n_pred: int, n_gold: int) -> PRF:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return PRF(p, r, f, tp, n_pred, n_gold)


def prf(predicted: Iterable[str], gold: Iterable[str]) -> PRF:
    """Exact-match precision/recall/F1 of a set of phrases against gold (after normalization)."""
    pred = {normalize_phrase(p) for p in predicted} - {""}
    ref = {normalize_phrase(g) for g in gold} - {""}
    return _prf(len(pred & ref), len(pred), len(ref))


def prf_micro(predicted: Sequence[Iterable[str]], gold: Sequence[Iterable[str]]) -> PRF:
    """Micro-averaged P/R/F1 over documents (counts summed before dividing)."""
    if len(predicted) != len(gold):
        raise ValueError(f"{len(predicted)} predictions for {len(gold)} gold sets")
    parts = [prf(p, g) for p, g in zip(predicted, gold, strict=True)]
    return _prf(sum(x.true_positives for x in parts), sum(x.n_predicted for x in parts), sum(x.n_gold for x in parts))
