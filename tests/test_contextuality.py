"""Token-class attention statistics, Ethayarajh's contextuality metrics, Yun's distinctness test."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attention_study import corpus_stats
from attention_study.contextuality import (
    CLASS_NAMES,
    VERDICTS,
    Comparison,
    HeadComparison,
    attention_to_classes,
    bert_base_layers,
    bootstrap_ci,
    clark_comparisons,
    compare,
    contextuality_by_layer,
    ethayarajh_comparisons,
    format_comparisons,
    intra_sentence_similarity,
    max_explainable_variance,
    min_distance_across_distinct_prefixes,
    min_distances_within_across,
    min_pairwise_distance,
    random_mev,
    random_pair_cosine,
    seed_summary,
    self_similarity,
    token_classes,
    word_sample_mev,
)
from attention_study.information import normalised_entropy

BERT_TOKENS = ["[CLS]", "the", "cat", ",", "sat", "##s", ".", "[SEP]"]


def test_token_classes_find_special_tokens_and_punctuation_in_bert_and_gpt2_spellings():
    masks = token_classes(BERT_TOKENS)
    assert masks["cls"].tolist() == [True] + [False] * 7
    assert masks["sep"].tolist() == [False] * 7 + [True]
    assert np.flatnonzero(masks["punctuation"]).tolist() == [3, 6]
    gpt2 = token_classes(["<|endoftext|>", "Ġthe", "Ġ,", "!", "Ġdog", "'s"])
    assert gpt2["cls"].tolist() == [True, False, False, False, False, False]
    assert np.flatnonzero(gpt2["punctuation"]).tolist() == [2, 3]
    with pytest.raises(ValueError, match="empty"):
        token_classes([])


def test_attention_to_classes_on_hand_built_heads():
    n = len(BERT_TOKENS)
    uniform = np.full((n, n), 1.0 / n)
    previous = np.eye(n, k=-1)
    previous[0, 0] = 1.0  # the first query has no previous token
    following = np.eye(n, k=1)
    following[-1, -1] = 1.0
    stats = attention_to_classes(np.stack([uniform, previous, following]), BERT_TOKENS)
    assert list(stats) == list(CLASS_NAMES)
    assert np.allclose(stats["cls"], [1 / n, 2 / n, 0.0])  # query 0 on itself, query 1 back
    assert np.allclose(stats["punctuation"], [2 / n, 2 / n, 2 / n])
    assert np.allclose(stats["previous"], [1 / n, 1.0, 0.0])
    assert np.allclose(stats["next"], [1 / n, 0.0, 1.0])
    assert np.allclose(stats["self"], [1 / n, 1 / n, 1 / n])


def test_attention_to_classes_rejects_mismatched_tokens_and_non_square_or_invalid_rows():
    a = np.full((4, 4), 0.25)
    with pytest.raises(ValueError, match="4 positions"):
        attention_to_classes(a, ["a", "b"])
    with pytest.raises(ValueError, match=r"\[\.\.\., n, n\]"):
        attention_to_classes(np.full((2, 4), 0.25), ["a", "b"])
    with pytest.raises(ValueError, match="sum to 1"):
        attention_to_classes(np.ones((4, 4)), list("abcd"))


def test_self_similarity_is_one_for_a_static_word_and_zero_for_orthogonal_contexts():
    v = np.array([1.0, 2.0, -1.0])
    assert self_similarity(np.stack([v, 3 * v, 0.5 * v])) == pytest.approx(1.0)
    assert self_similarity(np.eye(4)) == pytest.approx(0.0, abs=1e-15)
    batched = self_similarity(np.stack([np.eye(3), np.ones((3, 3))]))
    assert np.allclose(batched, [0.0, 1.0])
    with pytest.raises(ValueError, match=">= 2"):
        self_similarity(v[None])


def test_intra_sentence_similarity_is_one_for_parallel_tokens():
    x = np.outer([1.0, 2.0, 5.0], [1.0, -1.0, 0.5])
    assert intra_sentence_similarity(x) == pytest.approx(1.0)
    # Two opposite-ish tokens plus their mean: cosine of each to the mean vector.
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert intra_sentence_similarity(y) == pytest.approx(np.sqrt(0.5))


def test_mev_is_one_for_rank_one_and_one_over_n_for_orthonormal_occurrences():
    v = np.array([0.3, -1.0, 2.0, 0.0])
    assert max_explainable_variance(np.outer([1.0, -2.0, 4.0], v)) == pytest.approx(1.0)
    assert max_explainable_variance(np.eye(5)[:4]) == pytest.approx(0.25)
    # Centring removes the shared direction: identical rows leave nothing.
    shifted = np.eye(3) + 10.0
    assert max_explainable_variance(shifted) > 0.99
    assert max_explainable_variance(shifted, center=True) == pytest.approx(0.5)


def test_random_pair_baselines_draw_only_pairs_from_different_sentences():
    # Tokens within a sentence are identical; sentences are mutually orthogonal.
    pool = np.repeat(np.eye(4), 3, axis=0)
    ids = np.repeat(np.arange(4), 3)
    assert random_pair_cosine(pool, ids, n_pairs=500) == pytest.approx(0.0, abs=1e-15)
    assert random_mev(pool, ids, size=4, n_draws=20) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="two sentences"):
        random_pair_cosine(pool, np.zeros(12), n_pairs=5)
    with pytest.raises(ValueError, match="size"):
        random_mev(pool, ids, size=5)


def test_contextuality_by_layer_of_static_representations_is_fully_non_contextual():
    rng = np.random.default_rng(0)
    vocab = rng.normal(size=(6, 8))
    sentences = [[0, 1, 2], [0, 3, 4], [5, 1, 0]]
    hidden = [np.stack([vocab[s], 2.0 * vocab[s]]) for s in sentences]  # [2 layers, token, d]
    occurrences = {"w0": [(0, 0), (1, 0), (2, 2)], "w1": [(0, 1), (2, 1)]}
    out = contextuality_by_layer(hidden, occurrences, n_pairs=200, n_draws=20)
    assert np.allclose(out["self_similarity"], 1.0)
    assert np.allclose(out["mev"], 1.0)
    assert np.allclose(out["self_similarity_adjusted"], out["self_similarity"] - out["baseline_cosine"])
    assert np.all(out["baseline_cosine"] < 1.0)
    assert out["intra_similarity"].shape == (2,)
    assert set(out["self_similarity_by_word"]) == {"w0", "w1"}
    assert np.allclose(out["mev_by_word"]["w1"], 1.0)


def test_contextuality_by_layer_rejects_words_seen_in_one_sentence_and_bad_indices():
    hidden = [np.ones((2, 3, 4)), np.ones((2, 3, 4))]
    with pytest.raises(ValueError, match="at least two sentences"):
        contextuality_by_layer(hidden, {"w": [(0, 0), (0, 1)]})
    with pytest.raises(ValueError, match="out of range"):
        contextuality_by_layer(hidden, {"w": [(0, 0), (1, 7)]})
    with pytest.raises(ValueError, match="non-finite"):
        contextuality_by_layer([np.full((2, 3, 4), np.nan)] * 2, {"w": [(0, 0), (1, 0)]})


def test_min_pairwise_distance_finds_the_closest_pair_and_exact_duplicates():
    pts = np.array([[0.0, 0.0], [3.0, 4.0], [3.0, 4.5]])
    low, med = min_pairwise_distance(pts)
    assert low == pytest.approx(0.5)
    assert med == pytest.approx(5.0)
    dup = np.array([[1e3, 2e3], [1e3, 2e3], [0.0, 1.0]])
    assert min_pairwise_distance(dup)[0] == 0.0  # exact, no cancellation from |x|² − 2x·y
    with pytest.raises(ValueError, match="at least 2"):
        min_pairwise_distance(pts[:1])


def test_within_and_across_distances_separate_yun_conditions():
    a = np.array([[[0.0, 0.0], [1.0, 0.0]], [[0.0, 0.0], [2.0, 0.0]]])  # [layer, token, d]
    b = np.array([[[0.0, 0.0], [0.0, 5.0]], [[0.0, 1.0], [0.0, 5.0]]])
    out = min_distances_within_across([a, b])
    assert np.allclose(out["within"], [1.0, 2.0])
    assert np.allclose(out["across"], [0.0, 1.0])  # layer 0: a shared token maps to one vector
    with pytest.raises(ValueError, match="two sequences"):
        min_distances_within_across([a])


def test_contextuality_by_layer_returns_per_unit_values_consistent_with_its_means():
    rng = np.random.default_rng(1)
    hidden = [rng.normal(size=(3, 5, 6)) + 1.0 for _ in range(4)]
    occurrences = {"a": [(0, 1), (1, 2), (3, 0)], "b": [(1, 0), (2, 4)]}
    out = contextuality_by_layer(hidden, occurrences, n_pairs=300, n_draws=30)
    assert out["baseline_cosine_pairs"].shape == (3, 300)
    assert np.allclose(out["baseline_cosine_pairs"].mean(axis=1), out["baseline_cosine"])
    assert out["intra_similarity_by_sentence"].shape == (4, 3)
    assert np.allclose(out["intra_similarity_by_sentence"].mean(axis=0), out["intra_similarity"])
    for word in occurrences:
        assert np.allclose(
            out["self_similarity_adjusted_by_word"][word],
            out["self_similarity_by_word"][word] - out["baseline_cosine"],
        )
    mean_adjusted = np.mean([out["mev_adjusted_by_word"][w] for w in occurrences], axis=0)
    assert np.allclose(mean_adjusted, out["mev_adjusted"])


def test_min_distance_across_distinct_prefixes_skips_pairs_that_share_a_prefix():
    # Two sequences [1, 2, 3] and [1, 2, 4]: tokens 0 and 1 share prefixes, token 2 does not.
    a = np.array([[[0.0], [1.0], [5.0]]])  # [layer, token, d]
    b = np.array([[[0.0], [1.0], [5.5]]])
    assert min_distances_within_across([a, b])["across"][0] == 0.0
    free = min_distance_across_distinct_prefixes([a, b], [np.array([1, 2, 3]), np.array([1, 2, 4])])
    # Nearest pair whose prefixes differ: a's token 2 and b's token 2 (0.5 apart).
    assert free.tolist() == [0.5]
    with pytest.raises(ValueError, match="shape"):
        min_distance_across_distinct_prefixes([a, b], [np.array([1, 2]), np.array([1, 2, 4])])


# ---------------------------------------------------------------- comparing with a paper


def test_bootstrap_ci_brackets_the_mean_is_reproducible_and_degenerate_for_constant_data():
    x = np.random.default_rng(2).normal(loc=3.0, size=200)
    est, low, high = bootstrap_ci(lambda i: x[i].mean(), len(x), seed=5)
    assert est == pytest.approx(x.mean())
    assert low < est < high and high - low == pytest.approx(2 * 1.96 / np.sqrt(200), rel=0.2)
    assert bootstrap_ci(lambda i: x[i].mean(), len(x), seed=5) == (est, low, high)
    wider = bootstrap_ci(lambda i: x[i].mean(), len(x), seed=5, confidence=0.99)
    assert wider[1] < low and wider[2] > high
    c = np.full(10, 7.0)
    assert bootstrap_ci(lambda i: c[i].mean(), 10) == (7.0, 7.0, 7.0)


def test_bootstrap_ci_with_strata_keeps_each_group_size():
    groups = np.array([0] * 3 + [1] * 7)
    seen = []

    def count_first_group(i):
        seen.append(int((groups[i] == 0).sum()))
        return 0.0

    bootstrap_ci(count_first_group, 10, strata=groups, n_resamples=200)
    assert set(seen) == {3}


def test_bootstrap_ci_rejects_bad_arguments():
    with pytest.raises(ValueError, match="at least 2 units"):
        bootstrap_ci(lambda i: 0.0, 1)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci(lambda i: 0.0, 5, confidence=1.0)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_ci(lambda i: 0.0, 5, n_resamples=10)
    with pytest.raises(ValueError, match="stratum"):
        bootstrap_ci(lambda i: 0.0, 3, strata=[0, 0, 1])
    with pytest.raises(ValueError, match="not finite"):
        bootstrap_ci(lambda i: np.nan, 5)


def comparison(side, low, high, threshold=0.0):
    return Comparison("f", "p", "s", side, threshold, (low + high) / 2, low, high, 0.95)


def test_comparison_verdict_reads_the_interval_against_the_threshold_on_either_side():
    assert comparison(">", 0.1, 0.3).verdict == "agree"
    assert comparison(">", -0.3, -0.1).verdict == "disagree"
    assert comparison(">", -0.1, 0.1).verdict == "inconclusive"
    assert comparison("<", -0.3, -0.1).verdict == "agree"
    assert comparison("<", 0.1, 0.3).verdict == "disagree"
    assert comparison("<", 0.45, 0.55, threshold=0.5).verdict == "inconclusive"
    assert comparison(">", 0.0, 0.2).verdict == "inconclusive"  # touching the threshold is not enough
    c = comparison("<", 0.1, 0.3, threshold=0.05)
    assert c.criterion == "s < 0.05" and c.ours() == "0.20 [0.10, 0.30]"
    with pytest.raises(ValueError, match="side"):
        comparison(">=", 0.1, 0.3)
    with pytest.raises(ValueError, match="empty"):
        comparison(">", 0.3, 0.1)


def test_compare_measures_the_statistic_and_gives_its_verdict():
    x = np.random.default_rng(3).normal(loc=1.0, scale=0.1, size=50)
    c = compare("mean is positive", "> 0", "mean", ">", 0.0, lambda i: x[i].mean(), len(x))
    assert c.verdict == "agree" and c.low > 0.9 and c.estimate == pytest.approx(x.mean())


def test_seed_summary_counts_verdicts_in_a_fixed_order():
    assert seed_summary(["agree"] * 5) == "agree 5/5"
    assert seed_summary(["inconclusive", "agree", "disagree", "agree"]) == ("agree 2/4, disagree 1/4, inconclusive 1/4")
    with pytest.raises(ValueError, match="unknown"):
        seed_summary(["yes"])
    with pytest.raises(ValueError, match="no verdicts"):
        seed_summary([])


def test_format_comparisons_prints_one_row_per_finding_and_a_seed_column_when_asked():
    rows = [comparison(">", 0.1, 0.3), comparison("<", 0.1, 0.3)]
    text = format_comparisons(rows)
    lines = text.splitlines()
    assert lines[0].split() == ["finding", "paper", "ours", "[CI]", "criterion", "verdict"]
    assert lines[2].endswith("agree") and lines[3].endswith("disagree")
    by_seed = format_comparisons(rows, by_seed=[rows, [comparison(">", -0.3, -0.1), rows[1]]])
    assert "over 2 seeds" in by_seed and "agree 1/2, disagree 1/2" in by_seed
    with pytest.raises(ValueError, match="same findings"):
        format_comparisons(rows, by_seed=[rows[:1]])


def test_bert_base_layers_match_relative_depth_counting_from_zero():
    assert bert_base_layers(0, 3, 6) == [0, 1]  # the paper's layers 1-4
    assert bert_base_layers(5, 9, 6) == [2, 3, 4]  # the paper's 6-10
    assert bert_base_layers(8, 11, 6) == [4, 5]  # the paper's 9-12
    assert bert_base_layers(0, 11, 12) == list(range(12))
    assert bert_base_layers(5, 9, 12) == [5, 6, 7, 8, 9]
    assert bert_base_layers(0, 0, 24) == [0, 1]
    with pytest.raises(ValueError, match="first"):
        bert_base_layers(5, 4, 6)
    with pytest.raises(ValueError, match="11"):
        bert_base_layers(0, 12, 6)


def head_comparison(low, high, side=">", threshold=0.5, layers=(1,)):
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    return HeadComparison("f", "p", "s", side, threshold, (low + high) / 2, low, high, layers, 0.99)


def test_head_comparison_agrees_when_one_tested_head_clears_the_threshold():
    low = [[0.9, 0.9], [0.1, 0.6]]
    high = [[1.0, 1.0], [0.2, 0.7]]
    c = head_comparison(low, high)  # only layer 1 is tested: its head 1 lies above 0.5
    assert c.verdict == "agree" and c.count().tolist() == [1] and c.best() == (1, 1)
    assert c.ours() == "1/2 heads; best L1 H1 0.65 [0.60, 0.70]"
    assert c.criterion == "some head of L1: s > 0.5"
    assert head_comparison([[0.9, 0.9], [0.1, 0.2]], [[1, 1], [0.2, 0.3]]).verdict == "disagree"
    assert head_comparison([[0.9, 0.9], [0.1, 0.45]], [[1, 1], [0.2, 0.55]]).verdict == "inconclusive"
    below = head_comparison([[0.0, 0.1]], [[0.2, 0.3]], side="<", layers=(0,))
    assert below.verdict == "agree" and below.best() == (0, 0) and below.count("agree").tolist() == [2]
    with pytest.raises(ValueError, match="layers"):
        head_comparison(low, high, layers=(2,))
    with pytest.raises(ValueError, match="empty"):
        head_comparison([[0.3]], [[0.2]], layers=(0,))
    with pytest.raises(ValueError, match="unknown verdict"):
        c.count("yes")
    assert "1/2 heads" in format_comparisons([comparison(">", 0.1, 0.3), c])


def synthetic_clark_statistics(n_texts=12, n=12, layers=3, heads=2, seed=4):
    """Corpus sums of texts in which every head attends almost uniformly, except layer 0 head 0
    (previous token) and layer 2 head 1 (the comma): one block per text."""
    rng = np.random.default_rng(seed)
    tokens = ["[CLS]", "a", ",", *"bcdefghi", "[SEP]"]
    sums = corpus_stats._empty_sums(layers, heads, 2, 0, False, blocks=n_texts)
    masks = token_classes(tokens)
    for k in range(n_texts):
        a = np.full((layers, heads, n, n), 1 / n) + rng.uniform(0, 0.01, size=(layers, heads, n, n))
        a[0, 0] = np.eye(n, k=-1)
        a[0, 0, 0, 0] = 1.0
        a[2, 1] = 0.05
        a[2, 1, :, 2] = 1.0
        a /= a.sum(axis=-1, keepdims=True)
        per_class = attention_to_classes(a, tokens)
        items = {
            "texts": 1.0, "sequences": 1.0, "queries": n, "neighbour_queries": n - 1,
            "normalised_entropy": normalised_entropy(a) * n, "normalised_rows": n,
            **{c: per_class[c] * n for c in ("cls", "sep", "punctuation", "self")},
            **{c: per_class[c] * (n - 1) for c in ("previous", "next")},
            "class_tokens": np.array([masks[c].sum() for c in ("cls", "sep", "punctuation")], dtype=float),
        }  # fmt: skip
        for key, value in items.items():
            sums["block:" + key][k] = torch.as_tensor(value, dtype=torch.float64)
    for key in corpus_stats.BLOCK_KEYS:
        sums[key] = sums["block:" + key].sum(dim=0)
    return corpus_stats.HeadStatistics("synthetic", layers, heads, 2, (), sums)


def test_clark_comparisons_test_heads_one_by_one_with_a_corrected_confidence():
    stats = synthetic_clark_statistics()
    rows = clark_comparisons(stats, n_resamples=400)
    assert len(rows) == 7 and all(r.verdict in VERDICTS for r in rows)
    by_finding = {r.finding: r for r in rows}
    neighbours = by_finding["Some heads attend mostly to the previous/next token"]
    assert isinstance(neighbours, HeadComparison) and neighbours.verdict == "agree"
    assert neighbours.best() == (0, 0) and neighbours.count().sum() == 1
    assert neighbours.confidence == pytest.approx(1 - 0.05 / 7 / 6)
    punct = by_finding["Deep heads attend to periods and commas"]  # deep layers of 3: layer 2
    assert punct.layers == (2,) and punct.verdict == "agree" and punct.best() == (2, 1)
    assert by_finding["Most heads put little weight on the current token"].verdict == "agree"
    assert rows[0].confidence == pytest.approx(1 - 0.05 / 7)
    assert rows[2].verdict == "disagree"  # [SEP] gets about 1/12 of the attention, not over half


def test_word_sample_mev_of_static_words_is_one_and_its_baseline_is_lower():
    rng = np.random.default_rng(2)
    words, m, depth, d = 6, 4, 2, 8
    vocab = rng.normal(size=(words, d))
    vectors = np.repeat(vocab[:, None, None, :], m, axis=1).repeat(depth, axis=2)  # [W, m, depth, d]
    texts = np.arange(words * m).reshape(words, m) % 10
    mev, baseline = word_sample_mev(vectors, texts, n_draws=30)
    assert mev.shape == (words, depth) and np.allclose(mev, 1.0)
    assert baseline.shape == (depth,) and np.all(baseline < 0.9) and np.all(baseline >= 1 / m)
    texts[3, 2] = -1
    with pytest.raises(ValueError, match="word 3 has fewer than 4 samples"):
        word_sample_mev(vectors, texts)


def test_ethayarajh_comparisons_on_static_and_random_representations():
    rng = np.random.default_rng(5)
    vocab = rng.normal(size=(8, 16)) + 2.0  # a shared offset: anisotropic
    sentences = [rng.choice(8, size=6, replace=False) for _ in range(12)]
    static = [np.stack([vocab[s], vocab[s] + 0.01 * rng.normal(size=(6, 16))]) for s in sentences]
    occ = {}
    for k, s in enumerate(sentences):
        for t, w in enumerate(s):
            occ.setdefault(f"w{w}", []).append((k, t))
    result = contextuality_by_layer(static, occ, n_pairs=500, n_draws=20)
    rows = ethayarajh_comparisons(result, "vision", n_resamples=200)
    assert [r.finding for r in rows][:1] == ["Representations are anisotropic in every layer"]
    assert len(rows) == 3 and rows[0].verdict == "agree"
    # A static embedding: one vector explains all of a word's variance, far above 5%.
    assert rows[2].verdict == "disagree"
    text_rows = ethayarajh_comparisons(result, "bidirectional", stopwords=["w0", "w1"], n_resamples=200)
    assert len(text_rows) == 6 and text_rows[-1].finding.startswith("Stopwords")
    assert len(ethayarajh_comparisons(result, "causal", n_resamples=200)) == 4


def test_nearest_pairs_name_the_tokens_behind_yuns_distances():
    from attention_study.contextuality import min_distances_within_across, nearest_pairs

    rng = np.random.default_rng(0)
    reps = [rng.normal(size=(3, 5, 4)), rng.normal(size=(3, 4, 4)), rng.normal(size=(3, 6, 4))]
    reps[2][1, 3] = reps[0][1, 2] + 1e-3  # layer 1: token 2 of sequence 0 ~ token 3 of sequence 2
    reps[1][2, 3] = reps[1][2, 0] + 1e-4  # layer 2: tokens 0 and 3 of sequence 1
    pairs = nearest_pairs(reps)
    reference = min_distances_within_across(reps)
    assert pairs[1]["across"][:4] == (0, 2, 2, 3)
    assert pairs[2]["within"][:4] == (1, 0, 1, 3)
    for layer, p in enumerate(pairs):
        assert p["across"][4] == pytest.approx(reference["across"][layer])
        assert p["within"][4] == pytest.approx(reference["within"][layer])
        assert p["median"] == pytest.approx(reference["median"][layer])
    with pytest.raises(ValueError, match="at least two sequences"):
        nearest_pairs(reps[:1])


def test_head_comparison_power_reads_the_standard_error_from_normal_intervals():
    # a 95% normal interval of half-width 1.96 SE with SE = 0.01: margin (1.96 + 0.84) * 0.01
    c = HeadComparison("f", "p", "s", ">", 0.5, np.full((1, 2), 0.6), np.full((1, 2), 0.6 - 0.0196),
                       np.full((1, 2), 0.6 + 0.0196), (0,), 0.95)  # fmt: skip
    assert c.detectable_margin(0.8) == pytest.approx((1.959964 + 0.841621) * 0.01, rel=1e-3)
    with pytest.raises(ValueError, match="power"):
        c.detectable_margin(1.0)
