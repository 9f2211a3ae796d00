"""How contextual are token representations, and where does attention go?

Three groups of small functions over plain arrays (NumPy or torch in, NumPy ``float64`` out):

1. **Attention to token classes** (Clark et al. 2019): the fraction of each head's attention that
   lands on ``[CLS]``, ``[SEP]``, punctuation, the previous token, the next token and the token
   itself — :func:`token_classes`, :func:`attention_to_classes`.
2. **Contextuality** (Ethayarajh 2019): self-similarity, intra-sentence similarity and maximum
   explainable variance, each with an anisotropy baseline — :func:`self_similarity`,
   :func:`intra_sentence_similarity`, :func:`max_explainable_variance`,
   :func:`random_pair_cosine`, :func:`random_mev`, and :func:`contextuality_by_layer` which
   applies them to the hidden states of many sentences at once.
3. **Contextual mappings** (Yun et al. 2020): are all token representations distinct within and
   across sequences? — :func:`min_pairwise_distance`, :func:`min_distances_within_across`.

Anisotropy convention (as in Ethayarajh 2019): at each layer, the baseline of self-similarity and
of intra-sentence similarity is the mean cosine similarity between representations of randomly
drawn token pairs from *different* sentences; the baseline of MEV is the MEV of randomly drawn
tokens (from different sentences) in a set of the same size as the word's occurrences. The
*adjusted* value is ``raw − baseline`` at the same layer.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.spatial.distance import pdist

from .information import as_distribution

__all__ = [
    "CLASS_NAMES",
    "attention_to_classes",
    "contextuality_by_layer",
    "intra_sentence_similarity",
    "max_explainable_variance",
    "min_distances_within_across",
    "min_pairwise_distance",
    "random_mev",
    "random_pair_cosine",
    "self_similarity",
    "token_classes",
]

#: The statistics :func:`attention_to_classes` returns, in order.
CLASS_NAMES = ("cls", "sep", "punctuation", "previous", "next", "self")

_CLS = {"[CLS]", "<s>", "<|endoftext|>"}
_SEP = {"[SEP]", "</s>"}
_WORD_MARKS = ("Ġ", "▁", "##")


def _array(x: Any, name: str, ndim_min: int = 1) -> np.ndarray:
    """float64 NumPy copy of an array or tensor, finite, with at least ``ndim_min`` axes."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim < ndim_min:
        raise ValueError(f"{name} must have at least {ndim_min} axes, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} has non-finite values")
    return arr


def _is_punctuation(token: str) -> bool:
    """True when the token, stripped of sub-word marks, is only punctuation characters."""
    for mark in _WORD_MARKS:
        if token.startswith(mark):
            token = token[len(mark) :]
    return bool(token) and all(unicodedata.category(ch).startswith("P") for ch in token)


def token_classes(tokens: Sequence[str]) -> dict[str, np.ndarray]:
    """Boolean masks ``[token]`` for the classes ``cls``, ``sep`` and ``punctuation``.

    ``cls`` is ``[CLS]`` (or ``<s>``, GPT-2's ``<|endoftext|>``), ``sep`` is ``[SEP]`` (or
    ``</s>``); ``punctuation`` is a non-special token made only of Unicode punctuation (periods,
    commas, quotes, …), ignoring the sub-word marks ``Ġ``, ``▁`` and ``##``.
    """
    if len(tokens) == 0:
        raise ValueError("tokens is empty")
    cls = np.array([t in _CLS for t in tokens])
    sep = np.array([t in _SEP for t in tokens])
    punct = np.array([_is_punctuation(t) for t in tokens]) & ~cls & ~sep
    return {"cls": cls, "sep": sep, "punctuation": punct}


