"""Do word groups keep their shape across contexts?  The statistics of the word-group chapter.

A *word group* (an expression such as *a great deal*, or a control n-gram such as *the good news*)
is seen in ``m`` texts (its *contexts*).  In each text, one head of one layer gives every word a
vector: the mean of the head's context vectors ``c_i = sum_j a_ij v_j`` over the word's tokens
``[d_head]``.  Around the group, a *window* holds the group's ``k`` words and up to ``w`` words on
each side (clipped at the ends of the text), ``W <= k + 2w`` points.

The window's distances are divided by their own mean (the *scale*), so every cloud has mean
pairwise distance 1 and no statistic depends on the size of a head's vectors.  Two statistics of
the group's cross-context variation are computed for every layer and head at once:

- **distance spread** (knows which word is which): the scaled distances ``d_ij`` between the
  group's own words (``k (k - 1) / 2`` word pairs), and for each pair the standard deviation over
  the ``m`` contexts of ``log d_ij``, averaged over the pairs (:func:`distance_spread`);
- **diagram spread** (persistent homology, blind to which word is which): the ``H0`` diagram of
  the scaled window cloud (Vietoris–Rips; births 0, the deaths are the edge lengths of a minimum
  spanning tree), and the mean over the ``m (m - 1) / 2`` pairs of contexts of the bottleneck
  distance between diagrams (:func:`diagram_spread`), the distance for which the stability theorem
  of Cohen-Steiner, Edelsbrunner and Harer (2007) holds.

Small values mean the group keeps its shape.  Arrays carry the model's axes in front:
``[layer, head, ...]``.  Then the paired comparison of expressions with their controls
(:func:`paired_test`: standardized effect, bootstrap interval, t-test, Holm correction), its power
(:func:`power_paired_t`) and the verdict rule (:func:`verdict`); and the held-out passages and
grammatical controls for the generated corpus (:func:`heldout_passages`,
:func:`grammatical_controls`).

``topology`` supplies the Vietoris–Rips and bottleneck definitions; the batched forms here
(:func:`h0_deaths`, :func:`h0_bottleneck`) compute the same numbers for many small clouds at once
and are checked against it in ``tests/test_stability.py``.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from . import topology
from .corpus import ADJECTIVES, NOUNS, PREPOSITIONS, VERBS_TRANSITIVE, CorpusRecipe, generate_passage
from .models import LoadedModel
from .tracing import BatchTrace, trace
from .wordnet import find_span, occurrences

__all__ = [
    "VERDICTS",
    "GroupWindow",
    "PairedTest",
    "Profile",
    "agreed",
    "causal_prefix",
    "compare",
    "contexts_in",
    "detectable_effect",
    "diagram_spread",
    "distance_spread",
    "fitting",
    "grammatical_controls",
    "group_profile",
    "h0_bottleneck",
    "h0_deaths",
    "heldout_passages",
    "holm",
    "locate_group",
    "paired_test",
    "phrase_slot",
    "planted_items",
    "power_paired_t",
    "profiles_of",
    "sentence_of",
    "sentences",
    "spreads",
    "substitute",
    "verdict",
    "window_vectors",
]

VERDICTS = ("supported", "refuted", "inconclusive")


# --------------------------------------------------------------------------------------------
# where a group sits in a text


@dataclass(frozen=True)
class GroupWindow:
    """A word group in one text: the character spans of its window's words (the group's ``k``
    words and up to ``w`` words either side) and the positions of the group's words among them."""

    phrase: str
    text: str
    spans: tuple[tuple[int, int], ...]
    group: tuple[int, ...]


