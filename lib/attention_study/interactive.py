"""Self-contained HTML views of attention: a head view, a model view and a ViT patch-grid view.

Each view is one ``<div class="attention-view ...">`` holding

1. an inline ``<svg class="attention-svg">`` drawn here in Python — the picture is there before (and
   without) any script, so the static website, an untrusted notebook and a browser test all see it;
2. a ``<script type="application/json" class="attention-data">`` with the weights, stored as
   integers in thousandths (weights rounded to 3 decimals) to keep pages small;
3. a small inline script of our own (no library, no CDN, no network) that adds the controls:
   layer/head choice, hovering a token to isolate its lines, clicking a head or a patch.

Token text is escaped everywhere: ``html.escape`` in markup, and ``<``, ``>``, ``&`` written as
``\\u003c``-style escapes inside the JSON, so no token can close the script element or inject markup.
Views render in JupyterLab, the classic notebook and the book's static site through
``_repr_html_``. For bertviz users, :func:`to_bertviz` turns a trace into bertviz's input format.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import itertools
import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from PIL import Image

from .validation import finite_float64
from .views import check_threshold

__all__ = [
    "HEAD_COLORS",
    "AttentionView",
    "head_view",
    "model_view",
    "patch_view",
    "to_bertviz",
]

#: One colour per head (cycled when a model has more heads).
HEAD_COLORS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a",
)
SCALE = 1000  # weights are stored as round(weight * SCALE): 3 decimals
LABEL_CHARS = 16

# Geometry of a bipartite panel (pixels), shared by the Python drawing and the script.
_GEOM = {"top": 30, "row": 18, "x1": 128, "x2": 268, "width": 396}


@dataclass(frozen=True)
class AttentionView:
    """A rendered view: ``html`` is a fragment for a notebook output or a web page."""

    html: str = field(repr=False)
    kind: str = "head"

    def __repr__(self) -> str:
        return f"AttentionView(kind={self.kind!r}, {self.nbytes} bytes)"

    def _repr_html_(self) -> str:
        return self.html

    @property
    def nbytes(self) -> int:
        """Size of the fragment in bytes (UTF-8), as it weighs in a page."""
        return len(self.html.encode("utf-8"))

    def standalone(self, title: str = "attention view") -> str:
        """A complete HTML document holding only this view."""
        return (
            "<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title></head><body>{self.html}</body></html>"
        )

    def save(self, path: str | Path) -> Path:
        """Write :meth:`standalone` to ``path`` and return it."""
        target = Path(path)
        target.write_text(self.standalone(), encoding="utf-8")
        return target


# --------------------------------------------------------------------------- input checks


def _attentions(trace: Any) -> np.ndarray:
    if not hasattr(trace, "attentions") or not hasattr(trace, "tokens"):
        raise TypeError(f"expected a Trace (attentions and tokens), got {type(trace).__name__}")
    array = finite_float64(trace.attentions, "attentions")
    if array.ndim != 4 or array.shape[2] != array.shape[3]:
        raise ValueError(f"attentions must be [layer, head, query, key]; got {array.shape}")
    if array.shape[-1] < 2:
        raise ValueError(
            f"attention needs at least 2 tokens to show; this trace has {array.shape[-1]}"
        )
    if len(trace.tokens) != array.shape[-1]:
        raise ValueError(f"{len(trace.tokens)} tokens for {array.shape[-1]} attention positions")
    return array


def _check_index(name: str, value: int, count: int) -> int:
    if not isinstance(value, int | np.integer) or not 0 <= value < count:
        raise IndexError(f"{name} {value} is out of range: valid {name}s are 0..{count - 1}")
    return int(value)


def _label(token: str) -> str:
    text = token.replace("Ġ", " ").replace("Ċ", "\\n").strip() or token
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def _milli(array: np.ndarray) -> list:
    return np.rint(np.clip(array, 0.0, 1.0) * SCALE).astype(np.int64).tolist()


def _json_for_script(payload: dict) -> str:
    """JSON that is safe inside ``<script>``: no ``<``, ``>`` or ``&`` characters survive."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_SERIAL = itertools.count()


def _view_id(kind: str, payload_json: str) -> str:
    """Deterministic id: a hash of the content plus a per-process serial (a view shown twice on one
    page gets two ids)."""
    digest = hashlib.sha1(payload_json.encode()).hexdigest()[:12]
    return f"attention-view-{kind}-{digest}-{next(_SERIAL)}"


