"""A small p4 group self-attention classifier of the 8×8 digits, and its test on rotated digits.

The network is the smallest one in which the group part of a group self-attention encoding can
matter to a trained model:

1. a p4 *lifting convolution* (:class:`LiftingConvolution`): one 3×3 kernel per channel, applied
   in its four 90-degree rotations, maps the image ``[B, N, N]`` to a signal on p4
   ``[B, 4, N, N, C]``;
2. ReLU, then the mean of 2×2 blocks (:func:`block_mean`), to a ``4 × 4`` grid;
3. one group self-attention layer (:class:`~attention_study.equivariance.GroupSelfAttention`, run on
   a batch by :func:`batched_group_attention`), whose group encoding ``γ(h, h₁, h₂)`` is the only
   thing that differs between the equivariant variants;
4. ReLU, then the maximum and the mean over orientations and positions (invariant pooling), and a
   linear classifier.

Why the lift is a convolution rather than lifting self-attention: the lift has no group part to
encode (the question is the group layer's), and a lift by attention on one raw intensity channel
learned slowly in our trials (35% test accuracy after 150 full-batch steps at 2 s a step), while the
3×3 lift trains to about 80% in seconds. The ``"baseline"`` variant uses the same network with
nothing rotated: one unrotated kernel, spatial offsets not seen through the orientation, no group
term — a CNN stem with relative-position self-attention, blind to rotations.

Images live on the ``N × N`` torus. ``torch.rot90`` of an image about its centre is the element
``x ↦ r x + t`` of p4 on that torus, so an exactly equivariant network pooled over the group and the
grid gives the same logits for the four rotations of a digit, up to round-off
(:func:`rotation_invariance_error`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats
from torch import nn

from .contextuality import bootstrap_ci
from .equivariance import GROUP_ENCODINGS, GroupSelfAttention

#: The variant without any rotation: no group term, offsets never rotated, one unrotated kernel.
BASELINE = "baseline"
#: The variants the chapter trains: the paper's Proposition 5.2, the proposed encoding, the baseline.
STUDIED_VARIANTS: tuple[str, ...] = ("paper", "proposed", BASELINE)
#: The rotations of the test: ``k · 90`` degrees counter-clockwise (``torch.rot90``), k = 0..3.
ROTATIONS: tuple[int, ...] = (0, 1, 2, 3)
#: Equivalence margin of the rotated-digit test (fraction of digits): a classifier *keeps its
#: accuracy* under a rotation when the 95% interval of ``acc(rotated) − acc(upright)`` lies inside
#: ``(−KEEP_MARGIN, KEEP_MARGIN)``, and *loses accuracy* when the interval lies below 0.
KEEP_MARGIN = 0.02


def check_variant(variant: str) -> str:
    """``variant`` if it is :data:`BASELINE` or a key of :data:`GROUP_ENCODINGS`; ``ValueError`` otherwise."""
    if variant != BASELINE and variant not in GROUP_ENCODINGS:
        raise ValueError(f"unknown variant {variant!r}; valid: {BASELINE}, {', '.join(GROUP_ENCODINGS)}")
    return variant


def check_images(images: torch.Tensor, n: int | None = None) -> int:
    """``N`` of a finite, non-empty batch of square images ``[B, N, N]``; ``ValueError`` otherwise."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor [B, N, N]; got {type(images).__name__}")
    if images.dim() != 3 or images.shape[1] != images.shape[2] or images.shape[0] < 1:
        raise ValueError(f"images must be a non-empty batch of square images [B, N, N]; got {tuple(images.shape)}")
    if n is not None and images.shape[1] != n:
        raise ValueError(f"the model was built for {n} x {n} images; got {images.shape[1]} x {images.shape[2]}")
    if not torch.isfinite(images).all():
        raise ValueError("images contain NaN or infinite values")
    return int(images.shape[1])


