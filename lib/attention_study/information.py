"""Information theory of attention rows: entropy, KL, Jensen–Shannon.

Every function takes probability distributions along the **last axis** and is batched over any
leading axes, typically ``[layer, head, query, key]`` (one distribution per query row). Inputs may
be NumPy arrays or torch tensors; results are NumPy ``float64`` arrays with the last axis removed.

Units: ``unit="bits"`` (log base 2) or ``unit="nats"`` (natural log).

Conventions (all standard):

- ``0 · log 0 = 0``: keys with zero weight contribute nothing to an entropy.
- ``KL(p ‖ q) = +inf`` when ``p`` puts mass where ``q`` has none; terms with ``p = 0`` contribute 0.
- Causal rows (query ``i`` sees keys ``0..i`` only) have different supports, so ``KL`` between
  rows of different queries is usually infinite. :func:`kl_divergence_common_support` compares
  them on the keys both rows can see, each restricted there and renormalised to sum to 1.
- ``JS(p, q) = ½ KL(p ‖ m) + ½ KL(q ‖ m)`` with ``m = (p + q)/2`` (Lin 1991): always finite,
  at most 1 bit. Its square root, the JS *distance*, is a metric (Endres & Schindelin 2003) and
  equals :func:`scipy.spatial.distance.jensenshannon` (with ``base=2`` for bits).

Validation: rows must be finite, non-negative and sum to 1 within ``atol`` (default
:data:`ROW_SUM_ATOL`); otherwise a :class:`ValueError` says which condition failed and where.
Rows that pass are renormalised to sum to 1 exactly before any formula is applied.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .validation import finite_float64

__all__ = [
    "ROW_SUM_ATOL",
    "as_distribution",
    "causal_common_support",
    "causal_kl_pattern",
    "double_softmax_effect",
    "entropy",
    "epsilon_patched_kl",
    "js_distance",
    "js_divergence",
    "kl_divergence",
    "kl_divergence_common_support",
    "max_entropy",
    "normalised_entropy",
    "pairwise_js_distance",
    "softmax",
    "triangle_slack",
]

#: Largest tolerated ``|Σ_k p_k − 1|`` of a row. float32 softmax rows over a few hundred keys sum
#: to 1 within ~1e-6; 1e-4 leaves headroom without letting unnormalised scores through.
ROW_SUM_ATOL = 1e-4

_UNITS = {"bits": np.log(2.0), "nats": 1.0}


def _log_scale(unit: str) -> float:
    """Divisor turning natural logs into ``unit``."""
    if unit not in _UNITS:
        raise ValueError(f"unit must be 'bits' or 'nats', got {unit!r}")
    return float(_UNITS[unit])


def as_distribution(p: Any, name: str = "p", atol: float = ROW_SUM_ATOL) -> np.ndarray:
    """Validate ``p`` as probability rows along its last axis; return it as float64, renormalised.

    Args:
        p: array or tensor ``[..., n]``, ``n >= 1``.
        name: what to call it in error messages.
        atol: tolerance on ``|row sum − 1|``.

    Raises:
        ValueError: scalar or empty last axis, non-finite entries, negative entries, or a row
            whose sum is further than ``atol`` from 1 (the message gives the worst row's index).
    """
    arr = finite_float64(p, name)
    if arr.ndim == 0 or arr.shape[-1] == 0:
        raise ValueError(f"{name} must have a non-empty last (key) axis, got shape {arr.shape}")
    if np.any(arr < 0):
        bad = np.argwhere(arr < 0)[0]
        raise ValueError(
            f"{name} has negative entries (first at index {tuple(bad.tolist())}: "
            f"{arr[tuple(bad)]:.3g}); probabilities must be >= 0"
        )
    err = np.abs(arr.sum(axis=-1) - 1.0)
    if np.any(err > atol):
        worst = np.unravel_index(int(np.argmax(err)), err.shape)
        raise ValueError(
            f"{name} rows must sum to 1 within {atol:g}; row {tuple(int(i) for i in worst)} sums "
            f"to {arr[worst].sum():.6g} (did you pass scores instead of probabilities?)"
        )
    return arr / arr.sum(axis=-1, keepdims=True)


def _pair(p: Any, q: Any, atol: float) -> tuple[np.ndarray, np.ndarray]:
    """Validate two distributions that must have the same shape."""
    pa, qa = as_distribution(p, "p", atol), as_distribution(q, "q", atol)
    if pa.shape != qa.shape:
        raise ValueError(f"p and q must have the same shape, got {pa.shape} and {qa.shape}")
    return pa, qa


def _xlogy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``x · ln y`` with ``0 · ln(anything) = 0``."""
    out = np.zeros(np.broadcast_shapes(x.shape, y.shape))
    mask = np.broadcast_to(x > 0, out.shape)
    xb, yb = np.broadcast_to(x, out.shape), np.broadcast_to(y, out.shape)
    with np.errstate(divide="ignore"):
        out[mask] = xb[mask] * np.log(yb[mask])
    return out


def softmax(scores: Any, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax of ``scores`` along ``axis`` (float64).

    Used by the book to *reproduce* the original notebooks' double-softmax defect; attention rows
    returned by a trace are already probabilities and must not be passed through it again.
    """
    s = finite_float64(scores, "scores")
    z = np.exp(s - s.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


def entropy(p: Any, unit: str = "bits", atol: float = ROW_SUM_ATOL) -> np.ndarray:
    """Shannon entropy ``H(p) = −Σ_k p_k log p_k`` of each row.

    Args:
        p: ``[..., key]`` probability rows.
        unit: ``"bits"`` or ``"nats"``.

    Returns:
        ``[...]`` entropies in ``unit``; between 0 and ``log(support size)``.
    """
    scale = _log_scale(unit)
    pa = as_distribution(p, "p", atol)
    return -_xlogy(pa, pa).sum(axis=-1) / scale


def max_entropy(support_size: Any, unit: str = "bits") -> np.ndarray:
    """The uniform baseline ``log n`` for rows with ``n`` keys of support (``n >= 1``).

    For a causal row of query ``i`` (0-based) the support size is ``i + 1``.
    """
    n = np.asarray(support_size, dtype=np.float64)
    if np.any(n < 1) or not np.all(np.isfinite(n)):
        raise ValueError("support sizes must be finite and >= 1")
    return np.log(n) / _log_scale(unit)


def kl_divergence(p: Any, q: Any, unit: str = "bits", atol: float = ROW_SUM_ATOL) -> np.ndarray:
    """``KL(p ‖ q) = Σ_k p_k log(p_k / q_k)`` per row; ``+inf`` where ``p_k > 0 = q_k``.

    Args:
        p, q: ``[..., key]`` probability rows of the same shape.

    Returns:
        ``[...]`` divergences in ``unit`` (``>= 0``, possibly ``inf``). No ε is added: an
        infinite value is the correct answer when ``q`` cannot produce what ``p`` puts mass on.
    """
    scale = _log_scale(unit)
    pa, qa = _pair(p, q, atol)
    outside = np.any((pa > 0) & (qa == 0), axis=-1)
    with np.errstate(divide="ignore"):
        terms = _xlogy(pa, pa) - _xlogy(pa, np.where(qa > 0, qa, 1.0))
    kl = np.maximum(terms.sum(axis=-1), 0.0) / scale
    return np.where(outside, np.inf, kl)


def kl_divergence_common_support(
    p: Any,
    q: Any,
    unit: str = "bits",
    support: Any | None = None,
    atol: float = ROW_SUM_ATOL,
) -> np.ndarray:
    """KL on the common support: both rows restricted to ``S`` and renormalised, then ``KL``.

    ``S = support`` if given (boolean ``[..., key]``, broadcastable), else ``{k : p_k > 0 and
    q_k > 0}``. For causal attention rows of queries ``i`` and ``j`` the natural choice is the keys
    ``0..min(i, j)`` (see :func:`causal_common_support`); the value then compares *how* the two
    queries spread attention over the tokens both can see, ignoring that one sees more tokens.
    The mass each row has outside ``S`` is discarded — report it alongside when it matters.

    Raises:
        ValueError: a row whose common support is empty, or on which ``p`` or ``q`` has no mass.
    """
    pa, qa = _pair(p, q, atol)
    if support is None:
        s = (pa > 0) & (qa > 0)
    else:
        s = np.broadcast_to(np.asarray(support, dtype=bool), pa.shape)
    pm, qm = np.where(s, pa, 0.0), np.where(s, qa, 0.0)
    zp, zq = pm.sum(axis=-1, keepdims=True), qm.sum(axis=-1, keepdims=True)
    if np.any(zp <= 0) or np.any(zq <= 0):
        raise ValueError("common support is empty (or carries no mass) for at least one row")
    return kl_divergence(pm / zp, qm / zq, unit=unit, atol=max(atol, 1e-9))


def causal_common_support(i: int, j: int, n_keys: int) -> np.ndarray:
    """Boolean ``[n_keys]`` mask of the keys ``0..min(i, j)`` that causal queries ``i, j`` share."""
    if not (0 <= i < n_keys and 0 <= j < n_keys):
        raise ValueError(f"queries must be in [0, {n_keys}), got {i} and {j}")
    return np.arange(n_keys) <= min(i, j)


def js_divergence(p: Any, q: Any, unit: str = "bits", atol: float = ROW_SUM_ATOL) -> np.ndarray:
    """Jensen–Shannon divergence ``½KL(p‖m) + ½KL(q‖m)``, ``m = (p+q)/2``, per row.

    Returns ``[...]`` values in ``[0, log 2]`` (``[0, 1]`` in bits); always finite.
    """
    scale = _log_scale(unit)
    pa, qa = _pair(p, q, atol)
    return _js_nats(pa, qa) / scale


def _js_nats(pa: np.ndarray, qa: np.ndarray) -> np.ndarray:
    """JS in nats of validated, broadcast-compatible rows via ``H(m) − (H(p) + H(q))/2``."""
    m = 0.5 * (pa + qa)
    h_m = -_xlogy(m, m).sum(axis=-1)
    h_p = -_xlogy(pa, pa).sum(axis=-1)
    h_q = -_xlogy(qa, qa).sum(axis=-1)
    return np.maximum(h_m - 0.5 * (h_p + h_q), 0.0)


def js_distance(p: Any, q: Any, unit: str = "bits", atol: float = ROW_SUM_ATOL) -> np.ndarray:
    """Jensen–Shannon distance ``sqrt(JS(p, q))`` per row: a metric on distributions.

    Equals ``scipy.spatial.distance.jensenshannon(p, q, base=2)`` for ``unit="bits"`` and with
    the default (natural) base for ``"nats"``.
    """
    return np.sqrt(js_divergence(p, q, unit=unit, atol=atol))


def pairwise_js_distance(rows: Any, unit: str = "bits", atol: float = ROW_SUM_ATOL, block: int = 8) -> np.ndarray:
    """JS distance between every pair of rows: ``[..., n, key] -> [..., n, n]``.

    For one head's attention ``A`` (``[query, key]``) entry ``(i, j)`` compares where tokens
    ``i`` and ``j`` look. The matrix is symmetric with a zero diagonal, and satisfies the triangle
    inequality, so it can feed persistent homology as a distance matrix. Leading axes (e.g.
    ``[layer, head]``) are batched.

    Uses ``JS(p, q) = H((p+q)/2) − (H(p) + H(q))/2``: row entropies are computed once; only the
    mixture entropies need a pass over pairs, done for ``j >= i`` in cache-sized blocks of
    ``block`` rows (one logarithm per pair and key) and mirrored.
    """
    scale = _log_scale(unit)
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    r = as_distribution(rows, "rows", atol)
    if r.ndim < 2:
        raise ValueError(f"rows must be at least 2-D [..., n, key], got shape {r.shape}")
    lead, (n, k) = r.shape[:-2], r.shape[-2:]
    flat = np.ascontiguousarray(r.reshape(-1, n, k))
    h = -_xlogy(flat, flat).sum(axis=-1)  # [B, n] row entropies, nats
    out = np.zeros((flat.shape[0], n, n), dtype=np.float64)
    buf = np.empty((block, n, k), dtype=np.float64)
    logs = np.empty_like(buf)
    tiny = np.finfo(np.float64).tiny
    for b in range(flat.shape[0]):
        rb = flat[b]
        for start in range(0, n, block):
            stop = min(start + block, n)
            s = np.add(rb[start:stop, None, :], rb[None, start:, :], out=buf[: stop - start, : n - start])
            lg = logs[: stop - start, : n - start]
            np.maximum(s, tiny, out=lg)  # 0·log(tiny) = 0 keeps 0·log 0 = 0
            np.log(lg, out=lg)
            # H(m) with m = s/2 and Σ_k s_k = 2 (rows renormalised): log 2 − ½ Σ_k s_k log s_k
            h_m = np.log(2.0) - 0.5 * np.einsum("ijk,ijk->ij", s, lg)
            js = h_m - 0.5 * (h[b, start:stop, None] + h[b, None, start:])
            out[b, start:stop, start:] = js
    iu = np.triu_indices(n, 1)
    out[:, iu[1], iu[0]] = out[:, iu[0], iu[1]]  # mirror the upper triangle
    idx = np.arange(n)
    out[:, idx, idx] = 0.0
    out = np.sqrt(np.maximum(out, 0.0) / scale)
    return out.reshape(*lead, n, n)


def normalised_entropy(attentions: Any, causal: bool = False, atol: float = ROW_SUM_ATOL) -> np.ndarray:
    """Each head's mean of ``H(row) / log2(support)`` over its rows: ``[..., q, k] -> [...]``.

    The support of a row is every key for a bidirectional model and keys ``0..i`` for causal
    query ``i``; rows whose support is one key (causal row 0) have no choice and are skipped.
    1 is a head that averages uniformly, 0 one whose every row is one-hot.

    Raises:
        ValueError: non-square attention, or a row whose entropy exceeds its uniform baseline
            (impossible for a probability row: the rows are not what they claim to be).
    """
    a = as_distribution(attentions, "attentions", atol)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"attentions must be [..., n, n], got shape {a.shape}")
    n = a.shape[-1]
    if n < 2:
        raise ValueError("normalised entropy needs at least 2 tokens")
    support = np.arange(1, n + 1) if causal else np.full(n, n)
    if causal and np.any(np.triu(a, k=1) > 0):
        raise ValueError("causal=True but a query attends to a later key")
    h = entropy(a, "bits", atol)
    baseline = max_entropy(support)
    if np.any(h > baseline + 1e-9):
        raise ValueError("a row's entropy exceeds log2 of its support; rows are not distributions")
    keep = support > 1
    return (h[..., keep] / baseline[keep]).mean(axis=-1)


def triangle_slack(d: Any) -> np.ndarray:
    """``d(i,k) + d(k,j) − d(i,j)`` for every triple of *distinct* indices of ``[..., n, n]``
    matrices: ``[..., n·(n−1)·(n−2)]``. A metric has every slack ``>= 0``."""
    m = np.asarray(d, dtype=np.float64)
    if m.ndim < 2 or m.shape[-1] != m.shape[-2] or m.shape[-1] < 3:
        raise ValueError(f"need [..., n, n] matrices with n >= 3, got shape {m.shape}")
    n = m.shape[-1]
    slack = m[..., :, :, None] + m[..., None, :, :] - m[..., :, None, :]  # [i, k, j]
    i, k, j = np.meshgrid(*[np.arange(n)] * 3, indexing="ij")
    distinct = (i != k) & (k != j) & (i != j)
    return slack[..., distinct]


def causal_kl_pattern(rows: Any, atol: float = ROW_SUM_ATOL) -> tuple[bool, bool]:
    """For causal rows ``[..., n, n]`` (query ``i`` sees keys ``0..i``), whether for every pair
    ``i < j`` of every leading index ``KL(row i ‖ row j)`` is finite and ``KL(row j ‖ row i)`` is
    infinite (row ``j`` puts weight on a key row ``i`` cannot see). Returns the two booleans."""
    a = as_distribution(rows, "rows", atol)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"rows must be [..., n, n], got shape {a.shape}")
    p, q = np.broadcast_arrays(a[..., :, None, :], a[..., None, :, :])
    kl = kl_divergence(p, q, atol=atol)  # [..., i, j] = KL(row i || row j)
    upper = np.triu(np.ones(a.shape[-2:], dtype=bool), k=1)
    return bool(np.isfinite(kl[..., upper]).all()), bool(np.isinf(np.swapaxes(kl, -1, -2)[..., upper]).all())


def epsilon_patched_kl(p: Any, q: Any, eps: float, unit: str = "bits") -> np.ndarray:
    """The original notebooks' patch: ``KL`` of ``p + ε`` and ``q + ε``, each renormalised.

    Finite where :func:`kl_divergence` is infinite, but then it measures ``ε``: each unit of
    weight of ``p`` outside ``q``'s support contributes about ``log(p_k / ε)``.
    """
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    pa, qa = _pair(p, q, ROW_SUM_ATOL)
    pe, qe = pa + eps, qa + eps
    return kl_divergence(pe / pe.sum(axis=-1, keepdims=True), qe / qe.sum(axis=-1, keepdims=True), unit=unit)


def double_softmax_effect(attentions: Any) -> dict[str, np.ndarray]:
    """What a second softmax does to attention rows ``[..., n, n]`` (the original notebooks' defect).

    Returns, each flattened over heads and rows (or pairs of rows):

    - ``"entropy"``, ``"entropy_double"``: ``H(row) / log2 n`` before and after;
    - ``"js"``, ``"js_double"``: JS distance between distinct rows of a head;
    - ``"kl"``, ``"kl_double"``: ``KL(row i ‖ row i+1)`` in bits;
    - ``"bound_margin"``: ``H(softmax(row)) − (log n − (max row − 1/n))`` in nats, which the
      bound proved in the chapter says is ``>= 0``.
    """
    a = as_distribution(attentions, "attentions")
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"attentions must be [..., n, n], got shape {a.shape}")
    a2 = softmax(a)
    n = a.shape[-1]
    off = ~np.eye(n, dtype=bool)
    return {
        "entropy": (entropy(a) / np.log2(n)).ravel(),
        "entropy_double": (entropy(a2) / np.log2(n)).ravel(),
        "js": pairwise_js_distance(a)[..., off].ravel(),
        "js_double": pairwise_js_distance(a2)[..., off].ravel(),
        "kl": kl_divergence(a[..., :-1, :], a[..., 1:, :]).ravel(),
        "kl_double": kl_divergence(a2[..., :-1, :], a2[..., 1:, :]).ravel(),
        "bound_margin": (entropy(a2, "nats") - (np.log(n) - (a.max(axis=-1) - 1 / n))).ravel(),
    }
