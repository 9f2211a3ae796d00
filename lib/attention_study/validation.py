"""Input checks shared by the whole library: arrays in, clear errors out.

Every layer of the library (tracing, metrics, views) validates its inputs the same way, so the
checks live here once: a float64 copy of an array or tensor that must be finite, and the range
check of a layer and head index. Each error names the problem and the valid range.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class LayerHeadRangeError(IndexError, ValueError):
    """A layer or head index outside the model.

    Both an ``IndexError`` (what ``Trace.head`` and the views have always raised) and a
    ``ValueError`` (what :mod:`attention_study.interventions` documents), like numpy's ``AxisError``.
    """


def check_layer_head(layer: int, head: int | None, n_layers: int, n_heads: int) -> None:
    """Raise :class:`LayerHeadRangeError` naming the valid range when ``layer``/``head`` are out of
    ``0..n_layers - 1`` / ``0..n_heads - 1`` (``head=None`` checks the layer only)."""
    if not 0 <= layer < n_layers:
        raise LayerHeadRangeError(f"layer {layer} is out of range: valid layers are 0..{n_layers - 1}")
    if head is not None and not 0 <= head < n_heads:
        raise LayerHeadRangeError(f"head {head} is out of range: valid heads are 0..{n_heads - 1}")


def finite_float64(x: Any, name: str) -> np.ndarray:
    """A float64 NumPy copy of an array-like or a torch tensor (any device) whose entries are finite.

    Raises:
        TypeError: ``x`` is not numeric.
        ValueError: an entry is NaN or infinite (the message gives the first one's index).
    """
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch
        x = x.detach().cpu().numpy()
    try:
        array = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a numeric array or tensor, got {type(x).__name__}") from err
    if not np.all(np.isfinite(array)):
        first = tuple(np.argwhere(~np.isfinite(array))[0].tolist())
        raise ValueError(f"{name} has non-finite values (NaN or inf), first at index {first}")
    return array


def corpus_text(item: Any, index: int, what: str = "corpus item") -> str:
    """``item`` itself if it is a non-empty ``str``; else an error naming ``what`` and its ``index``
    (a ``TypeError`` for a non-text, a ``ValueError`` for an empty text)."""
    if not isinstance(item, str):
        raise TypeError(f"{what} {index} is a {type(item).__name__}, not a str: the corpus must hold texts")
    if not item.strip():
        raise ValueError(f"{what} {index} is an empty text: give at least one word")
    return item