def locate_group(text: str, phrase: str, window: int = 2) -> GroupWindow:
    """Find ``phrase`` in ``text`` (first whole-word, case-insensitive match) and its window.

    Words are :func:`topology.word_spans`; the group is the words that overlap the match (*for
    one* in "for one's life" is *for* and *one's*), which must be as many as ``phrase`` has (at
    least 2).  Raises ``ValueError`` naming the phrase and the text
    when the phrase is absent, and for a ``window`` that is not an integer >= 0.
    """
    if not isinstance(window, int) or isinstance(window, bool) or window < 0:
        raise ValueError(f"window must be an integer >= 0 (words on each side), got {window!r}")
    k = len(topology.word_spans(phrase))
    if k < 2:
        raise ValueError(f"a word group needs at least 2 words, got {phrase!r} ({k} word)")
    start, end = find_span(phrase, text)
    words = topology.word_spans(text)
    inside = [i for i, (s, e) in enumerate(words) if s < end and e > start]
    if len(inside) != k:
        raise ValueError(f"{phrase!r} has {k} words but its match in {text[:80]!r} covers {len(inside)}")
    lo, hi = max(inside[0] - window, 0), min(inside[-1] + window + 1, len(words))
    return GroupWindow(phrase, text, tuple(words[lo:hi]), tuple(i - lo for i in inside))


def window_vectors(contexts: np.ndarray, offsets: Sequence[tuple[int, int]], where: GroupWindow) -> np.ndarray:
    """Word vectors of a window for every head: ``contexts`` ``[layer, head, token, d_head]`` (one
    text's trace) -> ``[layer, head, W, d_head]``, each word the mean of the tokens covering it
    (:func:`topology.word_vectors`, by character ``offsets``; special tokens never count)."""
    c = np.asarray(contexts, dtype=np.float64)
    if c.ndim != 4:
        raise ValueError(f"contexts must be [layer, head, token, d_head], got shape {c.shape}")
    n_layers, n_heads, n_tokens, d = c.shape
    flat = c.transpose(2, 0, 1, 3).reshape(n_tokens, -1)
    words = topology.word_vectors(flat, offsets, where.spans)
    return words.reshape(len(where.spans), n_layers, n_heads, d).transpose(1, 2, 0, 3)


# --------------------------------------------------------------------------------------------
# one cloud: scaled distances and its H0 diagram


def _pairwise(points: np.ndarray) -> np.ndarray:
    """Euclidean distances ``[..., n, n]`` of clouds ``[..., n, dim]``."""
    diff = points[..., :, None, :] - points[..., None, :, :]
    return np.sqrt(np.einsum("...d,...d->...", diff, diff))


def h0_deaths(dist: np.ndarray) -> np.ndarray:
    """Finite ``H0`` deaths of Vietoris–Rips filtrations, for many clouds at once.

    ``dist`` ``[..., n, n]`` (symmetric, zero diagonal) -> ``[..., n - 1]``, sorted ascending: the
    edge lengths of a minimum spanning tree (Prim's algorithm, vectorised over the leading axes),
    the same numbers as :func:`topology.h0_deaths`.  Raises ``ValueError`` for fewer points than
    ``H0`` needs (:func:`topology.min_points_for_homology`) or non-finite distances.
    """
    d = np.asarray(dist, dtype=np.float64)
    if d.ndim < 2 or d.shape[-1] != d.shape[-2]:
        raise ValueError(f"distances must be [..., n, n], got shape {d.shape}")
    n = d.shape[-1]
    need = topology.min_points_for_homology(0)
    if n < need:
        raise ValueError(f"H0 needs at least {need} points, got {n}")
    if not np.all(np.isfinite(d)):
        raise ValueError("distances must be finite")
    lead = d.shape[:-2]
    flat = d.reshape(-1, n, n)
    rows = np.arange(flat.shape[0])
    best = flat[:, 0, :].copy()  # distance of every point to the tree (which holds point 0)
    in_tree = np.zeros((flat.shape[0], n), dtype=bool)
    in_tree[:, 0] = True
    deaths = np.empty((flat.shape[0], n - 1))
    for step in range(n - 1):
        j = np.argmin(np.where(in_tree, np.inf, best), axis=1)
        deaths[:, step] = best[rows, j]
        in_tree[rows, j] = True
        best = np.minimum(best, flat[rows, j, :])
    return np.sort(deaths, axis=1).reshape(*lead, n - 1)


