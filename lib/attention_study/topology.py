"""Persistent homology of point clouds of vectors (context vectors, hidden states).

Conventions (in the spirit of scikit-tda):

- A *point cloud* is a float array ``[n_points, dim]``; a *distance matrix* is a symmetric float
  array ``[n_points, n_points]`` with a zero diagonal.
- A *diagram* is a float64 array ``[n_bars, 2]`` of (birth, death) filtration values, in the
  units of the distance used; an essential class has ``death = inf``.  ``diagrams[k]`` holds
  homology dimension ``k`` (``H0``, ``H1``, ...).
- Filtrations are Vietoris–Rips, computed by ripser :cite:`bauer2021ripser,tralie2018ripser`.

The clustering helpers read their scale from the ``H0`` barcode: the finite ``H0`` deaths of a
Vietoris–Rips filtration are exactly the merge heights of single-linkage clustering (the edge
lengths of a minimum spanning tree), so cutting the single-linkage tree at a scale taken from the
barcode needs no radius chosen by hand for each text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ripser import ripser
from scipy.cluster.hierarchy import cophenet, fcluster, linkage
from scipy.spatial.distance import pdist, squareform

__all__ = [
    "Phrase",
    "bottleneck_distance",
    "consecutive_runs",
    "diagram_distance",
    "extract_phrases",
    "finite_bars",
    "h0_deaths",
    "h0_scale",
    "min_points_for_homology",
    "pairwise_distances",
    "persistence_clusters",
    "single_linkage_labels",
    "text_phrases",
    "vietoris_rips",
    "vietoris_rips_from_distances",
    "wasserstein_distance",
    "word_spans",
    "word_vectors",
]

METRICS = ("euclidean", "cosine")
SCALE_RULES = ("largest_gap", "quantile")


# --------------------------------------------------------------------------------------------
# input checks


def min_points_for_homology(maxdim: int) -> int:
    """Fewest points whose Vietoris–Rips complex can carry a nontrivial ``H_maxdim`` class.

    A flag complex with nonzero reduced homology in dimension ``k`` has at least ``2k + 2``
    vertices (the smallest one is the boundary of the ``(k+1)``-dimensional cross-polytope: four
    points of a square for ``H1``, the six vertices of an octahedron for ``H2``).  For ``k = 0`` the
    bound is two points, the fewest that give a finite ``H0`` bar.
    """
    if not isinstance(maxdim, int | np.integer) or isinstance(maxdim, bool) or maxdim < 0:
        raise ValueError(f"maxdim must be an integer >= 0, got {maxdim!r}")
    return 2 * int(maxdim) + 2


def _check_points(points: np.ndarray, maxdim: int | None) -> np.ndarray:
    x = np.asarray(points, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"a point cloud must be a 2-d array [n_points, dim], got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        bad = np.unique(np.nonzero(~np.isfinite(x))[0])
        raise ValueError(
            f"point cloud has non-finite values (NaN or inf) in rows {bad[:10].tolist()}; "
            "all coordinates must be finite"
        )
    if x.shape[0] == 0:
        raise ValueError("point cloud is empty; need at least one point")
    if maxdim is None:
        return x
    need = min_points_for_homology(maxdim)
    if x.shape[0] < need:
        raise ValueError(
            f"homology up to dimension {maxdim} needs at least {need} points, got {x.shape[0]}; "
            f"use maxdim <= {max((x.shape[0] - 2) // 2, 0)} or more points"
        )
    return x


def _check_distances(dist: np.ndarray, maxdim: int) -> np.ndarray:
    d = np.asarray(dist, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"a distance matrix must be square [n, n], got shape {d.shape}")
    if not np.all(np.isfinite(d)):
        raise ValueError("distance matrix has non-finite entries (NaN or inf); all must be finite")
    if np.any(d < 0):
        raise ValueError("distance matrix has negative entries; distances must be >= 0")
    if not np.allclose(d, d.T, rtol=0.0, atol=1e-9 * max(1.0, float(np.abs(d).max(initial=0)))):
        raise ValueError("distance matrix is not symmetric")
    if np.any(np.abs(np.diag(d)) > 0):
        raise ValueError("distance matrix must have a zero diagonal")
    need = min_points_for_homology(maxdim)
    if d.shape[0] < need:
        raise ValueError(f"homology up to dimension {maxdim} needs at least {need} points, got {d.shape[0]}")
    return d


# --------------------------------------------------------------------------------------------
# distances and persistence


def pairwise_distances(points: np.ndarray, metric: str = "euclidean") -> np.ndarray:
    """Distance matrix ``[n, n]`` (float64) of a point cloud ``[n, dim]``.

    ``metric`` is ``"euclidean"`` or ``"cosine"`` (``1 - cos``, in [0, 2]).  Rows of zero norm are
    rejected for the cosine metric, where their distance is undefined.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    x = _check_points(points, None)
    if metric == "cosine" and np.any(np.linalg.norm(x, axis=1) == 0):
        raise ValueError("cosine distance is undefined for zero vectors")
    d = squareform(pdist(x, metric=metric))
    np.fill_diagonal(d, 0.0)
    return np.maximum(d, 0.0)


