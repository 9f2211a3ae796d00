"""Tests of attention_study.topology: persistence, diagram distances, H0-scale clustering, phrases."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from scipy.cluster.hierarchy import linkage
from scipy.spatial.distance import pdist

from attention_study import topology as tp
from attention_study import views


def circle(n: int = 12, r: float = 1.0) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


def test_circle_has_one_long_h1_bar():
    dgms = tp.vietoris_rips(circle(), maxdim=1)
    h1 = tp.finite_bars(dgms[1])
    assert len(dgms) == 2
    assert len(h1) == 1
    assert h1[0, 1] - h1[0, 0] > 0.5


def test_h0_has_one_infinite_bar_and_n_minus_one_finite():
    x = np.random.default_rng(0).normal(size=(9, 3))
    dgm0 = tp.vietoris_rips(x, maxdim=0)[0]
    assert np.isinf(dgm0[:, 1]).sum() == 1
    assert len(tp.finite_bars(dgm0)) == 8


def test_h0_deaths_equal_single_linkage_merge_heights():
    x = np.random.default_rng(1).normal(size=(15, 4))
    heights = np.sort(linkage(pdist(x), method="single")[:, 2])
    np.testing.assert_allclose(tp.h0_deaths(x), heights, rtol=1e-6)


def test_distance_matrix_input_matches_point_cloud_input():
    x = np.random.default_rng(2).normal(size=(10, 3))
    a = tp.vietoris_rips(x, maxdim=1)
    b = tp.vietoris_rips_from_distances(tp.pairwise_distances(x), maxdim=1)
    for g, h in zip(a, b, strict=True):
        np.testing.assert_allclose(np.sort(g, axis=0), np.sort(h, axis=0), rtol=1e-6)


def test_cosine_metric_is_scale_invariant():
    x = np.random.default_rng(3).normal(size=(8, 5))
    a = tp.vietoris_rips(x, maxdim=0, metric="cosine")[0]
    b = tp.vietoris_rips(3.0 * x, maxdim=0, metric="cosine")[0]
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_diagram_distances_are_zero_on_identical_and_positive_on_scaled_clouds():
    x = circle()
    d1, d2 = tp.vietoris_rips(x, 1), tp.vietoris_rips(2 * x, 1)
    assert tp.diagram_distance(d1, d1, 0) == 0.0
    assert tp.diagram_distance(d1, d1, 1, kind="bottleneck") == 0.0
    assert tp.diagram_distance(d1, d2, 0) > 0.1
    assert tp.diagram_distance(d1, d2, 1, kind="bottleneck") > 0.1


def test_bottleneck_is_stable_under_small_perturbation():
    # the stability theorem: bottleneck(dgm(X), dgm(Y)) <= 2 * max displacement (Rips, Hausdorff)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(20, 3))
    eps = 1e-3
    y = x + rng.uniform(-eps, eps, size=x.shape) / np.sqrt(3)
    for k in (0, 1):
        d = tp.bottleneck_distance(tp.vietoris_rips(x, 1)[k], tp.vietoris_rips(y, 1)[k])
        assert d <= 2 * eps + 1e-12


def test_empty_diagrams_are_at_distance_zero():
    e = np.zeros((0, 2))
    assert tp.wasserstein_distance(e, e) == 0.0
    assert tp.bottleneck_distance(e, np.array([[0.0, np.inf]])) == 0.0


def test_too_few_points_for_h1_raises_naming_the_minimum():
    with pytest.raises(ValueError, match="at least 4 points"):
        tp.vietoris_rips(np.zeros((3, 2)) + np.arange(3)[:, None], maxdim=1)
    with pytest.raises(ValueError, match="at least 2 points"):
        tp.vietoris_rips(np.zeros((1, 2)), maxdim=0)
    assert tp.min_points_for_homology(2) == 6


def test_non_finite_vectors_raise():
    x = np.ones((5, 2))
    x[3, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        tp.vietoris_rips(x, maxdim=0)
    x[3, 1] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        tp.pairwise_distances(x)


def test_bad_distance_matrices_raise():
    with pytest.raises(ValueError, match="square"):
        tp.vietoris_rips_from_distances(np.zeros((3, 4)))
    d = np.array([[0, 1, 2], [1, 0, 1], [2, 3, 0.0]])
    with pytest.raises(ValueError, match="symmetric"):
        tp.vietoris_rips_from_distances(d, maxdim=0)
    with pytest.raises(ValueError, match="negative"):
        tp.vietoris_rips_from_distances(-np.ones((3, 3)), maxdim=0)


def test_bad_options_raise():
    with pytest.raises(ValueError, match="metric"):
        tp.pairwise_distances(np.eye(3), metric="manhattan")
    with pytest.raises(ValueError, match="maxdim"):
        tp.min_points_for_homology(-1)
    with pytest.raises(ValueError, match="rule"):
        tp.h0_scale(np.array([1.0]), rule="eyeball")
    with pytest.raises(ValueError, match="q must be"):
        tp.h0_scale(np.array([1.0]), rule="quantile", q=1.5)
    with pytest.raises(ValueError, match="kind"):
        tp.diagram_distance([np.zeros((0, 2))], [np.zeros((0, 2))], kind="hausdorff")


def test_largest_gap_scale_separates_two_blobs():
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.normal(0, 0.05, (10, 2)), rng.normal(5, 0.05, (7, 2))])
    labels, scale = tp.persistence_clusters(x, rule="largest_gap")
    assert 0.2 < scale < 5.0
    assert labels.tolist() == [0] * 10 + [1] * 7


def test_scale_comes_from_the_barcode_not_the_units():
    # scaling the cloud scales the read-off radius by the same factor, same clusters
    rng = np.random.default_rng(6)
    x = np.concatenate([rng.normal(0, 0.1, (6, 3)), rng.normal(3, 0.1, (6, 3))])
    la, sa = tp.persistence_clusters(x)
    lb, sb = tp.persistence_clusters(10 * x)
    assert la.tolist() == lb.tolist()
    assert sb == pytest.approx(10 * sa)


def test_quantile_scale_is_that_quantile_of_deaths():
    d = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert tp.h0_scale(d, "quantile", 0.5) == 3.0
    assert tp.h0_scale(np.array([0.1, 0.2, 2.0]), "largest_gap") == pytest.approx(1.1)


def test_consecutive_runs_finds_maximal_runs_within_length_bounds():
    assert tp.consecutive_runs([0, 0, 1, 2, 2, 2, 0]) == [(0, 2), (3, 6)]
    assert tp.consecutive_runs([0, 0, 1, 2, 2, 2, 0], max_len=2) == [(0, 2)]
    assert tp.consecutive_runs([5], min_len=1) == [(0, 1)]
    with pytest.raises(ValueError):
        tp.consecutive_runs([0], min_len=0)


def test_word_vectors_average_subword_tokens_and_skip_special_tokens():
    text = "big rabbits run"
    spans = tp.word_spans(text)
    offsets = [(0, 0), (0, 3), (4, 8), (8, 11), (12, 15), (0, 0)]  # rabbits -> 2 pieces
    v = np.arange(12, dtype=float).reshape(6, 2)
    w = tp.word_vectors(v, offsets, spans)
    np.testing.assert_allclose(w, [[2, 3], [5, 6], [8, 9]])
    with pytest.raises(ValueError, match="no token covers"):
        tp.word_vectors(v[:3], offsets[:3], spans)


def test_extract_phrases_returns_the_planted_tight_group():
    text = "we saw the red fox jump over lazy dogs today"
    spans = tp.word_spans(text)
    rng = np.random.default_rng(7)
    vecs = rng.normal(0, 1.0, (len(spans), 8)) * 3
    vecs[3] = vecs[4] + 0.01  # "red fox" is a tight pair
    vecs[7] = vecs[8] + 0.02  # "lazy dogs" too
    phrases = tp.extract_phrases(text, vecs, spans, rule="largest_gap", stopwords={"the"})
    assert [p.text for p in phrases] == ["red fox", "lazy dogs"]
    assert phrases[0].score > phrases[1].score > 0


def test_extract_phrases_rejects_mismatched_vectors():
    with pytest.raises(ValueError, match="one row per word"):
        tp.extract_phrases("two words", np.zeros((3, 2)))


def test_plots_draw_every_bar():
    dgms = tp.vietoris_rips(circle(), 1)
    ax = views.plot_barcode(dgms)
    assert len(ax.lines) == sum(len(g) for g in dgms)
    ax = views.plot_diagrams(dgms, title="circle")
    assert ax.get_title() == "circle"


def test_phrase_not_in_text_is_an_error_naming_it():
    from attention_study.tracing import find_phrase

    with pytest.raises(ValueError, match="rabbits out of hats"):
        find_phrase("the magician bowed", "rabbits out of hats")


def test_text_phrases_maps_token_vectors_to_word_phrases():
    text = "old red fox ran"
    offsets = [(0, 0), (0, 3), (4, 7), (8, 11), (12, 15), (0, 0)]
    v = np.array([[9.0, 9], [-10, 0], [5, 5], [5.1, 5], [20, 0], [9, 9]])
    phrases = tp.text_phrases(text, v, offsets, rule="largest_gap")
    assert [p.text for p in phrases] == ["red fox"]
    assert (phrases[0].start, phrases[0].stop) == (1, 3)


def test_the_cut_scale_comes_from_float64_heights_so_an_edge_at_the_scale_is_always_kept():
    # q = 0.5 of three deaths lands exactly on the middle death: its edge must join the cluster, and
    # rounding the deaths to float32 (as ripser stores them) must not decide that.
    x = np.array([[0.0], [0.1], [0.8], [5.0]])   # the middle edge, 0.7, rounds down in float32
    heights = tp.merge_heights(tp.pairwise_distances(x))
    np.testing.assert_allclose(heights, tp.h0_deaths(x), rtol=1e-6)
    labels, scale = tp.persistence_clusters(x, rule="quantile", q=0.5)
    assert scale == heights[1]
    assert labels.tolist() == [0, 0, 0, 1]


def test_no_metric_module_imports_a_plotting_library():
    import subprocess
    import sys

    metrics = ["heads", "information", "contextuality", "rollout", "topology", "collocations", "autoregressive",
               "interventions", "tracing", "validation"]
    code = ("import sys\n" + "".join(f"import attention_study.{m}\n" for m in metrics)
            + "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"a metric module imported matplotlib: {out}"
