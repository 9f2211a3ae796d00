"""Head interventions: ablation and activation patching, a pre-hook on the output projection.

A head's output enters the rest of the model only through its context vectors
``c_i = Σ_j a_ij v_j`` (value bias included), which every supported family concatenates per head
into the input of the attention output projection: ``[batch, token, H * d_head]``, head ``h`` at
columns ``h * d_head : (h + 1) * d_head``. :mod:`attention_study.tracing` reads that input; the
context managers here rewrite those columns with a forward pre-hook on the same module
(:func:`attention_study.tracing.attention_modules`), so an intervention edits exactly what the
trace reports as ``contexts`` ``[layer, head, token, d_head]``:

* :func:`ablate_heads` with ``kind="zero"``: the chosen heads' context vectors become 0;
* :func:`ablate_heads` with ``kind="mean"``: they become a fixed mean context vector per head
  (``means`` ``[layer, head, d_head]``, e.g. from :func:`mean_head_outputs`);
* :func:`patch_heads`: they become the context vectors the same heads computed on another input of
  the same length (activation patching).

Heads are chosen as ``{layer: [head, ...]}`` (a single ``int`` for one head also works). Every
hook is removed when the ``with`` block ends, also when it ends with an exception. A :func:`trace`
run inside the block records the edited context vectors (it reads them after these hooks), while its
attention weights and values are those the model computed, so ``contexts == attentions @ values``
holds there only for the heads left alone.

Written here rather than taken from an interpretability library (TransformerLens, nnsight)
because the book needs nothing beyond these three edits, and they must act on the very tensors
:func:`~attention_study.tracing.trace` reports, through the same adapters.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, cast

import torch

from attention_study.models import LoadedModel
from attention_study.tracing import (
    BatchTrace,
    Trace,
    attention_modules,
    batches,
    check_layer_head,
    trace,
)
from attention_study.validation import corpus_text

#: The ablation kinds :func:`ablate_heads` accepts.
KINDS = ("zero", "mean")

#: ``{layer: heads}``: which heads to edit, per layer (``heads`` an ``int`` or an iterable of them).
HeadSpec = Mapping[int, int | Iterable[int]]

#: ``(layer, head, contexts [batch, token, d_head]) -> replacement`` (broadcastable to the same shape).
Replacement = Callable[[int, int, torch.Tensor], torch.Tensor]


def _as_index(value: Any, what: str) -> int:
    """``value`` as an ``int`` (numpy and torch integers too), else a ``TypeError`` naming ``what``."""
    if isinstance(value, bool):
        raise TypeError(f"{what} must be an int, got bool")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an int, got {type(value).__name__}") from None


def select_heads(heads: HeadSpec, n_layers: int, n_heads: int) -> dict[int, tuple[int, ...]]:
    """Validate ``{layer: heads}`` and return it as ``{layer: (head, ...)}`` (sorted, without
    repeats, layers with no head dropped).

    Raises ``ValueError`` (a :class:`~attention_study.tracing.LayerHeadRangeError`) naming the
    valid range ``0..n_layers - 1`` / ``0..n_heads - 1`` for an index out of range, and
    ``TypeError`` for anything that is not a mapping of integers.
    """
    if not isinstance(heads, Mapping):
        raise TypeError(f"heads must be a mapping {{layer: [head, ...]}}, got {type(heads).__name__}")
    selected: dict[int, set[int]] = {}
    for layer_key, chosen in heads.items():
        layer = _as_index(layer_key, "layer")
        check_layer_head(layer, None, n_layers, n_heads)
        items: list[Any]
        if isinstance(chosen, Iterable) and not isinstance(chosen, str | bytes):
            items = list(chosen)
        else:
            items = [chosen]
        for item in items:
            head = _as_index(item, "head")
            check_layer_head(layer, head, n_layers, n_heads)
            selected.setdefault(layer, set()).add(head)
    return {layer: tuple(sorted(chosen)) for layer, chosen in sorted(selected.items())}


def _d_head(loaded: LoadedModel) -> int:
    """Width of one head's context vector (d_model / H for the supported families)."""
    return int(loaded.model.config.hidden_size) // loaded.n_heads


