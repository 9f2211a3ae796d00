"""One forward pass, every head.

:func:`trace` runs a model once on one text (or one image) and returns a :class:`Trace` with, for
every layer and head, the attention weights, queries, keys, values and context vectors exactly as
the model computes them (biases included), plus the hidden states and the tokens with their
character offsets.

Shapes (``L`` layers, ``H`` heads, ``T`` tokens, ``d_head`` = d_model / H):

===================  ===============================  ===========================================
field                shape                            what it is
===================  ===============================  ===========================================
``attentions``       ``[L, H, T, T]``                 softmax weights, ``[layer, head, query, key]``
``queries``          ``[L, H, T, d_head]``            ``x W_Q + b_Q``, split per head
``keys``             ``[L, H, T, d_head]``            ``x W_K + b_K``
``values``           ``[L, H, T, d_head]``            ``x W_V + b_V``
``contexts``         ``[L, H, T, d_head]``            ``c_i = Σ_j a_ij v_j``: the input of the output
                                                      projection, split per head
``hidden_states``    ``[L + 1, T, d_model]``          embeddings, then the output of every layer
``logits``           ``[T, vocab]`` or ``[classes]``   the head's output, when the model has one
===================  ===============================  ===========================================

How each family is read (the *adapters*): queries, keys and values are captured at the output of
the model's own projection layers, and context vectors at the input of its output projection, with
forward hooks; attention weights are the ones the eager attention returns. Nothing is recomputed, so
the trace cannot drift from the model. ``tests/test_tracing.py`` proves the identities
``concat_h(contexts) == input of the output projection`` and
``softmax(Q Kᵀ/√d_head + mask) == attentions``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from attention_study.models import LoadedModel


@dataclass(frozen=True)
class AttentionModules:
    """Where one layer's projections live. ``qkv`` is either three modules or one fused module."""

    qkv: tuple[torch.nn.Module, ...]
    output: torch.nn.Module


def _bert_layers(model: Any) -> list[AttentionModules]:
    layers = model.base_model.encoder.layer
    return [
        AttentionModules(
            (layer.attention.self.query, layer.attention.self.key, layer.attention.self.value),
            layer.attention.output.dense,
        )
        for layer in layers
    ]


def _gpt2_layers(model: Any) -> list[AttentionModules]:
    return [AttentionModules((block.attn.c_attn,), block.attn.c_proj) for block in model.base_model.h]


def _vit_layers(model: Any) -> list[AttentionModules]:
    base = model.base_model
    layers = base.layers if hasattr(base, "layers") else base.encoder.layer
    modules = []
    for layer in layers:
        attention = layer.attention
        if hasattr(attention, "q_proj"):
            qkv = (attention.q_proj, attention.k_proj, attention.v_proj)
            output = attention.o_proj
        else:  # older transformers releases
            qkv = (attention.attention.query, attention.attention.key, attention.attention.value)
            output = attention.output.dense
        modules.append(AttentionModules(qkv, output))
    return modules


ADAPTERS: dict[str, Callable[[Any], list[AttentionModules]]] = {
    "bert": _bert_layers,
    "gpt2": _gpt2_layers,
    "vit": _vit_layers,
}


@dataclass(frozen=True)
class HeadTrace:
    """One head of one layer. ``attention`` is ``[query, key]``; the rest ``[token, d_head]``."""

    layer: int
    head: int
    attention: torch.Tensor
    queries: torch.Tensor
    keys: torch.Tensor
    values: torch.Tensor
    contexts: torch.Tensor