def vietoris_rips(points: np.ndarray, maxdim: int = 1, metric: str = "euclidean") -> list[np.ndarray]:
    """Vietoris–Rips persistence diagrams ``[H0, ..., H_maxdim]`` of a point cloud ``[n, dim]``.

    Raises ``ValueError`` for non-finite coordinates and for fewer than
    :func:`min_points_for_homology` points.
    """
    x = _check_points(points, maxdim)
    # ripser gets the distance matrix: the same filtration, and no guessing about [n, dim] layout
    return vietoris_rips_from_distances(pairwise_distances(x, metric), maxdim)


def vietoris_rips_from_distances(dist: np.ndarray, maxdim: int = 1) -> list[np.ndarray]:
    """Vietoris–Rips persistence diagrams of a precomputed distance matrix ``[n, n]``."""
    d = _check_distances(dist, maxdim)
    dgms = ripser(d, maxdim=maxdim, distance_matrix=True)["dgms"]
    return [np.asarray(g, dtype=np.float64).reshape(-1, 2) for g in dgms]


def finite_bars(diagram: np.ndarray) -> np.ndarray:
    """The bars of ``diagram`` ``[n, 2]`` with a finite death, as ``[m, 2]``."""
    g = np.asarray(diagram, dtype=np.float64).reshape(-1, 2)
    return g[np.isfinite(g[:, 1])]


