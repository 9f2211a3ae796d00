"""Scores that name what an attention head does, computed from attention weights.

All functions take ``attentions``: a float tensor ``[layer, head, query, key]`` whose rows are
attention distributions (as in ``trace(...).attentions``), and return a float tensor
``[layer, head]`` of mean attention weights (unitless, in ``[0, 1]``).

- previous-token score: mean attention from token ``i`` to token ``i - 1`` (queries ``i >= 1``);
- induction score (Olsson et al. 2022, "In-context learning and induction heads"): on a sequence
  of random tokens repeated twice with period ``p``, the mean attention from each token ``i`` of
  the second copy to the token right after its earlier occurrence, ``i - p + 1``;
- first-token score ("attention sink"): mean attention to position 0 (queries ``i >= 1``).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

__all__ = [
    "first_token_scores",
    "induction_scores",
    "previous_token_scores",
    "repeated_random_tokens",
]


def _check_attentions(attentions: torch.Tensor, min_tokens: int = 2) -> torch.Tensor:
    """Validate ``[layer, head, query, key]`` attention and return it as float64."""
    if not isinstance(attentions, torch.Tensor):
        raise TypeError(f"attentions must be a torch.Tensor, got {type(attentions).__name__}")
    if attentions.ndim != 4:
        raise ValueError(
            f"attentions must have shape [layer, head, query, key] (4 dimensions), got {tuple(attentions.shape)}"
        )
    n_layer, n_head, n_query, n_key = attentions.shape
    if n_query != n_key:
        raise ValueError(f"attentions must be square in (query, key), got {n_query} x {n_key}")
    if n_layer == 0 or n_head == 0:
        raise ValueError(f"attentions has no layers or heads: shape {tuple(attentions.shape)}")
    if n_query < min_tokens:
        raise ValueError(f"need at least {min_tokens} tokens, got {n_query}")
    if not attentions.is_floating_point():
        raise TypeError(f"attentions must be floating point, got {attentions.dtype}")
    if not torch.isfinite(attentions).all():
        raise ValueError("attentions contains non-finite values (nan or inf)")
    return attentions.detach().to(torch.float64)


def previous_token_scores(attentions: torch.Tensor) -> torch.Tensor:
    """Mean attention from each token to the token before it.

    Args:
        attentions: ``[layer, head, query, key]``, ``query == key >= 2``.

    Returns:
        ``[layer, head]`` float64: mean over queries ``i = 1 .. T-1`` of ``A[i, i-1]``.
    """
    a = _check_attentions(attentions, min_tokens=2)
    return torch.diagonal(a, offset=-1, dim1=-2, dim2=-1).mean(dim=-1)


def first_token_scores(attentions: torch.Tensor) -> torch.Tensor:
    """Mean attention to position 0 (the "attention sink"), over queries ``i = 1 .. T-1``.

    Query 0 is left out: under a causal mask it can only attend to itself.

    Args:
        attentions: ``[layer, head, query, key]``, ``query == key >= 2``.

    Returns:
        ``[layer, head]`` float64.
    """
    a = _check_attentions(attentions, min_tokens=2)
    return a[:, :, 1:, 0].mean(dim=-1)


def induction_scores(attentions: torch.Tensor, period: int) -> torch.Tensor:
    """Induction score on a sequence whose last ``2 * period`` tokens are one copy repeated.

    The second copy is the last ``period`` tokens (so a prefix such as BOS before the two copies
    is allowed). Each query ``i`` of the second copy, ``T - period <= i < T``, should attend to
    ``j = i - period + 1``: the token right after the earlier occurrence of token ``i``.

    Args:
        attentions: ``[layer, head, query, key]`` with ``T = query == key >= 2 * period``.
        period: length of one copy, ``1 <= period <= T // 2``.

    Returns:
        ``[layer, head]`` float64: mean over the second copy of ``A[i, i - period + 1]``.
    """
    a = _check_attentions(attentions, min_tokens=2)
    n_tokens = a.shape[-1]
    if isinstance(period, bool) or not isinstance(period, int):
        raise TypeError(f"period must be an int, got {type(period).__name__}")
    if not 1 <= period <= n_tokens // 2:
        raise ValueError(f"period must be in [1, {n_tokens // 2}] for {n_tokens} tokens, got {period}")
    queries = torch.arange(n_tokens - period, n_tokens)
    keys = queries - period + 1
    return a[:, :, queries, keys].mean(dim=-1)


def repeated_random_tokens(length: int, vocab_size: int, seed: int, exclude: Iterable[int] = ()) -> torch.Tensor:
    """``length`` uniformly random token ids, repeated twice: ``[2 * length]`` int64.

    The first copy has no repeated id (drawn without replacement), so every token of the second
    copy has exactly one earlier occurrence and the induction target is unambiguous.

    Args:
        length: tokens per copy, ``1 <= length <= vocab_size - len(exclude)``.
        vocab_size: ids are drawn from ``range(vocab_size)``.
        seed: seed of a private ``torch.Generator`` (the global RNG is untouched).
        exclude: ids never drawn (e.g. special tokens).

    Returns:
        LongTensor ``[2 * length]`` with ``out[length:] == out[:length]``.
    """
    for label, value in (("length", length), ("vocab_size", vocab_size), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{label} must be an int, got {type(value).__name__}")
    excluded = {int(e) for e in exclude}
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
    if any(not 0 <= e < vocab_size for e in excluded):
        raise ValueError(f"exclude ids must be in [0, {vocab_size - 1}], got {sorted(excluded)}")
    allowed = torch.tensor([i for i in range(vocab_size) if i not in excluded], dtype=torch.long)
    if not 1 <= length <= len(allowed):
        raise ValueError(f"length must be in [1, {len(allowed)}] (vocabulary minus excluded ids), got {length}")
    generator = torch.Generator().manual_seed(seed)
    first = allowed[torch.randperm(len(allowed), generator=generator)[:length]]
    return torch.cat([first, first])
