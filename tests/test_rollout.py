"""Attention rollout and flow (Abnar & Zuidema 2020): properties, a reference, bad input."""

import numpy as np
import pytest
import torch

from attention_study.rollout import (
    FLOW_RESOLUTION,
    attention_flow,
    attention_flow_networkx,
    layer_graph_matrices,
    rollout,
)


def random_attentions(layers=3, heads=2, tokens=5, seed=0, causal=False):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(layers, heads, tokens, tokens)) * 2
    if causal:
        logits = np.where(np.tril(np.ones((tokens, tokens))) > 0, logits, -np.inf)
    weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return weights / weights.sum(axis=-1, keepdims=True)


def test_rollout_rows_sum_to_one_after_every_layer():
    result = rollout(random_attentions(layers=4, tokens=7))
    assert result.shape == (4, 7, 7)
    np.testing.assert_allclose(result.sum(axis=-1), 1.0, atol=1e-12)
    assert np.all(result >= 0)


def test_rollout_equals_explicit_product_of_mixed_matrices():
    attentions = random_attentions(layers=3, tokens=4, seed=1)
    eye = np.eye(4)
    mixed = [0.5 * a.mean(axis=0) + 0.5 * eye for a in attentions]
    mixed = [m / m.sum(axis=1, keepdims=True) for m in mixed]
    expected = mixed[2] @ mixed[1] @ mixed[0]
    np.testing.assert_allclose(rollout(attentions)[-1], expected, atol=1e-12)
    np.testing.assert_allclose(rollout(attentions)[0], mixed[0], atol=1e-12)


def test_rollout_accepts_torch_and_head_reduced_input():
    attentions = random_attentions(layers=2, heads=1, tokens=3)
    from_torch = rollout(torch.tensor(attentions, dtype=torch.float32))
    from_3d = rollout(attentions[:, 0])
    np.testing.assert_allclose(from_torch, from_3d, atol=1e-6)


def test_rollout_with_full_attention_share_is_plain_product():
    attentions = random_attentions(layers=2, heads=1, tokens=4, seed=3)
    expected = attentions[1, 0] @ attentions[0, 0]
    np.testing.assert_allclose(rollout(attentions, attention_share=1.0)[-1], expected, atol=1e-12)


def test_rollout_of_causal_attention_stays_lower_triangular():
    result = rollout(random_attentions(layers=3, tokens=6, causal=True))
    assert np.all(np.triu(result[-1], k=1) == 0.0)


def test_flow_on_one_layer_is_the_edge_capacity():
    attentions = random_attentions(layers=1, heads=2, tokens=4, seed=4)
    mixed = layer_graph_matrices(attentions)[0]
    np.testing.assert_allclose(attention_flow(attentions), mixed, atol=2 * FLOW_RESOLUTION)


def test_flow_matches_networkx_reference_and_is_bounded():
    attentions = random_attentions(layers=3, heads=2, tokens=5, seed=5)
    ours = attention_flow(attentions)
    reference = attention_flow_networkx(attentions)
    np.testing.assert_allclose(ours, reference, atol=5e-5)
    assert ours.min() >= 0.0 and ours.max() <= 1.0


def test_flow_rows_for_chosen_queries_and_layers():
    attentions = random_attentions(layers=3, heads=2, tokens=5, seed=6)
    full = attention_flow(attentions)
    np.testing.assert_allclose(attention_flow(attentions, queries=[0, 3]), full[[0, 3]])
    first_layer = attention_flow(attentions, layer=1)
    np.testing.assert_allclose(first_layer, layer_graph_matrices(attentions)[0], atol=1e-5)


def test_causal_flow_never_reaches_future_tokens():
    flow = attention_flow(random_attentions(layers=2, tokens=5, causal=True, seed=7))
    assert np.all(np.triu(flow, k=1) == 0.0)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.ones((2, 2, 3)), "query == key"),
        (np.ones((2, 1, 1, 1)), "at least 2 tokens"),
        (np.full((1, 1, 2, 2), np.nan), "non-finite"),
        (-np.ones((1, 1, 2, 2)), "non-negative"),
        (np.ones((4, 4)), "shape"),
    ],
)
def test_bad_attentions_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        rollout(bad)


def test_bad_options_are_refused():
    attentions = random_attentions(layers=2, tokens=3)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        rollout(attentions, attention_share=1.5)
    with pytest.raises(ValueError, match="query token"):
        attention_flow(attentions, queries=[3])
    with pytest.raises(ValueError, match="layer must be in 1..2"):
        attention_flow(attentions, layer=0)