class LiftingConvolution(nn.Module):
    """Image ``[B, N, N]`` -> signal on p4 ``[B, 4, N, N, C]`` (circular padding: the torus).

    Orientation ``k`` of the output is the convolution with every kernel rotated by ``k · 90``
    degrees (``torch.rot90``), so that rotating the image by ``r`` rotates the output's grid and
    shifts its orientation axis by ``r`` — the action of
    :func:`~attention_study.groups.act_on_group_signal` (the library's tests check it element by
    element). ``rotate=False`` uses the unrotated kernel at every orientation (four equal copies).
    """

    def __init__(self, channels: int, rotate: bool = True, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"channels must be >= 1; got {channels}")
        self.rotate = rotate
        self.weight = nn.Parameter(torch.randn(channels, 1, 3, 3, dtype=dtype) / 3)
        self.bias = nn.Parameter(torch.zeros(channels, dtype=dtype))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` ``[B, N, N]`` -> ``[B, 4, N, N, channels]``."""
        x = nn.functional.pad(images[:, None], (1, 1, 1, 1), mode="circular")
        kernels = [torch.rot90(self.weight, k if self.rotate else 0, dims=(2, 3)) for k in ROTATIONS]
        out = torch.stack([nn.functional.conv2d(x, w, self.bias) for w in kernels], dim=1)  # [B, 4, C, N, N]
        return out.permute(0, 1, 3, 4, 2)


def block_mean(x: torch.Tensor, size: int) -> torch.Tensor:
    """Means of ``size × size`` blocks of the grid: ``[B, O, N, N, C]`` -> ``[B, O, N/size, N/size, C]``.

    The blocks start at row and column 0; a 90-degree rotation of the grid about its centre maps
    blocks onto blocks, so the pooled signal turns with the image (equivariance is kept).
    """
    b, o, n, _, c = x.shape
    if size < 1 or n % size:
        raise ValueError(f"block size must divide the grid side {n}; got {size}")
    m = n // size
    return x.reshape(b, o, m, size, m, size, c).mean(dim=(3, 5))


def batched_group_attention(layer: GroupSelfAttention, x: torch.Tensor) -> torch.Tensor:
    """``layer`` on a batch: ``x`` ``[B, |H|, N, N, C]`` -> ``[B, |H|, N, N, d_model]``.

    Equal to ``torch.stack([layer(xi) for xi in x])`` (the same parameters and formula, one pass).
    """
    b, n, o = x.shape[0], layer.n, layer.group.order
    if x.dim() != 5 or tuple(x.shape[1:]) != (o, n, n, layer.d_in):
        expected = f"[B, {o}, {n}, {n}, {layer.d_in}]"
        raise ValueError(f"expected a batch of signals on {layer.group.name} {expected}; got {tuple(x.shape)}")
    t = n * n
    q, k, v = layer._qkv(x.reshape(b, o, t, layer.d_in))  # [B, |H|, T, heads, d_head]
    content = torch.einsum("zaied,zbjed->zaeibj", q, k)
    spatial = torch.einsum("zaied,hijd->zhaeij", q, layer.rel_key[layer.offset_index])
    group = torch.einsum("zaied,habd->zhaeib", q, layer.rel_group[layer.codes])
    s = (content[:, None] + spatial[..., None, :] + group[..., None]) * layer._scale()
    a = torch.softmax(s.reshape(*s.shape[:5], o * t), dim=-1).reshape(s.shape)
    z = torch.einsum("zhaeibj,zbjed->zhied", a, v) / o
    return layer.output(z.reshape(b, o, t, layer.d_model)).reshape(b, o, n, n, layer.d_model)


class GroupAttentionClassifier(nn.Module):
    """Lifting convolution -> ReLU -> block mean -> group self-attention -> ReLU -> [max, mean] -> linear.

    Args:
        variant: the group layer's encoding (a key of :data:`GROUP_ENCODINGS`) or :data:`BASELINE`.
        n: image side (8 for the digits); ``pool`` must divide it.
        channels: lifting channels per orientation.
        d_model, n_heads: the group layer's width and heads.
        pool: side of the blocks averaged between the lift and the group layer.
        n_classes: outputs.
        encoding_std: standard deviation of the group layer's initial position encodings.
        dtype: parameter dtype (trained in float32; the chapter evaluates a float64 copy).

    Input ``[B, N, N]`` (pixel values in [0, 1]), output logits ``[B, n_classes]``.
    """

    def __init__(
        self,
        variant: str,
        n: int = 8,
        channels: int = 32,
        d_model: int = 32,
        n_heads: int = 2,
        pool: int = 2,
        n_classes: int = 10,
        encoding_std: float = 0.5,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        check_variant(variant)
        if n_classes < 2:
            raise ValueError(f"n_classes must be >= 2; got {n_classes}")
        if pool < 1 or n % pool:
            raise ValueError(f"pool must divide the image side {n}; got {pool}")
        equivariant = variant != BASELINE
        self.variant, self.n, self.pool = variant, n, pool
        self.lift = LiftingConvolution(channels, rotate=equivariant, dtype=dtype)
        self.attention = GroupSelfAttention(
            "p4",
            n // pool,
            channels,
            d_model,
            n_heads,
            encoding=variant if equivariant else "none",
            encoding_std=encoding_std,
            dtype=dtype,
            rotate_offsets=equivariant,
        )
        self.classifier = nn.Linear(2 * d_model, n_classes, dtype=dtype)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The group layer's output after ReLU: ``[B, N, N]`` -> ``[B, 4, N/pool, N/pool, d_model]``."""
        check_images(images, self.n)
        z = block_mean(torch.relu(self.lift(images.to(self.classifier.weight.dtype))), self.pool)
        return torch.relu(batched_group_attention(self.attention, z))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` ``[B, N, N]`` -> logits ``[B, n_classes]``."""
        z = self.features(images)
        return self.classifier(torch.cat([z.amax(dim=(1, 2, 3)), z.mean(dim=(1, 2, 3))], dim=-1))


def rotated_logits(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``[4, B, classes]``: the logits of ``model`` on ``images`` ``[B, N, N]`` rotated by ``k · 90°``."""
    check_images(images)
    with torch.no_grad():
        return torch.stack([model(torch.rot90(images, k, dims=(1, 2))) for k in ROTATIONS])