def h0_bottleneck(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bottleneck distance between ``H0`` diagrams given by their finite deaths (births all 0).

    ``a`` ``[..., p]`` and ``b`` ``[..., q]`` (deaths >= 0, any order; leading axes broadcast)
    -> ``[...]``.  With the L-infinity ground metric of :func:`topology.bottleneck_distance` a bar
    ``(0, x)`` costs ``|x - y|`` to match with ``(0, y)`` and ``x / 2`` to send to the diagonal.
    An optimal matching pairs the ``t`` longest bars of each diagram in sorted order and sends the
    rest to the diagonal, so the distance is the minimum over ``t`` of
    ``max(max_{i<t} |a_(i) - b_(i)|, a_(t) / 2, b_(t) / 2)`` (bars sorted descending, the shorter
    list padded with zero-length bars, which cost nothing on the diagonal).
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    for name, v in (("a", x), ("b", y)):
        if v.ndim < 1 or not np.all(np.isfinite(v)) or np.any(v < 0):
            raise ValueError(f"{name} must hold finite deaths >= 0 along its last axis, got shape {v.shape}")
    n = max(x.shape[-1], y.shape[-1])
    x = -np.sort(-np.concatenate([x, np.zeros((*x.shape[:-1], n - x.shape[-1]))], axis=-1), axis=-1)
    y = -np.sort(-np.concatenate([y, np.zeros((*y.shape[:-1], n - y.shape[-1]))], axis=-1), axis=-1)
    x, y = np.broadcast_arrays(x, y)
    zero = np.zeros((*x.shape[:-1], 1))
    matched = np.concatenate([zero, np.maximum.accumulate(np.abs(x - y), axis=-1)], axis=-1)  # t = 0..n
    rest = np.concatenate([np.maximum(x, y) / 2, zero], axis=-1)  # the longest unmatched bar, t = 0..n
    return np.min(np.maximum(matched, rest), axis=-1)


@dataclass(frozen=True)
class Profile:
    """One group in one text, for every head: ``distances`` ``[layer, head, P]`` between the group's
    words (pairs ``(i, j)``, ``i < j``, in word order), and ``deaths`` ``[layer, head, W - 1]``,
    the ``H0`` deaths of the window cloud; both in units of the window's mean distance."""

    phrase: str
    distances: np.ndarray
    deaths: np.ndarray


def group_profile(points: np.ndarray, group: Sequence[int], phrase: str = "the group", maxdim: int = 0) -> Profile:
    """Scaled group distances and window diagram of window clouds ``[..., W, d]`` (e.g. ``[layer,
    head, W, d_head]``): the :class:`Profile`'s ``distances`` ``[..., P]`` and ``deaths``
    ``[..., W - 1]``.

    The cloud must have the points that homology up to ``maxdim`` needs
    (:func:`topology.min_points_for_homology`: 2 for ``H0``, 4 for ``H1``); fewer is a
    ``ValueError`` naming ``phrase``.  So is a cloud whose points all coincide (no scale).
    """
    x = np.asarray(points, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"points must be [..., W, d], got shape {x.shape}")
    n_points = x.shape[-2]
    need = topology.min_points_for_homology(maxdim)
    if n_points < need:
        raise ValueError(
            f"the cloud of {phrase!r} has {n_points} points; homology up to H{maxdim} needs at least {need} "
            "(use a wider window or a smaller maxdim)"
        )
    g = list(group)
    if len(g) < 2 or len(set(g)) != len(g) or min(g) < 0 or max(g) >= n_points:
        raise ValueError(f"group must be >= 2 distinct point indices in 0..{n_points - 1}, got {g}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"the cloud of {phrase!r} has non-finite coordinates")
    dist = _pairwise(x)
    iu = np.triu_indices(n_points, 1)
    scale = dist[..., iu[0], iu[1]].mean(axis=-1)
    if np.any(scale <= 0):
        raise ValueError(f"the points of {phrase!r}'s cloud coincide (zero mean distance): no scale to divide by")
    scaled = dist / scale[..., None, None]
    pairs = list(itertools.combinations(g, 2))
    between = np.stack([scaled[..., i, j] for i, j in pairs], axis=-1)
    return Profile(phrase, between, h0_deaths(scaled))


def profiles_of(
    loaded: LoadedModel,
    items: Sequence[tuple[str, str]],
    window: int = 2,
    batch_size: int = 64,
    maxdim: int = 0,
) -> list[Profile]:
    """The :class:`Profile` of each ``(phrase, text)`` item, every layer and head.

    Distinct texts are traced once each, in batches of ``batch_size`` sorted by length (little
    padding); a phrase not in its text is a ``ValueError`` naming both, before anything is traced.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    where = [locate_group(text, phrase, window) for phrase, text in items]
    texts = sorted({text for _, text in items}, key=lambda t: (len(t), t))
    wanted: dict[str, list[int]] = {}
    for i, (_, text) in enumerate(items):
        wanted.setdefault(text, []).append(i)
    out: list[Profile | None] = [None] * len(items)
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        batch = trace(loaded, list(chunk))
        if not isinstance(batch, BatchTrace):  # pragma: no cover - a list always gives a batch
            raise TypeError("trace of a list of texts must return a BatchTrace")
        for b, text in enumerate(chunk):
            # the item's real tokens only (padding is masked; its attentions are not needed here)
            contexts = batch.contexts[b][:, :, batch.mask[b]].numpy()
            for i in wanted[text]:
                vecs = window_vectors(contexts, batch.offsets[b] or [], where[i])
                out[i] = group_profile(vecs, where[i].group, where[i].phrase, maxdim)
    return [p for p in out if p is not None]


# --------------------------------------------------------------------------------------------
# across contexts


def distance_spread(profiles: Sequence[Profile]) -> np.ndarray:
    """Distance spread of one group over its ``m >= 2`` contexts: ``[layer, head]``.

    For each word pair, the standard deviation (``ddof=1``) over contexts of the log of its scaled
    distance, averaged over the pairs.  0 means the group's words sit in the same proportions to
    their window in every context.
    """
    _check_contexts(profiles)
    d = np.stack([p.distances for p in profiles])  # [m, layer, head, P]
    if np.any(d <= 0):
        raise ValueError(f"two words of {profiles[0].phrase!r} coincide in some context (distance 0): log undefined")
    return np.log(d).std(axis=0, ddof=1).mean(axis=-1)


def diagram_spread(profiles: Sequence[Profile]) -> np.ndarray:
    """Diagram spread of one group over its ``m >= 2`` contexts: ``[layer, head]``, the mean over
    pairs of contexts of the bottleneck distance between the window clouds' ``H0`` diagrams."""
    _check_contexts(profiles)
    pairs = itertools.combinations(range(len(profiles)), 2)
    return np.mean([h0_bottleneck(profiles[r].deaths, profiles[s].deaths) for r, s in pairs], axis=0)


def spreads(profiles: Sequence[Profile], m: int) -> tuple[np.ndarray, np.ndarray]:
    """Distance and diagram spreads of consecutive groups of ``m`` profiles (one group's contexts):
    ``([G, layer, head], [G, layer, head])`` for ``G = len(profiles) / m`` groups."""
    if m < 2 or len(profiles) % m:
        raise ValueError(f"need m >= 2 contexts per group and a multiple of m profiles, got m={m}, {len(profiles)}")
    groups = [profiles[i : i + m] for i in range(0, len(profiles), m)]
    return np.stack([distance_spread(g) for g in groups]), np.stack([diagram_spread(g) for g in groups])


def _check_contexts(profiles: Sequence[Profile]) -> None:
    if len(profiles) < 2:
        raise ValueError(f"a spread across contexts needs at least 2 contexts, got {len(profiles)}")
    names = {p.phrase.lower() for p in profiles}
    if len(names) != 1:
        raise ValueError(f"profiles of one group expected, got {sorted(names)}")


# --------------------------------------------------------------------------------------------
# the paired comparison


@dataclass(frozen=True)
class PairedTest:
    """Paired differences ``d = S(expression) - S(control)`` ``[n, K]`` summarised per unit ``K``
    (e.g. ``K = layers * heads``): ``dz`` the standardized mean difference (mean / sd), its
    bootstrap percentile interval ``ci_low``, ``ci_high``, the two-sided one-sample t-test ``p``
    and its Holm adjustment ``p_holm`` (over the ``K`` units and ``extra_tests`` more)."""

    dz: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    p: np.ndarray
    p_holm: np.ndarray
    n: int

    def take(self, columns: slice) -> PairedTest:
        """The units ``columns`` only (their Holm adjustment stays the one over all units)."""
        return PairedTest(
            self.dz[columns], self.ci_low[columns], self.ci_high[columns], self.p[columns], self.p_holm[columns], self.n
        )

    def significant(self, alpha: float) -> tuple[list[int], list[int]]:
        """Units with ``p_holm < alpha``: ``(dz < 0, dz > 0)``, i.e. (expressions more stable, less)."""
        sig = self.p_holm < alpha
        return np.flatnonzero(sig & (self.dz < 0)).tolist(), np.flatnonzero(sig & (self.dz > 0)).tolist()


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (same shape as ``p``; family = every entry)."""
    flat = np.asarray(p, dtype=np.float64).ravel()
    if np.any((flat < 0) | (flat > 1)) or not np.all(np.isfinite(flat)):
        raise ValueError("p-values must be finite and in [0, 1]")
    order = np.argsort(flat, kind="stable")
    m = len(flat)
    adjusted = np.maximum.accumulate((m - np.arange(m)) * flat[order])
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out.reshape(np.shape(p))


def paired_test(differences: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> PairedTest:
    """Standardized effect, bootstrap interval and t-test of paired differences ``[n, K]``.

    Holm's correction is applied across the ``K`` columns; to correct over several calls at once
    (e.g. two statistics), concatenate their columns.  Bootstrap: ``n_boot`` resamples of the ``n``
    pairs with replacement (seeded), percentile interval at ``level``.
    """
    d = np.asarray(differences, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] < 3:
        raise ValueError(f"differences must be [n >= 3, K], got shape {d.shape}")
    if not np.all(np.isfinite(d)):
        raise ValueError("differences must be finite")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    n = d.shape[0]
    sd = d.std(axis=0, ddof=1)
    if np.any(sd == 0):
        raise ValueError("a column of differences is constant: its standardized effect is undefined")
    dz = d.mean(axis=0) / sd
    counts = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)
    mean = counts @ d / n
    var = (counts @ d**2 / n - mean**2) * n / (n - 1)
    boot = mean / np.sqrt(np.maximum(var, np.finfo(float).tiny))
    tail = (1 - level) / 2
    lo, hi = np.quantile(boot, [tail, 1 - tail], axis=0)
    p = stats.ttest_1samp(d, 0.0, axis=0).pvalue
    return PairedTest(dz, lo, hi, p, holm(p), n)


def power_paired_t(n: int, dz: float, alpha: float) -> float:
    """Power of the two-sided one-sample t-test at level ``alpha`` for ``n`` pairs whose true
    standardized effect is ``dz`` (noncentral t with ``n - 1`` degrees of freedom).

    With Holm's correction over ``K`` tests, ``alpha / K`` (the first step) gives a lower bound of
    the power to detect one unit with that effect.
    """
    if n < 2 or not 0 < alpha < 1:
        raise ValueError(f"need n >= 2 and alpha in (0, 1), got n={n}, alpha={alpha}")
    df = n - 1
    crit = stats.t.ppf(1 - alpha / 2, df)
    nc = dz * math.sqrt(n)
    return float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))


def detectable_effect(n: int, alpha: float, power: float = 0.8) -> float:
    """The smallest standardized effect ``dz > 0`` that :func:`power_paired_t` detects with
    ``power`` (bisection to 1e-4)."""
    if not 0 < power < 1:
        raise ValueError(f"power must be in (0, 1), got {power}")
    lo, hi = 0.0, 10.0
    while hi - lo > 1e-4:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if power_paired_t(n, mid, alpha) < power else (lo, mid)
    return hi


def verdict(test: PairedTest, alpha: float, delta: float) -> str:
    """The verdict on "expressions keep their shape better" (``d < 0``) from a :class:`PairedTest`.

    - ``supported``: some unit has ``p_holm < alpha`` with ``dz < 0`` and none with ``dz > 0``;
    - ``refuted``: some unit has ``p_holm < alpha`` with ``dz > 0`` and none with ``dz < 0``, or no
      unit is significant and every unit's interval lies inside ``(-delta, delta)`` (no effect as
      large as the smallest one that matters);
    - ``inconclusive``: otherwise (both directions significant, or nothing significant and some
      interval reaching ``delta``).
    """
    if delta <= 0:
        raise ValueError(f"delta must be > 0, got {delta}")
    more, less = (bool(units) for units in test.significant(alpha))
    if more and not less:
        return "supported"
    if less and not more:
        return "refuted"
    if not more and not less and bool(np.all((test.ci_low > -delta) & (test.ci_high < delta))):
        return "refuted"
    return "inconclusive"


def compare(
    distance: np.ndarray, diagram: np.ndarray, per_group: int, n_boot: int = 2000, seed: int = 0
) -> dict[str, PairedTest]:
    """Expressions against their controls, from the spreads of :func:`spreads`.

    ``distance``, ``diagram`` ``[G * per_group, layer, head]``: blocks of ``per_group`` groups,
    an expression followed by its ``per_group - 1`` controls.  The paired difference of a block is
    the expression's spread minus the mean of its controls'.  Returns the :class:`PairedTest` of
    every head for each statistic (``"distance"``, ``"diagram"``; Holm over both together,
    ``2 * layer * head`` tests) and of the head-averaged spreads (``"overall"``: column 0
    distance, column 1 diagram, Holm over the two).
    """
    if per_group < 2 or distance.shape != diagram.shape or distance.shape[0] % per_group:
        raise ValueError(
            f"need per_group >= 2 and two [G * per_group, layer, head] arrays, got {per_group}, "
            f"{distance.shape}, {diagram.shape}"
        )
    diffs = []
    for s in (distance, diagram):
        blocks = s.reshape(-1, per_group, *s.shape[1:])
        diffs.append((blocks[:, 0] - blocks[:, 1:].mean(axis=1)).reshape(blocks.shape[0], -1))
    k = diffs[0].shape[1]
    heads = paired_test(np.concatenate(diffs, axis=1), n_boot, seed=seed)
    overall = paired_test(np.stack([d.mean(axis=1) for d in diffs], axis=1), n_boot, seed=seed)
    return {"distance": heads.take(slice(0, k)), "diagram": heads.take(slice(k, 2 * k)), "overall": overall}


def agreed(verdicts: Sequence[str]) -> str:
    """One verdict from several (statistics, seeds): the common one if all agree, else
    ``inconclusive``."""
    bad = [v for v in verdicts if v not in VERDICTS]
    if not verdicts or bad:
        raise ValueError(f"need verdicts among {VERDICTS}, got {list(verdicts)}")
    return verdicts[0] if len(set(verdicts)) == 1 else "inconclusive"


# --------------------------------------------------------------------------------------------
# the generated corpus: held-out passages and grammatical controls

_SENTENCE_END = re.compile(r"(?<=[.!?])\"?\s+")


def sentences(text: str) -> list[str]:
    """The sentences of a generated text (split after ``.``, ``!``, ``?`` and a closing quote)."""
    return [s for s in _SENTENCE_END.split(text) if s]


def sentence_of(text: str, phrase: str) -> str:
    """The sentence (:func:`sentences`) holding the first occurrence of ``phrase``."""
    start, _ = find_span(phrase, text)
    at = 0
    for s in sentences(text):
        at = text.index(s, at)
        if at <= start < at + len(s):
            return s
        at += len(s)
    raise ValueError(f"{phrase!r} spans two sentences of {text[:80]!r}")  # pragma: no cover


def heldout_passages(n: int, seed: int, start: int, recipe: CorpusRecipe | None = None) -> list[str]:
    """Passages ``start .. start + n - 1`` of the generated corpus with ``seed``: with ``start`` at
    or past the number of passages a model was trained (and evaluated) on, text it never saw."""
    if n < 1 or start < 0:
        raise ValueError(f"need n >= 1 and start >= 0, got n={n}, start={start}")
    return [generate_passage(start + i, seed, recipe) for i in range(n)]


def contexts_in(phrase: str, texts: Sequence[str], m: int) -> list[str]:
    """The first ``m`` of ``texts`` in which ``phrase`` occurs (whole words, case-insensitive);
    fewer than ``m`` is a ``ValueError`` naming the phrase and how many there were."""
    found = [t for t in texts if occurrences(phrase, t)]
    if len(found) < m:
        raise ValueError(f"{phrase!r} occurs in {len(found)} of the {len(texts)} texts; {m} contexts needed")
    return found[:m]


def fitting(loaded: LoadedModel, texts: Sequence[str], margin: int = 32) -> list[str]:
    """The ``texts`` whose token count leaves ``margin`` tokens free below the model's limit (room
    for a control phrase longer, in tokens, than the phrase it replaces)."""
    limit = loaded.max_positions
    if limit is None or loaded.tokenizer is None:
        raise ValueError(f"{loaded.name} is not a text model with a position limit")
    return [t for t in texts if len(loaded.tokenizer(t, verbose=False)["input_ids"]) <= limit - margin]


_TRANSITIVE = frozenset(form for pair in VERBS_TRANSITIVE for form in pair)
_DETERMINERS = ("the", "a", "this", "that", "every")
_SINGULAR = tuple(s for s, _ in NOUNS if " " not in s)
#: Word classes of the control templates: noun phrases (object of a transitive verb) and
#: prepositional phrases (adverbials), by number of words; D determiner, A adjective, N noun, P
#: preposition.  Every template is a phrase the corpus grammar writes in that slot.
TEMPLATES = {
    "noun phrase": {2: "D N", 3: "D A N", 4: "D A A N", 5: "D N P D N"},
    "adverbial": {3: "P D N", 4: "P D A N", 5: "P D A A N"},
}


def phrase_slot(phrase: str, texts: Sequence[str]) -> str:
    """``"noun phrase"`` if ``phrase`` follows a transitive verb form of the grammar in every text
    (an object, or the *-ing* phrase after *keeps*), else ``"adverbial"``.  ``ValueError`` if it is
    absent from a text."""
    if not texts:
        raise ValueError("need at least one text to read the slot of a phrase from")
    for text in texts:
        start, _ = find_span(phrase, text)
        before = topology.word_spans(text[:start])
        if not before or text[before[-1][0] : before[-1][1]].lower() not in _TRANSITIVE:
            return "adverbial"
    return "noun phrase"


def _fill(template: str, rng: random.Random) -> str:
    adjectives = iter(rng.sample(ADJECTIVES, 3))
    words = []
    for cls in template.split():
        if cls == "D":
            words.append(rng.choice(_DETERMINERS))
        elif cls == "A":
            words.append(next(adjectives))
        elif cls == "N":
            words.append(rng.choice(_SINGULAR))
        else:
            words.append(rng.choice(PREPOSITIONS))
    for i, w in enumerate(words[:-1]):  # a -> an before a vowel
        if w == "a" and words[i + 1][0] in "aeiou":
            words[i] = "an"
    return " ".join(words)


def grammatical_controls(phrase: str, texts: Sequence[str], n: int, rng: random.Random) -> list[str]:
    """``n`` distinct control phrases for ``phrase``: grammatical phrases of the corpus grammar with
    the same number of words and the same slot (:func:`phrase_slot`, :data:`TEMPLATES`), drawn
    with ``rng``, absent from every one of ``texts`` (so :func:`substitute` can place them)."""
    slot = phrase_slot(phrase, texts)
    k = len(topology.word_spans(phrase))
    if k not in TEMPLATES[slot]:
        raise ValueError(f"no {slot} template with {k} words for {phrase!r}; lengths: {sorted(TEMPLATES[slot])}")
    out: list[str] = []
    for _ in range(1000 * n):
        c = _fill(TEMPLATES[slot][k], rng)
        if c not in out and not any(occurrences(c, t) for t in texts):
            out.append(c)
            if len(out) == n:
                return out
    raise RuntimeError(f"could not draw {n} controls for {phrase!r} absent from its texts")  # pragma: no cover


def causal_prefix(text: str, phrase: str, window: int = 2) -> str:
    """``text`` up to the end of the sentence holding the last word of ``phrase``'s window
    (:func:`locate_group`; the ``.``, ``!`` or ``?`` and a closing quote): a causal model gives
    every token up to there the same vectors as in the whole text, so the window's profile is
    unchanged and the rest need not be computed."""
    end = locate_group(text, phrase, window).spans[-1][1]
    stop = re.search(r"[.!?]\"?", text[end:])
    return text if stop is None else text[: end + stop.end()]


def planted_items(
    loaded: LoadedModel,
    phrases: Sequence[str],
    passages: Sequence[str],
    m: int,
    n_controls: int,
    rng: random.Random,
    window: int = 2,
    margin: int = 32,
) -> tuple[list[tuple[str, str]], dict[str, list[str]]]:
    """``(phrase, text)`` items for :func:`profiles_of`: for each of ``phrases``, its first ``m``
    passages that the model can take (:func:`fitting` with ``margin``, :func:`contexts_in`), then, for each of its
    ``n_controls`` :func:`grammatical_controls`, the same passages with the phrase replaced by the
    control (:func:`substitute`); cut to :func:`causal_prefix` for a causal model.  So each
    phrase's block is ``(1 + n_controls) * m`` items, ready for :func:`spreads` with ``m``.
    Returns the items and ``{phrase: its controls}``."""
    fits = fitting(loaded, passages, margin)
    items: list[tuple[str, str]] = []
    controls: dict[str, list[str]] = {}
    for phrase in phrases:
        found = contexts_in(phrase, fits, m)
        controls[phrase] = grammatical_controls(phrase, found, n_controls, rng)
        for group in (phrase, *controls[phrase]):
            texts = found if group == phrase else [substitute(t, phrase, group) for t in found]
            cut = loaded.role == "causal"
            items += [(group, causal_prefix(t, group, window) if cut else t) for t in texts]
    return items, controls


def substitute(text: str, phrase: str, replacement: str) -> str:
    """``text`` with every whole-word occurrence of ``phrase`` replaced by ``replacement``
    (capitalised where the occurrence is).  ``ValueError`` if ``phrase`` is absent or
    ``replacement`` already occurs in ``text``."""
    if occurrences(replacement, text):
        raise ValueError(f"{replacement!r} already occurs in the text; it could not be told apart")
    spans = occurrences(phrase, text)
    if not spans:
        find_span(phrase, text)  # raises, naming the phrase and the text
    for s, e in reversed(spans):
        r = replacement[:1].upper() + replacement[1:] if text[s].isupper() else replacement
        text = text[:s] + r + text[e:]
    return text
