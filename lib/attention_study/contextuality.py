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
   across sequences? — :func:`min_pairwise_distance`, :func:`min_distances_within_across`,
   :func:`min_distance_across_distinct_prefixes`, and for a traced model
   :func:`static_embeddings`, :func:`layer_representations`, :func:`yun_distances`.
4. **Comparing with a paper**: a finding, the statistic that tests it, a threshold and a bootstrap
   confidence interval give a computed verdict (agree / disagree / inconclusive) —
   :func:`bootstrap_ci`, :func:`compare`, :class:`Comparison`, :func:`format_comparisons`,
   :func:`seed_summary`; the findings of Clark et al. 2019 and Ethayarajh 2019 as used by the
   book are :func:`clark_comparisons` (on corpus statistics, with per-head tests as
   :class:`HeadComparison`), :func:`ethayarajh_comparisons` (on :func:`contextuality_by_layer`) and
   :func:`ethayarajh_corpus_comparisons` (on corpus statistics, with :func:`word_sample_mev`).

Layers are numbered from 0. Hidden states ``[layer + 1]`` are named by :func:`hidden_label`:
``emb`` (the embedding output), then ``L0``, ``L1``, ... (the output of that layer).

Anisotropy convention (as in Ethayarajh 2019, uncentred: cosines of the representations as they
are, no mean removed): at each layer, the baseline of self-similarity and
of intra-sentence similarity is the mean cosine similarity between representations of randomly
drawn token pairs from *different* sentences; the baseline of MEV is the MEV of randomly drawn
tokens (from different sentences) in a set of the same size as the word's occurrences. The
*adjusted* value is ``raw − baseline`` at the same layer.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial.distance import pdist

from .information import as_distribution
from .validation import finite_float64

__all__ = [
    "CLARK_BANDS",
    "CLASS_NAMES",
    "VERDICTS",
    "Comparison",
    "HeadComparison",
    "attention_to_classes",
    "bert_base_layers",
    "bootstrap_ci",
    "clark_comparisons",
    "compare",
    "contextuality_by_layer",
    "corpus_contextuality",
    "ethayarajh_comparisons",
    "ethayarajh_corpus_comparisons",
    "format_comparisons",
    "hidden_label",
    "intra_sentence_similarity",
    "layer_representations",
    "layer_span",
    "max_explainable_variance",
    "min_distance_across_distinct_prefixes",
    "min_distances_within_across",
    "min_pairwise_distance",
    "nearest_pairs",
    "random_mev",
    "random_pair_cosine",
    "seed_summary",
    "self_similarity",
    "static_embeddings",
    "token_classes",
    "word_sample_mev",
    "yun_distances",
]

#: The statistics :func:`attention_to_classes` returns, in order.
CLASS_NAMES = ("cls", "sep", "punctuation", "previous", "next", "self")

_CLS = {"[CLS]", "<s>", "<|endoftext|>"}
_SEP = {"[SEP]", "</s>"}
_WORD_MARKS = ("Ġ", "▁", "##")


def _array(x: Any, name: str, ndim_min: int = 1) -> np.ndarray:
    """float64 NumPy copy of an array or tensor, finite, with at least ``ndim_min`` axes."""
    arr = finite_float64(x, name)
    if arr.ndim < ndim_min:
        raise ValueError(f"{name} must have at least {ndim_min} axes, got shape {arr.shape}")
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
    # σ_1² is the top eigenvalue of the smaller Gram matrix (X Xᵀ or Xᵀ X), and Σ σ_i² = ‖X‖²_F:
    # a symmetric eigenvalue problem of size min(n, d), much cheaper than a batched SVD.
    xt = np.swapaxes(x, -1, -2)
    gram = x @ xt if x.shape[-2] <= x.shape[-1] else xt @ x
    energy = (x**2).sum(axis=(-2, -1))
    if np.any(energy == 0):
        raise ValueError("occurrence matrix is zero; MEV is undefined")
    return np.linalg.eigvalsh(gram)[..., -1] / energy