def rotation_invariance_error(logits: torch.Tensor) -> float:
    """``max_k ‖logits[k] − logits[0]‖ / ‖logits[0]‖`` for ``logits`` ``[R ≥ 2, B, classes]`` (Frobenius)."""
    if logits.dim() != 3 or logits.shape[0] < 2:
        raise ValueError(f"logits must be [rotations >= 2, B, classes]; got {tuple(logits.shape)}")
    norm = torch.linalg.norm(logits[0])
    if norm == 0:
        raise ValueError("the unrotated logits are zero; the relative error is undefined")
    return max(float(torch.linalg.norm(logits[k] - logits[0]) / norm) for k in range(1, logits.shape[0]))


def correct_by_rotation(logits: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """``[R, B]`` booleans: whether the arg-max of ``logits`` ``[R, B, classes]`` is the label ``[B]``."""
    if logits.dim() != 3 or labels.shape != logits.shape[1:2]:
        shapes = f"{tuple(logits.shape)}, {tuple(labels.shape)}"
        raise ValueError(f"logits [R, B, classes] and labels [B] must agree; got {shapes}")
    return (logits.argmax(-1) == labels[None]).numpy()


def accuracy_with_interval(correct: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """Accuracy of ``correct`` ``[B]`` (booleans) with its 95% percentile bootstrap interval over digits."""
    c = np.asarray(correct, dtype=np.float64)
    if c.ndim != 1:
        raise ValueError(f"correct must be [B] booleans; got shape {c.shape}")
    return bootstrap_ci(lambda idx: float(c[idx].mean()), len(c), seed=seed)


def paired_gap(correct_a: np.ndarray, correct_b: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """``accuracy(a) − accuracy(b)`` on the same digits ``[B]``, with its 95% paired bootstrap interval."""
    a, b = np.asarray(correct_a, dtype=np.float64), np.asarray(correct_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired results must be two [B] arrays of one shape; got {a.shape} and {b.shape}")
    d = a - b
    return bootstrap_ci(lambda idx: float(d[idx].mean()), len(d), seed=seed)


@dataclass(frozen=True)
class RotatedTest:
    """A classifier on the test digits shown at the four rotations of :data:`ROTATIONS`.

    Attributes:
        correct: ``[4, B]`` booleans, row ``k`` for the digits rotated by ``k · 90`` degrees.
        invariance_error: :func:`rotation_invariance_error` of the logits (0 for an exactly
            invariant classifier, up to round-off).
    """

    correct: np.ndarray
    invariance_error: float

    def accuracy(self, k: int) -> tuple[float, float, float]:
        """Accuracy at rotation ``k`` with its 95% bootstrap interval over digits."""
        return accuracy_with_interval(self.correct[k])

    def verdict(self, k: int, margin: float = KEEP_MARGIN) -> tuple[float, float, float, str]:
        """``(gap, low, high, verdict)`` of ``acc(k) − acc(0)``; verdicts as :data:`KEEP_MARGIN` states."""
        if k not in ROTATIONS[1:]:
            raise ValueError(f"rotation k must be one of {ROTATIONS[1:]}; got {k!r}")
        gap, low, high = paired_gap(self.correct[k], self.correct[0])
        if high < 0:
            return gap, low, high, "loses accuracy"
        if -margin < low and high < margin:
            return gap, low, high, "keeps its accuracy"
        return gap, low, high, "inconclusive"


def rotated_test(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> RotatedTest:
    """Run ``model`` on ``images`` ``[B, N, N]`` at the four rotations and score against ``labels`` ``[B]``."""
    logits = rotated_logits(model, images)
    return RotatedTest(correct_by_rotation(logits, labels), rotation_invariance_error(logits))


def detectable_loss(n: int, alpha: float = 0.05, power: float = 0.8, discordance: float = 1.0) -> float:
    """The smallest accuracy loss a paired test on ``n`` digits detects with ``power`` at level ``alpha``.

    Normal approximation: the per-digit difference lies in {−1, 0, 1}, so its variance is at most
    the share of *discordant* digits (right upright and wrong rotated, or the reverse); the default
    ``discordance=1`` is the worst case, a bound that holds whatever the classifier does.
    """
    if n < 2 or not 0 < alpha < 1 or not 0 < power < 1 or not 0 < discordance <= 1:
        raise ValueError(
            f"need n >= 2 and alpha, power, discordance in (0, 1]; got {n}, {alpha}, {power}, {discordance}"
        )
    return float((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * math.sqrt(discordance / n))