@dataclass(frozen=True)
class Trace:
    """Everything one forward pass computed, for every layer and head (shapes in the module doc)."""

    model_name: str
    family: str
    text: str | None
    tokens: list[str]
    offsets: list[tuple[int, int]] | None
    special: torch.Tensor
    attentions: torch.Tensor
    queries: torch.Tensor
    keys: torch.Tensor
    values: torch.Tensor
    contexts: torch.Tensor
    hidden_states: torch.Tensor
    logits: torch.Tensor | None
    input_ids: torch.Tensor | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def n_layers(self) -> int:
        return int(self.attentions.shape[0])

    @property
    def n_heads(self) -> int:
        return int(self.attentions.shape[1])

    @property
    def n_tokens(self) -> int:
        return int(self.attentions.shape[2])

    def check_layer_head(self, layer: int, head: int | None = None) -> None:
        """Raise ``IndexError`` naming the valid range when ``layer``/``head`` are out of range."""
        if not 0 <= layer < self.n_layers:
            raise IndexError(f"layer {layer} is out of range: valid layers are 0..{self.n_layers - 1}")
        if head is not None and not 0 <= head < self.n_heads:
            raise IndexError(f"head {head} is out of range: valid heads are 0..{self.n_heads - 1}")

    def head(self, layer: int, head: int) -> HeadTrace:
        """The traced tensors of one head."""
        self.check_layer_head(layer, head)
        return HeadTrace(
            layer,
            head,
            self.attentions[layer, head],
            self.queries[layer, head],
            self.keys[layer, head],
            self.values[layer, head],
            self.contexts[layer, head],
        )

    def token_indices(self, phrase: str, occurrence: int = 0, ignore_case: bool = True) -> list[int]:
        """Token positions that cover ``phrase`` in the text, found by character offsets.

        The phrase is matched on word boundaries; ``occurrence`` picks which match (0 = first).
        Special tokens have empty spans, so they never shift the result. Raises ``ValueError``
        quoting the phrase when it is not in the text.
        """
        if self.text is None or self.offsets is None:
            raise ValueError("token_indices needs a text trace; this trace is of an image")
        return phrase_token_indices(self.text, self.offsets, phrase, occurrence, ignore_case)


def phrase_token_indices(
    text: str,
    offsets: Sequence[tuple[int, int]],
    phrase: str,
    occurrence: int = 0,
    ignore_case: bool = True,
) -> list[int]:
    """Positions of the tokens whose character spans ``offsets`` (one ``(start, end)`` per token,
    empty for special tokens, as a fast tokenizer's ``offset_mapping``) overlap the
    ``occurrence``-th whole-word match of ``phrase`` in ``text``."""
    start, end = find_phrase(text, phrase, occurrence, ignore_case)
    indices = [i for i, (a, b) in enumerate(offsets) if b > a and a < end and b > start]
    if not indices:  # pragma: no cover - a span with text always meets a token
        raise ValueError(f"phrase {phrase!r} is in the text but no token covers it")
    return indices


def find_phrase(text: str, phrase: str, occurrence: int = 0, ignore_case: bool = True) -> tuple[int, int]:
    """Character span ``[start, end)`` of the ``occurrence``-th whole-word match of ``phrase``."""
    if not isinstance(phrase, str) or not phrase.strip():
        raise ValueError("phrase must be a non-empty string")
    if occurrence < 0:
        raise ValueError(f"occurrence must be >= 0, got {occurrence}")
    pattern = re.escape(phrase.strip())
    if re.match(r"\w", phrase.strip()):
        pattern = r"(?<!\w)" + pattern
    if re.search(r"\w$", phrase.strip()):
        pattern += r"(?!\w)"
    matches = list(re.finditer(pattern, text, flags=re.IGNORECASE if ignore_case else 0))
    if not matches:
        raise ValueError(f"phrase {phrase!r} is not in the text {text[:80]!r}")
    if occurrence >= len(matches):
        raise ValueError(
            f"phrase {phrase!r} occurs {len(matches)} time(s); occurrence must be 0..{len(matches) - 1}"
        )
    return matches[occurrence].span()


@contextmanager
def _captured(
    model: Any, family: str
) -> Iterator[tuple[list[list[torch.Tensor]], list[torch.Tensor]]]:
    """Hooks that record, per layer, the projection outputs (q, k, v, or one fused qkv tensor,
    each ``[1, T, width]``) and the input of the output projection (``[1, T, d_model]``)."""
    layers = ADAPTERS[family](model)
    qkv: list[list[torch.Tensor]] = [[] for _ in layers]
    contexts: list[torch.Tensor] = [torch.empty(0)] * len(layers)
    handles = []
    for index, modules in enumerate(layers):
        for module in modules.qkv:
            handles.append(
                module.register_forward_hook(
                    lambda _m, _inp, out, i=index: qkv[i].append(out.detach())
                )
            )

        def record_context(_m: Any, inputs: tuple[torch.Tensor, ...], i: int = index) -> None:
            contexts[i] = inputs[0].detach()

        handles.append(modules.output.register_forward_pre_hook(record_context))
    try:
        yield qkv, contexts
    finally:
        for handle in handles:
            handle.remove()