def _cross_sentence_pairs(
    sentence_ids: np.ndarray, n_pairs: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n_pairs`` random index pairs ``(i, j)`` whose tokens come from different sentences."""
    if len(np.unique(sentence_ids)) < 2:
        raise ValueError("the anisotropy baseline needs tokens from at least two sentences")
    first: list[int] = []
    second: list[int] = []
    while len(first) < n_pairs:
        i = rng.integers(0, len(sentence_ids), size=2 * n_pairs)
        j = rng.integers(0, len(sentence_ids), size=2 * n_pairs)
        keep = sentence_ids[i] != sentence_ids[j]
        first.extend(i[keep].tolist())
        second.extend(j[keep].tolist())
    return np.array(first[:n_pairs]), np.array(second[:n_pairs])


def random_pair_cosine(
    pool: Any, sentence_ids: Any, n_pairs: int = 2000, seed: int = 0, per_pair: bool = False
) -> np.ndarray:
    """Anisotropy baseline: mean cosine similarity of random token pairs from different sentences.

    Args:
        pool: ``[..., N, d]`` token representations (e.g. ``[layer, N, d]``).
        sentence_ids: ``[N]`` the sentence each token comes from.
        n_pairs: how many pairs to draw (the same pairs at every leading index).
        per_pair: return the ``[..., n_pairs]`` cosines themselves instead of their mean (for a
            confidence interval).

    Returns:
        ``[...]`` mean cosine; 0 for isotropic representations, near 1 in a narrow cone.
    """
    x = _unit(_array(pool, "pool", 2))
    ids = np.asarray(sentence_ids)
    if ids.shape != (x.shape[-2],):
        raise ValueError(f"sentence_ids must have shape ({x.shape[-2]},), got {ids.shape}")
    i, j = _cross_sentence_pairs(ids, n_pairs, np.random.default_rng(seed))
    cosines = (x[..., i, :] * x[..., j, :]).sum(axis=-1)
    return cosines if per_pair else cosines.mean(axis=-1)


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
        sentences. Per unit, for confidence intervals: ``"self_similarity_by_word"``,
        ``"mev_by_word"`` (raw) and ``"self_similarity_adjusted_by_word"``,
        ``"mev_adjusted_by_word"``, each ``{word: [layer + 1]}``; ``"intra_similarity_by_sentence"``
        ``[sentence, layer + 1]`` (raw); ``"baseline_cosine_pairs"`` ``[layer + 1, n_pairs]``, the
        cosines whose mean is the baseline.
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
    intra_each = np.stack([intra_sentence_similarity(h[:, m]) for h, m in zip(states, masks, strict=True)])
    pool = np.concatenate([h[:, m] for h, m in zip(states, masks, strict=True)], axis=1)
    ids = np.concatenate([np.full(int(m.sum()), s) for s, m in enumerate(masks)])
    pair_cos = random_pair_cosine(pool, ids, n_pairs=n_pairs, seed=seed, per_pair=True)
    base_cos = pair_cos.mean(axis=-1)
    by_size = {k: random_mev(pool, ids, size=k, n_draws=n_draws, seed=seed + k) for k in set(sizes)}
    base_mev = np.mean([by_size[k] for k in sizes], axis=0)  # matched to each word's count
    result = {
        "self_similarity": np.mean(self_sims, axis=0),
        "intra_similarity": intra_each.mean(axis=0),
        "mev": np.mean(mevs, axis=0),
        "baseline_cosine": base_cos,
        "baseline_mev": base_mev,
    }
    result["self_similarity_adjusted"] = result["self_similarity"] - base_cos
    result["intra_similarity_adjusted"] = result["intra_similarity"] - base_cos
    result["mev_adjusted"] = result["mev"] - base_mev
    result["self_similarity_by_word"] = dict(zip(occurrences, self_sims, strict=True))
    result["mev_by_word"] = dict(zip(occurrences, mevs, strict=True))
    result["self_similarity_adjusted_by_word"] = {w: v - base_cos for w, v in zip(occurrences, self_sims, strict=True)}
    result["mev_adjusted_by_word"] = {w: v - by_size[k] for w, v, k in zip(occurrences, mevs, sizes, strict=True)}
    result["intra_similarity_by_sentence"] = intra_each
    result["baseline_cosine_pairs"] = pair_cos
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


def _layered_sequences(representations: Sequence[Any]) -> list[np.ndarray]:
    """At least two ``[layer, token, d]`` arrays (a ``[token, d]`` one gets one layer), with the same
    number of layers and width; else a ``ValueError`` saying which rule is broken."""
    reps = [_array(r, f"representations[{s}]", 2) for s, r in enumerate(representations)]
    if len(reps) < 2:
        raise ValueError("need at least two sequences")
    reps = [r if r.ndim == 3 else r[None] for r in reps]
    if any((r.shape[0], r.shape[2]) != (reps[0].shape[0], reps[0].shape[2]) for r in reps):
        raise ValueError("every sequence must have the same number of layers and width")
    return reps


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
    reps = _layered_sequences(representations)
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


def nearest_pairs(representations: Sequence[Any]) -> list[dict[str, Any]]:
    """Which tokens realise Yun et al.'s two distances, per layer.

    Args:
        representations: one ``[layer, token, d]`` (or ``[token, d]``) array per sequence.

    Returns:
        One dict per layer: ``within`` and ``across``, each ``(sequence_a, token_i, sequence_b,
        token_j, distance)`` of the nearest pair of tokens in one sequence (``a == b``) and in two
        (``a < b``), and ``median``, the median distance over all pairs. Ties go to the first pair
        in sequence order.
    """
    reps = _layered_sequences(representations)
    seq = np.concatenate([np.full(r.shape[1], s) for s, r in enumerate(reps)])
    tok = np.concatenate([np.arange(r.shape[1]) for r in reps])
    iu = np.triu_indices(len(seq), 1)
    same = seq[iu[0]] == seq[iu[1]]
    out = []
    for layer in np.concatenate(reps, axis=1):  # [N, d]
        d = pdist(layer)

        def pick(mask: np.ndarray, d: np.ndarray = d) -> tuple[int, int, int, int, float]:
            k = np.flatnonzero(mask)[int(np.argmin(d[mask]))]
            a, b = iu[0][k], iu[1][k]
            return int(seq[a]), int(tok[a]), int(seq[b]), int(tok[b]), float(d[k])

        out.append({"within": pick(same) if same.any() else None, "across": pick(~same), "median": float(np.median(d))})
    return out


def min_distance_across_distinct_prefixes(states: Sequence[Any], token_ids: Sequence[Any]) -> np.ndarray:
    """Smallest distance across sequences over token pairs whose *prefixes* differ, per layer.

    In a causal model token ``i`` sees tokens ``0..i`` only, so two sequences that share their
    first ``i + 1`` tokens give those tokens the same vectors; this is Yun et al.'s across-sequence
    distance with such pairs left out.

    Args:
        states: one ``[layer, token, d]`` array per sequence.
        token_ids: one ``[token]`` id array per sequence (prefixes are compared on ids).

    Returns:
        ``[layer]`` minimum distance (``inf`` when every cross pair shares its prefix).
    """
    reps = [_array(s, f"states[{k}]", 3) for k, s in enumerate(states)]
    ids = [np.asarray(getattr(t, "tolist", lambda t=t: t)()) for t in token_ids]
    if len(reps) < 2 or len(reps) != len(ids):
        raise ValueError("need at least two sequences and one id array per sequence")
    for k, (r, t) in enumerate(zip(reps, ids, strict=True)):
        if t.shape != (r.shape[1],):
            raise ValueError(f"token_ids[{k}] has shape {t.shape}; expected ({r.shape[1]},)")
    prefixes = [[tuple(t[: i + 1].tolist()) for i in range(len(t))] for t in ids]
    best = np.full(reps[0].shape[0], np.inf)
    for a in range(len(reps)):
        for b in range(a + 1, len(reps)):
            d = np.linalg.norm(reps[a][:, :, None] - reps[b][:, None, :], axis=-1)
            same = np.array([[pa == pb for pb in prefixes[b]] for pa in prefixes[a]])
            best = np.minimum(best, np.where(same, np.inf, d).min(axis=(1, 2)))
    return best


def static_embeddings(model: Any, trace: Any) -> np.ndarray:
    """``[token, d]``: the input embedding of each token of a trace, without positions or context.

    Text models: the token embedding table at the trace's ids. ViT: the patch embedding of each
    patch, after the learned ``[CLS]`` vector. ``model`` is a loaded model (``.model``, ``.family``).
    """
    import torch

    table = model.model.get_input_embeddings()
    with torch.no_grad():
        if model.family == "vit":
            patches = table(trace.extras["pixel_values"][None])[0]
            cls = model.model.base_model.embeddings.cls_token[0]
            return torch.cat([cls, patches]).double().numpy()
        return table(trace.input_ids).double().numpy()


def layer_representations(trace: Any) -> tuple[np.ndarray, np.ndarray]:
    """Hidden states ``[layer + 1, token, d]`` and all heads' context vectors concatenated per
    layer, ``[layer, token, d]``, of one trace (float64)."""
    contexts = trace.contexts.permute(0, 2, 1, 3).reshape(trace.n_layers, trace.n_tokens, -1)
    return trace.hidden_states.double().numpy(), contexts.double().numpy()


def yun_distances(model: Any, traces: Sequence[Any]) -> dict[str, dict[str, np.ndarray]]:
    """:func:`min_distances_within_across` of the static embedding, the hidden states and the
    context vectors of ``traces`` (one per sequence): ``{"static"|"hidden"|"context": {...}}``."""
    hidden, contexts = zip(*(layer_representations(t) for t in traces), strict=True)
    return {
        "static": min_distances_within_across([static_embeddings(model, t) for t in traces]),
        "hidden": min_distances_within_across(hidden),
        "context": min_distances_within_across(contexts),
    }


# ----------------------------------------------------------------------------------------------
# Comparing a measurement with a paper's finding

#: The verdicts of a :class:`Comparison`, in the order :func:`seed_summary` lists them.
VERDICTS = ("agree", "disagree", "inconclusive")


def bootstrap_ci(
    statistic: Callable[[np.ndarray], float],
    n_units: int,
    *,
    strata: Any | None = None,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Percentile bootstrap interval of a statistic of ``n_units`` independent units.

    ``statistic(idx)`` computes the statistic from the units ``idx`` (an int array, with repeats
    when resampled). It is called once with ``arange(n_units)`` for the estimate and
    ``n_resamples`` times with units drawn with replacement. With ``strata`` (one label per unit)
    units are redrawn within their stratum, which keeps each group's size (two-group comparisons).

    Why not :func:`scipy.stats.bootstrap`: it resamples the arrays it is given along one axis,
    while here one draw of the units (texts, words, sentences, pairs) drives several arrays of
    different shapes and statistics such as "the largest, over heads, of a mean over texts".

    Returns:
        ``(estimate, low, high)``; ``low``/``high`` are the ``(1 ∓ confidence)/2`` quantiles.

    Raises:
        ValueError: fewer than two units (or a stratum of one), a confidence outside (0, 1),
            fewer than 100 resamples, or a non-finite statistic.
    """
    if n_units < 2:
        raise ValueError(f"a bootstrap needs at least 2 units, got {n_units}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 100:
        raise ValueError(f"n_resamples must be >= 100, got {n_resamples}")
    labels = np.zeros(n_units, dtype=int) if strata is None else np.asarray(strata)
    if labels.shape != (n_units,):
        raise ValueError(f"strata must have one label per unit ({n_units}), got shape {labels.shape}")
    groups = [np.flatnonzero(labels == g) for g in np.unique(labels)]
    if any(len(g) < 2 for g in groups):
        raise ValueError("every stratum needs at least 2 units")
    rng = np.random.default_rng(seed)
    estimate = float(statistic(np.arange(n_units)))
    values = np.empty(n_resamples)
    for r in range(n_resamples):
        idx = np.concatenate([g[rng.integers(0, len(g), size=len(g))] for g in groups])
        values[r] = statistic(idx)
    if not (math.isfinite(estimate) and np.all(np.isfinite(values))):
        raise ValueError("the statistic is not finite on every resample")
    low, high = np.quantile(values, [(1 - confidence) / 2, (1 + confidence) / 2])
    return estimate, float(low), float(high)


@dataclass(frozen=True)
class Comparison:
    """One published finding next to our measurement of it.

    The finding holds in our data when the statistic lies on ``side`` (``">"`` or ``"<"``) of
    ``threshold``. The verdict reads the confidence interval: **agree** when all of it lies on the
    paper's side, **disagree** when all of it lies on the other side, **inconclusive** otherwise.
    """

    finding: str
    paper: str
    statistic: str
    side: str
    threshold: float
    estimate: float
    low: float
    high: float
    confidence: float

    def __post_init__(self) -> None:
        if self.side not in (">", "<"):
            raise ValueError(f"side must be '>' or '<', got {self.side!r}")
        if not self.low <= self.high:
            raise ValueError(f"interval [{self.low}, {self.high}] is empty")

    @property
    def criterion(self) -> str:
        """What must hold for the paper's finding, e.g. ``"top − layer 1 < 0"``."""
        return f"{self.statistic} {self.side} {self.threshold:g}"

    @property
    def verdict(self) -> str:
        """``"agree"``, ``"disagree"`` or ``"inconclusive"`` (see the class docstring)."""
        above, below = self.low > self.threshold, self.high < self.threshold
        paper_side, other_side = (above, below) if self.side == ">" else (below, above)
        return "agree" if paper_side else "disagree" if other_side else "inconclusive"

    def ours(self, digits: int = 2) -> str:
        """The estimate and its interval, ``"0.41 [0.35, 0.47]"``."""
        return f"{self.estimate:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


@dataclass(frozen=True)
class HeadComparison:
    """A published finding about *individual heads*, tested head by head.

    ``estimate``, ``low`` and ``high`` are ``[layer, head]``: each head's statistic and its interval,
    at a ``confidence`` that already carries the multiple-comparison correction over the ``heads``
    tested (those of ``layers``). A head *agrees* when its interval lies wholly on ``side`` of
    ``threshold`` and *disagrees* when it lies wholly on the other side. The finding ("some head
    of these layers ...") is **agree** when at least one tested head agrees, **disagree** when every
    tested head disagrees, **inconclusive** otherwise.
    """

    finding: str
    paper: str
    statistic: str
    side: str
    threshold: float
    estimate: np.ndarray
    low: np.ndarray
    high: np.ndarray
    layers: tuple[int, ...]
    confidence: float

    def __post_init__(self) -> None:
        if self.side not in (">", "<"):
            raise ValueError(f"side must be '>' or '<', got {self.side!r}")
        shapes = {np.shape(self.estimate), np.shape(self.low), np.shape(self.high)}
        if len(shapes) != 1 or len(next(iter(shapes))) != 2:
            raise ValueError(f"estimate, low and high must be one [layer, head] shape, got {shapes}")
        n_layers = np.shape(self.estimate)[0]
        if not self.layers or any(not 0 <= k < n_layers for k in self.layers):
            raise ValueError(f"layers must be a non-empty subset of 0..{n_layers - 1}, got {self.layers}")
        if np.any(np.asarray(self.low) > np.asarray(self.high)):
            raise ValueError("an interval is empty (low > high)")

    @property
    def head_verdicts(self) -> np.ndarray:
        """``[len(layers), head]`` verdict of each tested head."""
        low, high = np.asarray(self.low)[list(self.layers)], np.asarray(self.high)[list(self.layers)]
        above, below = low > self.threshold, high < self.threshold
        agree, disagree = (above, below) if self.side == ">" else (below, above)
        return np.where(agree, "agree", np.where(disagree, "disagree", "inconclusive"))

    def count(self, verdict: str = "agree") -> np.ndarray:
        """``[len(layers)]`` number of heads per tested layer with that verdict."""
        if verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {verdict!r}; valid: {VERDICTS}")
        return (self.head_verdicts == verdict).sum(axis=1)

    @property
    def verdict(self) -> str:
        """``"agree"``, ``"disagree"`` or ``"inconclusive"`` (see the class docstring)."""
        heads = self.head_verdicts
        return "agree" if (heads == "agree").any() else "disagree" if (heads == "disagree").all() else "inconclusive"

    @property
    def criterion(self) -> str:
        return f"some head of {layer_span(self.layers)}: {self.statistic} {self.side} {self.threshold:g}"

    def best(self) -> tuple[int, int]:
        """The tested head whose interval goes furthest to the paper's side (largest lower bound
        for ``>``, smallest upper bound for ``<``; ties: the first in layer, head order)."""
        bound = np.asarray(self.low) if self.side == ">" else -np.asarray(self.high)
        masked = np.full(bound.shape, -np.inf)
        masked[list(self.layers)] = bound[list(self.layers)]
        layer, head = np.unravel_index(int(np.argmax(masked)), masked.shape)
        return int(layer), int(head)

    def detectable_margin(self, power: float = 0.8) -> float:
        """The distance from the threshold at which a tested head is declared on the paper's side
        with probability ``power``: ``(z_c + z_power) · SE`` for the widest tested interval, its
        standard error read from the interval as a normal one (``half-width / z_c``)."""
        from scipy.stats import norm

        if not 0 < power < 1:
            raise ValueError(f"power must be in (0, 1), got {power}")
        z_c = float(norm.ppf(1 - (1 - self.confidence) / 2))
        width = (np.asarray(self.high) - np.asarray(self.low))[list(self.layers)].max()
        return float((z_c + norm.ppf(power)) * width / (2 * z_c))

    def ours(self, digits: int = 2) -> str:
        """``"3/24 heads; best L4 H7 0.41 [0.35, 0.47]"``."""
        layer, head = self.best()
        n = self.head_verdicts.size
        est, low, high = (float(np.asarray(x)[layer, head]) for x in (self.estimate, self.low, self.high))
        return (
            f"{int(self.count().sum())}/{n} heads; best L{layer} H{head} "
            f"{est:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"
        )


def compare(
    finding: str,
    paper: str,
    statistic: str,
    side: str,
    threshold: float,
    fn: Callable[[np.ndarray], float],
    n_units: int,
    *,
    strata: Any | None = None,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Comparison:
    """A :class:`Comparison` whose interval is :func:`bootstrap_ci` of ``fn`` over ``n_units``."""
    estimate, low, high = bootstrap_ci(
        fn, n_units, strata=strata, confidence=confidence, n_resamples=n_resamples, seed=seed
    )
    return Comparison(finding, paper, statistic, side, threshold, estimate, low, high, confidence)


def seed_summary(verdicts: Sequence[str]) -> str:
    """Verdicts over several training seeds, counted: ``"agree 5/5"``, ``"agree 3/5, disagree 2/5"``."""
    if not verdicts:
        raise ValueError("no verdicts to summarise")
    unknown = set(verdicts) - set(VERDICTS)
    if unknown:
        raise ValueError(f"unknown verdicts {sorted(unknown)}; valid: {VERDICTS}")
    n = len(verdicts)
    return ", ".join(f"{v} {verdicts.count(v)}/{n}" for v in VERDICTS if v in verdicts)


def format_comparisons(
    comparisons: Sequence[Comparison | HeadComparison],
    by_seed: Sequence[Sequence[Comparison | HeadComparison]] | None = None,
    digits: int = 2,
) -> str:
    """A text table with one row per finding: finding, paper, ours [CI], criterion, verdict.

    With ``by_seed`` (the same comparisons for every training seed, seed order) a last column
    counts the verdicts over the seeds; ``comparisons`` is then the run shown in the other columns.
    """
    header = ["finding", "paper", "ours [CI]", "criterion", "verdict"]
    rows = [[c.finding, c.paper, c.ours(digits), c.criterion, c.verdict] for c in comparisons]
    if by_seed is not None:
        if any(len(run) != len(comparisons) for run in by_seed):
            raise ValueError("every seed must have the same findings as the run shown")
        header.append(f"over {len(by_seed)} seeds")
        for k, row in enumerate(rows):
            row.append(seed_summary([run[k].verdict for run in by_seed]))
    widths = [max(len(str(r[c])) for r in [header, *rows]) for c in range(len(header))]
    lines = ["  ".join(f"{cell:<{w}}" for cell, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def layer_span(layers: Sequence[int]) -> str:
    """``"L2-4"`` for consecutive 0-based layers 2, 3, 4; ``"L5"`` for one layer."""
    layers = list(layers)
    return f"L{layers[0]}-{layers[-1]}" if len(layers) > 1 else f"L{layers[0]}"


def hidden_label(k: int) -> str:
    """Name of hidden state ``k`` of ``[layer + 1]``: ``"emb"`` (the embedding output) for 0, else
    the 0-based layer whose output it is, ``"L{k − 1}"``."""
    return "emb" if k == 0 else f"L{k - 1}"


def bert_base_layers(first: int, last: int, n_layers: int, reference: int = 12) -> list[int]:
    """0-based layers of an ``n_layers`` model that overlap the 0-based layers ``first..last`` of a
    ``reference``-layer model (BERT-base: 12), matching relative depth: layer ``k`` covers the
    reference's ``[k·R/n, (k+1)·R/n)``. (A paper that counts from 1 names layer ``k`` as ``k + 1``.)"""
    if not 0 <= first <= last < reference:
        raise ValueError(f"need 0 <= first <= last <= {reference - 1}, got {first}..{last}")
    if n_layers < 1:
        raise ValueError(f"n_layers must be >= 1, got {n_layers}")
    scale = reference / n_layers
    return [k for k in range(n_layers) if k * scale < last + 1 and (k + 1) * scale > first]


#: Clark et al. (2019)'s layer bands of BERT-base, 0-based (the paper's layers 1-4, 6-10, 9-12, 1-6).
CLARK_BANDS = {"early": (0, 3), "middle": (5, 9), "deep": (8, 11), "first half": (0, 5)}


def _comparison(
    spec: tuple[str, str, str, str, float], interval: tuple[Any, Any, Any], confidence: float
) -> Comparison:
    """A :class:`Comparison` from a ``(finding, paper, statistic, side, threshold)`` spec and an interval."""
    estimate, low, high = (float(np.asarray(x)) for x in interval)
    return Comparison(*spec, estimate, low, high, confidence)


def clark_comparisons(
    stats: Any,
    *,
    family_error_rate: float = 0.05,
    punctuation_factor: float = 2.0,
    n_resamples: int = 4000,
    seed: int = 0,
) -> list[Comparison | HeadComparison]:
    """Clark et al. (2019)'s findings about BERT-base's heads, tested on another encoder's corpus
    statistics.

    Args:
        stats: a :class:`attention_study.corpus_stats.HeadStatistics` with blocks (units of the
            bootstrap: its blocks, the texts when every text is its own block).
        family_error_rate: the chance that any interval misses, Bonferroni-split over the seven
            findings, and within a per-head finding over its heads.
        punctuation_factor: a head "attends to punctuation" when its mean weight on punctuation is
            more than this many times punctuation's share of the tokens (what a uniform head gives).

    Findings (layer bands of BERT-base mapped by :func:`bert_base_layers`, see
    :data:`CLARK_BANDS`): broad attention in the early band (normalised entropy, early minus later
    layers, > 0); ``[CLS]`` early minus later > 0; ``[SEP]`` in the middle band > 0.5; some
    deep-band head above ``punctuation_factor`` × share on punctuation (per head); some head above
    0.5 on its previous or next token (per head); the largest such head of the first half minus the
    second half > 0; the median head's weight on the current token < 0.1. Percentile intervals for
    the finding-level statistics; normal bootstrap intervals for the per-head ones, whose corrected
    confidence is too high for percentiles of a few thousand resamples.
    """
    n_layers = stats.n_layers
    band = {name: bert_base_layers(a, b, n_layers) for name, (a, b) in CLARK_BANDS.items()}
    early, middle, deep, first_half = band["early"], band["middle"], band["deep"], band["first half"]
    later = [k for k in range(n_layers) if k not in early]
    second_half = [k for k in range(n_layers) if k not in first_half] or first_half[-1:]
    n_findings = 7
    confidence = 1 - family_error_rate / n_findings

    def classes(v: Any, name: str) -> np.ndarray:
        return v.attention_to_classes()[name]  # [R, L, H]

    def positional(v: Any) -> np.ndarray:
        return np.maximum(classes(v, "previous"), classes(v, "next"))

    def band_mean(x: np.ndarray, layers: list[int]) -> np.ndarray:
        return x[:, layers].mean(axis=(1, 2))

    specs: list[tuple[tuple[str, str, str, str, float], Callable[[Any], np.ndarray]]] = [
        (
            ("Lower layers attend broadly", "broadest early", f"norm. entropy {layer_span(early)} - rest", ">", 0.0),
            lambda v: band_mean(v.normalised_entropy, early) - band_mean(v.normalised_entropy, later),
        ),
        (
            ("Early heads attend to [CLS]", "[CLS] peaks early", f"[CLS] {layer_span(early)} - rest", ">", 0.0),
            lambda v: band_mean(classes(v, "cls"), early) - band_mean(classes(v, "cls"), later),
        ),
        (
            ("Middle heads attend to [SEP]", "over half", f"[SEP] in {layer_span(middle)}", ">", 0.5),
            lambda v: band_mean(classes(v, "sep"), middle),
        ),
        (
            (
                "... especially in early layers",
                "mostly early",
                f"max prev/next {layer_span(first_half)} - {layer_span(second_half)}",
                ">",
                0.0,
            ),
            lambda v: positional(v)[:, first_half].max(axis=(1, 2)) - positional(v)[:, second_half].max(axis=(1, 2)),
        ),
        (
            ("Most heads put little weight on the current token", "little", "median head self", "<", 0.1),
            lambda v: np.median(classes(v, "self").reshape(len(classes(v, "self")), -1), axis=1),
        ),
    ]
    found = [
        _comparison(spec, stats.bootstrap(fn, n_resamples=n_resamples, confidence=confidence, seed=seed), confidence)
        for spec, fn in specs
    ]

    def per_head(finding: tuple[str, str, str, str, float], layers: list[int], fn: Any) -> HeadComparison:
        level = 1 - family_error_rate / n_findings / (len(layers) * stats.n_heads)
        est, low, high = stats.bootstrap(fn, n_resamples=n_resamples, confidence=level, seed=seed, interval="normal")
        return HeadComparison(*finding, estimate=est, low=low, high=high, layers=tuple(layers), confidence=level)

    def excess_punctuation(v: Any) -> np.ndarray:
        share = v.class_share()["punctuation"]  # [R]
        return classes(v, "punctuation") - punctuation_factor * share[:, None, None]

    punctuation = per_head(
        ("Deep heads attend to periods and commas", "deep heads", f"punct. - {punctuation_factor:g} x share", ">", 0.0),
        deep,
        excess_punctuation,
    )
    neighbours = per_head(
        ("Some heads attend mostly to the previous/next token", "heads above 0.5", "prev/next", ">", 0.5),
        list(range(n_layers)),
        positional,
    )
    return [*found[:3], punctuation, neighbours, *found[3:]]


def word_sample_mev(vectors: Any, texts: Any, n_draws: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MEV of each word's sampled occurrences and its baseline (Ethayarajh 2019, uncentred).

    Args:
        vectors: ``[word, m, layer + 1, d]`` each word's representations in ``m`` different texts
            (:meth:`attention_study.corpus_stats.HeadStatistics.word_samples`).
        texts: ``[word, m]`` the text of each sample (every sample must be present: ``>= 0``).

    Returns:
        ``(mev [word, layer + 1], baseline [layer + 1])``: the baseline is the mean MEV of ``m``
        samples drawn from ``m`` distinct texts out of all words' samples (:func:`random_mev`),
        so that word and baseline have the same number of rows (MEV is at least ``1/m``).
    """
    x = _array(vectors, "vectors", 4)
    ids = np.asarray(texts)
    if ids.shape != x.shape[:2]:
        raise ValueError(f"texts must have shape {x.shape[:2]}, got {ids.shape}")
    missing = np.flatnonzero((ids < 0).any(axis=1))
    if len(missing):
        raise ValueError(f"word {int(missing[0])} has fewer than {x.shape[1]} samples")
    mev = max_explainable_variance(np.swapaxes(x, 1, 2))  # [word, layer + 1]
    pool = x.reshape(-1, *x.shape[2:]).transpose(1, 0, 2)  # [layer + 1, word * m, d]
    baseline = random_mev(pool, ids.reshape(-1), size=x.shape[1], n_draws=n_draws, seed=seed)
    return mev, baseline


def corpus_contextuality(stats: Any, mev: Any, mev_baseline: Any) -> dict[str, np.ndarray]:
    """Ethayarajh's per-layer curves from corpus statistics, as :func:`contextuality_by_layer`
    names them: ``baseline_cosine`` (``stats.anisotropy``), ``self_similarity_adjusted`` (mean
    over the words), ``intra_similarity_adjusted`` and ``mev_adjusted`` (mean over the words of
    ``mev − mev_baseline``), each ``[layer + 1]``; ``mev`` is ``[word, layer + 1]``."""
    return {
        "baseline_cosine": stats.anisotropy,
        "self_similarity_adjusted": np.mean(stats.self_similarity_adjusted(), axis=0),
        "intra_similarity_adjusted": stats.intra_similarity_adjusted,
        "mev_adjusted": np.mean(np.asarray(mev) - np.asarray(mev_baseline)[None], axis=0),
    }


def ethayarajh_corpus_comparisons(
    stats: Any,
    mev: Any,
    mev_baseline: Any,
    role: str = "bidirectional",
    stopwords: Sequence[str] = (),
    *,
    family_error_rate: float = 0.05,
    n_resamples: int = 4000,
    seed: int = 0,
) -> list[Comparison]:
    """Ethayarajh (2019)'s findings on a corpus's :class:`~attention_study.corpus_stats.HeadStatistics`.

    The same findings as :func:`ethayarajh_comparisons`; here self-similarity is over pairs of
    occurrences in different texts, the anisotropy baseline is the exact mean cosine over every
    pair of tokens from different texts (``stats.anisotropy``, uncentred), MEV is
    :func:`word_sample_mev`'s. Units: the texts (``stats``'s blocks, for the anisotropy and
    intra-sentence findings, whose baseline is redrawn with them) and the words (the self-similarity,
    MEV and stopword findings, baselines fixed). Layer ``emb`` (the input embedding) is outside
    every finding; the first layer is ``L0``, the top one ``L{n−1}``.
    """
    self_adj = stats.self_similarity() - stats.anisotropy[None]  # [word, layer + 1]
    mev_adj = np.asarray(mev) - np.asarray(mev_baseline)[None]
    words = list(stats.words)
    if self_adj.shape[0] < 2 or not np.all(np.isfinite(self_adj)):
        raise ValueError("need at least two words, each in at least two texts")
    top = self_adj.shape[1] - 1
    first, last = hidden_label(1), hidden_label(top)
    block_specs: list[tuple[tuple[str, str, str, str, float], Callable[[Any], np.ndarray]]] = [
        (
            ("Representations are anisotropic in every layer", "cosine > 0", "min over layers of anisotropy", ">", 0.0),
            lambda v: v.anisotropy[:, 1:].min(axis=1),
        )
    ]
    if role == "bidirectional":
        block_specs += [
            (
                ("BERT: words of a sentence are more alike than random", "intra-sim. > baseline",
                 "min over layers of adj. intra-sim.", ">", 0.0),
                lambda v: v.intra_similarity_adjusted[:, 1:].min(axis=1),
            ),
            (
                ("BERT: ... and less alike in upper layers", "falls with depth",
                 f"adj. intra-sim. {last} - {first}", "<", 0.0),
                lambda v: v.intra_similarity_adjusted[:, top] - v.intra_similarity_adjusted[:, 1],
            ),
        ]  # fmt: skip
    elif role == "causal":
        block_specs.append(
            (
                ("GPT-2: words of a sentence are no more alike than random", "intra-sim. ~ baseline",
                 "max over layers of |adj. intra-sim.|", "<", 0.1),
                lambda v: np.abs(v.intra_similarity_adjusted[:, 1:]).max(axis=1),
            )
        )  # fmt: skip
    n_words = len(words)
    word_specs: list[tuple[Any, ...]] = [
        ("Upper layers are more context-specific", "self-sim. falls with depth", f"adj. self-sim. {last} - {first}",
         "<", 0.0, lambda i: self_adj[i, top].mean() - self_adj[i, 1].mean(), n_words, None),
        ("A static vector explains < 5% of a word's variance", "MEV < 0.05", "max over layers of adj. MEV",
         "<", 0.05, lambda i: mev_adj[i, 1:].mean(axis=0).max(), n_words, None),
    ]  # fmt: skip
    stop = [k for k, w in enumerate(words) if w in set(stopwords)]
    other = [k for k in range(n_words) if k not in stop]
    if role in ("bidirectional", "causal") and len(stop) >= 2 and len(other) >= 2:
        order = np.array(stop + other)
        is_stop = np.array([1] * len(stop) + [0] * len(other))
        top_sim = self_adj[order, top]
        word_specs.append(
            ("Stopwords are among the most context-specific words", "lowest self-sim.",
             f"{last} self-sim.: stopwords - others", "<", 0.0,
             lambda i: top_sim[i][is_stop[i] == 1].mean() - top_sim[i][is_stop[i] == 0].mean(), len(order), is_stop)
        )  # fmt: skip
    confidence = 1 - family_error_rate / (len(block_specs) + len(word_specs))
    by_blocks = [
        _comparison(spec, stats.bootstrap(fn, n_resamples=n_resamples, confidence=confidence, seed=seed), confidence)
        for spec, fn in block_specs
    ]
    by_words = [
        compare(finding, paper, statistic, side, threshold, fn, n, strata=strata, confidence=confidence,
                n_resamples=n_resamples, seed=seed)
        for finding, paper, statistic, side, threshold, fn, n, strata in word_specs
    ]  # fmt: skip
    return [by_blocks[0], *by_words[:2], *by_blocks[1:], *by_words[2:]]  # the paper's order


def ethayarajh_comparisons(
    result: Mapping[str, Any],
    role: str,
    stopwords: Sequence[str] = (),
    *,
    family_error_rate: float = 0.05,
    n_resamples: int = 4000,
    seed: int = 0,
) -> list[Comparison]:
    """Ethayarajh (2019)'s findings, tested on one model's :func:`contextuality_by_layer` result.

    Findings for every model: anisotropy in every layer above the input (units: the random
    pairs), more context-specific upper layers and less than 5% of a word's variance explained
    by a static vector (units: the words). For ``role="bidirectional"`` (BERT's findings) and
    ``"causal"`` (GPT-2's) the intra-sentence findings (units: the sentences), and, when at
    least two stopwords and two other words occur, the stopword finding (units: the words, drawn
    within each group). Layer 0 (the input embedding) is outside every finding. Intervals are
    Bonferroni-corrected over the findings (``family_error_rate``); the baselines are taken as
    fixed (their own sampling error is not in the interval). Hidden states are labelled as in
    :func:`hidden_label` (``emb``, then the 0-based layer ``L0``, ``L1``, ... whose output they are).
    """
    pairs = np.asarray(result["baseline_cosine_pairs"])[1:]  # [layer, pair]
    words = list(result["self_similarity_adjusted_by_word"])
    self_adj = np.stack([result["self_similarity_adjusted_by_word"][w] for w in words])  # [word, layer+1]
    mev_adj = np.stack([result["mev_adjusted_by_word"][w] for w in words])
    intra = np.asarray(result["intra_similarity_by_sentence"]) - np.asarray(result["baseline_cosine"])
    top = self_adj.shape[1] - 1
    n_pairs, n_words, n_sentences = pairs.shape[1], len(words), len(intra)
    specs: list[tuple[Any, ...]] = [
        (
            "Representations are anisotropic in every layer",
            "cosine > 0 in all layers",
            "min over layers of random-pair cosine",
            ">",
            0.0,
            lambda i: pairs[:, i].mean(axis=1).min(),
            n_pairs,
        ),
        (
            "Upper layers are more context-specific",
            "self-sim. falls with depth",
            f"adj. self-sim. {hidden_label(top)} - {hidden_label(1)}",
            "<",
            0.0,
            lambda i: self_adj[i, top].mean() - self_adj[i, 1].mean(),
            n_words,
        ),
        (
            "A static vector explains < 5% of a word's variance",
            "MEV < 0.05 in all layers",
            "max over layers of adj. MEV",
            "<",
            0.05,
            lambda i: mev_adj[i, 1:].mean(axis=0).max(),
            n_words,
        ),
    ]
    if role == "bidirectional":
        specs += [
            (
                "BERT: words of a sentence are more alike than random",
                "intra-sim. > baseline",
                "min over layers of adj. intra-sim.",
                ">",
                0.0,
                lambda i: intra[i, 1:].mean(axis=0).min(),
                n_sentences,
            ),
            (
                "BERT: ... and less alike in upper layers",
                "intra-sim. falls with depth",
                f"adj. intra-sim. {hidden_label(top)} - {hidden_label(1)}",
                "<",
                0.0,
                lambda i: intra[i, top].mean() - intra[i, 1].mean(),
                n_sentences,
            ),
        ]
    elif role == "causal":
        specs.append(
            (
                "GPT-2: words of a sentence are no more alike than random",
                "intra-sim. ~ baseline",
                "max over layers of |adj. intra-sim.|",
                "<",
                0.1,
                lambda i: np.abs(intra[i, 1:].mean(axis=0)).max(),
                n_sentences,
            )
        )
    stop = [k for k, w in enumerate(words) if w in set(stopwords)]
    other = [k for k in range(len(words)) if k not in stop]
    if role in ("bidirectional", "causal") and len(stop) >= 2 and len(other) >= 2:
        order = np.array(stop + other)
        is_stop = np.array([1] * len(stop) + [0] * len(other))
        top_sim = self_adj[order, top]
        specs.append(
            (
                "Stopwords are among the most context-specific words",
                "lowest self-sim.",
                f"{hidden_label(top)} self-sim.: stopwords - others",
                "<",
                0.0,
                lambda i: top_sim[i][is_stop[i] == 1].mean() - top_sim[i][is_stop[i] == 0].mean(),
                len(order),
                is_stop,
            )
        )
    confidence = 1 - family_error_rate / len(specs)
    out = []
    for finding, paper, statistic, side, threshold, fn, n, *strata in specs:
        out.append(
            compare(
                finding,
                paper,
                statistic,
                side,
                threshold,
                fn,
                n,
                strata=strata[0] if strata else None,
                confidence=confidence,
                n_resamples=n_resamples,
                seed=seed,
            )
        )
    return out