def _png_data_uri(rgb: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(rgb.astype(np.uint8)).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# --------------------------------------------------------------------------- bipartite panel (SVG)


def _panel_svg(
    labels: list[str],
    matrices: list[tuple[np.ndarray, str]],
    threshold: float,
    caption: str,
    extra_class: str = "",
) -> str:
    """An ``<svg>`` with queries left, keys right and one line per weight >= threshold."""
    g = _GEOM
    n = len(labels)
    height = g["top"] + g["row"] * n + 8
    parts = [
        f'<svg class="attention-svg {extra_class}" '
        f'width="{g["width"]}" height="{height}" viewBox="0 0 {g["width"]} {height}" '
        'font-family="sans-serif" font-size="12">',
        f'<text class="attention-caption" x="4" y="14" font-size="11">{html.escape(caption)}</text>',
        '<g class="attention-lines" stroke-width="2">',
    ]
    for matrix, color in matrices:
        parts.append(f'<g stroke="{color}">')
        rows, cols = np.nonzero(matrix >= max(threshold, 0.5 / SCALE))
        for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
            y1, y2 = g["top"] + g["row"] * i, g["top"] + g["row"] * j
            parts.append(
                f'<line x1="{g["x1"]}" y1="{y1}" x2="{g["x2"]}" y2="{y2}" '
                f'stroke-opacity="{matrix[i, j]:.3f}"/>'
            )
        parts.append("</g>")
    parts.append("</g>")
    for side, x, anchor in (("q", g["x1"] - 6, "end"), ("k", g["x2"] + 6, "start")):
        for i, label in enumerate(labels):
            y = g["top"] + g["row"] * i + 4
            parts.append(
                f'<text class="attention-token" data-side="{side}" data-index="{i}" x="{x}" '
                f'y="{y}" text-anchor="{anchor}">{html.escape(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _asset(name: str) -> str:
    """The text of one of the views' own files in ``attention_study/static`` (shipped as package data)."""
    return (resources.files("attention_study") / "static" / name).read_text(encoding="utf-8")


# Our own style and script (no dependencies): the script finds its view, reads the JSON, adds the
# controls and redraws. Kept as real files (static/attention_views.css, .js) so they can be read and
# linted as what they are; each view inlines them, so a page or notebook needs nothing else.
_CSS = "<style>" + _asset("attention_views.css") + "</style>"
_SCRIPT = "<script>" + _asset("attention_views.js") + "</script>"


def _assemble(kind: str, classes: str, body: str, payload: dict) -> AttentionView:
    data = _json_for_script(payload)
    view_id = _view_id(kind, data + body)
    script = _SCRIPT.replace("__VIEW_ID__", view_id)
    page = (
        f'<div class="attention-view {classes}" id="{view_id}" data-kind="{kind}">{_CSS}'
        f'{body}<script type="application/json" class="attention-data">{data}</script>'
        f"{script}</div>"
    )
    return AttentionView(page, kind)


def _payload(kind: str, array: np.ndarray, labels: list[str], threshold: float) -> dict:
    n_layers, n_heads, n_tokens, _ = array.shape
    return {
        "kind": kind,
        "tokens": labels,
        "n": n_tokens,
        "layers": n_layers,
        "heads_total": n_heads,
        "scale": SCALE,
        "min": max(1, round(threshold * SCALE)),
        "colors": list(HEAD_COLORS),
        "geom": _GEOM,
        "att": [[_milli(array[l, h].ravel()) for h in range(n_heads)] for l in range(n_layers)],
    }


# --------------------------------------------------------------------------- the views


def head_view(
    trace: Any, layer: int = 0, heads: list[int] | None = None, threshold: float = 0.02
) -> AttentionView:
    """bertviz-style head view: queries left, keys right, one colour per head.

    Args:
        trace: a text trace (``attentions`` ``[layer, head, query, key]``, ``tokens``).
        layer: the layer drawn first (the script lets the reader change it).
        heads: heads drawn first (default: all).
        threshold: lines are drawn for weights ``>= threshold`` (stated in the caption).
    """
    threshold = check_threshold(threshold)
    array = _attentions(trace)
    n_layers, n_heads = array.shape[:2]
    layer = _check_index("layer", layer, n_layers)
    chosen = list(range(n_heads)) if heads is None else [int(h) for h in heads]
    for head in chosen:
        _check_index("head", head, n_heads)
    labels = [_label(t) for t in trace.tokens]
    caption = (
        f"layer {layer}, heads {' '.join(map(str, chosen))}; lines for weights ≥ {threshold:g}"
    )
    matrices = [(array[layer, h], HEAD_COLORS[h % len(HEAD_COLORS)]) for h in chosen]
    body = _panel_svg(labels, matrices, threshold, caption)
    payload = _payload("head", array, labels, threshold)
    payload.update(layer=layer, heads=chosen)
    return _assemble("head", "attention-head-view", body, payload)


def _sprite(array: np.ndarray, gap: int = 1) -> np.ndarray:
    """All heads as one RGB picture: layers down, heads across, each a [T, T] viridis tile."""
    n_layers, n_heads, n_tokens, _ = array.shape
    step = n_tokens + gap
    canvas = np.full((n_layers * step - gap, n_heads * step - gap, 3), 255, dtype=np.uint8)
    cmap = colormaps["viridis"]
    for l in range(n_layers):
        for h in range(n_heads):
            tile = (cmap(np.clip(array[l, h], 0.0, 1.0))[..., :3] * 255).round()
            canvas[l * step : l * step + n_tokens, h * step : h * step + n_tokens] = tile
    return canvas


def model_view(trace: Any, threshold: float = 0.02, cell: int = 44) -> AttentionView:
    """Every head of every layer as a grid of attention-matrix tiles, plus a detail panel.

    The grid is one embedded PNG (layers down, heads across; each tile is a head's
    ``[query, key]`` matrix, viridis, 0..1). Clicking a tile draws that head's token→token lines in
    the panel below (lines for weights ``>= threshold``); the panel first shows layer 0, head 0.
    """
    threshold = check_threshold(threshold)
    if cell < 8:
        raise ValueError(f"cell must be at least 8 pixels; got {cell}")
    array = _attentions(trace)
    n_layers, n_heads, n_tokens, _ = array.shape
    labels = [_label(t) for t in trace.tokens]
    pad_left, pad_top, gap = 28, 18, 1
    scale = cell / n_tokens
    width = pad_left + n_heads * (cell + gap * scale)
    height = pad_top + n_layers * (cell + gap * scale)
    pitch = cell + gap * scale
    grid = [
        f'<svg class="attention-svg attention-grid" '
        f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.1f} {height:.1f}" '
        'font-family="sans-serif" font-size="10">',
        f'<image x="{pad_left}" y="{pad_top}" width="{n_heads * pitch - gap * scale:.2f}" '
        f'height="{n_layers * pitch - gap * scale:.2f}" preserveAspectRatio="none" '
        f'style="image-rendering:pixelated" href="{_png_data_uri(_sprite(array))}"/>',
    ]
    for h in range(n_heads):
        x = pad_left + h * pitch + cell / 2
        grid.append(f'<text x="{x:.1f}" y="12" text-anchor="middle">h{h}</text>')
    for l in range(n_layers):
        y = pad_top + l * pitch + cell / 2 + 3
        grid.append(f'<text x="{pad_left - 4}" y="{y:.1f}" text-anchor="end">L{l}</text>')
        for h in range(n_heads):
            grid.append(
                f'<rect class="attention-cell" data-layer="{l}" data-head="{h}" '
                f'x="{pad_left + h * pitch:.1f}" y="{pad_top + l * pitch:.1f}" width="{cell}" '
                f'height="{cell}" fill="transparent"><title>layer {l}, head {h}</title></rect>'
            )
    grid.append(
        f'<rect class="attention-mark" x="{pad_left}" y="{pad_top}" width="{cell}" '
        f'height="{cell}" fill="none" stroke="#d62728" stroke-width="2" pointer-events="none"/>'
    )
    grid.append("</svg>")
    caption = f"layer 0, head 0; lines for weights ≥ {threshold:g}"
    detail = _panel_svg(labels, [(array[0, 0], HEAD_COLORS[0])], threshold, caption, "attention-detail")
    payload = _payload("model", array, labels, threshold)
    return _assemble("model", "attention-model-view", "".join(grid) + "<br>" + detail, payload)


def _grey_image(image: Any) -> np.ndarray:
    array = finite_float64(image, "image")
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        array = array[..., :3].mean(axis=-1)
    if array.ndim != 2 or min(array.shape) < 1:
        raise ValueError(f"image must be [height, width] or [height, width, 3]; got {array.shape}")
    low, high = float(array.min()), float(array.max())
    grey = (array - low) / (high - low) if high > low else np.zeros_like(array)
    return np.repeat((grey * 255).round()[..., None], 3, axis=-1)


def patch_view(
    trace: Any,
    image: Any,
    layer: int | None = None,
    all_queries: bool | None = None,
    size: int = 240,
) -> AttentionView:
    """ViT patch-grid view: the image with each patch shaded by the attention it receives.

    Args:
        trace: a ViT trace: token 0 is ``[CLS]``, tokens ``1..side²`` the patches, row-major.
        image: the picture that was traced, ``[height, width]`` (or ``[height, width, 3]``).
        layer: layer shown first (default: the last). The script switches layer, head (or the
            mean of heads, or attention rollout) and the query (``[CLS]`` or a clicked patch).
        all_queries: embed every query row (lets the reader click patches); default: only when
            the trace has at most 80 tokens, else only ``[CLS]`` (keeps big ViTs' pages small).
        size: drawn width and height in pixels.

    The first picture is ``[CLS]`` → patches, mean of heads; shading is proportional to the weight,
    normalised to the largest patch weight (stated in the caption).
    """
    from .rollout import rollout

    array = _attentions(trace)
    n_layers, _, n_tokens, _ = array.shape
    side = math.isqrt(n_tokens - 1)
    if side * side != n_tokens - 1:
        raise ValueError(
            f"a ViT trace has [CLS] plus a square number of patches; got {n_tokens} tokens"
        )
    layer = n_layers - 1 if layer is None else _check_index("layer", layer, n_layers)
    picture = _grey_image(image)
    if all_queries is None:
        all_queries = n_tokens <= 80
    rows = list(range(n_tokens)) if all_queries else [0]
    rolled = rollout(array)
    mean = array[layer].mean(axis=0)[0]
    top = max(float(mean[1:].max()), 1e-12)
    pitch = size / side
    parts = [
        f'<svg class="attention-svg attention-patch-grid" '
        f'width="{size + 8}" height="{size + 42}" viewBox="0 0 {size + 8} {size + 42}" '
        'font-family="sans-serif" font-size="11">',
        f'<text class="attention-caption" x="4" y="14">[CLS] → patches, layer {layer}, mean of '
        "heads</text>",
        f'<text class="attention-caption2" x="4" y="28">to CLS {mean[0]:.3f}; shading ∝ weight '
        f"(max {top:.3f})</text>",
        f'<image x="4" y="36" width="{size}" height="{size}" preserveAspectRatio="none" '
        f'style="image-rendering:pixelated" href="{_png_data_uri(picture)}"/>',
    ]
    for p in range(side * side):
        r, c = divmod(p, side)
        opacity = 0.85 * mean[p + 1] / top
        parts.append(
            f'<rect class="attention-patch" data-index="{p + 1}" x="{4 + c * pitch:.2f}" '
            f'y="{36 + r * pitch:.2f}" width="{pitch:.2f}" height="{pitch:.2f}" fill="#ff3300" '
            f'fill-opacity="{opacity:.3f}" stroke="none" stroke-width="2">'
            f"<title>{html.escape(_label(trace.tokens[p + 1]))}</title></rect>"
        )
    parts.append(
        f'<rect class="attention-mark" x="3" y="35" width="{size + 2}" height="{size + 2}" '
        'fill="none" stroke="#00bfff" stroke-width="2" pointer-events="none"/>'
    )
    parts.append("</svg>")
    payload = _payload("patch", array[:, :, rows, :], [_label(t) for t in trace.tokens], 0.0)
    payload.update(
        n=n_tokens,
        layer=layer,
        rows=rows,
        rollout=[_milli(rolled[l][rows].ravel()) for l in range(n_layers)],
    )
    return _assemble("patch", "attention-patch-view", "".join(parts), payload)


def to_bertviz(trace: Any) -> tuple[tuple[Any, ...], list[str]]:
    """``(attention, tokens)`` in bertviz's format: a tuple of ``[1, head, query, key]`` tensors.

    Use as ``bertviz.head_view(*to_bertviz(t))`` in a notebook that can reach bertviz's scripts.
    """
    import torch

    array = _attentions(trace)
    layers = tuple(torch.from_numpy(array[l][None].astype(np.float32)) for l in range(len(array)))
    return layers, list(trace.tokens)