def _split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """``[T, H * d_head]`` -> ``[H, T, d_head]``."""
    tokens, width = x.shape
    return x.reshape(tokens, n_heads, width // n_heads).transpose(0, 1)


def _encode_text(
    loaded: LoadedModel, text: str
) -> tuple[dict[str, torch.Tensor], list[str], list[tuple[int, int]], torch.Tensor]:
    if not isinstance(text, str):
        raise TypeError(f"{loaded.name} is a text model: give it a str, not {type(text).__name__}")
    if not text.strip():
        raise ValueError("text is empty: give at least one word")
    tokenizer = loaded.tokenizer
    encoded = tokenizer(
        text,
        return_tensors="pt",
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
        truncation=False,
    )
    n_tokens = int(encoded["input_ids"].shape[1])
    limit = loaded.max_positions
    if limit is not None and n_tokens > limit:
        raise ValueError(
            f"text has {n_tokens} tokens but {loaded.name} accepts at most {limit}; "
            "split the text (nothing is truncated silently)"
        )
    offsets = [tuple(int(v) for v in pair) for pair in encoded.pop("offset_mapping")[0]]
    special = encoded.pop("special_tokens_mask")[0].bool()
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])
    return dict(encoded), tokens, offsets, special


def _encode_image(loaded: LoadedModel, image: Any) -> tuple[dict[str, torch.Tensor], list[str], torch.Tensor]:
    if isinstance(image, str):
        raise TypeError(f"{loaded.name} is a vision model: give it an image array, not a str")
    array = np.asarray(image)
    if not np.all(np.isfinite(array)):
        raise ValueError("image has non-finite values")
    pixel_values = loaded.processor(images=array, return_tensors="pt")["pixel_values"]
    if pixel_values.shape[0] != 1:
        raise ValueError(f"trace takes one image at a time, got a batch of {pixel_values.shape[0]}")
    config = loaded.model.config
    side = int(config.image_size) // int(config.patch_size)
    tokens = ["[CLS]"] + [f"patch({r},{c})" for r in range(side) for c in range(side)]
    special = torch.zeros(len(tokens), dtype=torch.bool)
    special[0] = True
    return {"pixel_values": pixel_values}, tokens, special


@torch.no_grad()
def trace(loaded: LoadedModel, text_or_image: Any) -> Trace:
    """Run ``loaded.model`` once and return every head's attention, Q, K, V and context vectors.

    ``text_or_image`` is a non-empty ``str`` for text models and one image array for vision
    models (in the format ``loaded.processor`` accepts). Errors: empty text, wrong input type,
    too many tokens for the model's positions (never truncated), non-finite pixels.
    """
    model, family = loaded.model, loaded.family
    if family not in ADAPTERS:
        raise ValueError(f"no tracing adapter for family {family!r}; supported: {', '.join(ADAPTERS)}")
    if getattr(model.config, "_attn_implementation", "eager") != "eager":
        model.set_attn_implementation("eager")
    text, offsets = None, None
    if family == "vit":
        inputs, tokens, special = _encode_image(loaded, text_or_image)
    else:
        text = text_or_image
        inputs, tokens, offsets, special = _encode_text(loaded, text)
    device = next(model.parameters()).device
    inputs = {key: value.to(device) for key, value in inputs.items()}

    with _captured(model, family) as (qkv, contexts):
        output = model(**inputs, output_attentions=True, output_hidden_states=True)
    n_heads = loaded.n_heads
    q, k, v = [], [], []
    for captured in qkv:
        parts = torch.cat(captured, dim=-1)[0].chunk(3, dim=-1)
        q.append(_split_heads(parts[0], n_heads))
        k.append(_split_heads(parts[1], n_heads))
        v.append(_split_heads(parts[2], n_heads))
    logits = getattr(output, "logits", None)
    return Trace(
        model_name=loaded.name,
        family=family,
        text=text,
        tokens=list(tokens),
        offsets=offsets,
        special=special,
        attentions=torch.stack([a[0] for a in output.attentions]).float().cpu(),
        queries=torch.stack(q).float().cpu(),
        keys=torch.stack(k).float().cpu(),
        values=torch.stack(v).float().cpu(),
        contexts=torch.stack([_split_heads(c[0], n_heads) for c in contexts]).float().cpu(),
        hidden_states=torch.stack([h[0] for h in output.hidden_states]).float().cpu(),
        logits=None if logits is None else logits[0].float().cpu(),
        input_ids=inputs["input_ids"][0].cpu() if "input_ids" in inputs else None,
        extras={"pixel_values": inputs["pixel_values"][0].cpu()} if family == "vit" else {},
    )
