"""Low-rank adaptation (LoRA, Hu et al. 2022) of linear maps: ``W -> W + (alpha / r) B A``.

A :class:`LoRALinear` wraps any ``torch.nn.Linear`` — the query/key/value/output maps of this
library's attention layers or of a Hugging Face module such as ``BertSelfAttention`` — and
:func:`add_lora` swaps the wrappers in by attribute name; :func:`with_lora` adds random
("trained-like") adapters in one call. :func:`lora_output_change` measures how much the adapters
change a module's output, so that an equivariance check of an adapted layer is known not to be a
check of the unchanged base layer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import torch
from torch import nn

ModuleT = TypeVar("ModuleT", bound=nn.Module)


class LoRALinear(nn.Module):
    """``y = base(x) + (alpha / r) x Aᵀ Bᵀ`` with ``A``: ``[r, in]``, ``B``: ``[out, r]``.

    As in LoRA, ``B`` starts at zero so the wrapped map is unchanged until trained;
    :meth:`randomize_` gives ``B`` random values (an adapter "after training") for tests.
    The base weights are frozen (``requires_grad=False``).
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float | None = None) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRA wraps torch.nn.Linear; got {type(base).__name__}")
        limit = min(base.in_features, base.out_features)
        if not isinstance(rank, int) or not 1 <= rank <= limit:
            raise ValueError(
                f"LoRA rank must be an integer in [1, {limit}] (min of in={base.in_features}, "
                f"out={base.out_features}); got {rank!r}"
            )
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.rank = rank
        self.scale = (alpha if alpha is not None else rank) / rank
        kw: dict[str, Any] = {"dtype": base.weight.dtype, "device": base.weight.device}
        self.lora_a = nn.Parameter(torch.randn(rank, base.in_features, **kw) / base.in_features**0.5)
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, **kw))

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    @property
    def weight(self) -> torch.Tensor:
        """The merged weight ``W + (alpha / r) B A``, ``[out, in]``."""
        return self.base.weight + self.scale * self.lora_b @ self.lora_a

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias

    @torch.no_grad()
    def randomize_(self, std: float = 0.1, generator: torch.Generator | None = None) -> LoRALinear:
        """Give ``A`` and ``B`` random normal entries of standard deviation ``std`` (in place)."""
        for p in (self.lora_a, self.lora_b):
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * std)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[..., in]`` -> ``[..., out]``."""
        return self.base(x) + self.scale * (x @ self.lora_a.T) @ self.lora_b.T

    def extra_repr(self) -> str:
        return f"rank={self.rank}, scale={self.scale:g}"


def add_lora(
    module: nn.Module,
    rank: int,
    targets: Sequence[str] = ("query", "key", "value", "output"),
    alpha: float | None = None,
) -> dict[str, LoRALinear]:
    """Replace every ``nn.Linear`` inside ``module`` whose dotted name is, or ends with, a target.

    Targets are dotted attribute names relative to ``module``: ``("query", "key", "value",
    "output")`` for this library's layers; for a Hugging Face ``BertAttention`` use
    ``("self.query", "self.key", "self.value", "output.dense")``. Returns the new wrappers by name.
    A target that matches no ``nn.Linear`` is a ``ValueError`` listing the linear maps that exist.
    """
    linears = {n: m for n, m in module.named_modules() if isinstance(m, nn.Linear) and n}
    chosen: dict[str, nn.Linear] = {}
    for t in targets:
        hits = [n for n in linears if n == t or n.endswith("." + t)]
        if not hits:
            raise ValueError(f"no nn.Linear named {t!r}; linear maps here: {sorted(linears)}")
        chosen.update({n: linears[n] for n in hits})
    wrapped = {name: LoRALinear(lin, rank, alpha) for name, lin in chosen.items()}  # validate all
    for name, adapter in wrapped.items():
        parent_name, _, attr = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, attr, adapter)
    return wrapped


def randomize_lora_(
    adapters: dict[str, LoRALinear], std: float = 0.1, generator: torch.Generator | None = None
) -> None:
    """Randomise every adapter returned by :func:`add_lora` (stand-in for a trained LoRA)."""
    for a in adapters.values():
        a.randomize_(std, generator)


def with_lora(
    layer: ModuleT,
    rank: int = 2,
    seed: int = 1,
    std: float = 0.3,
    targets: Sequence[str] = ("query", "key", "value", "output"),
) -> ModuleT:
    """Adapt ``layer`` in place by rank-``rank`` LoRAs with random ("trained-like") factors; return it.

    :func:`add_lora` wraps the ``targets`` (default: the query, key, value and output maps of this
    library's attention layers) and :func:`randomize_lora_` gives every adapter normal entries of
    standard deviation ``std`` from a generator seeded with ``seed``, so that the adapted layer
    differs from its base (as a trained LoRA would) and the same seed gives the same adapters.
    The equivariance chapters and tests check their layers in this form.
    """
    randomize_lora_(add_lora(layer, rank, targets), std, torch.Generator().manual_seed(seed))
    return layer


def _adapters(module: nn.Module) -> list[LoRALinear]:
    adapters = [m for m in module.modules() if isinstance(m, LoRALinear)]
    if not adapters:
        raise ValueError(f"{type(module).__name__} holds no LoRA adapters; add them with add_lora()")
    return adapters


@contextmanager
def lora_disabled(module: nn.Module) -> Iterator[nn.Module]:
    """Inside the block every :class:`LoRALinear` in ``module`` computes its base map only.

    The adapters' scale is set to 0 (so ``base(x) + 0·(…)`` is ``base(x)`` exactly) and restored on
    exit, also after an exception. A module without adapters is a ``ValueError``.
    """
    adapters = _adapters(module)
    saved = [a.scale for a in adapters]
    try:
        for a in adapters:
            a.scale = 0.0
        yield module
    finally:
        for a, scale in zip(adapters, saved, strict=True):
            a.scale = scale


def lora_output_change(
    module: nn.Module,
    x: torch.Tensor,
    f: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> float:
    """``‖f(x) − f_base(x)‖ / ‖f_base(x)‖``: how much the LoRAs in ``module`` change its output.

    ``f`` is the function under test (default: ``module`` itself), for instance a wrapper that runs
    a Hugging Face layer on hidden states; ``f_base`` is the same function with every adapter in
    ``module`` switched off by :func:`lora_disabled`. Frobenius norms; 0 for adapters with ``B = 0``.
    """
    fn = module if f is None else f
    with torch.no_grad():
        adapted = fn(x)
        with lora_disabled(module):
            base = fn(x)
    norm = torch.linalg.norm(base)
    if norm == 0:
        raise ValueError("the base output is zero; the relative change is undefined")
    return float(torch.linalg.norm(adapted - base) / norm)
