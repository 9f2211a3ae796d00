"""One forward pass, every head.

:func:`trace` runs a model once and returns, for every layer and head, the attention weights,
queries, keys, values and context vectors exactly as the model computes them (biases included),
plus the hidden states and the tokens with their character offsets.

What it takes (``text_or_image``):

* one text (a non-empty ``str``) or one image (an array in the format ``loaded.processor``
  accepts): a :class:`Trace`;
* one sequence of token ids (a 1-D integer tensor or array, or a list of ``int``): a :class:`Trace`
  with ``text`` and ``offsets`` set to ``None``;
* a batch: a list or tuple of texts, of token-id sequences (any lengths) or of image arrays, or a
  2-D integer tensor of token ids (with an optional ``attention_mask``): a :class:`BatchTrace`,
  from which ``batch[i]`` is the :class:`Trace` of item ``i`` alone, padding removed.

Shapes (``L`` layers, ``H`` heads, ``T`` tokens, ``d_head`` = d_model / H) of a :class:`Trace`:

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

A :class:`BatchTrace` holds the same tensors with a leading batch axis ``B`` and ``T`` the longest
item (``[B, L, H, T, T]``, ``[B, L, H, T, d_head]``, ...), every padded position set to 0.

How a model is read: for the length of one forward pass, the model's ``attn_implementation`` is
set to :data:`RECORDER`, an attention function registered with transformers that calls the family's
own eager attention function (transformers' code, unchanged) and records what it receives and
returns: the queries, keys and values as the model split them per head, the softmax weights and the
heads' outputs. Then the model's own setting is restored. Nothing is recomputed, so the trace cannot
drift from the model, and no hook sits on the projections (hooks cost time on every module call).
The adapters (:data:`ADAPTERS`) name each family's projection modules: the tests check the recorded
tensors against them, and :mod:`attention_study.interventions` edits the input of the output
projection with forward pre-hooks; where a layer has such a hook, the trace records that edited
input as the layer's ``contexts``. ``tests/test_tracing.py`` proves the identities
``concat_h(contexts) == input of the output projection``, ``Q, K, V == the projections' outputs``
and ``softmax(Q Kᵀ/√d_head + mask) == attentions``, and that a batch equals its items traced one at
a time.

Batches are padded on the right (GPT-2 tokenizers without a pad token are padded with the
end-of-text id) and masked: a padded key gets weight exactly 0, position ids count real tokens
only, and the padded rows are cut away, so padding never reaches a result.
"""

from __future__ import annotations

import functools
import itertools
import numbers
import re
import sys
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, cast, overload

import numpy as np
import torch

from attention_study.models import LoadedModel
from attention_study.validation import LayerHeadRangeError as LayerHeadRangeError  # re-exported
from attention_study.validation import check_layer_head


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


def attention_modules(loaded: LoadedModel) -> list[AttentionModules]:
    """The projections of every layer of ``loaded.model`` (one :class:`AttentionModules` per layer).

    The input of ``output`` is ``[batch, token, H * d_head]``: the context vectors of the heads,
    concatenated with head ``h`` at columns ``h * d_head : (h + 1) * d_head``.
    """
    if loaded.family not in ADAPTERS:
        raise ValueError(f"no tracing adapter for family {loaded.family!r}; supported: {', '.join(ADAPTERS)}")
    return ADAPTERS[loaded.family](loaded.model)


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
        check_layer_head(layer, head, self.n_layers, self.n_heads)

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
            what = "an image" if self.family == "vit" else "token ids, which have no character offsets"
            raise ValueError(f"token_indices needs a text trace; this trace is of {what}")
        return phrase_token_indices(self.text, self.offsets, phrase, occurrence, ignore_case)


