"""Entropy, KL and Jensen–Shannon of attention rows: values, conventions, batching, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import jensenshannon
from scipy.special import rel_entr
from scipy.stats import entropy as scipy_entropy

from attention_study.information import (
    ROW_SUM_ATOL,
    as_distribution,
    causal_common_support,
    causal_kl_pattern,
    double_softmax_effect,
    entropy,
    epsilon_patched_kl,
    js_distance,
    js_divergence,
    kl_divergence,
    kl_divergence_common_support,
    max_entropy,
    normalised_entropy,
    pairwise_js_distance,
    softmax,
    triangle_slack,
)


def random_rows(shape: tuple[int, ...], seed: int = 0, sharp: float = 3.0) -> np.ndarray:
    """Random probability rows along the last axis, some sharply peaked."""
    rng = np.random.default_rng(seed)
    x = rng.random(shape) ** sharp
    return x / x.sum(axis=-1, keepdims=True)


def causal_rows(n: int, seed: int = 0) -> np.ndarray:
    """``[n, n]`` lower-triangular rows (query i sees keys 0..i), like a causal head."""
    rows = np.tril(random_rows((n, n), seed) + 0.01)
    return rows / rows.sum(axis=-1, keepdims=True)


# ---------------------------------------------------------------- entropy


def test_entropy_of_uniform_row_is_log_n_in_bits_and_nats():
    for n in (1, 2, 7, 128):
        p = np.full(n, 1.0 / n)
        assert entropy(p, "bits") == pytest.approx(np.log2(n), abs=1e-12)
        assert entropy(p, "nats") == pytest.approx(np.log(n), abs=1e-12)
        assert max_entropy(n, "bits") == pytest.approx(np.log2(n), abs=1e-12)


def test_entropy_treats_zero_probabilities_as_contributing_nothing():
    assert entropy([0.0, 1.0, 0.0]) == 0.0
    assert entropy([0.5, 0.0, 0.5]) == pytest.approx(1.0, abs=1e-12)


def test_entropy_is_batched_and_agrees_with_scipy():
    p = random_rows((2, 3, 5, 9))
    h = entropy(p, "nats")
    assert h.shape == (2, 3, 5)
    assert np.allclose(h, scipy_entropy(p, axis=-1), atol=1e-12)
    assert np.allclose(entropy(p, "bits"), scipy_entropy(p, base=2, axis=-1), atol=1e-12)


def test_entropy_accepts_torch_tensors():
    p = random_rows((4, 6))
    assert np.allclose(entropy(torch.tensor(p)), entropy(p), atol=1e-12)


def test_max_entropy_of_causal_rows_is_log_of_query_position_plus_one():
    assert np.allclose(max_entropy(np.arange(4) + 1), np.log2([1, 2, 3, 4]))
    with pytest.raises(ValueError, match=">= 1"):
        max_entropy(0)


# ---------------------------------------------------------------- KL


def test_kl_agrees_with_scipy_on_full_support_and_vanishes_on_equal_rows():
    p, q = random_rows((3, 8), 1), random_rows((3, 8), 2)
    assert np.allclose(kl_divergence(p, q, "nats"), rel_entr(p, q).sum(axis=-1), atol=1e-12)
    assert np.allclose(kl_divergence(p, p), 0.0, atol=1e-12)
    assert np.all(kl_divergence(p, q) > 0)


def test_kl_is_infinite_where_p_has_mass_outside_q_support_without_any_epsilon():
    p = np.array([0.5, 0.5, 0.0])
    q = np.array([1.0, 0.0, 0.0])
    assert kl_divergence(p, q) == np.inf
    # The other direction is finite: q's support lies inside p's.
    assert kl_divergence(q, p) == pytest.approx(1.0, abs=1e-12)


def test_kl_between_causal_rows_is_infinite_one_way_and_finite_on_common_support():
    a = causal_rows(6, seed=3)
    late, early = a[5], a[2]
    assert kl_divergence(late, early) == np.inf
    assert np.isfinite(kl_divergence(early, late))
    mask = causal_common_support(5, 2, 6)
    assert mask.tolist() == [True, True, True, False, False, False]
    restricted = kl_divergence_common_support(late, early, support=mask)
    p, q = late[:3] / late[:3].sum(), early[:3] / early[:3].sum()
    assert restricted == pytest.approx((rel_entr(p, q).sum()) / np.log(2), abs=1e-12)
    # The default support (both positive) is the same set for causal rows.
    assert kl_divergence_common_support(late, early) == pytest.approx(restricted, abs=1e-12)


def test_kl_common_support_rejects_an_empty_common_support():
    with pytest.raises(ValueError, match="common support is empty"):
        kl_divergence_common_support([1.0, 0.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="must be in"):
        causal_common_support(0, 6, 6)


# ---------------------------------------------------------------- Jensen–Shannon


def test_js_distance_agrees_with_scipy_in_bits_and_nats():
    p, q = random_rows((5, 11), 4), random_rows((5, 11), 5)
    expected_bits = np.array([jensenshannon(a, b, base=2) for a, b in zip(p, q, strict=True)])
    expected_nats = np.array([jensenshannon(a, b) for a, b in zip(p, q, strict=True)])
    assert np.allclose(js_distance(p, q, "bits"), expected_bits, atol=1e-12)
    assert np.allclose(js_distance(p, q, "nats"), expected_nats, atol=1e-12)
    assert np.allclose(js_divergence(p, q), expected_bits**2, atol=1e-12)


def test_js_divergence_is_symmetric_bounded_by_one_bit_and_one_bit_for_disjoint_rows():
    p, q = random_rows((50, 6), 6), random_rows((50, 6), 7)
    js = js_divergence(p, q)
    assert np.allclose(js, js_divergence(q, p), atol=1e-14)
    assert np.all((js >= 0) & (js <= 1))
    assert js_divergence([1.0, 0.0], [0.0, 1.0]) == pytest.approx(1.0, abs=1e-12)
    assert js_divergence([1.0, 0.0], [0.0, 1.0], "nats") == pytest.approx(np.log(2), abs=1e-12)
    assert js_divergence(p, p).max() == pytest.approx(0.0, abs=1e-12)


def test_pairwise_js_distance_matches_scipy_pair_by_pair_on_causal_rows():
    a = causal_rows(9, seed=8)
    d = pairwise_js_distance(a)
    expected = np.array([[jensenshannon(x, y, base=2) for y in a] for x in a])
    assert np.allclose(d, expected, atol=1e-7)
    assert np.array_equal(d, d.T)
    assert np.all(np.diag(d) == 0)


def test_pairwise_js_distance_is_batched_and_block_size_does_not_change_it():
    a = random_rows((2, 3, 10, 10), 9)
    d = pairwise_js_distance(a)
    assert d.shape == (2, 3, 10, 10)
    assert np.allclose(d, pairwise_js_distance(a, block=3), atol=1e-14)
    assert np.allclose(d[1, 2], pairwise_js_distance(a[1, 2]), atol=1e-14)
    with pytest.raises(ValueError, match="block"):
        pairwise_js_distance(a, block=0)


def test_pairwise_js_distance_satisfies_the_triangle_inequality():
    a = np.concatenate([random_rows((30, 12), 10, sharp=6.0), causal_rows(12, seed=11)[:, :12]])
    d = pairwise_js_distance(a)
    slack = d[:, None, :] + d[None, :, :] - d[:, :, None]  # d(i,k)+d(k,j)-d(i,j) at [i,k,j]
    assert slack.min() > -1e-9


def test_pairwise_js_distance_fails_triangle_without_square_root_control():
    # Negative control: the JS *divergence* itself is not a metric.
    p, m, q = np.array([1.0, 0.0]), np.array([0.5, 0.5]), np.array([0.0, 1.0])
    assert js_divergence(p, q) > js_divergence(p, m) + js_divergence(m, q)
    assert js_distance(p, q) <= js_distance(p, m) + js_distance(m, q)


# ---------------------------------------------------------------- the double-softmax defect


def test_softmax_of_probabilities_flattens_rows_and_raises_entropy():
    p = random_rows((20, 16), 12, sharp=8.0)
    twice = softmax(p)
    assert np.all(entropy(twice) > entropy(p))
    # A probability row lies in [0, 1], so the second softmax keeps every ratio within e.
    assert np.all(twice.max(axis=-1) / twice.min(axis=-1) <= np.e + 1e-12)


def test_double_softmax_effect_respects_the_entropy_bound_and_flattens_rows():
    a = random_rows((2, 3, 7, 7), 13, sharp=8.0)
    effect = double_softmax_effect(a)
    assert effect["entropy"].shape == (2 * 3 * 7,) and effect["js"].shape == (2 * 3 * 7 * 6,)
    assert effect["bound_margin"].min() >= -1e-12
    assert np.all(effect["entropy_double"] > effect["entropy"])
    assert np.median(effect["js_double"]) < np.median(effect["js"])
    with pytest.raises(ValueError, match=r"\[\.\.\., n, n\]"):
        double_softmax_effect(random_rows((3, 4)))


# ---------------------------------------------------------------- normalised entropy, metrics, causal KL


def test_normalised_entropy_is_one_for_uniform_and_zero_for_one_hot_heads():
    n = 6
    uniform = np.full((n, n), 1 / n)
    one_hot = np.eye(n)
    assert np.allclose(normalised_entropy(np.stack([uniform, one_hot])), [1.0, 0.0], atol=1e-12)
    causal_uniform = np.tril(np.ones((n, n))) / np.arange(1, n + 1)[:, None]
    assert normalised_entropy(causal_uniform, causal=True) == pytest.approx(1.0, abs=1e-12)
    # Read as bidirectional, the causal rows are far from uniform over all n keys.
    assert normalised_entropy(causal_uniform) < 0.8


def test_normalised_entropy_rejects_non_square_and_non_causal_rows_marked_causal():
    with pytest.raises(ValueError, match=r"\[\.\.\., n, n\]"):
        normalised_entropy(random_rows((3, 4)))
    with pytest.raises(ValueError, match="later key"):
        normalised_entropy(random_rows((4, 4)), causal=True)
    with pytest.raises(ValueError, match="at least 2"):
        normalised_entropy(np.ones((1, 1)))


def test_triangle_slack_is_non_negative_for_a_metric_and_negative_for_squared_distances():
    x = np.array([0.0, 1.0, 2.0, 5.0])
    d = np.abs(x[:, None] - x[None, :])
    slack = triangle_slack(d)
    assert slack.shape == (4 * 3 * 2,)
    assert slack.min() == 0.0  # collinear points: equality
    assert triangle_slack(d**2).min() == pytest.approx(-12.0)  # 0, 2, 5: 4 + 9 < 25
    assert triangle_slack(np.stack([d, d])).shape == (2, 24)
    with pytest.raises(ValueError, match="n >= 3"):
        triangle_slack(np.zeros((2, 2)))


def test_causal_kl_pattern_is_finite_forwards_and_infinite_backwards_only_for_causal_rows():
    assert causal_kl_pattern(causal_rows(6, seed=14)) == (True, True)
    full = random_rows((6, 6), 15)
    assert causal_kl_pattern(full) == (True, False)
    # A last row with no weight beyond key 1 breaks both halves for the pair (2, 3).
    rows = causal_rows(4, seed=16)
    rows[3] = [0.5, 0.5, 0.0, 0.0]
    assert causal_kl_pattern(rows) == (False, False)


def test_epsilon_patched_kl_is_finite_and_grows_by_log_of_the_patch_ratio_times_the_weight_outside():
    p = np.array([0.3, 0.3, 0.4])
    q = np.array([0.5, 0.5, 0.0])
    assert kl_divergence(p, q) == np.inf
    small, smaller = epsilon_patched_kl(p, q, 1e-9), epsilon_patched_kl(p, q, 1e-12)
    assert np.isfinite(small) and np.isfinite(smaller)
    assert smaller - small == pytest.approx(0.4 * np.log2(1e3), rel=1e-3)
    # Where KL is finite the patch barely moves it.
    assert epsilon_patched_kl(q, p, 1e-9) == pytest.approx(kl_divergence(q, p), abs=1e-6)
    with pytest.raises(ValueError, match="eps"):
        epsilon_patched_kl(p, q, 0.0)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([0.5, 0.4], "sum to 1"),
        ([2.0, -1.0], "negative"),
        ([np.nan, 1.0], "non-finite"),
        ([np.inf, 0.0], "non-finite"),
        (np.zeros((3, 0)), "non-empty"),
        (1.0, "non-empty"),
    ],
)
def test_invalid_rows_raise_clear_errors(rows, message):
    with pytest.raises(ValueError, match=message):
        entropy(rows)


def test_row_sum_tolerance_is_the_stated_one():
    inside = np.array([0.5, 0.5 + 0.5 * ROW_SUM_ATOL])
    outside = np.array([0.5, 0.5 + 2 * ROW_SUM_ATOL])
    assert np.isfinite(entropy(inside))
    with pytest.raises(ValueError, match=r"row \(\) sums to"):
        as_distribution(outside)
    assert as_distribution(outside, atol=1e-3).sum() == pytest.approx(1.0, abs=1e-15)


def test_error_names_the_worst_row():
    rows = random_rows((2, 3, 4))
    rows[1, 2] *= 1.5
    with pytest.raises(ValueError, match=r"row \(1, 2\)"):
        entropy(rows)


def test_mismatched_shapes_and_units_and_types_are_rejected():
    with pytest.raises(ValueError, match="same shape"):
        kl_divergence([0.5, 0.5], [1 / 3, 1 / 3, 1 / 3])
    with pytest.raises(ValueError, match="same shape"):
        js_distance(random_rows((2, 4)), random_rows((3, 4)))
    with pytest.raises(ValueError, match="unit"):
        entropy([1.0], unit="bans")
    with pytest.raises(TypeError, match="numeric"):
        entropy(["a", "b"])
    with pytest.raises(ValueError, match="2-D"):
        pairwise_js_distance([0.5, 0.5])
