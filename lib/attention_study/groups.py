"""Symmetry groups and how they act on signals.

Three families of transformations, each with exact (index-only) actions so that equivariance checks
are limited by floating-point round-off of the layer, never of the action:

- permutations of a set of tokens;
- cyclic translations of a 1-D sequence (``Z_n``) or of a 2-D periodic grid (``Z_N x Z_M``);
- the wallpaper groups ``p4`` (translations of the ``N x N`` torus and rotations by multiples of
  90 degrees) and ``p4m`` (the same with reflections), written ``G = Z_N^2 ⋊ H`` with the point group
  ``H`` of order 4 or 8.

Conventions. Grid coordinates are ``x = (row, col)`` in ``Z_N^2``. A point-group element ``h`` is an
integer orthogonal 2x2 matrix acting on coordinates; ``g = (t, h)`` acts by ``g·x = h x + t`` and
``(t1, h1)(t2, h2) = (t1 + h1 t2, h1 h2)``. Signals transform by the left-regular action:

- a signal on the grid ``f: Z_N^2 -> R^C``, tensor ``[N, N, C]``: ``(g·f)(x) = f(g⁻¹x)``;
- a signal on the group ``F: G -> R^C``, tensor ``[|H|, N, N, C]`` indexed ``[h, row, col]``:
  ``(g·F)(x, h) = F(h_g⁻¹(x − t), h_g⁻¹ h)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import torch

GROUP_NAMES = ("p4", "p4m")

_ROTATION = np.array([[0, -1], [1, 0]], dtype=np.int64)  # 90 degrees on (row, col)
_REFLECTION = np.array([[1, 0], [0, -1]], dtype=np.int64)  # col -> -col


@dataclass(frozen=True)
class PointGroup:
    """A finite group ``H`` of integer orthogonal 2x2 matrices (the rotations/reflections).

    ``matrices``: int array ``[|H|, 2, 2]``, element 0 is the identity. ``table[a, b]`` is the
    index of ``H_a H_b``; ``inverse[a]`` the index of ``H_a⁻¹``.
    """

    name: str
    matrices: np.ndarray
    table: np.ndarray
    inverse: np.ndarray
    labels: tuple[str, ...]

    @property
    def order(self) -> int:
        """Number of elements ``|H|``."""
        return len(self.matrices)

    def mul(self, a: int, b: int) -> int:
        """Index of the product ``H_a H_b``."""
        return int(self.table[a, b])

    def inv(self, a: int) -> int:
        """Index of ``H_a⁻¹``."""
        return int(self.inverse[a])


def _index_of(matrices: list[np.ndarray], m: np.ndarray) -> int:
    for i, candidate in enumerate(matrices):
        if np.array_equal(candidate, m):
            return i
    raise AssertionError("set of matrices is not closed under multiplication")


@cache
def point_group(name: str) -> PointGroup:
    """The point group of ``"p4"`` (4 rotations) or ``"p4m"`` (4 rotations x 2 reflections).

    Raises ``ValueError`` naming the valid names for anything else.
    """
    if name not in GROUP_NAMES:
        raise ValueError(f"unknown group {name!r}; valid names: {', '.join(GROUP_NAMES)}")
    mats, labels = [], []
    for m in range(2 if name == "p4m" else 1):
        for k in range(4):
            mats.append(np.linalg.matrix_power(_ROTATION, k) @ np.linalg.matrix_power(_REFLECTION, m))
            labels.append(f"r{k}" + ("m" if m else ""))
    n = len(mats)
    table = np.array([[_index_of(mats, mats[a] @ mats[b]) for b in range(n)] for a in range(n)])
    inverse = np.array([_index_of(mats, mats[a].T) for a in range(n)])
    return PointGroup(name, np.stack(mats), table, inverse, tuple(labels))


@dataclass(frozen=True)
class GridElement:
    """An element ``g = (t, h)`` of ``p4``/``p4m``: translation ``t = (row, col)``, point element ``h``."""

    shift: tuple[int, int]
    rotation: int


def check_square_grid(group: PointGroup, shape: Sequence[int], n: int | None = None) -> int:
    """Return ``N`` for a square ``N x N`` grid shape; ``ValueError`` if ``group`` cannot act on it.

    90-degree rotations map the torus ``Z_N x Z_M`` to itself only when ``N == M``; ``n`` (if given)
    is the grid size a layer was built for.
    """
    if len(shape) != 2 or shape[0] != shape[1] or shape[0] < 1:
        raise ValueError(f"{group.name} acts only on square N x N grids with N >= 1; got grid shape {tuple(shape)}")
    if n is not None and shape[0] != n:
        raise ValueError(f"layer was built for a {n} x {n} grid; got {shape[0]} x {shape[1]}")
    return int(shape[0])


def _source_coords(group: PointGroup, g: GridElement, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinates ``g⁻¹x = h⁻¹(x − t) mod N`` for every ``x``, as two ``[N, N]`` index tensors."""
    rows, cols = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    x = np.stack([rows - g.shift[0], cols - g.shift[1]])  # [2, N, N]
    src = np.einsum("ij,jab->iab", group.matrices[group.inv(g.rotation)], x) % n
    return torch.as_tensor(src[0]), torch.as_tensor(src[1])


