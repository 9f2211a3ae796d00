"""matplotlib views of attention: what is drawn matches the weights; bad input is refused."""

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from attention_study import views


def fake_trace(layers=2, heads=3, tokens=("[CLS]", "the", "$cat", "sat", "[SEP]"), seed=0):
    generator = torch.Generator().manual_seed(seed)
    n = len(tokens)
    logits = torch.randn(layers, heads, n, n, generator=generator) * 2
    return SimpleNamespace(
        attentions=torch.softmax(logits, dim=-1), tokens=list(tokens), model_name="fake"
    )


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_heatmap_shows_the_head_matrix_with_token_labels():
    trace = fake_trace()
    ax = views.attention_heatmap(trace, layer=1, head=2)
    np.testing.assert_allclose(ax.images[0].get_array(), trace.attentions[1, 2].numpy(), atol=1e-6)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["[CLS]", "the", r"\$cat", "sat", "[SEP]"]
    assert "layer 1, head 2" in ax.get_title()


def test_heatmap_of_no_head_is_the_mean_over_heads():
    trace = fake_trace()
    ax = views.attention_heatmap(trace, layer=0)
    expected = trace.attentions[0].mean(dim=0).numpy()
    np.testing.assert_allclose(ax.images[0].get_array(), expected, atol=1e-6)


def test_layer_grid_has_one_panel_per_head():
    fig = views.layer_heads_grid(fake_trace(heads=5), layer=1, ncols=2)
    drawn = [ax for ax in fig.axes if ax.images]
    assert len(drawn) == 5
    assert [ax.get_title() for ax in drawn] == [f"head {h}" for h in range(5)]


def test_two_sentences_side_by_side():
    a, b = fake_trace(seed=1), fake_trace(tokens=("a", "b", "c"), seed=2)
    fig = views.compare_sentences(a, b, layer=0, head=1)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 2
    np.testing.assert_allclose(panels[1].images[0].get_array(), b.attentions[0, 1].numpy(), atol=1e-6)


def test_bipartite_graph_draws_one_edge_per_weight_above_threshold():
    trace = fake_trace()
    threshold = 0.2
    ax = views.attention_graph(trace, layer=1, head=0, threshold=threshold, max_width=5.0)
    weights = trace.attentions[1, 0].numpy()
    kept = weights[weights >= threshold]
    lines = ax.collections[0]
    assert len(lines.get_segments()) == kept.size
    np.testing.assert_allclose(sorted(lines.get_linewidths()), sorted(5.0 * kept), atol=1e-5)
    assert "≥ 0.2" in ax.get_title()


def test_layered_graph_connects_consecutive_layers():
    trace = fake_trace(layers=3)
    ax = views.layered_attention_graph(trace, threshold=0.3)
    mean = trace.attentions.mean(dim=1).numpy()
    segments = ax.collections[0].get_segments()
    assert len(segments) == int((mean >= 0.3).sum())
    assert all(abs(s[0][0] - s[1][0]) == 1 for s in segments)


def test_patch_overlay_draws_image_and_grid():
    ax = views.patch_overlay(np.arange(64.0).reshape(8, 8), np.linspace(0, 1, 16))
    assert ax.images[1].get_array().shape == (4, 4)


@pytest.mark.parametrize("threshold", [-0.1, 1.5, float("nan")])
def test_threshold_outside_unit_interval_is_refused(threshold):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        views.attention_graph(fake_trace(), 0, 0, threshold=threshold)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        views.layered_attention_graph(fake_trace(), threshold=threshold)


def test_layer_and_head_out_of_range_name_the_valid_range():
    trace = fake_trace(layers=2, heads=3)
    with pytest.raises(IndexError, match=r"valid layers are 0..1"):
        views.attention_heatmap(trace, layer=2, head=0)
    with pytest.raises(IndexError, match=r"valid heads are 0..2"):
        views.attention_graph(trace, layer=0, head=-1)
    with pytest.raises(IndexError, match=r"valid heads are 0..2"):
        views.layered_attention_graph(trace, head=3)


def test_one_token_trace_is_refused():
    with pytest.raises(ValueError, match="at least 2 tokens"):
        views.attention_heatmap(fake_trace(tokens=("hi",)), 0, 0)


def test_wrong_patch_grid_is_refused():
    with pytest.raises(ValueError, match="square patch grid"):
        views.patch_overlay(np.zeros((8, 8)), np.ones(15))
    with pytest.raises(ValueError, match="2-D grey"):
        views.patch_overlay(np.zeros(8), np.ones(9))


def test_real_encoder_trace_draws_and_empty_text_is_refused():
    from attention_study.models import load
    from attention_study.tracing import trace

    model = load("minilm")
    traced = trace(model, "Attention is all you need.")
    ax = views.attention_heatmap(traced, layer=0, head=0)
    assert ax.get_xticklabels()[0].get_text() == "[CLS]"
    with pytest.raises(ValueError, match="empty"):
        trace(model, "")


@pytest.mark.slow
def test_vit_rollout_over_a_digit_and_wrong_image_size_is_refused():
    from sklearn.datasets import load_digits

    from attention_study.interactive import patch_view
    from attention_study.models import load
    from attention_study.rollout import rollout
    from attention_study.tracing import trace

    model = load("digits-vit")
    image = load_digits().images[0]
    traced = trace(model, image)
    cls = rollout(traced.attentions)[-1][0]
    ax = views.patch_overlay(image, cls[1:])
    assert ax.images[1].get_array().size == traced.n_tokens - 1
    assert "<svg" in patch_view(traced, image).html
    with pytest.raises(ValueError, match="8"):
        trace(model, np.zeros((10, 10)))
