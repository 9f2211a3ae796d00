"""Reference self-attention layers for the symmetry chapters, and the equivariance error.

Layers (all float64-capable, unbatched, one signal at a time):

- :class:`SelfAttention` — multi-head self-attention on a set of tokens ``[n, d]``, a 1-D cyclic
  sequence ``[n, d]`` or a 2-D periodic grid ``[N, M, d]``, with no positional encoding,
  learned absolute positions, or relative positions (Shaw et al. 2018) on cyclic offsets.
- :class:`LiftingSelfAttention` — grid signal ``[N, N, C]`` to a signal on ``p4``/``p4m``
  ``[|H|, N, N, d]``: the relative offset is seen through each orientation ``h``, ``ρ(h⁻¹(x_j − x_i))``.
- :class:`GroupSelfAttention` — signal on the group to signal on the group, with a relative
  encoding ``ρ(h⁻¹(x_j − x_i)) + ρ_H(γ(h, h1, h2))`` whose group part ``γ`` is one of
  :data:`GROUP_ENCODINGS` (the candidates compared in the chapter on group self-attention).

Every layer names its linear maps ``query``, ``key``, ``value``, ``output`` so that
:func:`attention_study.lora.add_lora` adapts them. Logits are ``logit_scale · q·(k + r)/√d_head``;
:func:`calibrate_logits_` sets ``logit_scale`` so that logits have a chosen standard deviation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import numpy as np
import torch
from torch import nn

from .groups import PointGroup, check_square_grid, point_group

POSITIONS = ("none", "absolute", "relative")


def equivariance_error(
    f: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    group_elements: Sequence[Any],
    act_in: Callable[[Any, torch.Tensor], torch.Tensor],
    act_out: Callable[[Any, torch.Tensor], torch.Tensor],
) -> float:
    """``max_g ‖f(g·x) − g·f(x)‖ / ‖g·f(x)‖`` over ``group_elements`` (Frobenius norms).

    ``act_in(g, x)`` and ``act_out(g, y)`` apply ``g`` to inputs and outputs. Pass
    ``act_out = lambda g, y: y`` to measure invariance instead.
    """
    if len(group_elements) == 0:
        raise ValueError("need at least one group element")
    with torch.no_grad():
        y = f(x)
        return max(_relative_error(f(act_in(g, x)), act_out(g, y)) for g in group_elements)


def _relative_error(output: torch.Tensor, target: torch.Tensor) -> float:
    """``‖output − target‖ / ‖target‖`` (Frobenius norms); the target ``g·f(x)`` must not be zero."""
    norm = torch.linalg.norm(target)
    if norm == 0:
        raise ValueError("g·f(x) is zero; the relative error is undefined")
    return float(torch.linalg.norm(output - target) / norm)


def roundoff_bound(err: float, dtype: torch.dtype = torch.float64) -> str:
    """The smallest power of ten ``>= |err|``, read at the resolution of ``dtype``, as text.

    An error at round-off differs between processors in its last bits and can cross a power of
    ten; it is therefore never reported below the dtype's machine epsilon (``2.2e-16`` for float64,
    ``1.2e-7`` for float32): ``roundoff_bound(3e-17) == roundoff_bound(4e-16) == '1e-15'``.
    """
    from .reporting import decade_bound

    return decade_bound(max(abs(float(err)), torch.finfo(dtype).eps))


def batched_equivariance_error(
    f: Callable[[torch.Tensor], torch.Tensor],
    xs: torch.Tensor,
    group_elements: Sequence[Any],
    act_in: Callable[[Any, torch.Tensor], torch.Tensor],
    act_out: Callable[[Any, torch.Tensor], torch.Tensor],
) -> float:
    """:func:`equivariance_error`, maximised over a batch ``xs`` ``[B, ...]``, in two calls of ``f``.

    ``f`` maps a batch ``[B, ...]`` to a batch of outputs; ``act_in`` and ``act_out`` act on one
    input and one output. ``f`` runs once on ``xs`` and once on all ``B · len(group_elements)``
    transformed inputs — for a model whose per-call cost dominates (a ViT on tiny images).
    """
    if len(group_elements) == 0 or len(xs) == 0:
        raise ValueError("need at least one input and one group element")
    with torch.no_grad():
        ys = f(xs)
        moved = f(torch.stack([act_in(g, x) for x in xs for g in group_elements]))
        pairs = ((y, g) for y in ys for g in group_elements)
        return max(_relative_error(moved[k], act_out(g, y)) for k, (y, g) in enumerate(pairs))


def invariance_error(
    f: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    group_elements: Sequence[Any],
    act_in: Callable[[Any, torch.Tensor], torch.Tensor],
) -> float:
    """``max_g ‖f(g·x) − f(x)‖ / ‖f(x)‖``: 0 when ``f`` cannot see the transformation at all."""
    return equivariance_error(f, x, group_elements, act_in, lambda g, y: y)


# --- shared pieces ------------------------------------------------------------------------------


def _linear(d_in: int, d_out: int, dtype: torch.dtype) -> nn.Linear:
    return nn.Linear(d_in, d_out, dtype=dtype)


def _check_heads(d_model: int, n_heads: int) -> int:
    if n_heads < 1 or d_model < 1 or d_model % n_heads:
        raise ValueError(f"d_model={d_model} must be a positive multiple of n_heads={n_heads}")
    return d_model // n_heads


def _check_channels(x: torch.Tensor, expected: int) -> None:
    if x.shape[-1] != expected:
        raise ValueError(f"input has {x.shape[-1]} channels; the layer expects {expected}")


def _split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """``[..., d]`` -> ``[..., n_heads, d / n_heads]``."""
    return x.reshape(*x.shape[:-1], n_heads, x.shape[-1] // n_heads)


class _AttentionBase(nn.Module):
    """Holds ``query``, ``key``, ``value``, ``output`` and the logit scale."""

    def __init__(self, d_in: int, d_model: int, n_heads: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.d_in, self.d_model, self.n_heads = d_in, d_model, n_heads
        self.d_head = _check_heads(d_model, n_heads)
        self.query = _linear(d_in, d_model, dtype)
        self.key = _linear(d_in, d_model, dtype)
        self.value = _linear(d_in, d_model, dtype)
        self.output = _linear(d_model, d_model, dtype)
        self.logit_scale = 1.0

    def _qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.n_heads
        return (_split_heads(self.query(x), h), _split_heads(self.key(x), h), _split_heads(self.value(x), h))

    def _scale(self) -> float:
        return self.logit_scale / math.sqrt(self.d_head)

    def logits(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - overridden
        raise NotImplementedError


# --- tokens, sequences and grids ----------------------------------------------------------------


def cyclic_offsets(shape: Sequence[int], max_distance: int | None = None) -> tuple[torch.Tensor, int]:
    """Index of the clipped cyclic offset ``x_j − x_i`` for every pair of positions.

    ``shape`` is ``(n,)`` or ``(N, M)``. Per axis the offset ``(j − i) mod n`` is written in
    ``(−n/2, n/2]`` and clipped to ``[−max_distance, max_distance]`` (Shaw et al.'s clipping).
    Returns the ``[T, T]`` index (``T`` = number of positions) and the number of distinct indices.
    """
    axes, sizes = [], []
    coords = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1).reshape(-1, len(shape))
    for a, n in enumerate(shape):
        d = (coords[None, :, a] - coords[:, None, a]) % n
        signed = np.where(d <= n // 2, d, d - n)
        k = n // 2 if max_distance is None else min(max_distance, n // 2)
        axes.append(np.clip(signed, -k, k) + k)
        sizes.append(2 * k + 1)
    index = axes[0]
    for a in range(1, len(shape)):
        index = index * sizes[a] + axes[a]
    return torch.as_tensor(index), int(np.prod(sizes))


class SelfAttention(_AttentionBase):
    """Multi-head self-attention on tokens ``[n, d]`` or a periodic grid ``[N, M, d]``.

    ``positions``: ``"none"`` (a set: any number of tokens), ``"absolute"`` (a learned vector per
    position added to the input) or ``"relative"`` (Shaw et al.: ``e_ij = q_i·(k_j + a^K_ij)``,
    ``z_i = Σ_j α_ij (v_j + a^V_ij)`` with ``a_ij`` a learned vector per clipped cyclic offset).
    ``shape`` — ``(n,)`` or ``(N, M)`` — is required for the last two.
    """

    offset_index: torch.Tensor  # buffer (positions="relative"): [T, T] index of the clipped offset

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        positions: str = "none",
        shape: Sequence[int] | None = None,
        max_distance: int | None = None,
        encoding_std: float = 0.5,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__(d_model, d_model, n_heads, dtype)
        if positions not in POSITIONS:
            raise ValueError(f"unknown positions {positions!r}; valid: {', '.join(POSITIONS)}")
        if positions != "none" and (shape is None or len(shape) not in (1, 2) or min(shape) < 1):
            raise ValueError(f"positions={positions!r} needs shape (n,) or (N, M); got {shape}")
        self.positions = positions
        self.shape = tuple(shape) if shape is not None else None
        if positions == "absolute":
            assert self.shape is not None  # checked above
            n = int(np.prod(self.shape))
            self.absolute = nn.Parameter(torch.randn(n, d_model, dtype=dtype) * encoding_std)
        if positions == "relative":
            assert self.shape is not None  # checked above
            index, count = cyclic_offsets(self.shape, max_distance)
            self.register_buffer("offset_index", index)
            self.rel_key = nn.Parameter(torch.randn(count, self.d_head, dtype=dtype) * encoding_std)
            self.rel_value = nn.Parameter(torch.randn(count, self.d_head, dtype=dtype) * encoding_std)

    def _tokens(self, x: torch.Tensor) -> torch.Tensor:
        _check_channels(x, self.d_model)
        spatial = tuple(x.shape[:-1])
        if self.shape is not None and spatial != self.shape:
            raise ValueError(f"layer was built for positions of shape {self.shape}; got {spatial}")
        if self.shape is None and len(spatial) != 1:
            raise ValueError(f"expected tokens [n, {self.d_model}]; got {tuple(x.shape)}")
        t = x.reshape(-1, self.d_model)
        return t + self.absolute if self.positions == "absolute" else t

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-softmax scores ``[head, query, key]``."""
        q, k, _ = self._qkv(self._tokens(x))
        s = torch.einsum("ihd,jhd->hij", q, k)
        if self.positions == "relative":
            s = s + torch.einsum("ihd,ijd->hij", q, self.rel_key[self.offset_index])
        return s * self._scale()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[n, d]`` or ``[N, M, d]`` -> same shape."""
        t = self._tokens(x)
        q, k, v = self._qkv(t)
        s = torch.einsum("ihd,jhd->hij", q, k)
        if self.positions == "relative":
            s = s + torch.einsum("ihd,ijd->hij", q, self.rel_key[self.offset_index])
        a = torch.softmax(s * self._scale(), dim=-1)
        z = torch.einsum("hij,jhd->ihd", a, v)
        if self.positions == "relative":
            z = z + torch.einsum("hij,ijd->ihd", a, self.rel_value[self.offset_index])
        return self.output(z.reshape(t.shape[0], self.d_model)).reshape(x.shape)


# --- p4 / p4m -----------------------------------------------------------------------------------


def rotated_offsets(group: PointGroup, n: int, rotate: bool = True) -> torch.Tensor:
    """``[|H|, T, T]`` index of the offset ``h⁻¹(x_j − x_i) mod N`` on the ``N x N`` torus.

    Offsets are numbered ``row * N + col`` (``T = N²`` positions). ``rotate=False`` ignores ``h``
    (the control: the same offset for every orientation).
    """
    rows, cols = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    pos = np.stack([rows.ravel(), cols.ravel()], -1)  # [T, 2]
    diff = pos[None, :, :] - pos[:, None, :]  # [T(i), T(j), 2]
    out = []
    for h in range(group.order):
        m = group.matrices[group.inv(h)] if rotate else np.eye(2, dtype=np.int64)
        d = np.einsum("ab,ijb->ija", m, diff) % n
        out.append(d[..., 0] * n + d[..., 1])
    return torch.as_tensor(np.stack(out))


def _group_signal_check(group: PointGroup, n: int, x: torch.Tensor, channels: int) -> None:
    if x.dim() != 4 or x.shape[0] != group.order:
        raise ValueError(f"a signal on {group.name} has shape [{group.order}, N, N, C]; got {tuple(x.shape)}")
    check_square_grid(group, x.shape[1:3], n)
    _check_channels(x, channels)


class LiftingSelfAttention(_AttentionBase):
    """Grid signal ``[N, N, C]`` -> signal on the group ``[|H|, N, N, d_model]``.

    Output at ``(x_i, h)``: ``Σ_j softmax_j(q_i·(k_j + ρ(h⁻¹(x_j − x_i)))) v_j``, mapped by
    ``output``. ``rotate_offsets=False`` drops the ``h⁻¹`` (the control that breaks rotations).
    """

    offset_index: torch.Tensor  # buffer: [|H|, T, T] index of the offset, see rotated_offsets

    def __init__(
        self,
        group: str,
        n: int,
        in_channels: int,
        d_model: int,
        n_heads: int,
        rotate_offsets: bool = True,
        encoding_std: float = 0.02,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__(in_channels, d_model, n_heads, dtype)
        self.group = point_group(group)
        self.n = check_square_grid(self.group, (n, n))
        self.register_buffer("offset_index", rotated_offsets(self.group, n, rotate_offsets))
        self.rel_key = nn.Parameter(torch.randn(n * n, self.d_head, dtype=dtype) * encoding_std)

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 3:
            raise ValueError(f"expected a grid signal [N, N, C]; got {tuple(x.shape)}")
        check_square_grid(self.group, x.shape[:2], self.n)
        _check_channels(x, self.d_in)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-softmax scores ``[h, head, query, key]``."""
        self._check(x)
        q, k, _ = self._qkv(x.reshape(-1, self.d_in))
        content = torch.einsum("ied,jed->eij", q, k)
        pos = torch.einsum("ied,hijd->heij", q, self.rel_key[self.offset_index])
        return (content[None] + pos) * self._scale()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[N, N, in_channels]`` -> ``[|H|, N, N, d_model]``."""
        a = torch.softmax(self.logits(x), dim=-1)
        _, _, v = self._qkv(x.reshape(-1, self.d_in))
        z = torch.einsum("heij,jed->hied", a, v).reshape(self.group.order, -1, self.d_model)
        return self.output(z).reshape(self.group.order, self.n, self.n, self.d_model)


def _codes(group: PointGroup, rule: Callable[[PointGroup, int, int, int], int]) -> np.ndarray:
    o = group.order
    return np.array([[[rule(group, h, a, b) for b in range(o)] for a in range(o)] for h in range(o)])


def _paper(g: PointGroup, h: int, a: int, b: int) -> int:
    return g.mul(g.mul(g.inv(h), g.inv(a)), b)


def _proposed(g: PointGroup, h: int, a: int, b: int) -> int:
    return g.mul(g.inv(a), b)


def _output_relative(g: PointGroup, h: int, a: int, b: int) -> int:
    return g.mul(g.inv(h), b)


def _pair(g: PointGroup, h: int, a: int, b: int) -> int:
    return g.mul(g.inv(h), a) * g.order + g.mul(g.inv(h), b)


def _conjugated(g: PointGroup, h: int, a: int, b: int) -> int:
    return g.mul(g.mul(g.inv(h), g.mul(g.inv(a), b)), h)


def _absolute(g: PointGroup, h: int, a: int, b: int) -> int:
    return b


def _none(g: PointGroup, h: int, a: int, b: int) -> int:
    return 0


# --- the tables of the public implementations -----------------------------------------------
#
# Romero & Cordonnier's code (GitHub dwromero/g_selfatt) and GE-ViT's fork of it
# (ZJUCDSYangKaifan/GEVit) do not evaluate a formula for the group part: each builds an integer
# table ``c[v, g, m]`` (``v`` the output orientation, ``g`` the query's, ``m`` the key's) in two
# steps, and indexes a learned embedding with it. The steps, in the labels of the code (``e = 4s + k``
# is the rotation by ``k`` quarter turns, reflected if ``s = 1``; p4 has ``s = 0`` only):
#
# 1. ``construct_relative_positions`` (groups/SE2.py, groups/E2.py): a table ``R[a, b]`` of the
#    group part of the relative position of key orientation ``b`` seen from query orientation ``a``,
#    made by letting ``a``'s inverse act on the list of labels;
# 2. ``GroupSelfAttention.initialize_indices`` (nn/group_self_attention.py): for every output
#    orientation ``v``, ``left_action_on_G(v, ...)`` acts with ``v`` on the spatial offsets and on
#    ``R`` alike, giving ``c[v] = v · R`` — the action of Proposition 5.2 applied to the whole table.
#
# How an element acts on a list of labels (``left_action_on_H``): on p4 (SE2) it shifts the key
# axis cyclically by ``k``; on p4m (E2) it views the first axis as two blocks of four (unreflected,
# reflected), shifts them by ``k`` in opposite directions, then for a reflection swaps the blocks
# (authors) or adds 4 to every label (GE-ViT). GE-ViT also replaced p4's relative table by
# ``R[a, b] = 2a − b`` (labels mod 4). The functions below rebuild these tables; the tests compare
# them with the tables the two repositories' code prints.

#: The public code whose tables :data:`GROUP_ENCODINGS` reproduces (repository at commit).
CODE_SOURCES = {
    "authors-code": "dwromero/g_selfatt @ 14204b3eb2a9d70329ee8f33a04ac5965c11e8c6",
    "gevit-code": "ZJUCDSYangKaifan/GEVit @ 33af80ea22653cbc6b14c73c93763835e51840fb",
}


def _shift(x: np.ndarray, k: int, axis: int) -> np.ndarray:
    """``out[i] = x[(i + k) mod n]`` along ``axis``."""
    return np.roll(x, -k, axis=axis)


def _act_on_labels(group: PointGroup, variant: str, e: int, x: np.ndarray, inverse_angle: bool = False) -> np.ndarray:
    """The code's ``left_action_on_H`` of its element ``e`` on an integer array of labels ``x``.

    ``inverse_angle`` negates the rotation angle (``construct_relative_positions`` acts with
    ``(−θ, s)``). p4: shifts the last axis by ``k``. p4m: shifts the two blocks of the first axis
    by ``±k``, then reflects (swap the blocks, or add 4 to the labels for GE-ViT).
    """
    k, s = e % 4, e // 4
    k = -k if inverse_angle else k
    if group.order == 4:
        return _shift(x, k, axis=-1)
    blocks = x.reshape(2, 4, *x.shape[1:])
    out = np.stack([_shift(blocks[0], k, 0), _shift(blocks[1], -k, 0)])
    if s:
        out = out[::-1] if variant == "authors-code" else out
        out = (out + 4) % 8 if variant == "gevit-code" else out
    return out.reshape(x.shape)


def code_tables(group: PointGroup, variant: str) -> np.ndarray:
    """``[|H|, |H|, |H|]`` table ``c[v, g, m]`` in the labels of the public code (see the comment above).

    ``variant``: ``"authors-code"`` or ``"gevit-code"`` (:data:`CODE_SOURCES`).
    """
    if variant not in CODE_SOURCES:
        raise ValueError(f"unknown code variant {variant!r}; valid: {', '.join(CODE_SOURCES)}")
    o = group.order
    if o == 4 and variant == "gevit-code":
        relative = np.array([[(2 * a - b) % 4 for b in range(4)] for a in range(4)])
    else:
        labels = np.arange(o)
        relative = np.stack([_act_on_labels(group, variant, a, labels, inverse_angle=True) for a in range(o)])
    return np.stack([_act_on_labels(group, variant, v, relative) for v in range(o)])


def code_label_to_element(group: PointGroup, variant: str) -> np.ndarray:
    """``[|H|]``: the index in ``group`` of the matrix by which the code's element ``e`` moves offsets.

    The authors' ``left_action_on_Rd`` moves an offset by ``r^k m^s``: the labels agree with ours.
    GE-ViT stores coordinates as (column, row), so its rotation by ``k`` quarter turns is our ``r^-k``.
    """
    o = group.order
    if variant == "authors-code":
        return np.arange(o)
    return np.array([(4 + e % 4) if e >= 4 else (-e) % 4 for e in range(o)])


@cache
def _code_encoding(group_name: str, variant: str) -> np.ndarray:
    """``γ(h, h1, h2) = c[λ(h⁻¹), λ(h1⁻¹), λ(h2⁻¹)]`` with ``λ`` the code's label of an element.

    The code's output orientation ``v`` sees offsets as ``M_v (x_j − x_i)``; the layer here sees them
    as ``h⁻¹(x_j − x_i)``, so ``v`` is the label of ``h⁻¹`` — and likewise for the input
    orientations, which a lifting layer of the same code produced. This is the one reading under which
    the code's lifting layer is equivariant for the left-regular action used here.
    """
    group = point_group(group_name)
    c = code_tables(group, variant)
    label = np.argsort(code_label_to_element(group, variant))  # element -> code label
    inv = label[group.inverse]
    return c[np.ix_(inv, inv, inv)]


def _authors_code(g: PointGroup, h: int, a: int, b: int) -> int:
    return int(_code_encoding(g.name, "authors-code")[h, a, b])


def _gevit_code(g: PointGroup, h: int, a: int, b: int) -> int:
    return int(_code_encoding(g.name, "gevit-code")[h, a, b])


#: Candidate group parts ``γ(h, h1, h2)`` of the relative encoding: ``h`` is the output orientation,
#: ``h1`` the query's and ``h2`` the key's. Value: (rule giving an integer code, formula as text).
#: ``authors-code`` and ``gevit-code`` are the tables of the public code (:func:`code_tables`).
GROUP_ENCODINGS: dict[str, tuple[Callable[[PointGroup, int, int, int], int], str]] = {
    "paper": (_paper, "h⁻¹h₁⁻¹h₂"),
    "proposed": (_proposed, "h₁⁻¹h₂"),
    "output-relative": (_output_relative, "h⁻¹h₂"),
    "pair": (_pair, "(h⁻¹h₁, h⁻¹h₂)"),
    "conjugated": (_conjugated, "h⁻¹h₁⁻¹h₂h"),
    "absolute": (_absolute, "h₂"),
    "none": (_none, "(none)"),
    "authors-code": (_authors_code, "g_selfatt's table"),
    "gevit-code": (_gevit_code, "GE-ViT's table"),
}


def encoding_codes(group: PointGroup, encoding: str) -> tuple[np.ndarray, int]:
    """``[|H|, |H|, |H|]`` integer codes of ``γ(h, h1, h2)`` and the number of distinct codes."""
    if encoding not in GROUP_ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}; valid: {', '.join(GROUP_ENCODINGS)}")
    codes = _codes(group, GROUP_ENCODINGS[encoding][0])
    return codes, group.order**2 if encoding == "pair" else group.order


def satisfies_condition(group: PointGroup, codes: np.ndarray) -> bool:
    """The exact condition for equivariance of :class:`GroupSelfAttention`:

    for all ``r, h, h1``: ``h2 ↦ γ(rh, rh1, rh2)`` equals ``h2 ↦ γ(h, h1, h2)``, or both are constant
    in ``h2`` (a key-independent term cancels in the softmax).
    """
    t = group.table
    for r in range(group.order):
        moved = codes[np.ix_(t[r], t[r], t[r])]  # moved[h, a, b] = γ(rh, ra, rb)
        for h in range(group.order):
            for a in range(group.order):
                same = np.array_equal(moved[h, a], codes[h, a])
                both_flat = len(set(moved[h, a])) == 1 and len(set(codes[h, a])) == 1
                if not (same or both_flat):
                    return False
    return True


def orientation_blind(group: PointGroup, codes: np.ndarray) -> bool:
    """Whether ``γ(h, s·h1, s·h2) = γ(h, h1, h2)`` for all ``s, h, h1, h2``.

    Under this condition a :class:`GroupSelfAttention` layer cannot see its input's orientation
    axis rotated alone (``F(x, h) -> F(x, s⁻¹h)``, positions untouched): its output is unchanged.
    """
    t = group.table
    for s in range(group.order):
        moved = codes[:, t[s]][:, :, t[s]]  # moved[h, a, b] = γ(h, s·a, s·b)
        if not np.array_equal(moved, codes):
            return False
    return True


class GroupSelfAttention(_AttentionBase):
    """Signal on ``p4``/``p4m`` ``[|H|, N, N, C]`` -> ``[|H|, N, N, d_model]``.

    Output at ``(x_i, h)``: the mean over query orientations ``h1`` of
    ``Σ_{(x_j, h2)} softmax(q(x_i, h1)·(k(x_j, h2) + ρ(h⁻¹(x_j − x_i)) + ρ_H(γ(h, h1, h2)))) v(x_j, h2)``
    (softmax over all ``(x_j, h2)``), mapped by ``output``. ``encoding`` names ``γ`` in
    :data:`GROUP_ENCODINGS`. ``rotate_offsets=False`` sees the offset as ``x_j − x_i`` for every
    ``h`` (with ``encoding="none"``: plain relative positions, a layer blind to the group).
    """

    codes: torch.Tensor  # buffer: [|H|, |H|, |H|] codes of γ(h, h1, h2), see encoding_codes
    offset_index: torch.Tensor  # buffer: [|H|, T, T] index of the offset, see rotated_offsets

    def __init__(
        self,
        group: str,
        n: int,
        in_channels: int,
        d_model: int,
        n_heads: int,
        encoding: str = "output-relative",
        encoding_std: float = 0.02,
        dtype: torch.dtype = torch.float64,
        rotate_offsets: bool = True,
    ) -> None:
        super().__init__(in_channels, d_model, n_heads, dtype)
        self.group = point_group(group)
        self.n = check_square_grid(self.group, (n, n))
        codes, count = encoding_codes(self.group, encoding)
        self.encoding = encoding
        self.register_buffer("codes", torch.as_tensor(codes))
        self.register_buffer("offset_index", rotated_offsets(self.group, n, rotate_offsets))
        self.rel_key = nn.Parameter(torch.randn(n * n, self.d_head, dtype=dtype) * encoding_std)
        self.rel_group = nn.Parameter(torch.randn(count, self.d_head, dtype=dtype) * encoding_std)

    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        _group_signal_check(self.group, self.n, x, self.d_in)
        return x.reshape(self.group.order, -1, self.d_in)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``[h, h1, head, query, h2, key]`` (softmax runs over the last two axes)."""
        q, k, _ = self._qkv(self._flat(x))  # [|H|, T, heads, d_head]
        content = torch.einsum("aied,bjed->aeibj", q, k)
        spatial = torch.einsum("aied,hijd->haeij", q, self.rel_key[self.offset_index])
        group = torch.einsum("aied,habd->haeib", q, self.rel_group[self.codes])
        s = content[None] + spatial[:, :, :, :, None, :] + group[..., None]
        return s * self._scale()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[|H|, N, N, in_channels]`` -> ``[|H|, N, N, d_model]``."""
        s = self.logits(x)
        o, t = self.group.order, self.n * self.n
        a = torch.softmax(s.reshape(*s.shape[:4], o * t), dim=-1).reshape(s.shape)
        _, _, v = self._qkv(self._flat(x))
        z = torch.einsum("haeibj,bjed->hied", a, v) / o
        return self.output(z.reshape(o, t, self.d_model)).reshape(o, self.n, self.n, self.d_model)


# --- calibration ----------------------------------------------------------------------------


def calibrate_logits_(layer: _AttentionBase, x: torch.Tensor, target_std: float = 1.0) -> float:
    """Set ``layer.logit_scale`` so that the logits on ``x`` have standard deviation ``target_std``.

    Returns the new scale. Use it to test with attention far from uniform.
    """
    layer.logit_scale = 1.0
    with torch.no_grad():
        std = float(layer.logits(x).std())
    if not math.isfinite(std) or std == 0:
        raise ValueError(f"logits have standard deviation {std}; cannot calibrate")
    layer.logit_scale = target_std / std
    return layer.logit_scale


def seeded_group_layer(
    group: str,
    x: torch.Tensor,
    encoding: str,
    d_model: int,
    n_heads: int,
    seed: int,
    logit_std: float | None,
    encoding_std: float = 0.02,
    lora: bool = True,
) -> nn.Module:
    """A :class:`GroupSelfAttention` for the input ``x`` ``[|H|, N, N, C]``, initialised from ``seed``.

    With ``lora`` its four maps carry random LoRAs (:func:`attention_study.lora.with_lora`). With
    ``logit_std`` set, its logits on ``x`` are scaled to that standard deviation
    (:func:`calibrate_logits_`); with ``None`` the layer stays at its initialisation.
    """
    from .lora import with_lora

    torch.manual_seed(seed)
    layer: nn.Module = GroupSelfAttention(
        group, x.shape[1], x.shape[-1], d_model, n_heads, encoding=encoding, encoding_std=encoding_std
    )
    if lora:
        layer = with_lora(layer)
    if logit_std is not None:
        calibrate_logits_(layer, x, target_std=logit_std)  # type: ignore[arg-type]
    return layer


def mean_attention_entropy(logits: torch.Tensor, n_keys_axes: int = 1) -> float:
    """Mean entropy of the attention rows ``softmax(logits)`` as a fraction of ``log(#keys)``.

    1.0 is uniform attention. ``n_keys_axes``: how many trailing axes index the keys.
    """
    flat = logits.detach().reshape(-1, int(np.prod(logits.shape[-n_keys_axes:])))
    p = torch.softmax(flat, dim=-1)
    h = -(p * torch.log(p.clamp_min(1e-300))).sum(-1)
    return float(h.mean().detach() / math.log(flat.shape[-1]))


# --- real models ----------------------------------------------------------------------------


def float64_copy(module: nn.Module) -> nn.Module:
    """A float64, eval-mode deep copy of ``module`` (the cached model itself is left untouched)."""
    import copy

    return copy.deepcopy(module).to(torch.float64).eval()


def token_function(layer: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """Wrap a Hugging Face encoder layer (e.g. ``BertLayer``) as ``[T, d] -> [T, d]``.

    The layer runs directly on hidden states — no embeddings, hence no position embeddings, no
    attention mask — so the only thing that could tell tokens apart by position is gone.
    """

    def f(x: torch.Tensor) -> torch.Tensor:
        out = layer(x[None])
        return (out[0] if isinstance(out, tuple) else out)[0]

    return f


def vit_float64_copy(model: nn.Module, position_embeddings: bool = True) -> nn.Module:
    """A float64 copy of a Hugging Face ViT that computes attention in float64 throughout.

    The eager ViT attention rounds its softmax to float32 even in a float64 model (a floor of about
    1e-7 under any check), so the copy uses PyTorch's scaled-dot-product attention instead.
    ``position_embeddings=False`` zeroes the learned absolute position embeddings of the copy.
    The model passed in is left untouched.
    """
    copy64: Any = float64_copy(model)  # a Hugging Face ViT: its submodules are untyped attributes
    if not position_embeddings:
        with torch.no_grad():
            copy64.vit.embeddings.position_embeddings.zero_()
    copy64.set_attn_implementation("sdpa")
    return copy64


def vit_patch_outputs(
    model: nn.Module, processor: Callable[..., dict[str, torch.Tensor]]
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``images [B, H, W] -> last hidden states of the patch tokens [B, side, side, d]``.

    ``model`` is a (float64) ``ViTForImageClassification``; ``processor`` turns images into its
    ``pixel_values``. The [CLS] token is dropped and the patch tokens are laid out on their grid.
    """
    vit: Any = model  # a Hugging Face ViT: its submodules are untyped attributes
    cfg = vit.config
    side = cfg.image_size // cfg.patch_size
    dtype = next(model.parameters()).dtype

    def f(images: torch.Tensor) -> torch.Tensor:
        pixels = processor(images=images.numpy())["pixel_values"].to(dtype)
        hidden = vit.vit(pixel_values=pixels).last_hidden_state[:, 1:]
        return hidden.reshape(len(images), side, side, -1)

    return f
