"""A frozen copy of the book's own model view as it was before bertviz's replaced it (issue 16).

Kept only as the baseline of ``bench_bertviz.py`` (page weight and time to first draw); the library no
longer has it. Trimmed to what the model view used: the PNG grid of every head's matrix, the detail
panel of one head drawn as SVG, the JSON of weights in thousandths and the script of
``attention_views.js`` (copied beside this file, unchanged).
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from PIL import Image

HERE = Path(__file__).resolve().parent
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
          "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a")
SCALE = 1000
GEOM = {"top": 30, "row": 18, "x1": 128, "x2": 268, "width": 396}


def _milli(array: np.ndarray) -> list:
    return np.rint(np.clip(array, 0.0, 1.0) * SCALE).astype(np.int64).tolist()


def _png(rgb: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(rgb.astype(np.uint8)).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _panel(labels: list[str], matrix: np.ndarray, threshold: float) -> str:
    n, g = len(labels), GEOM
    height = g["top"] + g["row"] * n + 8
    parts = [f'<svg class="attention-svg attention-detail" width="{g["width"]}" height="{height}" '
             'font-family="sans-serif" font-size="12">',
             '<text class="attention-caption" x="4" y="14" font-size="11">layer 0, head 0</text>',
             f'<g class="attention-lines" stroke-width="2"><g stroke="{COLORS[0]}">']
    rows, cols = np.nonzero(matrix >= threshold)
    for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
        parts.append(f'<line x1="{g["x1"]}" y1="{g["top"] + g["row"] * i}" x2="{g["x2"]}" '
                     f'y2="{g["top"] + g["row"] * j}" stroke-opacity="{matrix[i, j]:.3f}"/>')
    parts.append("</g></g>")
    for side, x, anchor in (("q", g["x1"] - 6, "end"), ("k", g["x2"] + 6, "start")):
        for i, label in enumerate(labels):
            parts.append(f'<text class="attention-token" data-side="{side}" data-index="{i}" x="{x}" '
                         f'y="{g["top"] + g["row"] * i + 4}" text-anchor="{anchor}">{html.escape(label)}</text>')
    return "".join(parts) + "</svg>"


def old_model_view(attentions: np.ndarray, tokens: list[str], threshold: float = 0.02, cell: int = 44) -> str:
    """The old model view's HTML fragment for ``attentions`` ``[layer, head, query, key]``."""
    n_layers, n_heads, n_tokens, _ = attentions.shape
    labels = [t.replace("Ġ", " ").strip() or t for t in tokens]
    step = n_tokens + 1
    canvas = np.full((n_layers * step - 1, n_heads * step - 1, 3), 255, dtype=np.uint8)
    cmap = colormaps["viridis"]
    for l in range(n_layers):
        for h in range(n_heads):
            tile = (cmap(np.clip(attentions[l, h], 0, 1))[..., :3] * 255).round()
            canvas[l * step: l * step + n_tokens, h * step: h * step + n_tokens] = tile
    scale = cell / n_tokens
    pitch = cell + scale
    width, height = 28 + n_heads * pitch, 18 + n_layers * pitch
    grid = [f'<svg class="attention-svg attention-grid" width="{width:.0f}" height="{height:.0f}" '
            'font-family="sans-serif" font-size="10">',
            f'<image x="28" y="18" width="{n_heads * pitch - scale:.2f}" height="{n_layers * pitch - scale:.2f}" '
            f'preserveAspectRatio="none" style="image-rendering:pixelated" href="{_png(canvas)}"/>']
    for l in range(n_layers):
        for h in range(n_heads):
            grid.append(f'<rect class="attention-cell" data-layer="{l}" data-head="{h}" x="{28 + h * pitch:.1f}" '
                        f'y="{18 + l * pitch:.1f}" width="{cell}" height="{cell}" fill="transparent"/>')
    grid.append(f'<rect class="attention-mark" x="28" y="18" width="{cell}" height="{cell}" fill="none" '
                'stroke="#d62728" stroke-width="2" pointer-events="none"/></svg>')
    payload = {
        "kind": "model", "tokens": labels, "n": n_tokens, "layers": n_layers, "heads_total": n_heads,
        "scale": SCALE, "min": max(1, round(threshold * SCALE)), "colors": list(COLORS), "geom": GEOM,
        "att": [[_milli(attentions[l, h].ravel()) for h in range(n_heads)] for l in range(n_layers)],
    }
    data = json.dumps(payload, separators=(",", ":")).replace("<", "\\u003c").replace(">", "\\u003e")
    script = (HERE / "attention_views.js").read_text(encoding="utf-8").replace("__VIEW_ID__", "old-model-view")
    css = (HERE / "attention_views.css").read_text(encoding="utf-8")
    return (f'<div class="attention-view attention-model-view" id="old-model-view" data-kind="model">'
            f"<style>{css}</style>{''.join(grid)}<br>{_panel(labels, attentions[0, 0], threshold)}"
            f'<script type="application/json" class="attention-data">{data}</script><script>{script}</script></div>')
