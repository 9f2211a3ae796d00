"""Attention views for notebooks and the book's website: bertviz's own, working offline, and a ViT view.

* :func:`head_view` and :func:`model_view` are bertviz's ``head_view`` and ``model_view`` (bertviz
  1.4.1, called with ``html_action="return"``), fed from a :class:`~attention_study.tracing.Trace` of
  any text model (encoder or causal).
* :func:`neuron_view` is bertviz's neuron view (one head's queries, keys, their elementwise product,
  ``q·k`` and the softmax). bertviz computes its data with its own forked model classes, so here the
  view's template (``neuron_view.js`` of the installed bertviz) is filled with the trace's queries and
  keys instead; its JavaScript is bertviz's, unchanged apart from where it reads its parameters.
* :func:`patch_view` is the book's own ViT patch-grid view (bertviz has none): an inline SVG drawn in
  Python and a small script of ours (``static/attention_views.js`` / ``.css``).

**Offline.** bertviz's pages load require.js from a CDN and tell require.js to fetch d3 5.7.0 and
jQuery 2.0.0 from another, so without a network they stay blank. Every bertviz view made here is
bertviz's HTML with three changes: the ``<script src=…require.js>`` tag is removed; the
``require.config`` block that names the CDN is removed, because the modules ``d3`` and ``jquery`` are
registered beforehand (``static/bertviz_modules.js``) from copies installed by npm (``requirejs``
2.3.6, ``d3`` 5.7.0, ``jquery`` 2.2.4, pinned in ``site/package.json``); and the parameters are
re-encoded so that no token text can end the script element. In a notebook the scripts are inlined
in the first view a kernel displays (once per notebook, not once per view; call
:func:`notebook_scripts` to show them again after reloading a page). The website replaces that inline
block with the copies it serves from ``_static/bertviz`` (``site/study_site.py``).

Token text is shown as text everywhere: bertviz sets it with d3's ``.text()``; in the JSON of the
parameters ``<``, ``>`` and ``&`` are written as ``\\u003c``-style escapes; our SVG uses
``html.escape``. The weights a bertviz view embeds are rounded to 3 decimals, queries and keys to 3
decimals as well (keeps pages small; the view's softmax of the rounded ``q·k/√d`` matches the traced
attention to about 1e-2).
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import json
import math
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .validation import finite_float64

__all__ = [
    "BERTVIZ_SCRIPTS",
    "AttentionView",
    "bertviz_script_files",
    "head_view",
    "model_view",
    "neuron_view",
    "notebook_scripts",
    "patch_view",
    "to_bertviz",
]

SCALE = 1000  # the patch view stores weights as round(weight * SCALE): 3 decimals
DECIMALS = 3  # bertviz views: weights, queries and keys rounded to this many decimals
LABEL_CHARS = 16

#: The scripts bertviz's views need, in the order a page loads them: file name served by the site ->
#: (npm package, version pinned in site/package.json, path inside the package).
BERTVIZ_SCRIPTS = {
    "d3.min.js": ("d3", "5.7.0", "dist/d3.min.js"),
    "jquery.min.js": ("jquery", "2.2.4", "dist/jquery.min.js"),
    "require.js": ("requirejs", "2.3.6", "require.js"),
}
#: Our script that registers d3 and jQuery as require.js modules (after the three above).
MODULES_SCRIPT = "bertviz_modules.js"
SCRIPTS_BEGIN = "<!-- attention-study:bertviz-scripts -->"
SCRIPTS_END = "<!-- /attention-study:bertviz-scripts -->"
_CDN_REQUIRE_TAG = '<script src="https://cdnjs.cloudflare.com/ajax/libs/require.js/2.3.6/require.min.js"></script>'
_SCRIPT_OPEN = '\n<script type="text/javascript">\n'
_SCRIPT_CLOSE = "\n</script>\n"
_REQUIRE_CONFIG = re.compile(r"require\.config\(\{.*?\}\);", re.DOTALL)


@dataclass(frozen=True)
class AttentionView:
    """A rendered view: ``html`` is a fragment for a notebook output or a web page.

    A bertviz view (``needs_scripts``) also needs require.js, d3 and jQuery on the page: a notebook
    gets them inline with the first such view it displays, :meth:`standalone` always inlines them.
    """

    html: str = field(repr=False)
    kind: str = "head"
    needs_scripts: bool = False

    def __repr__(self) -> str:
        # No byte count: it moves with the rounding of weights, and this is a notebook's text output.
        return f"AttentionView(kind={self.kind!r})"

    def _repr_html_(self) -> str:
        if self.needs_scripts and not _SENT["scripts"]:
            _SENT["scripts"] = True
            return notebook_scripts() + self.html
        return self.html

    @property
    def nbytes(self) -> int:
        """Size of the fragment in bytes (UTF-8), as it weighs in a page (scripts not counted)."""
        return len(self.html.encode("utf-8"))

    def standalone(self, title: str = "attention view") -> str:
        """A complete HTML document holding only this view (and, for bertviz, its scripts inline)."""
        scripts = notebook_scripts() if self.needs_scripts else ""
        return (
            "<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title></head><body>{scripts}{self.html}</body></html>"
        )

    def save(self, path: str | Path) -> Path:
        """Write :meth:`standalone` to ``path`` and return it."""
        target = Path(path)
        target.write_text(self.standalone(), encoding="utf-8")
        return target


_SENT = {"scripts": False}


# --------------------------------------------------------------------------- the scripts, offline


def _node_modules() -> Path:
    """Where npm installed the site's packages: ``$STUDY_NODE_MODULES`` or ``site/node_modules`` of the
    repository this library is installed from (editable install)."""
    configured = os.environ.get("STUDY_NODE_MODULES")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "site" / "node_modules"


def bertviz_script_files() -> dict[str, Path]:
    """The npm copies of the scripts bertviz's views need, by the name the site serves them under,
    in loading order (d3, jQuery, require.js), followed by our ``bertviz_modules.js``.

    Raises ``FileNotFoundError`` saying how to install them when they are missing, and ``RuntimeError``
    when an installed package is not the pinned version.
    """
    root = _node_modules()
    found: dict[str, Path] = {}
    for name, (package, version, inner) in BERTVIZ_SCRIPTS.items():
        path = root / package / inner
        manifest = root / package / "package.json"
        if not path.is_file() or not manifest.is_file():
            raise FileNotFoundError(
                f"{package} {version} is not installed at {root / package} (bertviz's views need it "
                "offline). Install the site's pinned npm packages with `make site-assets` "
                "(npm ci --prefix site), or point STUDY_NODE_MODULES at a node_modules folder."
            )
        installed = json.loads(manifest.read_text(encoding="utf-8")).get("version")
        if installed != version:
            raise RuntimeError(
                f"{package} {installed} is installed at {root / package}; bertviz's views are checked "
                f"with {version} (site/package.json): run `make site-assets`"
            )
        found[name] = path
    found[MODULES_SCRIPT] = Path(str(resources.files("attention_study") / "static" / MODULES_SCRIPT))
    return found


def _no_amd(source: str) -> str:
    """``source`` run with ``define``, ``exports`` and ``module`` hidden, so that a UMD bundle (d3,
    jQuery) sets its global even where an AMD loader is already on the page (classic Notebook)."""
    return f"(function (define, exports, module) {{\n{source}\n}}).call(window);"


def _script_safe(source: str, name: str) -> str:
    if re.search(r"</script|<!--", source, re.IGNORECASE):
        raise RuntimeError(f"{name} contains '</script' or '<!--' and cannot be inlined in a page")
    return source


def notebook_scripts() -> str:
    """HTML that loads, inline, what bertviz's views need: require.js, d3 and jQuery (the pinned npm
    copies) and our ``bertviz_modules.js``; safe to show more than once on a page. The book's site
    replaces the block (between ``SCRIPTS_BEGIN`` and ``SCRIPTS_END``) with its own ``_static`` copies.
    """
    files = bertviz_script_files()
    read = {name: _script_safe(path.read_text(encoding="utf-8"), name) for name, path in files.items()}
    parts = [
        # require.js first: it leaves an AMD loader already on the page (classic Notebook) alone.
        read["require.js"],
        _no_amd(read["d3.min.js"]),
        _no_amd(read["jquery.min.js"]),
        read[MODULES_SCRIPT],
    ]
    return SCRIPTS_BEGIN + "".join(f"<script>\n{p}\n</script>" for p in parts) + SCRIPTS_END


# --------------------------------------------------------------------------- input checks


def _attentions(trace: Any) -> np.ndarray:
    if not hasattr(trace, "attentions") or not hasattr(trace, "tokens"):
        raise TypeError(f"expected a Trace (attentions and tokens), got {type(trace).__name__}")
    array = finite_float64(trace.attentions, "attentions")
    if array.ndim != 4 or array.shape[2] != array.shape[3]:
        raise ValueError(f"attentions must be [layer, head, query, key]; got {array.shape}")
    if array.shape[-1] < 2:
        raise ValueError(f"attention needs at least 2 tokens to show; this trace has {array.shape[-1]}")
    if len(trace.tokens) != array.shape[-1]:
        raise ValueError(f"{len(trace.tokens)} tokens for {array.shape[-1]} attention positions")
    return array


def _check_index(name: str, value: Any, count: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 0 <= value < count:
        raise IndexError(f"{name} {value!r} is out of range: valid {name}s are 0..{count - 1}")
    return int(value)


def _shown(token: str) -> str:
    """A token as the views show it: GPT-2's ``Ġ`` (space) and ``Ċ`` (newline) made visible."""
    return token.replace("Ġ", " ").replace("Ċ", "\\n").strip() or token


