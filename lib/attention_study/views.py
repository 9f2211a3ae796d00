"""Static (matplotlib) pictures of attention: matrices, head grids and attention graphs.

Every function takes a :class:`~attention_study.tracing.Trace` (or anything with ``attentions``
``[layer, head, query, key]`` and ``tokens``) and returns the matplotlib ``Axes`` or ``Figure`` it
drew on, so chapters can add to it. Rows of an attention matrix are *queries* (the token that
attends), columns are *keys* (the token attended to); every row sums to 1.

Bad input raises: fewer than 2 tokens, layer/head out of range (``IndexError`` naming the valid
range), a threshold outside [0, 1], weights that do not form a square patch grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from .topology import finite_bars
from .validation import check_layer_head

__all__ = [
    "attention_graph",
    "attention_heatmap",
    "check_threshold",
    "compare_sentences",
    "display_token",
    "head_matrix",
    "layer_heads_grid",
    "layered_attention_graph",
    "matrix_heatmap",
    "patch_overlay",
]


# --------------------------------------------------------------------------- checks and helpers


def display_token(token: str) -> str:
    """A readable label for a tokenizer piece (GPT-2 byte markers removed, mathtext disabled).

    ``Ġcat`` -> ``cat``, ``Ċ`` -> ``\\n``; ``$`` is escaped so matplotlib never reads it as math.
    """
    label = token.replace("Ġ", "").replace("Ċ", "\\n") or token
    return label.replace("$", r"\$")


def _check_trace(trace: Any) -> int:
    """Number of tokens of a trace; raises when a picture of attention would be meaningless."""
    if not hasattr(trace, "attentions") or not hasattr(trace, "tokens"):
        raise TypeError(f"expected a Trace (attentions and tokens), got {type(trace).__name__}")
    n_tokens = int(trace.attentions.shape[-1])
    if n_tokens < 2:
        raise ValueError(f"attention needs at least 2 tokens to show; this trace has {n_tokens} (give a longer text)")
    return n_tokens


def _check_layer_head(trace: Any, layer: int, head: int | None = None) -> None:
    check_layer_head(layer, head, int(trace.attentions.shape[0]), int(trace.attentions.shape[1]))


def check_threshold(threshold: float) -> float:
    """Return ``threshold`` as a float, or raise ``ValueError`` when it is outside [0, 1]."""
    value = float(threshold)
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise ValueError(f"threshold must lie in [0, 1] (an attention weight); got {threshold}")
    return value


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def head_matrix(trace: Any, layer: int, head: int | None = None) -> np.ndarray:
    """``[query, key]`` attention of one head, or the mean over heads when ``head`` is None."""
    _check_trace(trace)
    _check_layer_head(trace, layer, head)
    weights = _numpy(trace.attentions[layer])
    return weights.mean(axis=0) if head is None else weights[head]


def _labels(trace: Any) -> list[str]:
    return [display_token(t) for t in trace.tokens]


# --------------------------------------------------------------------------- heatmaps


def matrix_heatmap(
    matrix: Any,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    ax: Axes | None = None,
    title: str | None = None,
    vmax: float | None = 1.0,
    cmap: str = "viridis",
    colorbar: bool = True,
    fontsize: float = 8,
) -> Axes:
    """Draw a ``[rows, cols]`` matrix with labelled rows (queries) and columns (keys)."""
    values = _numpy(matrix)
    if values.ndim != 2 or values.shape != (len(row_labels), len(col_labels)):
        raise ValueError(
            f"matrix shape {values.shape} does not match {len(row_labels)} row and {len(col_labels)} column labels"
        )
    if ax is None:
        size = max(3.0, 0.32 * max(values.shape) + 1.5)
        _, ax = plt.subplots(figsize=(size + 0.8, size))
    image = ax.imshow(values, cmap=cmap, vmin=0.0, vmax=vmax, aspect="equal")
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=90, fontsize=fontsize)
    ax.set_yticks(range(len(row_labels)), row_labels, fontsize=fontsize)
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    if title:
        ax.set_title(title, fontsize=fontsize + 2)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return ax


def attention_heatmap(trace: Any, layer: int, head: int | None = None, ax: Axes | None = None, **kwargs: Any) -> Axes:
    """Heatmap of one head's attention matrix (``head=None``: mean over the layer's heads)."""
    matrix = head_matrix(trace, layer, head)
    labels = _labels(trace)
    which = "mean of heads" if head is None else f"head {head}"
    title = kwargs.pop("title", f"{trace.model_name}: layer {layer}, {which}")
    return matrix_heatmap(matrix, labels, labels, ax=ax, title=title, **kwargs)


def layer_heads_grid(trace: Any, layer: int, ncols: int = 6, cell: float = 2.2) -> Figure:
    """All heads of one layer as a grid of small heatmaps (shared colour scale 0..1)."""
    _check_trace(trace)
    _check_layer_head(trace, layer)
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1; got {ncols}")
    n_heads = int(trace.attentions.shape[1])
    ncols = min(ncols, n_heads)
    nrows = math.ceil(n_heads / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell * ncols, cell * nrows + 0.4), squeeze=False)
    labels = _labels(trace)
    small = len(labels) <= 16
    for index, ax in enumerate(axes.flat):
        if index >= n_heads:
            ax.axis("off")
            continue
        ax.imshow(head_matrix(trace, layer, index), cmap="viridis", vmin=0.0, vmax=1.0)
        ax.set_title(f"head {index}", fontsize=8)
        if small and index % ncols == 0:
            ax.set_yticks(range(len(labels)), labels, fontsize=5)
        else:
            ax.set_yticks([])
        if small and index >= n_heads - ncols:
            ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=5)
        else:
            ax.set_xticks([])
    fig.suptitle(f"{trace.model_name}: every head of layer {layer} (rows: queries)", fontsize=10)
    fig.tight_layout()
    return fig


def compare_sentences(trace_a: Any, trace_b: Any, layer: int, head: int | None) -> Figure:
    """The same head on two texts, side by side (both traces from the same model)."""
    for trace in (trace_a, trace_b):
        _check_trace(trace)
        _check_layer_head(trace, layer, head)
    if trace_a.attentions.shape[:2] != trace_b.attentions.shape[:2]:
        raise ValueError("the two traces come from models with different layer/head counts")
    widest = max(len(trace_a.tokens), len(trace_b.tokens))
    size = max(3.0, 0.3 * widest + 1.5)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1.0, size))
    which = "mean of heads" if head is None else f"head {head}"
    for ax, trace, name in zip(axes, (trace_a, trace_b), ("A", "B"), strict=True):
        attention_heatmap(trace, layer, head, ax=ax, title=f"text {name}", colorbar=False)
    fig.suptitle(f"{trace_a.model_name}: layer {layer}, {which}", fontsize=10)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- graphs


def _edges(matrix: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    rows, cols = np.nonzero(matrix >= threshold) if threshold > 0 else np.nonzero(matrix > 0)
    return [(int(i), int(j), float(matrix[i, j])) for i, j in zip(rows, cols, strict=True)]


def _draw_edges(ax: Axes, segments: list, weights: list[float], color: str, max_width: float) -> None:
    if not segments:
        return
    widths = [max_width * w for w in weights]
    ax.add_collection(LineCollection(segments, linewidths=widths, colors=color, alpha=0.6, capstyle="round"))


def attention_graph(
    trace: Any,
    layer: int,
    head: int | None = None,
    threshold: float = 0.1,
    ax: Axes | None = None,
    max_width: float = 6.0,
    color: str = "tab:blue",
) -> Axes:
    """Bipartite token→token graph: queries on the left, keys on the right.

    An edge i→j is drawn when ``A[i, j] >= threshold``; its width is ``max_width · A[i, j]``
    points. The threshold is stated in the title.
    """
    threshold = check_threshold(threshold)
    matrix = head_matrix(trace, layer, head)
    labels = _labels(trace)
    n = len(labels)
    if ax is None:
        _, ax = plt.subplots(figsize=(4.0, max(3.0, 0.3 * n + 1.0)))
    edges = _edges(matrix, threshold)
    segments = [[(0.0, -i), (1.0, -j)] for i, j, _ in edges]
    _draw_edges(ax, segments, [w for _, _, w in edges], color, max_width)
    for i, label in enumerate(labels):
        ax.text(-0.04, -i, label, ha="right", va="center", fontsize=8)
        ax.text(1.04, -i, label, ha="left", va="center", fontsize=8)
    ax.set_xlim(-0.6, 1.6)
    ax.set_ylim(-n + 0.5, 0.8)
    ax.text(0.0, 0.6, "query", ha="right", fontsize=8, style="italic")
    ax.text(1.0, 0.6, "key", ha="left", fontsize=8, style="italic")
    ax.axis("off")
    which = "mean of heads" if head is None else f"head {head}"
    ax.set_title(
        f"layer {layer}, {which}\nedges with weight ≥ {threshold:g} ({len(edges)} of {n * n})",
        fontsize=9,
    )
    return ax


def layered_attention_graph(
    trace: Any,
    threshold: float = 0.1,
    head: int | None = None,
    matrices: Any | None = None,
    ax: Axes | None = None,
    max_width: float = 4.0,
    color: str = "tab:purple",
) -> Axes:
    """The attention graph through all layers: column ``l`` holds the tokens after layer ``l``.

    Column 0 is the input; an edge from token i in column l to token j in column l-1 has the
    weight of layer l's attention ``A_l[i, j]`` (one head, or the mean over heads when ``head`` is
    None), or ``matrices[l-1][i, j]`` when ``matrices`` ``[layer, token, token]`` is given (e.g.
    the residual-augmented matrices of :func:`attention_study.rollout.layer_graph_matrices`).
    Edges below ``threshold`` are left out; the threshold is stated in the title.
    """
    threshold = check_threshold(threshold)
    n_tokens = _check_trace(trace)
    n_layers = int(trace.attentions.shape[0])
    if head is not None:
        _check_layer_head(trace, 0, head)
    if matrices is None:
        stack = _numpy(trace.attentions)
        stack = stack.mean(axis=1) if head is None else stack[:, head]
    else:
        stack = _numpy(matrices)
        if stack.shape != (n_layers, n_tokens, n_tokens):
            raise ValueError(f"matrices must have shape {(n_layers, n_tokens, n_tokens)}; got {stack.shape}")
    labels = _labels(trace)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.3 * n_layers + 2.5, max(3.0, 0.3 * n_tokens + 1.0)))
    segments, weights, kept = [], [], 0
    for layer in range(1, n_layers + 1):
        for i, j, w in _edges(stack[layer - 1], threshold):
            segments.append([(layer, -i), (layer - 1, -j)])
            weights.append(w)
            kept += 1
    _draw_edges(ax, segments, weights, color, max_width)
    for layer in range(n_layers + 1):
        ax.scatter([layer] * n_tokens, -np.arange(n_tokens), s=8, color="black", zorder=3)
    for i, label in enumerate(labels):
        ax.text(-0.12, -i, label, ha="right", va="center", fontsize=8)
    ax.set_xticks(range(n_layers + 1), ["input"] + [f"L{l}" for l in range(n_layers)], fontsize=8)
    ax.set_yticks([])
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.set_xlim(-1.0, n_layers + 0.3)
    which = "mean of heads" if head is None else f"head {head}"
    source = "given matrices" if matrices is not None else which
    ax.set_title(
        f"attention graph through {n_layers} layers ({source}); edges with weight ≥ {threshold:g}: {kept}",
        fontsize=9,
    )
    return ax


# --------------------------------------------------------------------------- vision


def patch_overlay(
    image: Any,
    weights: Any,
    ax: Axes | None = None,
    title: str | None = None,
    cmap: str = "magma",
    alpha: float = 0.6,
) -> Axes:
    """Draw per-patch weights (e.g. CLS→patch rollout) over a grey image.

    Args:
        image: ``[height, width]`` grey image (any scale; shown min-max normalised).
        weights: ``[n_patches]`` non-negative, ``n_patches = side²`` in row-major patch order;
            the grid is stretched over the whole image (as a ViT processor resizes its input).
    """
    picture = _numpy(image)
    values = _numpy(weights).ravel()
    if picture.ndim != 2:
        raise ValueError(f"image must be a 2-D grey array [height, width]; got {picture.shape}")
    side = math.isqrt(values.size)
    if side * side != values.size or values.size == 0:
        raise ValueError(f"weights must form a square patch grid; got {values.size} values")
    height, width = picture.shape
    if ax is None:
        _, ax = plt.subplots(figsize=(3.2, 3.2))
    ax.imshow(picture, cmap="gray", extent=(0, width, height, 0))
    grid = values.reshape(side, side)
    ax.imshow(grid, cmap=cmap, alpha=alpha, extent=(0, width, height, 0), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return ax


# --------------------------------------------------------------------------------------------
# persistent homology (diagrams of attention_study.topology)


def plot_diagrams(dgms: Sequence[np.ndarray], ax=None, title: str | None = None):
    """Persistence diagram (birth vs death, a colour per dimension); inf deaths on a top line."""
    ax = ax if ax is not None else plt.subplots(figsize=(4, 4))[1]
    finite = np.concatenate([finite_bars(g) for g in dgms] + [np.zeros((0, 2))])
    top = float(finite[:, 1].max()) if len(finite) else 1.0
    top = top * 1.1 if top > 0 else 1.0
    for k, g in enumerate(dgms):
        g = np.asarray(g).reshape(-1, 2)
        if len(g) == 0:
            continue
        deaths = np.where(np.isfinite(g[:, 1]), g[:, 1], top)
        ax.scatter(g[:, 0], deaths, s=18, label=f"H{k}", alpha=0.8)
    ax.plot([0, top], [0, top], color="grey", lw=0.8)
    ax.axhline(top, color="grey", ls=":", lw=0.8)
    ax.set_xlabel("birth")
    ax.set_ylabel("death (dotted line: infinite)")
    ax.legend(loc="lower right", fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def plot_barcode(dgms: Sequence[np.ndarray], ax=None, title: str | None = None):
    """Barcode: one horizontal bar per class, grouped by dimension; infinite bars get an arrow."""
    ax = ax if ax is not None else plt.subplots(figsize=(5, 3))[1]
    finite = np.concatenate([finite_bars(g) for g in dgms] + [np.zeros((0, 2))])
    top = float(finite[:, 1].max()) * 1.1 if len(finite) and finite[:, 1].max() > 0 else 1.0
    row = 0
    for k, g in enumerate(dgms):
        g = np.asarray(g).reshape(-1, 2)
        order = np.argsort(-(np.minimum(g[:, 1], top) - g[:, 0]), kind="stable")
        for b, d in g[order]:
            ax.plot([b, min(d, top)], [row, row], color=f"C{k}", lw=2)
            if not np.isfinite(d):
                ax.annotate(
                    "", xy=(top, row), xytext=(top * 0.97, row), arrowprops={"arrowstyle": "->", "color": f"C{k}"}
                )
            row += 1
        row += 1
    ax.set_yticks([])
    ax.set_xlabel("filtration value (distance)")
    if title:
        ax.set_title(title, fontsize=9)
    return ax


# --------------------------------------------------------------------------------------------
# the autoregressive chapter (steps and scores of attention_study.autoregressive)


def plot_generation(loaded: Any, steps: Sequence[Any], layer: int | None = None) -> Figure:
    r"""One figure: row k is step k's newest token attending to every earlier position.

    ``steps`` are :func:`attention_study.autoregressive.greedy_steps`'s ``GenerationStep``\ s.

    Weights are the mean over heads of ``layer`` (default: the last); positions after the newest
    token do not exist yet and are left blank. Each row is labelled with its query token, and the
    token it led to is written at the right.
    """
    if not steps:
        raise ValueError("no generation steps to draw")
    n_layers = int(steps[0].attention.shape[0])
    layer = n_layers - 1 if layer is None else layer
    check_layer_head(layer, None, n_layers, 0)
    final = torch.cat([steps[-1].ids, torch.tensor([steps[-1].next_id])])
    width = final.numel() - 1
    grid = np.full((len(steps), width), np.nan)
    for k, step in enumerate(steps):
        row = step.attention[layer].mean(dim=0).numpy()
        grid[k, : row.size] = row
    tokens = [display_token(t) for t in loaded.tokenizer.convert_ids_to_tokens(final.tolist())]
    fig, ax = plt.subplots(figsize=(0.42 * width + 2.6, 0.36 * len(steps) + 1.6))
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(width), tokens[:width], rotation=90, fontsize=8)
    rows = [tokens[step.ids.numel() - 1] for step in steps]
    ax.set_yticks(range(len(steps)), rows, fontsize=8)
    for k, step in enumerate(steps):
        ax.text(width - 0.3, k, f"→ {tokens[step.ids.numel()]}", va="center", fontsize=8)
    ax.set_xlabel("key position (context so far)")
    ax.set_ylabel("newest token (query)")
    ax.set_title(f"greedy generation, layer {layer}, mean of heads", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.03, pad=0.12)
    fig.tight_layout()
    return fig


def plot_head_scores(scores: dict[str, Any]) -> Figure:
    """The three ``[layer, head]`` score maps side by side (0..1, value written in each cell)."""
    names = [("previous", "previous-token"), ("induction", "induction"), ("first", "first-token")]
    n_layers, n_heads = scores["previous"].shape
    fig, axes = plt.subplots(1, 3, figsize=(3 * (0.5 * n_heads + 1.4), 0.45 * n_layers + 1.4))
    for ax, (key, title) in zip(axes, names, strict=True):
        values = scores[key].numpy()
        ax.imshow(values, cmap="magma", vmin=0.0, vmax=1.0)
        for (l, h), v in np.ndenumerate(values):
            ax.text(h, l, f"{v:.2f}", ha="center", va="center", fontsize=6, color="white" if v < 0.6 else "black")
        ax.set_xticks(range(n_heads))
        ax.set_yticks(range(n_layers))
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_title(f"{title} score", fontsize=9)
    fig.tight_layout()
    return fig