def _edit_hook(layer: int, heads: tuple[int, ...], n_heads: int, replace: Replacement) -> Callable[..., Any]:
    """A forward pre-hook for one layer's output projection: rewrites the columns of ``heads`` in
    its input ``[batch, token, H * d_head]`` with ``replace`` (on a copy; the model's own tensor is
    left untouched)."""

    def hook(_module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        concatenated = args[0].clone()
        d_head = concatenated.shape[-1] // n_heads
        for head in heads:
            columns = slice(head * d_head, (head + 1) * d_head)
            concatenated[..., columns] = replace(layer, head, concatenated[..., columns])
        return (concatenated, *args[1:])

    return hook


@contextmanager
def replace_heads(loaded: LoadedModel, heads: HeadSpec, replace: Replacement) -> Iterator[dict[int, tuple[int, ...]]]:
    """The general intervention: inside the block, the context vectors ``[batch, token, d_head]`` of
    each chosen head are replaced by ``replace(layer, head, contexts)`` before the output
    projection. Yields the validated heads ``{layer: (head, ...)}``; removes its hooks on exit."""
    selected = select_heads(heads, loaded.n_layers, loaded.n_heads)
    modules = attention_modules(loaded)
    handles = []
    try:
        for layer, chosen in selected.items():
            hook = _edit_hook(layer, chosen, loaded.n_heads, replace)
            handles.append(modules[layer].output.register_forward_pre_hook(hook))
        yield selected
    finally:
        for handle in handles:
            handle.remove()


def _check_means(loaded: LoadedModel, means: Any) -> torch.Tensor:
    """``means`` as a finite float tensor ``[n_layers, n_heads, d_head]``, else a ``ValueError``."""
    if means is None:
        raise ValueError(
            "kind='mean' needs means [layer, head, d_head]: compute them with mean_head_outputs(loaded, texts)"
        )
    tensor = torch.as_tensor(means).detach().float()
    expected = (loaded.n_layers, loaded.n_heads, _d_head(loaded))
    if tuple(tensor.shape) != expected:
        raise ValueError(
            f"means has shape {tuple(tensor.shape)} but {loaded.name} needs [layer, head, d_head] = {expected}"
        )
    if not torch.isfinite(tensor).all():
        raise ValueError("means has non-finite values")
    return tensor


@contextmanager
def ablate_heads(
    loaded: LoadedModel, heads: HeadSpec, kind: str = "zero", means: Any = None
) -> Iterator[dict[int, tuple[int, ...]]]:
    """Ablate heads while the ``with`` block runs.

    ``kind="zero"`` sets each chosen head's context vectors (value bias included, as the model
    computes them) to 0 at every token, so the head adds only its share of nothing to the output
    projection (whose bias stays). ``kind="mean"`` replaces them by ``means[layer, head]``
    (``means``: ``[layer, head, d_head]``, in the units of the context vectors, e.g. from
    :func:`mean_head_outputs`) at every token.

    Errors: an unknown ``kind`` (``ValueError`` listing :data:`KINDS`), a layer or head out of range
    (``ValueError`` naming the valid range), ``means`` missing, misshapen or given to ``kind="zero"``.
    Yields the validated heads ``{layer: (head, ...)}``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown ablation kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    if kind == "zero":
        if means is not None:
            raise ValueError("means are only used by kind='mean'; kind='zero' sets the heads to 0")

        def replace(layer: int, head: int, contexts: torch.Tensor) -> torch.Tensor:
            return torch.zeros_like(contexts)
    else:
        table = _check_means(loaded, means)

        def replace(layer: int, head: int, contexts: torch.Tensor) -> torch.Tensor:
            return table[layer, head].to(device=contexts.device, dtype=contexts.dtype).expand_as(contexts)

    with replace_heads(loaded, heads, replace) as selected:
        yield selected


def _source_contexts(loaded: LoadedModel, source: Any) -> torch.Tensor:
    """Context vectors ``[layer, head, token, d_head]`` of ``source`` (a :class:`Trace` of this
    model, or one input that :func:`trace` accepts)."""
    if isinstance(source, BatchTrace):
        raise TypeError("patch from one input: give one Trace of the batch (source=batch[i])")
    if not isinstance(source, Trace):
        source = trace(loaded, source)
        if isinstance(source, BatchTrace):
            raise TypeError("patch from one input, not a batch: give one text, image or sequence of token ids")
    if source.model_name != loaded.name:
        raise ValueError(f"source was traced with {source.model_name!r}, not with {loaded.name!r}")
    return source.contexts


@contextmanager
def patch_heads(loaded: LoadedModel, heads: HeadSpec, source: Any) -> Iterator[dict[int, tuple[int, ...]]]:
    """Activation patching while the ``with`` block runs: each chosen head's context vectors
    ``[token, d_head]`` are replaced by the ones the same head computed on ``source``.

    ``source`` is a :class:`~attention_study.tracing.Trace` of ``loaded`` or one input
    :func:`trace` accepts (traced once, before any hook is set). The patched input must have as
    many tokens as the source (every item of a batch run receives the same source vectors); a
    forward pass on another length raises a ``ValueError`` naming both lengths. Layer or head out
    of range: ``ValueError`` naming the valid range. Yields the validated heads.
    """
    contexts = _source_contexts(loaded, source)
    n_source = int(contexts.shape[2])

    def replace(layer: int, head: int, current: torch.Tensor) -> torch.Tensor:
        n_tokens = int(current.shape[-2])
        if n_tokens != n_source:
            raise ValueError(
                f"the source has {n_source} tokens but the patched input has {n_tokens}: "
                "activation patching needs inputs of the same length"
            )
        return contexts[layer, head].to(device=current.device, dtype=current.dtype).expand_as(current)

    with replace_heads(loaded, heads, replace) as selected:
        yield selected


@torch.no_grad()
def mean_head_outputs(
    loaded: LoadedModel,
    texts: Iterable[Any],
    batch_size: int = 16,
    include_special: bool = True,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Mean context vector of every head over all tokens of ``texts``: ``[layer, head, d_head]``
    (float32, on the CPU, in the units of the context vectors), for ``ablate_heads(kind="mean")``.

    ``texts`` is any iterable of texts (images for vision models), streamed through the batched
    tracer ``batch_size`` at a time with a running sum, so memory does not grow with the corpus.
    Every real token weighs the same; padding never counts; ``include_special=False`` leaves out
    special tokens (``[CLS]``, ``[SEP]``, ...) as well. Errors: a single ``str`` instead of a list,
    a non-text item (named by its index), no token at all.
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a list (or any iterable) of texts, not one str")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    total = torch.zeros(loaded.n_layers, loaded.n_heads, _d_head(loaded), dtype=torch.float64)
    count = 0
    start = 0
    for batch in batches(texts, batch_size):
        for offset, item in enumerate(batch):
            if loaded.family != "vit":  # a vision model's items are images
                corpus_text(item, start + offset, "text")
        try:
            traced = cast(BatchTrace, trace(loaded, batch, device=device))  # a list: a batch
        except (TypeError, ValueError) as err:
            err.add_note(f"(in the items {start}..{start + len(batch) - 1} of the texts)")
            raise
        keep = traced.mask if include_special else traced.mask & ~traced.special
        weights = keep[:, None, None, :, None].double()
        total += (traced.contexts.double() * weights).sum(dim=(0, 3))
        count += int(keep.sum())
        start += len(batch)
    if count == 0:
        raise ValueError(
            "no tokens to average: give at least one text"
            if start == 0
            else "no tokens to average: every token is special (use include_special=True)"
        )
    return (total / count).float()