def act_on_grid(group: PointGroup, g: GridElement, f: torch.Tensor) -> torch.Tensor:
    """``(g·f)(x) = f(g⁻¹x)`` for a grid signal ``f`` of shape ``[N, N, C]``."""
    n = check_square_grid(group, f.shape[:2])
    r, c = _source_coords(group, g, n)
    return f[r, c]


def act_on_group_signal(group: PointGroup, g: GridElement, f: torch.Tensor) -> torch.Tensor:
    """``(g·F)(x, h) = F(h_g⁻¹(x − t), h_g⁻¹h)`` for ``F`` of shape ``[|H|, N, N, C]``."""
    _check_group_signal(group, f)
    n = check_square_grid(group, f.shape[1:3])
    r, c = _source_coords(group, g, n)
    h_src = torch.as_tensor(group.table[group.inv(g.rotation)])  # [|H|]: h -> h_g⁻¹ h
    return f[h_src][:, r, c]


def act_on_orientation(group: PointGroup, s: int, f: torch.Tensor) -> torch.Tensor:
    """Rotate the orientation axis alone: ``(S_s F)(x, h) = F(x, s⁻¹h)``; ``F``: ``[|H|, N, N, C]``."""
    _check_group_signal(group, f)
    return f[torch.as_tensor(group.table[group.inv(s)])]


def _check_group_signal(group: PointGroup, f: torch.Tensor) -> None:
    if f.dim() != 4 or f.shape[0] != group.order:
        raise ValueError(f"a signal on {group.name} has shape [{group.order}, N, N, C]; got {tuple(f.shape)}")


def random_grid_elements(group: PointGroup, n: int, count: int, generator: torch.Generator) -> list[GridElement]:
    """``count`` elements of ``Z_n^2 ⋊ H`` drawn uniformly, none of them the identity."""
    out: list[GridElement] = []
    while len(out) < count:
        t = torch.randint(0, n, (2,), generator=generator).tolist()
        h = int(torch.randint(0, group.order, (1,), generator=generator))
        if t != [0, 0] or h != 0:
            out.append(GridElement((t[0], t[1]), h))
    return out


# --- translations and permutations --------------------------------------------------------------


def shift_sequence(t: int, x: torch.Tensor) -> torch.Tensor:
    """Cyclic translation of a sequence ``x`` ``[n, C]``: ``(t·x)_i = x_{i−t mod n}``."""
    return torch.roll(x, shifts=int(t), dims=0)


def shift_grid(t: tuple[int, int], x: torch.Tensor) -> torch.Tensor:
    """Cyclic translation of a grid signal ``x`` ``[N, M, C]`` by ``t = (rows, cols)``."""
    return torch.roll(x, shifts=(int(t[0]), int(t[1])), dims=(0, 1))


def shift_image_by_patches(t: tuple[int, int], images: torch.Tensor, patch: int) -> torch.Tensor:
    """Roll image(s) ``[..., H, W]`` cyclically by ``t = (rows, cols)`` whole patches of ``patch`` pixels.

    Pixels leaving one edge come back at the other, so a ViT's grid of patch tokens is translated
    exactly by ``t`` (the action :func:`shift_grid` applies to the patch outputs).
    """
    if isinstance(patch, bool) or not isinstance(patch, int) or patch < 1:
        raise ValueError(f"patch must be a positive number of pixels; got {patch!r}")
    if images.dim() < 2 or images.shape[-2] % patch or images.shape[-1] % patch:
        raise ValueError(
            f"images [..., H, W] must have H and W divisible by the patch size {patch}; got shape {tuple(images.shape)}"
        )
    return torch.roll(images, shifts=(patch * int(t[0]), patch * int(t[1])), dims=(-2, -1))


def permute_tokens(perm: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reorder the tokens (first axis) of ``x`` ``[n, ...]``: row ``i`` of the result is ``x[perm[i]]``."""
    if perm.shape != (x.shape[0],):
        raise ValueError(f"permutation of length {perm.shape[0]} for {x.shape[0]} tokens")
    return x[perm]


def random_permutations(n: int, count: int, generator: torch.Generator) -> list[torch.Tensor]:
    """``count`` random permutations of ``n`` tokens, none of them the identity (``n >= 2``)."""
    if n < 2:
        raise ValueError(f"need at least 2 tokens to permute; got {n}")
    out: list[torch.Tensor] = []
    while len(out) < count:
        p = torch.randperm(n, generator=generator)
        if not torch.equal(p, torch.arange(n)):
            out.append(p)
    return out


def random_shifts(shape: Sequence[int], count: int, generator: torch.Generator) -> list:
    """``count`` non-zero cyclic shifts: ints for a 1-D ``shape=(n,)``, pairs for a 2-D grid."""
    out: list = []
    while len(out) < count:
        t = [int(torch.randint(0, s, (1,), generator=generator)) for s in shape]
        if any(t):
            out.append(t[0] if len(shape) == 1 else (t[0], t[1]))
    return out