def attention_to_classes(attentions: Any, tokens: Sequence[str]) -> dict[str, np.ndarray]:
    """Average attention a head pays to each token class, per head.

    Args:
        attentions: ``[..., query, key]`` attention probabilities (e.g. ``[layer, head, q, k]``).
        tokens: the ``n`` token strings (``n`` = number of queries = number of keys).

    Returns:
        ``{name: [...]}`` for ``name`` in :data:`CLASS_NAMES`, each value in ``[0, 1]``:

        - ``cls``, ``sep``, ``punctuation``: ``mean_q Σ_{k in class} A[q, k]`` over all queries;
        - ``previous`` / ``next``: ``mean_q A[q, q∓1]`` over the queries that have that neighbour;
        - ``self``: ``mean_q A[q, q]``.
    """
    a = as_distribution(attentions, "attentions")
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"attentions must be [..., n, n], got shape {a.shape}")
    n = a.shape[-1]
    if len(tokens) != n:
        raise ValueError(f"got {len(tokens)} tokens for attention over {n} positions")
    masks = token_classes(tokens)
    out = {name: (a * mask).sum(axis=-1).mean(axis=-1) for name, mask in masks.items()}
    diag = np.diagonal(a, offset=0, axis1=-2, axis2=-1)
    below = np.diagonal(a, offset=-1, axis1=-2, axis2=-1)  # A[q, q-1]
    above = np.diagonal(a, offset=1, axis1=-2, axis2=-1)  # A[q, q+1]
    empty = np.full(a.shape[:-2], np.nan)
    out["previous"] = below.mean(axis=-1) if n > 1 else empty
    out["next"] = above.mean(axis=-1) if n > 1 else empty
    out["self"] = diag.mean(axis=-1)
    return {name: out[name] for name in CLASS_NAMES}


# ----------------------------------------------------------------------------------------------
# Ethayarajh 2019: self-similarity, intra-sentence similarity, maximum explainable variance


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    if np.any(norm == 0):
        raise ValueError("a representation is the zero vector; cosine similarity is undefined")
    return x / norm


def self_similarity(occurrences: Any) -> np.ndarray:
    """Mean cosine similarity between a word's representations in different contexts.

    Args:
        occurrences: ``[..., n, d]``, the word's ``n >= 2`` representations (one per context).

    Returns:
        ``[...]``: ``1/(n(n−1)) Σ_{i≠j} cos(x_i, x_j)``.
    """
    x = _array(occurrences, "occurrences", 2)
    n = x.shape[-2]
    if n < 2:
        raise ValueError(f"self-similarity needs >= 2 occurrences, got {n}")
    u = _unit(x)
    total = np.einsum("...id,...jd->...", u, u)  # includes the n diagonal ones
    return (total - n) / (n * (n - 1))


def intra_sentence_similarity(representations: Any) -> np.ndarray:
    """Mean cosine similarity between each token of a sentence and the sentence's mean vector.

    Args:
        representations: ``[..., n, d]`` the sentence's token representations, ``n >= 1``.

    Returns:
        ``[...]``: ``1/n Σ_i cos(x_i, mean_j x_j)``.
    """
    x = _array(representations, "representations", 2)
    if x.shape[-2] < 1:
        raise ValueError("a sentence needs at least one token")
    mean = x.mean(axis=-2, keepdims=True)
    return (_unit(x) * _unit(mean)).sum(axis=-1).mean(axis=-1)


def max_explainable_variance(occurrences: Any, center: bool = False) -> np.ndarray:
    """Share of the occurrence matrix's variance along its first principal direction.

    ``σ_1² / Σ_i σ_i²`` with ``σ_i`` the singular values of the ``[n, d]`` occurrence matrix, as in
    Ethayarajh 2019, who does not centre the matrix (``center=False``); with ``center=True`` the
    mean is removed first (ordinary PCA). A value of 1 means one static vector explains every
    occurrence.

    Args:
        occurrences: ``[..., n, d]`` with ``n >= 2``.
    """
    x = _array(occurrences, "occurrences", 2)
    if x.shape[-2] < 2:
        raise ValueError(f"MEV needs >= 2 occurrences, got {x.shape[-2]}")
    if center:
        x = x - x.mean(axis=-2, keepdims=True)
    s = np.linalg.svd(x, compute_uv=False)
    energy = (s**2).sum(axis=-1)
    if np.any(energy == 0):
        raise ValueError("occurrence matrix is zero; MEV is undefined")
    return s[..., 0] ** 2 / energy