def _label(token: str) -> str:
    text = token.replace("Ġ", " ").replace("Ċ", "\\n").strip() or token
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def _json_for_script(payload: Any) -> str:
    """JSON that is safe inside ``<script>``: no ``<``, ``>`` or ``&`` characters survive."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _rounded(array: np.ndarray) -> list:
    return np.round(array, DECIMALS).tolist()


# --------------------------------------------------------------------------- bertviz's views


def to_bertviz(trace: Any) -> tuple[tuple[Any, ...], list[str]]:
    """``(attention, tokens)`` in bertviz's format: a tuple of ``[1, head, query, key]`` tensors
    (float64, rounded to 3 decimals) and the tokens as the views show them (``Ġ`` as a space).

    ``bertviz.head_view(*to_bertviz(t))`` works too, but loads its scripts from a CDN;
    :func:`head_view` here is the same view, offline.
    """
    import torch

    array = np.round(_attentions(trace), DECIMALS)
    layers = tuple(torch.from_numpy(np.ascontiguousarray(array[l][None])) for l in range(len(array)))
    return layers, [_shown(str(t)) for t in trace.tokens]


def _template(name: str) -> str:
    import bertviz

    return (Path(bertviz.__file__).parent / name).read_text(encoding="utf-8")


def _offline_js(js: str, template_name: str) -> str:
    """bertviz's script with its ``require.config`` (the CDN paths) removed; fails loudly when the
    installed bertviz does not look like the version this was written for."""
    match = _REQUIRE_CONFIG.search(js)
    if match is None or "cdnjs" not in match.group(0):
        raise RuntimeError(
            f"bertviz's {template_name} has no require.config with CDN paths: "
            "is bertviz 1.4.1 installed (requirements.txt)?"
        )
    header = js[: match.start()].strip()
    if not (header.startswith("/**") and header.endswith("*/")):
        raise RuntimeError(f"bertviz's {template_name} does not start with its header comment")
    # The header comment (a change log with a web address) becomes a short attribution, and the
    # require.config naming the CDN a note: the page then names no outside address at all.
    note = (
        f"/* bertviz 1.4.1 {template_name} (Jesse Vig, Apache-2.0; based on tensor2tensor's "
        "attention.js). d3 and jquery: registered by attention_study's bertviz_modules.js. */"
    )
    return note + js[match.end() :]


def _from_bertviz(returned: Any, template_name: str, kind: str) -> AttentionView:
    """Turn the HTML bertviz returned (``html_action="return"``) into an offline view."""
    page = returned.data
    if not page.startswith(_CDN_REQUIRE_TAG) or _SCRIPT_OPEN not in page:
        raise RuntimeError("bertviz returned HTML of an unexpected shape: is bertviz 1.4.1 installed?")
    markup, script = page[len(_CDN_REQUIRE_TAG) :].split(_SCRIPT_OPEN, 1)
    # bertviz replaces every "PYTHON_PARAMS" of its template, the one in a comment too, so its pages
    # carry the parameters twice; they are cut back to the template with the parameters once.
    pieces = _template(template_name).split("PYTHON_PARAMS")
    script = script.removesuffix(_SCRIPT_CLOSE)
    size, extra = divmod(len(script) - sum(map(len, pieces)), len(pieces) - 1)
    encoded = script[len(pieces[0]) : len(pieces[0]) + size]
    if len(pieces) < 2 or extra or script != encoded.join(pieces):
        raise RuntimeError(f"bertviz's script differs from its template {template_name}")
    params = json.loads(encoded)
    js = _offline_js(pieces[0], template_name) + _json_for_script(params)
    js += "PYTHON_PARAMS".join(pieces[1:])
    view_id = params["root_div_id"]
    return AttentionView(
        f'<div class="bertviz-view bertviz-{kind}-view" data-bertviz="{view_id}">{markup.strip()}'
        f'<script type="text/javascript">\n{js}\n</script></div>',
        kind,
        needs_scripts=True,
    )


def _heads_list(heads: Any, n_heads: int) -> list[int] | None:
    if heads is None:
        return None
    chosen = [_check_index("head", h, n_heads) for h in heads]
    if not chosen:
        raise ValueError(f"heads must name at least one head (0..{n_heads - 1}); got an empty list")
    return chosen


def head_view(trace: Any, layer: int = 0, heads: list[int] | None = None) -> AttentionView:
    """bertviz's head view of a text trace: queries left, keys right, one colour per head.

    Args:
        trace: a text trace (``attentions`` ``[layer, head, query, key]``, ``tokens``).
        layer: the layer shown first (the reader can change it).
        heads: the heads shown first (default: all; clicking a head's square toggles it).
    """
    import bertviz

    attention, tokens = to_bertviz(trace)
    n_layers, n_heads = len(attention), int(attention[0].shape[1])
    layer = _check_index("layer", layer, n_layers)
    returned = bertviz.head_view(
        attention, tokens, layer=layer, heads=_heads_list(heads, n_heads), prettify_tokens=False, html_action="return"
    )
    return _from_bertviz(returned, "head_view.js", "head")


def model_view(trace: Any) -> AttentionView:
    """bertviz's model view of a text trace: every head of every layer as a thumbnail; clicking one
    opens its token-to-token detail."""
    import bertviz

    attention, tokens = to_bertviz(trace)
    returned = bertviz.model_view(attention, tokens, prettify_tokens=False, html_action="return")
    return _from_bertviz(returned, "model_view.js", "model")


def _vectors(trace: Any, name: str, shape: tuple[int, ...]) -> np.ndarray:
    if not hasattr(trace, name):
        raise TypeError(f"the neuron view needs the trace's {name} ([layer, head, token, d_head])")
    array = finite_float64(getattr(trace, name), name)
    if array.ndim != 4 or array.shape[:3] != shape:
        raise ValueError(
            f"{name} must be [layer, head, token, d_head] with [layer, head, token] = "
            f"{list(shape)}; got {list(array.shape)}"
        )
    return array


_NEURON_PARAMS = "const params = window.bertviz_params"


def neuron_view(trace: Any, layer: int = 0, head: int = 0) -> AttentionView:
    """bertviz's neuron view of one head: the queries, the keys, ``q × k`` elementwise, ``q·k`` and
    the softmax, for the token the reader points at; layer and head can be changed in the view.

    Fed from the trace's ``queries`` and ``keys`` (with their biases, as the model computes them),
    rounded to 3 decimals. A causal trace (no weight above the diagonal) is shown as bertviz shows
    GPT-2: each token sees itself and the tokens before it.
    """
    import uuid

    array = _attentions(trace)
    n_layers, n_heads = array.shape[:2]
    layer = _check_index("layer", layer, n_layers)
    head = _check_index("head", head, n_heads)
    queries = _vectors(trace, "queries", array.shape[:3])
    keys = _vectors(trace, "keys", array.shape[:3])
    if keys.shape[-1] != queries.shape[-1]:
        raise ValueError(f"queries and keys differ in d_head: {queries.shape[-1]} vs {keys.shape[-1]}")
    causal = bool(np.all(np.triu(array, k=1) == 0.0))
    tokens = [_shown(str(t)) for t in trace.tokens]
    view_id = f"bertviz-{uuid.uuid4().hex}"  # bertviz's own kind of id (sanitized by nbval)
    params = {
        "attention": {
            "all": {
                "attn": _rounded(array),
                "queries": _rounded(queries),
                "keys": _rounded(keys),
                "left_text": tokens,
                "right_text": tokens,
            }
        },
        "default_filter": "all",
        "root_div_id": view_id,
        "bidirectional": not causal,
        "display_mode": "light",
        "layer": layer,
        "head": head,
    }
    template = _template("neuron_view.js")
    if template.count(_NEURON_PARAMS) != 1:
        raise RuntimeError(
            "bertviz's neuron_view.js no longer reads window.bertviz_params: is bertviz 1.4.1 installed?"
        )
    # The parameters go into the view's own script (bertviz puts them in a global, which a second
    # neuron view on the page would overwrite before the first has drawn).
    js = _offline_js(template, "neuron_view.js").replace(
        _NEURON_PARAMS, "const params = " + _json_for_script(params) + ";"
    )
    markup = (
        f'<div id="{view_id}" style="padding:8px;font-family:\'Helvetica Neue\', Helvetica, Arial, '
        'sans-serif;"><span style="user-select:none">'
        '<span class="dropdown-label">Layer: </span><select id="layer"></select> '
        '<span class="dropdown-label">Head: </span><select id="att_head"></select>'
        "</span><div id='vis'></div></div>"
    )
    return AttentionView(
        f'<div class="bertviz-view bertviz-neuron-view" data-bertviz="{view_id}">{markup}'
        f'<script type="text/javascript">\n{js}\n</script></div>',
        "neuron",
        needs_scripts=True,
    )


# --------------------------------------------------------------------------- our ViT patch view


def _png_data_uri(rgb: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(rgb.astype(np.uint8)).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _milli(array: np.ndarray) -> list:
    return np.rint(np.clip(array, 0.0, 1.0) * SCALE).astype(np.int64).tolist()


def _asset(name: str) -> str:
    """The text of one of the views' own files in ``attention_study/static`` (shipped as package data)."""
    return (resources.files("attention_study") / "static" / name).read_text(encoding="utf-8")


# Our own style and script for the patch view (no dependencies), kept as real files
# (static/attention_views.css, .js) so they can be read and linted as what they are; each view inlines
# them, so a page or notebook needs nothing else.
_CSS = "<style>" + _asset("attention_views.css") + "</style>"
_SCRIPT = "<script>" + _asset("attention_views.js") + "</script>"
_SERIAL = itertools.count()


def _assemble(kind: str, classes: str, body: str, payload: dict) -> AttentionView:
    data = _json_for_script(payload)
    # Deterministic in a fresh kernel (nbval needs no sanitizer for it), distinct within a page.
    view_id = f"attention-view-{kind}-{next(_SERIAL)}"
    script = _SCRIPT.replace("__VIEW_ID__", view_id)
    page = (
        f'<div class="attention-view {classes}" id="{view_id}" data-kind="{kind}">{_CSS}'
        f'{body}<script type="application/json" class="attention-data">{data}</script>'
        f"{script}</div>"
    )
    return AttentionView(page, kind)


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
        raise ValueError(f"a ViT trace has [CLS] plus a square number of patches; got {n_tokens} tokens")
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
        f'<text class="attention-caption" x="4" y="14">[CLS] → patches, layer {layer}, mean of heads</text>',
        f'<text class="attention-caption2" x="4" y="28">to CLS {mean[0]:.3f}; shading ∝ weight (max {top:.3f})</text>',
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
    picked = array[:, :, rows, :]
    payload = {
        "kind": "patch",
        "tokens": [_label(t) for t in trace.tokens],
        "n": n_tokens,
        "layers": n_layers,
        "heads_total": int(array.shape[1]),
        "scale": SCALE,
        "att": [[_milli(picked[l, h].ravel()) for h in range(picked.shape[1])] for l in range(n_layers)],
        "layer": layer,
        "rows": rows,
        "rollout": [_milli(rolled[l][rows].ravel()) for l in range(n_layers)],
    }
    return _assemble("patch", "attention-patch-view", "".join(parts), payload)