def bottleneck_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Bottleneck distance between two diagrams ``[n, 2]``, ``[m, 2]`` (finite bars only).

    Essential classes (infinite deaths) are dropped first; for ``H0`` of two non-empty clouds each
    diagram has exactly one, born at 0, so dropping them loses nothing that could differ.
    """
    fa, fb = finite_bars(a), finite_bars(b)
    if len(fa) == 0 and len(fb) == 0:
        return 0.0
    from persim import bottleneck  # imported here: persim imports pyplot, metrics must not

    return float(bottleneck(fa, fb))


def wasserstein_distance(a: np.ndarray, b: np.ndarray) -> float:
    """1-Wasserstein distance between two diagrams (finite bars; Euclidean ground metric, persim).

    Unmatched bars are matched to the diagonal at cost ``(death - birth) / sqrt(2)``.
    """
    fa, fb = finite_bars(a), finite_bars(b)
    if len(fa) == 0 and len(fb) == 0:
        return 0.0
    from persim import wasserstein  # imported here: persim imports pyplot, metrics must not

    return float(wasserstein(fa, fb))


def diagram_distance(
    dgms_a: Sequence[np.ndarray],
    dgms_b: Sequence[np.ndarray],
    dim: int = 0,
    kind: str = "wasserstein",
) -> float:
    """Distance between the ``H_dim`` diagrams of two lists (``kind``: wasserstein|bottleneck)."""
    if kind not in ("wasserstein", "bottleneck"):
        raise ValueError(f"kind must be 'wasserstein' or 'bottleneck', got {kind!r}")
    if dim < 0 or dim >= min(len(dgms_a), len(dgms_b)):
        raise ValueError(f"dim must be in [0, {min(len(dgms_a), len(dgms_b)) - 1}] for these diagrams, got {dim}")
    f = wasserstein_distance if kind == "wasserstein" else bottleneck_distance
    return f(dgms_a[dim], dgms_b[dim])


# --------------------------------------------------------------------------------------------
# clustering read from the H0 barcode


def h0_deaths(points_or_dgms, metric: str = "euclidean") -> np.ndarray:
    """Sorted finite ``H0`` deaths ``[n - 1]`` of a point cloud ``[n, dim]`` or a diagram list."""
    if isinstance(points_or_dgms, list | tuple):
        dgm0 = points_or_dgms[0]
    else:
        dgm0 = vietoris_rips_from_distances(pairwise_distances(points_or_dgms, metric), 0)[0]
    return np.sort(finite_bars(dgm0)[:, 1])


def merge_heights(dist: np.ndarray) -> np.ndarray:
    """Sorted ``H0`` deaths ``[n - 1]`` of the Vietoris–Rips filtration of a distance matrix
    ``[n, n]``, in float64: the single-linkage merge heights (the same values as :func:`h0_deaths`).

    A cut scale that is compared with float64 distances is read from these, not from ripser's
    deaths, which ripser stores in float32: with a quantile scale that lands on a death, the edge of
    that length would otherwise be kept or dropped by float32 rounding, and so differ between
    processors whose kernels round the inputs differently in the last bit.
    """
    return np.sort(_single_linkage_tree(_check_distances(dist, 0))[:, 2])


def h0_scale(deaths: np.ndarray, rule: str = "largest_gap", q: float = 0.5) -> float:
    """A cut scale read from the finite ``H0`` deaths ``[m]`` (sorted or not).

    - ``"largest_gap"``: the midpoint of the widest gap between consecutive deaths (the scale range
      over which the number of components stays constant the longest);
    - ``"quantile"``: the ``q``-quantile of the deaths, i.e. the scale at which a fraction ``q`` of
      all merges has happened (``q`` is one global setting, never a per-text radius).

    Points closer than the scale (through chains of such links) end in one cluster.
    """
    if rule not in SCALE_RULES:
        raise ValueError(f"rule must be one of {SCALE_RULES}, got {rule!r}")
    d = np.sort(np.asarray(deaths, dtype=np.float64).ravel())
    if len(d) == 0:
        raise ValueError("need at least one finite H0 death (two points) to read a scale")
    if not np.all(np.isfinite(d)):
        raise ValueError("H0 deaths must be finite")
    if rule == "quantile":
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"q must be in [0, 1], got {q}")
        return float(np.quantile(d, q))
    grid = np.concatenate([[0.0], d])
    gaps = np.diff(grid)
    i = int(np.argmax(gaps))
    return float((grid[i] + grid[i + 1]) / 2)


def single_linkage_labels(dist: np.ndarray, scale: float) -> np.ndarray:
    """Labels ``[n]`` (ints from 0, by first appearance) of single linkage cut at ``scale``.

    Two points share a label when a chain of links each shorter than or equal to ``scale`` joins
    them — the connected components of the Vietoris–Rips complex at filtration value ``scale``.
    """
    return _cut(_single_linkage_tree(_check_distances(dist, 0)), scale)


def _single_linkage_tree(dist: np.ndarray) -> np.ndarray:
    """scipy's single-linkage matrix ``[n - 1, 4]`` of a checked distance matrix ``[n, n]``."""
    return linkage(squareform(dist, checks=False), method="single")


def _cut(tree: np.ndarray, scale: float) -> np.ndarray:
    """Labels ``[n]`` of a single-linkage ``tree`` cut at ``scale`` (see :func:`single_linkage_labels`)."""
    if not np.isfinite(scale) or scale < 0:
        raise ValueError(f"scale must be finite and >= 0, got {scale}")
    raw = fcluster(tree, t=scale, criterion="distance")
    _, first = np.unique(raw, return_index=True)
    order = {lab: k for k, lab in enumerate(raw[np.sort(first)])}
    return np.array([order[r] for r in raw], dtype=np.int64)


def persistence_clusters(
    points: np.ndarray, metric: str = "euclidean", rule: str = "largest_gap", q: float = 0.5
) -> tuple[np.ndarray, float]:
    """Cluster a point cloud ``[n, dim]`` at a scale read from its own ``H0`` barcode.

    Returns ``(labels [n], scale)``.
    """
    dist = pairwise_distances(points, metric)
    scale = h0_scale(merge_heights(dist), rule=rule, q=q)
    return single_linkage_labels(dist, scale), scale


def consecutive_runs(
    labels: Sequence[int] | np.ndarray, min_len: int = 2, max_len: int | None = None
) -> list[tuple[int, int]]:
    """Maximal runs ``[start, stop)`` of consecutive equal labels with ``min_len <= length``.

    Runs longer than ``max_len`` are dropped (not cut), since where to cut them would be a guess.
    """
    if min_len < 1:
        raise ValueError(f"min_len must be >= 1, got {min_len}")
    lab = list(labels)
    runs, start = [], 0
    for i in range(1, len(lab) + 1):
        if i == len(lab) or lab[i] != lab[start]:
            n = i - start
            if n >= min_len and (max_len is None or n <= max_len):
                runs.append((start, i))
            start = i
    return runs