def _cross_sentence_pairs(
    sentence_ids: np.ndarray, n_pairs: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n_pairs`` random index pairs ``(i, j)`` whose tokens come from different sentences."""
    if len(np.unique(sentence_ids)) < 2:
        raise ValueError("the anisotropy baseline needs tokens from at least two sentences")
    first, second = [], []
    while len(first) < n_pairs:
        i = rng.integers(0, len(sentence_ids), size=2 * n_pairs)
        j = rng.integers(0, len(sentence_ids), size=2 * n_pairs)
        keep = sentence_ids[i] != sentence_ids[j]
        first.extend(i[keep].tolist())
        second.extend(j[keep].tolist())
    return np.array(first[:n_pairs]), np.array(second[:n_pairs])


def random_pair_cosine(pool: Any, sentence_ids: Any, n_pairs: int = 2000, seed: int = 0) -> np.ndarray:
    """Anisotropy baseline: mean cosine similarity of random token pairs from different sentences.

    Args:
        pool: ``[..., N, d]`` token representations (e.g. ``[layer, N, d]``).
        sentence_ids: ``[N]`` the sentence each token comes from.
        n_pairs: how many pairs to draw (the same pairs at every leading index).

    Returns:
        ``[...]`` mean cosine; 0 for isotropic representations, near 1 in a narrow cone.
    """
    x = _unit(_array(pool, "pool", 2))
    ids = np.asarray(sentence_ids)
    if ids.shape != (x.shape[-2],):
        raise ValueError(f"sentence_ids must have shape ({x.shape[-2]},), got {ids.shape}")
    i, j = _cross_sentence_pairs(ids, n_pairs, np.random.default_rng(seed))
    return (x[..., i, :] * x[..., j, :]).sum(axis=-1).mean(axis=-1)


def random_mev(pool: Any, sentence_ids: Any, size: int, n_draws: int = 200, seed: int = 0) -> np.ndarray:
    """Anisotropy baseline of MEV: mean MEV of ``size`` random tokens from distinct sentences.

    Args:
        pool: ``[..., N, d]``; sentence_ids: ``[N]``; size: ``>= 2`` tokens per draw (at most
        the number of sentences).
    """
    x = _array(pool, "pool", 2)
    ids = np.asarray(sentence_ids)
    sentences = np.unique(ids)
    if not 2 <= size <= len(sentences):
        raise ValueError(f"size must be in [2, {len(sentences)}] (number of sentences), got {size}")
    rng = np.random.default_rng(seed)
    by_sentence = [np.flatnonzero(ids == s) for s in sentences]
    draws = []
    for _ in range(n_draws):
        chosen = rng.choice(len(sentences), size=size, replace=False)
        draws.append([rng.choice(by_sentence[c]) for c in chosen])
    picked = x[..., np.array(draws), :]  # [..., n_draws, size, d]
    return max_explainable_variance(picked).mean(axis=-1)


def contextuality_by_layer(
    hidden: Sequence[Any],
    occurrences: Mapping[str, Sequence[tuple[int, int]]],
    include: Sequence[Any] | None = None,
    n_pairs: int = 2000,
    n_draws: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """Ethayarajh's three metrics per layer, raw, baseline and adjusted (``raw − baseline``).

    Args:
        hidden: one ``[layer + 1, token, d]`` array per sentence (a trace's ``hidden_states``).
        occurrences: ``{word: [(sentence, token), ...]}``, each word seen in >= 2 sentences; a
            word's representation is taken at the given token.
        include: optional boolean ``[token]`` mask per sentence of the tokens that count for the
            intra-sentence similarity and the baselines (e.g. excluding special tokens).
        n_pairs, n_draws, seed: sampling of the baselines.

    Returns:
        ``{"self_similarity", "intra_similarity", "mev", "baseline_cosine", "baseline_mev",
        "self_similarity_adjusted", "intra_similarity_adjusted", "mev_adjusted"}``, each
        ``[layer + 1]``; word-level metrics are averaged over the words, intra-sentence over the
        sentences. Also ``"self_similarity_by_word"`` and ``"mev_by_word"``: ``{word: [layer + 1]}``
        (raw values).
    """
    states = [_array(h, f"hidden[{s}]", 3) for s, h in enumerate(hidden)]
    if len(states) < 2:
        raise ValueError("contextuality needs at least two sentences")
    n_layers, d = states[0].shape[0], states[0].shape[2]
    for s, h in enumerate(states):
        if h.shape[0] != n_layers or h.shape[2] != d:
            raise ValueError(f"hidden[{s}] has shape {h.shape}; expected [{n_layers}, token, {d}]")
    masks = (
        [np.ones(h.shape[1], dtype=bool) for h in states]
        if include is None
        else [np.asarray(m, dtype=bool) for m in include]
    )
    if len(masks) != len(states) or any(m.shape != (h.shape[1],) for m, h in zip(masks, states, strict=True)):
        raise ValueError("include must give one boolean [token] mask per sentence")
    if not occurrences:
        raise ValueError("occurrences is empty: give at least one word seen in two sentences")
    self_sims, mevs, sizes = [], [], []
    for word, places in occurrences.items():
        if len({s for s, _ in places}) < 2:
            raise ValueError(f"word {word!r} must occur in at least two sentences")
        for s, t in places:
            if not (0 <= s < len(states) and 0 <= t < states[s].shape[1]):
                raise ValueError(f"occurrence {(s, t)} of {word!r} is out of range")
        occ = np.stack([states[s][:, t] for s, t in places], axis=1)  # [layer, n, d]
        self_sims.append(self_similarity(occ))
        mevs.append(max_explainable_variance(occ))
        sizes.append(len(places))
    intra = np.mean([intra_sentence_similarity(h[:, m]) for h, m in zip(states, masks, strict=True)], axis=0)
    pool = np.concatenate([h[:, m] for h, m in zip(states, masks, strict=True)], axis=1)
    ids = np.concatenate([np.full(int(m.sum()), s) for s, m in enumerate(masks)])
    base_cos = random_pair_cosine(pool, ids, n_pairs=n_pairs, seed=seed)
    by_size = {k: random_mev(pool, ids, size=k, n_draws=n_draws, seed=seed + k) for k in set(sizes)}
    base_mev = np.mean([by_size[k] for k in sizes], axis=0)  # matched to each word's count
    result = {
        "self_similarity": np.mean(self_sims, axis=0),
        "intra_similarity": intra,
        "mev": np.mean(mevs, axis=0),
        "baseline_cosine": base_cos,
        "baseline_mev": base_mev,
    }
    result["self_similarity_adjusted"] = result["self_similarity"] - base_cos
    result["intra_similarity_adjusted"] = intra - base_cos
    result["mev_adjusted"] = result["mev"] - base_mev
    result["self_similarity_by_word"] = dict(zip(occurrences, self_sims, strict=True))
    result["mev_by_word"] = dict(zip(occurrences, mevs, strict=True))
    return result


# ----------------------------------------------------------------------------------------------
# Yun et al. 2020: contextual mappings


def min_pairwise_distance(points: Any) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and median Euclidean distance between distinct rows: ``[..., n, d] -> [...]``.

    Returns ``(minimum, median)``; ``minimum / median`` is a scale-free measure of how close the
    two nearest representations come (0 means two rows coincide).
    """
    x = _array(points, "points", 2)
    n = x.shape[-2]
    if n < 2:
        raise ValueError(f"need at least 2 points, got {n}")
    flat = x.reshape(-1, n, x.shape[-1])
    dist = np.stack([pdist(f) for f in flat]).reshape(*x.shape[:-2], -1)
    return dist.min(axis=-1), np.median(dist, axis=-1)


def min_distances_within_across(representations: Sequence[Any]) -> dict[str, np.ndarray]:
    """Yun et al.'s two conditions, measured: nearest pairs within one sequence and across two.

    Args:
        representations: one ``[layer, token, d]`` (or ``[token, d]``) array per sequence.

    Returns:
        ``{"within": [layer], "across": [layer], "median": [layer]}`` — the smallest distance
        between two tokens of the same sequence, between tokens of two different sequences, and
        the median distance over all pairs (the scale to compare with). A contextual mapping needs
        ``within > 0`` and ``across > 0``.
    """
    reps = [_array(r, f"representations[{s}]", 2) for s, r in enumerate(representations)]
    if len(reps) < 2:
        raise ValueError("need at least two sequences")
    reps = [r if r.ndim == 3 else r[None] for r in reps]
    tail = reps[0].shape[0], reps[0].shape[2]
    if any((r.shape[0], r.shape[2]) != tail for r in reps):
        raise ValueError("every sequence must have the same number of layers and width")
    pool = np.concatenate(reps, axis=1)  # [layer, N, d]
    ids = np.concatenate([np.full(r.shape[1], s) for s, r in enumerate(reps)])
    pairs = np.stack([pdist(layer) for layer in pool])  # [layer, N(N-1)/2], pdist order
    iu = np.triu_indices(len(ids), 1)
    same = ids[iu[0]] == ids[iu[1]]
    within = pairs[:, same].min(axis=-1) if same.any() else np.full(pool.shape[0], np.inf)
    return {
        "within": within,
        "across": pairs[:, ~same].min(axis=-1),
        "median": np.median(pairs, axis=-1),
    }
