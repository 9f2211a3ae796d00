"""Token-class attention statistics, Ethayarajh's contextuality metrics, Yun's distinctness test."""

from __future__ import annotations

import numpy as np
import pytest

from attention_study.contextuality import (
    CLASS_NAMES,
    attention_to_classes,
    contextuality_by_layer,
    intra_sentence_similarity,
    max_explainable_variance,
    min_distances_within_across,
    min_pairwise_distance,
    random_mev,
    random_pair_cosine,
    self_similarity,
    token_classes,
)

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
    assert np.allclose(
        out["self_similarity_adjusted"], out["self_similarity"] - out["baseline_cosine"]
    )
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