# --------------------------------------------------------------------------------------------
# words and phrases

_WORD = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)*")


def word_spans(text: str) -> list[tuple[int, int]]:
    """Character spans ``[start, end)`` of the words (letters/digits, inner apostrophes)."""
    return [m.span() for m in _WORD.finditer(text)]


def word_vectors(
    token_vectors: np.ndarray, offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]
) -> np.ndarray:
    """Mean of the token vectors ``[token, dim]`` overlapping each word span -> ``[word, dim]``.

    ``offsets`` are the tokens' character spans (``(0, 0)`` for special tokens, which never
    overlap a word).  A word no token overlaps is an error (truncated or mis-tokenized text).
    """
    v = np.asarray(token_vectors, dtype=np.float64)
    if v.ndim != 2 or v.shape[0] != len(offsets):
        raise ValueError(f"token_vectors must be [token, dim] with {len(offsets)} tokens, got shape {v.shape}")
    off = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    real = off[:, 1] > off[:, 0]
    out = np.empty((len(spans), v.shape[1]))
    for w, (s, e) in enumerate(spans):
        hit = real & (off[:, 0] < e) & (off[:, 1] > s)
        if not hit.any():
            raise ValueError(f"no token covers the word at characters [{s}, {e})")
        out[w] = v[hit].mean(axis=0)
    return out


@dataclass(frozen=True)
class Phrase:
    """An extracted phrase: its text (as in the source), word range ``[start, stop)``, and score.

    ``score`` is how long (in distance units) the run has been one piece when the tree is cut: the
    cut scale minus the single-linkage height at which its words joined; always >= 0.
    """

    text: str
    start: int
    stop: int
    score: float


def extract_phrases(
    text: str,
    word_vecs: np.ndarray,
    spans: Sequence[tuple[int, int]] | None = None,
    metric: str = "euclidean",
    rule: str = "quantile",
    q: float = 0.3,
    min_len: int = 2,
    max_len: int = 4,
    stopwords: frozenset[str] | set[str] = frozenset(),
) -> list[Phrase]:
    """Phrases from one text: clusters of consecutive words at a scale read from the ``H0`` barcode.

    ``word_vecs`` ``[word, dim]`` are one vector per word of ``text`` (spans from
    :func:`word_spans`).  Words are clustered by single linkage cut at :func:`h0_scale`; each
    maximal run of consecutive words in one cluster is trimmed of leading/trailing ``stopwords``
    and kept when ``min_len <= len <= max_len`` words.  Sorted by score (descending), then position.
    """
    spans = list(word_spans(text) if spans is None else spans)
    x = np.asarray(word_vecs, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != len(spans):
        raise ValueError(f"word_vecs must be [word, dim] with one row per word ({len(spans)}), got {x.shape}")
    if len(spans) < 2:
        return []
    tree = _single_linkage_tree(_check_distances(pairwise_distances(x, metric), 0))  # one tree for all three
    scale = h0_scale(tree[:, 2], rule=rule, q=q)
    labels = _cut(tree, scale)
    merge = squareform(cophenet(tree))
    words = [text[s:e].lower() for s, e in spans]
    out: dict[str, Phrase] = {}
    for a, b in consecutive_runs(labels, min_len=1):
        while a < b and words[a] in stopwords:
            a += 1
        while b > a and words[b - 1] in stopwords:
            b -= 1
        if not min_len <= b - a <= max_len:
            continue
        joined_at = max(merge[i, i + 1] for i in range(a, b - 1))
        score = float(scale - joined_at)
        phrase_text = text[spans[a][0] : spans[b - 1][1]]
        key = " ".join(words[a:b])
        if key not in out or out[key].score < score:
            out[key] = Phrase(phrase_text, a, b, score)
    return sorted(out.values(), key=lambda p: (-p.score, p.start))


def text_phrases(
    text: str,
    token_vectors: np.ndarray,
    offsets: Sequence[tuple[int, int]],
    **options,
) -> list[Phrase]:
    """:func:`extract_phrases` from one head's token vectors ``[token, dim]`` of a traced text.

    ``offsets`` are the trace's character spans (``t.offsets``); words get the mean vector of
    their tokens (:func:`word_vectors`).  ``options`` go to :func:`extract_phrases`.
    """
    spans = word_spans(text)
    return extract_phrases(text, word_vectors(token_vectors, offsets, spans), spans, **options)