@dataclass(frozen=True, eq=False)
class BatchTrace(Sequence[Trace]):
    """One forward pass over a padded batch; ``batch[i]`` is item ``i``'s :class:`Trace`, unpadded.

    The tensors carry a leading batch axis ``B``; ``T`` is the longest item and every position that
    is padding (``mask`` False) is 0 in every tensor (in ``attentions`` both as a query row and as a
    key column), so sums over ``T`` are sums over real tokens:

    ``attentions`` ``[B, L, H, T, T]``; ``queries``, ``keys``, ``values``, ``contexts``
    ``[B, L, H, T, d_head]``; ``hidden_states`` ``[B, L + 1, T, d_model]``; ``logits``
    ``[B, T, vocab]`` or ``[B, classes]`` or ``None``; ``mask`` and ``special`` ``[B, T]`` (bool);
    ``input_ids`` ``[B, T]`` (padded with the pad id) or ``None``; ``pixel_values`` ``[B, C, H, W]``
    or ``None``. ``texts``, ``tokens`` and ``offsets`` are per item, without padding.
    """

    model_name: str
    family: str
    texts: list[str | None]
    tokens: list[list[str]]
    offsets: list[list[tuple[int, int]] | None]
    mask: torch.Tensor
    special: torch.Tensor
    attentions: torch.Tensor
    queries: torch.Tensor
    keys: torch.Tensor
    values: torch.Tensor
    contexts: torch.Tensor
    hidden_states: torch.Tensor
    logits: torch.Tensor | None
    input_ids: torch.Tensor | None = None
    pixel_values: torch.Tensor | None = None
    padded: bool = True  # False: no item has padding, so an item is a plain slice

    @property
    def lengths(self) -> list[int]:
        """Real tokens per item."""
        return [int(n) for n in self.mask.sum(dim=1)]

    @property
    def n_layers(self) -> int:
        return int(self.attentions.shape[1])

    @property
    def n_heads(self) -> int:
        return int(self.attentions.shape[2])

    def __len__(self) -> int:
        return int(self.mask.shape[0])

    @overload
    def __getitem__(self, index: int) -> Trace: ...

    @overload
    def __getitem__(self, index: slice) -> list[Trace]: ...

    def __getitem__(self, index: int | slice) -> Trace | list[Trace]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        n = len(self)
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"batch index must be an int or a slice, not {type(index).__name__}")
        if not -n <= index < n:
            raise IndexError(f"item {index} is out of range: valid items are 0..{n - 1}")
        return self._item(int(index) % n)

    def __iter__(self) -> Iterator[Trace]:
        return (self._item(i) for i in range(len(self)))

    def _item(self, i: int) -> Trace:
        keep = self.mask[i]
        positions = None if not self.padded or bool(keep.all()) else keep.nonzero().flatten()

        def cut(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
            return _select(x, dims, positions)

        logits = None
        if self.logits is not None:
            logits = cut(self.logits[i], (0,)) if self.logits.ndim == 3 else self.logits[i]
        return Trace(
            model_name=self.model_name,
            family=self.family,
            text=self.texts[i],
            tokens=list(self.tokens[i]),
            offsets=self.offsets[i],
            special=cut(self.special[i], (0,)),
            attentions=cut(self.attentions[i], (2, 3)),
            queries=cut(self.queries[i], (2,)),
            keys=cut(self.keys[i], (2,)),
            values=cut(self.values[i], (2,)),
            contexts=cut(self.contexts[i], (2,)),
            hidden_states=cut(self.hidden_states[i], (1,)),
            logits=logits,
            input_ids=None if self.input_ids is None else cut(self.input_ids[i], (0,)),
            extras={} if self.pixel_values is None else {"pixel_values": self.pixel_values[i]},
        )


def _select(x: torch.Tensor, dims: tuple[int, ...], positions: torch.Tensor | None) -> torch.Tensor:
    """``x`` restricted to ``positions`` along each of ``dims`` (``None``: all positions, ``x`` itself)."""
    if positions is None:
        return x
    for dim in dims:
        x = x.index_select(dim, positions)
    return x


def batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """``items`` in consecutive lists of ``size`` (the last may be shorter), consumed lazily: how a
    corpus of any length is fed to the batched :func:`trace`."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


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
        raise ValueError(f"phrase {phrase!r} occurs {len(matches)} time(s); occurrence must be 0..{len(matches) - 1}")
    return matches[occurrence].span()


# The recorder: an attention implementation registered with transformers under this name. It runs
# the family's own eager attention function and keeps what that function receives and returns.
RECORDER = "attention_study_recorder"


@dataclass
class _Recording:
    """What one traced forward pass records, per attention call in layer order: ``queries``,
    ``keys``, ``values`` ``[B, H, T, d_head]`` as the model split them and ``outputs``
    ``[B, T, H, d_head]`` (the heads' context vectors). The softmax weights of every layer go into
    one tensor ``weights`` ``[B, L, H, T, T]``, allocated at the first call: the model goes on with
    that copy, so its own is freed as soon as the layer is done (no second ``L × T²`` tensor)."""

    n_layers: int
    queries: list[torch.Tensor] = field(default_factory=list)
    keys: list[torch.Tensor] = field(default_factory=list)
    values: list[torch.Tensor] = field(default_factory=list)
    outputs: list[torch.Tensor] = field(default_factory=list)
    weights: torch.Tensor | None = None

    def add(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, weights: torch.Tensor, output: torch.Tensor
    ) -> torch.Tensor:
        """Record one layer's call; returns its weights as a view of :attr:`weights`."""
        layer = len(self.outputs)
        if layer >= self.n_layers:
            raise RuntimeError(f"attention was called more than once per layer ({self.n_layers} layers)")
        if self.weights is None:
            batch, heads, queries, keys = weights.shape
            self.weights = weights.new_empty((batch, self.n_layers, heads, queries, keys))
        kept = self.weights[:, layer]
        kept.copy_(weights)
        self.queries.append(query)
        self.keys.append(key)
        self.values.append(value)
        self.outputs.append(output)
        return kept


_recording: ContextVar[_Recording | None] = ContextVar("attention_study_recording", default=None)


def _eager_attention(module: Any) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """The eager attention function of ``module``'s model family (transformers' own code)."""
    eager = getattr(sys.modules[type(module).__module__], "eager_attention_forward", None)
    if eager is None:
        raise ValueError(f"{type(module).__name__} has no eager attention function to record")
    return cast("Callable[..., tuple[torch.Tensor, torch.Tensor]]", eager)


def _record_attention(
    module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attention_mask: Any, **kwargs: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """The attention the model would run in eager mode, with its inputs and outputs recorded."""
    if getattr(module, "reorder_and_upcast_attn", False):  # GPT-2's optional float32 path, as eager runs it
        output, weights = module._upcast_and_reordered_attn(query, key, value, attention_mask)
    else:
        output, weights = _eager_attention(module)(module, query, key, value, attention_mask, **kwargs)
    recording = _recording.get()
    if recording is not None:
        weights = recording.add(query, key, value, weights, output)
    return output, weights


@functools.cache
def _register_recorder() -> None:
    """Make :data:`RECORDER` a valid ``attn_implementation`` (masks built as for eager). Adds a name to
    transformers' registries; changes nothing for models that do not select it."""
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    ALL_ATTENTION_FUNCTIONS.register(RECORDER, _record_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(RECORDER, eager_mask)


@contextmanager
def _recorded(loaded: LoadedModel) -> Iterator[_Recording]:
    """Within the block, ``loaded.model`` runs its eager attention through the recorder, which
    fills the :class:`_Recording` yielded. The model's own ``attn_implementation`` is restored
    afterwards, whatever happens."""
    _register_recorder()
    config = loaded.model.config
    previous = config._attn_implementation
    recording = _Recording(loaded.n_layers)
    token = _recording.set(recording)
    _set_attention(config, RECORDER)
    try:
        yield recording
    finally:
        _set_attention(config, previous)
        _recording.reset(token)


def _set_attention(config: Any, implementation: str | None) -> None:
    """Set ``config._attn_implementation``. Its public setter runs transformers' strict-dataclass
    validation of the whole config (about 0.1 ms, twice per trace); a config without sub-configs has
    one stored field, which is written directly and read back (else the setter is used)."""
    if not config.sub_configs:
        object.__setattr__(config, "_attn_implementation_internal", implementation)
        if config._attn_implementation == implementation:
            return
    config._attn_implementation = implementation


@contextmanager
def _edited_contexts(loaded: LoadedModel) -> Iterator[dict[int, torch.Tensor]]:
    """Where a layer's output projection has forward pre-hooks (an intervention of
    :mod:`attention_study.interventions`, or a user's), its input ``[B, T, H * d_head]`` can differ
    from the attention's output: record it, after those hooks, as that layer's context vectors."""
    edited: dict[int, torch.Tensor] = {}
    handles = []
    for layer, modules in enumerate(attention_modules(loaded)):
        if modules.output._forward_pre_hooks:

            def record(_m: Any, inputs: tuple[torch.Tensor, ...], layer: int = layer) -> None:
                edited[layer] = inputs[0].detach()

            handles.append(modules.output.register_forward_pre_hook(record))
    try:
        yield edited
    finally:
        for handle in handles:
            handle.remove()


def _split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """``[B, T, H * d_head]`` -> ``[B, H, T, d_head]``."""
    batch, tokens, width = x.shape
    return x.reshape(batch, tokens, n_heads, width // n_heads).transpose(1, 2)


# ---------------------------------------------------------------------------------------------
# inputs -> padded model tensors


@dataclass
class _Encoded:
    """Model inputs for a batch (each ``[B, T]`` or ``pixel_values`` ``[B, C, H, W]``), with what
    the trace reports per item: ``mask`` ``[B, T]`` (True on real tokens), ``special`` ``[B, T]``."""

    inputs: dict[str, torch.Tensor]
    mask: torch.Tensor
    special: torch.Tensor
    texts: list[str | None]
    tokens: list[list[str]]
    offsets: list[list[tuple[int, int]] | None]


def _item_name(kind: str, index: int | None) -> str:
    """``"text"`` for a single input, ``"text 3 of the batch"`` for item 3 of a batch."""
    return kind if index is None else f"{kind} {index} of the batch"


def _pad_rows(rows: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    """Right-pad integer rows with ``value`` into one ``[len(rows), longest]`` int64 tensor."""
    width = max(len(row) for row in rows)
    if all(len(row) == width for row in rows):
        return torch.tensor(rows, dtype=torch.long)
    return torch.tensor([list(row) + [value] * (width - len(row)) for row in rows], dtype=torch.long)


def _pad_id(tokenizer: Any) -> int:
    """The tokenizer's pad id, else its end-of-text id (GPT-2 has no pad token), else 0."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


def _check_length(loaded: LoadedModel, n_tokens: int, what: str) -> None:
    limit = loaded.max_positions
    if limit is not None and n_tokens > limit:
        raise ValueError(
            f"{what} has {n_tokens} tokens but {loaded.name} accepts at most {limit}; "
            "split the text (nothing is truncated silently)"
        )


def _encode_texts(loaded: LoadedModel, texts: Sequence[str], single: bool = False) -> _Encoded:
    """Tokenize the ``str`` items ``texts`` in one call (offsets and special-token masks included)
    and right-pad them."""
    for index, text in enumerate(texts):
        if not text.strip():
            raise ValueError(f"{_item_name('text', None if single else index)} is empty: give at least one word")
    tokenizer: Any = loaded.tokenizer  # a text model's: not None
    batch = tokenizer(list(texts), return_offsets_mapping=True, return_special_tokens_mask=True, truncation=False)
    encoded = dict(batch)
    for index, ids in enumerate(encoded["input_ids"]):
        _check_length(loaded, len(ids), _item_name("text", None if single else index))
    offsets = cast("list[list[tuple[int, int]] | None]", encoded.pop("offset_mapping"))  # tuples already
    special = _pad_rows(encoded.pop("special_tokens_mask"), 0).bool()
    ids = encoded["input_ids"]
    tokens = [batch.tokens(i) if batch.is_fast else tokenizer.convert_ids_to_tokens(row) for i, row in enumerate(ids)]
    pads = {"input_ids": _pad_id(tokenizer), "attention_mask": 0}
    inputs = {key: _pad_rows(rows, pads.get(key, 0)) for key, rows in encoded.items()}
    mask = _pad_rows([[1] * len(row) for row in ids], 0).bool()
    return _Encoded(inputs, mask, special, list(texts), tokens, offsets)


def _is_int(x: Any) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _is_int_array(x: Any) -> bool:
    """An integer (not bool) torch tensor or numpy array."""
    if isinstance(x, torch.Tensor):
        return not x.dtype.is_floating_point and not x.dtype.is_complex and x.dtype != torch.bool
    return isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.integer)


def _check_ids(ids: list[int], vocab_size: int, what: str) -> None:
    """Every id of ``ids`` in ``0..vocab_size - 1``, else a ``ValueError`` naming the first that is not."""
    if ids and 0 <= min(ids) and max(ids) < vocab_size:
        return
    position = next(i for i, x in enumerate(ids) if not 0 <= x < vocab_size)
    raise ValueError(
        f"token id {ids[position]} at position {position} of the {what} is out of the vocabulary: "
        f"valid ids are 0..{vocab_size - 1}"
    )


def _encode_ids(loaded: LoadedModel, rows: Sequence[torch.Tensor], mask: torch.Tensor | None, single: bool) -> _Encoded:
    """Model inputs for token-id sequences ``rows`` (1-D int64 each, any lengths, right-padded here)
    or, when ``mask`` ``[B, T]`` is given, for equal-length rows whose real tokens ``mask`` marks.

    The id checks work on the Python lists the tokens need anyway: cheaper than tensor operations
    on short inputs."""
    tokenizer: Any = loaded.tokenizer  # a text model's: not None
    vocab_size = int(loaded.model.config.vocab_size)
    if mask is None:
        real = [row.tolist() for row in rows]
    else:
        real = [row[keep].tolist() for row, keep in zip(rows, mask, strict=True)]
    for index, row in enumerate(real):
        what = _item_name("token ids", None if single else index)
        if not row:
            raise ValueError(f"{what} are empty: give at least one token id")
        _check_ids(row, vocab_size, what)
        _check_length(loaded, len(row), what)
    if mask is None and len({len(row) for row in real}) == 1:  # nothing to pad
        ids = torch.stack(list(rows))
        mask = torch.ones_like(ids, dtype=torch.bool)
    elif mask is None:
        mask = _pad_rows([[1] * len(row) for row in real], 0).bool()
        ids = _pad_rows(real, _pad_id(tokenizer))
    else:
        ids = torch.where(mask, torch.stack(list(rows)), _pad_id(tokenizer))
    special = torch.isin(ids, _special_ids(tokenizer)) & mask
    tokens = [_id_tokens(tokenizer, row) for row in real]
    inputs = {"input_ids": ids, "attention_mask": mask.long()}
    if "token_type_ids" in tokenizer.model_input_names:
        inputs["token_type_ids"] = torch.zeros_like(ids)
    n = len(ids)
    return _Encoded(inputs, mask, special, [None] * n, tokens, [None] * n)


_SPECIAL_IDS: weakref.WeakKeyDictionary[Any, torch.Tensor] = weakref.WeakKeyDictionary()


def _special_ids(tokenizer: Any) -> torch.Tensor:
    """The ids a token-id input marks as ``special`` (read once per tokenizer): the tokenizer's
    special tokens except the unknown token, which stands for a piece of text (as in the mask the
    tokenizer gives for text)."""
    if tokenizer not in _SPECIAL_IDS:
        ids = set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}
        _SPECIAL_IDS[tokenizer] = torch.tensor(sorted(ids), dtype=torch.long)
    return _SPECIAL_IDS[tokenizer]


_VOCABULARIES: weakref.WeakKeyDictionary[Any, list[str | None]] = weakref.WeakKeyDictionary()


def _vocabulary(tokenizer: Any) -> list[str | None]:
    """``tokenizer``'s token strings indexed by id (``None`` where an id has none), read once per
    tokenizer: a list look-up per id instead of a tokenizer call per id."""
    if tokenizer not in _VOCABULARIES:
        by_id: list[str | None] = [None] * len(tokenizer)
        for token, index in tokenizer.get_vocab().items():
            if index >= len(by_id):
                by_id.extend([None] * (index + 1 - len(by_id)))
            by_id[index] = token
        _VOCABULARIES[tokenizer] = by_id
    return _VOCABULARIES[tokenizer]


def _id_tokens(tokenizer: Any, ids: list[int]) -> list[str]:
    """Token strings of ``ids``; an id the tokenizer does not know (the model's vocabulary can be
    larger) reads ``<id N>``."""
    vocabulary = _vocabulary(tokenizer)
    known = len(vocabulary)
    tokens = [vocabulary[i] if i < known else None for i in ids]
    return [f"<id {i}>" if token is None else token for i, token in zip(ids, tokens, strict=True)]


def _id_rows(loaded: LoadedModel, ids: Any) -> list[torch.Tensor]:
    """Token-id input as 1-D int64 CPU tensors: one row for a 1-D input, one per row of a 2-D one."""
    tensor = torch.as_tensor(ids).long().cpu() if _is_int_array(ids) else None
    if tensor is None or tensor.ndim not in (1, 2):
        shape = "" if tensor is None else f" with {tensor.ndim} dimensions"
        raise TypeError(
            f"token ids for {loaded.name} must be 1-D (one sequence) or 2-D (a batch) integers, "
            f"got {type(ids).__name__}{shape}"
        )
    return [tensor] if tensor.ndim == 1 else list(tensor)


def _check_mask(mask: Any, shape: tuple[int, ...]) -> torch.Tensor:
    """An ``attention_mask`` of 0/1 integers (or bools) with ``shape``, each row with a real token."""
    tensor = torch.as_tensor(mask).cpu()
    if tensor.shape != shape:
        raise ValueError(f"attention_mask has shape {tuple(tensor.shape)} but the token ids have shape {shape}")
    if not ((tensor == 0) | (tensor == 1)).all():
        raise ValueError("attention_mask must hold only 0 (padding) and 1 (real token)")
    tensor = tensor.bool()
    empty = (~tensor.any(dim=1)).nonzero().flatten()
    if len(empty):
        raise ValueError(f"attention_mask row {int(empty[0])} has no real token (all 0)")
    return tensor


def _encode_text_model_input(loaded: LoadedModel, inputs: Any, attention_mask: Any) -> tuple[_Encoded, bool]:
    """Dispatch a text model's input (a text, token ids, or a batch of either); ``True`` if single."""
    if isinstance(inputs, str):
        return _encode_texts(loaded, [inputs], single=True), True
    if _is_int_array(inputs):
        rows = _id_rows(loaded, inputs)
        if len(rows) == 0:
            raise ValueError("batch is empty: give at least one sequence of token ids")
        single = torch.as_tensor(inputs).ndim == 1
        mask = None
        if attention_mask is not None:
            if single:
                raise ValueError("attention_mask is for a 2-D batch of token ids; one sequence needs none")
            mask = _check_mask(attention_mask, (len(rows), len(rows[0])))
        return _encode_ids(loaded, rows, mask, single), single
    if attention_mask is not None:
        raise ValueError("attention_mask is only for a 2-D tensor of token ids: trace pads and masks other batches")
    if isinstance(inputs, list | tuple):
        if not inputs:
            raise ValueError("batch is empty: give at least one text (or one sequence of token ids)")
        kinds = [_text_item_kind(item) for item in inputs]
        if all(kind == "int" for kind in kinds):
            return _encode_ids(loaded, [torch.tensor(list(inputs), dtype=torch.long)], None, single=True), True
        _check_batch_kinds(loaded, inputs, kinds)
        first = kinds[0]
        if first == "str":
            return _encode_texts(loaded, inputs), False
        rows = [torch.as_tensor(item).long().cpu() for item in inputs]
        return _encode_ids(loaded, rows, None, single=False), False
    raise TypeError(
        f"{loaded.name} is a text model: give it a str (or a list of str, or token ids: integers), "
        f"not {_describe(inputs)}"
    )


def _check_batch_kinds(loaded: LoadedModel, items: Sequence[Any], kinds: Sequence[str | None]) -> None:
    """A text model's batch holds only texts or only token-id sequences; else a ``TypeError``
    naming the first item that does not fit."""
    allowed = f"a batch for {loaded.name} holds only texts (str) or only token-id sequences (lists of int)"
    for index, (item, kind) in enumerate(zip(items, kinds, strict=True)):
        if kind is None or kind == "int":
            raise TypeError(f"item {index} of the batch is {_describe(item)}: {allowed}")
        if kind != kinds[0]:
            raise TypeError(
                f"item {index} of the batch is {_describe(item)} but item 0 is {_describe(items[0])}: "
                f"the batch mixes kinds; {allowed}"
            )


def _describe(x: Any) -> str:
    """``'a str'``, ``'an ndarray of float64'``, ... for error messages."""
    name = type(x).__name__
    dtype = getattr(x, "dtype", None)
    article = "an" if name[:1].lower() in "aeiou" else "a"
    return f"{article} {name}" + (f" of {dtype}" if dtype is not None else "")


def _text_item_kind(item: Any) -> str | None:
    """``"str"``, ``"int"`` (one token id), ``"ids"`` (a 1-D sequence of token ids) or ``None``."""
    if isinstance(item, str):
        return "str"
    if _is_int(item):
        return "int"
    if _is_int_array(item) and item.ndim == 1:
        return "ids"
    if isinstance(item, list | tuple) and item and all(_is_int(v) for v in item):
        return "ids"
    return None


def _pixel_values(loaded: LoadedModel, image: Any, index: int | None) -> torch.Tensor:
    """One image -> ``pixel_values`` ``[1, C, H, W]``, or a clear error naming the item."""
    name = _item_name("image", index)
    if isinstance(image, str):
        if index is None:
            raise TypeError(f"{loaded.name} is a vision model: give it an image array, not a str")
        raise TypeError(
            f"item {index} of the batch is a str, but {loaded.name} is a vision model: a batch holds images only"
        )
    array = np.asarray(image)
    if array.dtype.kind not in "biuf":  # bool, integers, floats
        raise TypeError(f"{name} must be an array of numbers, got {_describe(image)}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ValueError(f"{name} has non-finite values")
    processor: Any = loaded.processor  # a vision model's: not None
    pixel_values = processor(images=array, return_tensors="pt")["pixel_values"]
    if pixel_values.shape[0] != 1:
        raise ValueError(
            f"{name} is a batch of {pixel_values.shape[0]}: trace takes one image, or a list of images as a batch"
        )
    return pixel_values


def _is_image_batch(inputs: Any) -> bool:
    """A list or tuple of images (arrays, tensors, PIL images), as opposed to one image written as
    nested lists of numbers."""
    if not isinstance(inputs, list | tuple):
        return False
    return not inputs or not isinstance(inputs[0], list | tuple | numbers.Number)


@functools.cache
def _patch_tokens(side: int) -> tuple[str, ...]:
    """Token names of a ViT input with ``side × side`` patches: ``[CLS]``, then ``patch(row,col)``."""
    return ("[CLS]", *(f"patch({r},{c})" for r in range(side) for c in range(side)))


def _encode_images(loaded: LoadedModel, images: Sequence[Any], single: bool) -> _Encoded:
    if not images:
        raise ValueError("batch is empty: give at least one image")
    pixel_values = torch.cat([_pixel_values(loaded, im, None if single else i) for i, im in enumerate(images)])
    config = loaded.model.config
    tokens = list(_patch_tokens(int(config.image_size) // int(config.patch_size)))
    n = len(images)
    special = torch.zeros(n, len(tokens), dtype=torch.bool)
    special[:, 0] = True
    mask = torch.ones(n, len(tokens), dtype=torch.bool)
    return _Encoded({"pixel_values": pixel_values}, mask, special, [None] * n, [tokens] * n, [None] * n)


def _input_device(loaded: LoadedModel, device: str | torch.device | None) -> torch.device:
    """Where the inputs go: ``device``, or by default the device of the model's parameters.

    An explicit ``device`` other than the model's (for a model not dispatched over several devices
    by ``accelerate``) is an error: the model is never moved behind the caller's back.
    """
    model_device = next(loaded.model.parameters()).device
    if device is None:
        return model_device
    target = torch.device(device)
    same = target.type == model_device.type and target.index in (None, model_device.index)
    if not same and getattr(loaded.model, "hf_device_map", None) is None:
        raise ValueError(
            f"device {target} was asked for but {loaded.name} is on {model_device}: load it there "
            f"(load(name, device={str(target)!r})) or leave device unset"
        )
    return target


def _holds_pad_id(model: Any, ids: torch.Tensor | None) -> bool:
    """Whether token ids ``ids`` ``[B, T]`` hold the model config's pad id (False without one)."""
    pad = getattr(model.config, "pad_token_id", None)
    return ids is not None and pad is not None and bool((ids == pad).any())


def _position_ids(mask: torch.Tensor) -> torch.Tensor:
    """``[B, T]`` positions counting real tokens only (0, 1, ... on each item's real tokens)."""
    return (mask.long().cumsum(dim=1) - 1).clamp(min=0)


@overload
def trace(
    loaded: LoadedModel,
    text_or_image: str,
    *,
    attention_mask: Any = None,
    device: str | torch.device | None = None,
) -> Trace: ...


@overload
def trace(
    loaded: LoadedModel,
    text_or_image: Any,
    *,
    attention_mask: Any = None,
    device: str | torch.device | None = None,
) -> Trace | BatchTrace: ...


@torch.no_grad()
def trace(
    loaded: LoadedModel,
    text_or_image: Any,
    *,
    attention_mask: Any = None,
    device: str | torch.device | None = None,
) -> Trace | BatchTrace:
    """Run ``loaded.model`` once and return every head's attention, Q, K, V and context vectors.

    ``text_or_image`` is a non-empty ``str`` or one sequence of token ids (1-D integers) for text
    models, or one image array (in the format ``loaded.processor`` accepts) for vision models: the
    result is a :class:`Trace`. A list or tuple of texts, of token-id sequences or of images, or a
    2-D integer tensor ``[B, T]`` of token ids (``attention_mask`` ``[B, T]``, 1 = real token,
    marks padding there), gives a :class:`BatchTrace`: one forward pass, padding masked and removed.

    A token-id input has ``text`` and ``offsets`` ``None``; its ``special`` marks the tokenizer's
    special ids (the unknown token excepted, as for text). ``device``: where the inputs go (default:
    the model's device); the tensors returned are float32 on the CPU.

    Errors name the problem: empty text or batch, wrong input type, a batch mixing kinds (naming
    the item), token ids outside ``0..vocab_size - 1``, too many tokens for the model's positions
    (never truncated), non-finite pixels, a ``device`` the model is not on.
    """
    family = loaded.family
    if family not in ADAPTERS:
        raise ValueError(f"no tracing adapter for family {family!r}; supported: {', '.join(ADAPTERS)}")
    if family == "vit":
        if attention_mask is not None:
            raise ValueError("attention_mask is only for token ids; images are never padded")
        single = not _is_image_batch(text_or_image)
        encoded = _encode_images(loaded, [text_or_image] if single else text_or_image, single)
    else:
        encoded, single = _encode_text_model_input(loaded, text_or_image, attention_mask)
    batch = _run(loaded, encoded, _input_device(loaded, device))
    return batch[0] if single else batch


def _run(loaded: LoadedModel, encoded: _Encoded, device: torch.device) -> BatchTrace:
    """One forward pass over ``encoded``; padded positions are zeroed in every returned tensor."""
    model, family = loaded.model, loaded.family
    inputs = dict(encoded.inputs)
    mask = encoded.mask
    padded = not bool(mask.all())
    if padded and family in ("gpt2", "bert"):
        inputs["position_ids"] = _position_ids(mask)
    elif not padded and not _holds_pad_id(model, inputs.get("input_ids")):
        # an all-ones mask is the model's default: skip building it into the masks (kept where an id
        # equals the pad id, for which transformers warns about a missing mask)
        inputs.pop("attention_mask", None)
    inputs = {key: value.to(device) for key, value in inputs.items()}

    with _recorded(loaded) as recording, _edited_contexts(loaded) as edited:
        output = model(**inputs, output_hidden_states=True)
    if len(recording.outputs) != loaded.n_layers or recording.weights is None:
        raise RuntimeError(
            f"recorded {len(recording.outputs)} attention calls for {loaded.n_layers} layers of {loaded.name}"
        )
    n_heads = loaded.n_heads
    contexts = [
        _split_heads(edited[layer], n_heads) if layer in edited else heads.transpose(1, 2)
        for layer, heads in enumerate(recording.outputs)
    ]

    def gather(tensors: Iterable[torch.Tensor]) -> torch.Tensor:
        """Per-layer ``[B, ...]`` tensors -> ``[B, layer, ...]``, float32 on the CPU."""
        return torch.stack(list(tensors), dim=1).float().cpu()

    attentions = recording.weights.float().cpu()
    per_token = [gather(recording.queries), gather(recording.keys), gather(recording.values), gather(contexts)]
    hidden_states = gather(output.hidden_states)
    logits = getattr(output, "logits", None)
    logits = None if logits is None else logits.float().cpu()
    if padded:  # in place: every tensor here is this trace's own (recorded, stacked or output)
        pad = ~mask
        attentions.masked_fill_(pad[:, None, None, :, None] | pad[:, None, None, None, :], 0.0)
        for x in per_token:
            x.masked_fill_(pad[:, None, None, :, None], 0.0)
        hidden_states.masked_fill_(pad[:, None, :, None], 0.0)
        if logits is not None and logits.ndim == 3:
            logits.masked_fill_(pad[:, :, None], 0.0)
    queries, keys, values, context_vectors = per_token
    input_ids = inputs.get("input_ids")
    pixel_values = inputs.get("pixel_values")
    return BatchTrace(
        model_name=loaded.name,
        family=family,
        texts=encoded.texts,
        tokens=encoded.tokens,
        offsets=encoded.offsets,
        mask=mask,
        special=encoded.special,
        attentions=attentions,
        queries=queries,
        keys=keys,
        values=values,
        contexts=context_vectors,
        hidden_states=hidden_states,
        logits=logits,
        input_ids=None if input_ids is None else input_ids.cpu(),
        pixel_values=None if pixel_values is None else pixel_values.cpu(),
        padded=padded,
    )
