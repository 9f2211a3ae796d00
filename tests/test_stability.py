"""Tests of the word-group stability statistics (small synthetic data; the models are tiny)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from attention_study import stability as st
from attention_study import topology as topo
from attention_study.corpus import ADJECTIVES, NOUNS, PREPOSITIONS, generate_passages
from attention_study.models import load
from attention_study.tracing import trace

RNG = np.random.default_rng(0)


# --------------------------------------------------------------------------------------------
# H0 diagrams and their bottleneck distance, checked against topology


def test_h0_deaths_equal_topology_for_a_batch_of_clouds():
    clouds = RNG.normal(size=(3, 4, 7, 5))
    got = st.h0_deaths(np.sqrt(((clouds[..., :, None, :] - clouds[..., None, :, :]) ** 2).sum(-1)))
    assert got.shape == (3, 4, 6)
    for i in range(3):
        for j in range(4):
            np.testing.assert_allclose(got[i, j], topo.h0_deaths(clouds[i, j]), atol=1e-6)  # ripser: float32


def test_h0_deaths_of_too_few_points_is_an_error_naming_the_minimum():
    with pytest.raises(ValueError, match="H0 needs at least 2 points, got 1"):
        st.h0_deaths(np.zeros((1, 1)))


@pytest.mark.parametrize("p, q", [(1, 1), (3, 5), (6, 2), (4, 4), (1, 7)])
def test_h0_bottleneck_equals_topology_bottleneck_distance(p, q):
    for _ in range(40):
        a, b = RNG.exponential(size=p), RNG.exponential(size=q) * RNG.choice([0.2, 1.0])
        bars = [np.c_[np.zeros(len(x)), x] for x in (a, b)]
        assert st.h0_bottleneck(a, b) == pytest.approx(topo.bottleneck_distance(*bars), abs=1e-12)


def test_h0_bottleneck_by_hand_and_batched():
    assert st.h0_bottleneck(np.array([1.0]), np.array([0.0])) == pytest.approx(0.5)  # to the diagonal
    assert st.h0_bottleneck(np.array([1.0, 3.0]), np.array([3.0])) == pytest.approx(0.5)
    assert st.h0_bottleneck(np.array([2.0]), np.array([2.25])) == pytest.approx(0.25)
    a, b = RNG.exponential(size=(2, 3, 4)), RNG.exponential(size=(2, 3, 5))
    out = st.h0_bottleneck(a, b)
    assert out.shape == (2, 3) and out[1, 2] == pytest.approx(float(st.h0_bottleneck(a[1, 2], b[1, 2])))
    with pytest.raises(ValueError, match="finite deaths >= 0"):
        st.h0_bottleneck(np.array([-1.0]), np.array([1.0]))


# --------------------------------------------------------------------------------------------
# one group in one text


def test_group_profile_by_hand():
    line = np.array([[0.0], [1.0], [2.0]])  # distances 1, 2, 1: mean 4/3
    prof = st.group_profile(line, [0, 1])
    np.testing.assert_allclose(prof.distances, [0.75])
    np.testing.assert_allclose(prof.deaths, [0.75, 0.75])


def test_group_profile_is_scale_and_rotation_invariant_and_knows_word_order():
    x = RNG.normal(size=(2, 3, 6, 4))  # [layer, head, W, d]
    q, _ = np.linalg.qr(RNG.normal(size=(4, 4)))
    a = st.group_profile(x, [1, 2, 3])
    b = st.group_profile(7.5 * x @ q, [1, 2, 3])
    np.testing.assert_allclose(a.distances, b.distances, atol=1e-12)
    np.testing.assert_allclose(a.deaths, b.deaths, atol=1e-12)
    assert a.distances.shape == (2, 3, 3) and a.deaths.shape == (2, 3, 5)
    swapped = st.group_profile(x[..., [0, 2, 1, 3, 4, 5], :], [1, 2, 3])  # words 1 and 2 exchanged
    np.testing.assert_allclose(swapped.deaths, a.deaths, atol=1e-12)  # the diagram cannot tell
    assert not np.allclose(swapped.distances, a.distances)  # the word-pair distances can


def test_a_cloud_too_small_for_the_homology_is_an_error_naming_the_group():
    with pytest.raises(ValueError, match=r"'by and large' has 3 points; homology up to H1 needs at least 4"):
        st.group_profile(RNG.normal(size=(3, 5)), [0, 1, 2], phrase="by and large", maxdim=1)
    with pytest.raises(ValueError, match="coincide"):
        st.group_profile(np.ones((4, 3)), [0, 1])
    with pytest.raises(ValueError, match="distinct point indices"):
        st.group_profile(RNG.normal(size=(4, 3)), [0, 4])


def test_locate_group_clips_its_window_at_the_ends_of_the_text():
    text = "Of course, we went by and large home."
    w = st.locate_group(text, "by and large", window=2)
    assert [text[s:e] for s, e in w.spans] == ["we", "went", "by", "and", "large", "home"]
    assert w.group == (2, 3, 4)
    w0 = st.locate_group(text, "of course", window=2)
    assert [text[s:e] for s, e in w0.spans] == ["Of", "course", "we", "went"] and w0.group == (0, 1)
    w1 = st.locate_group("apprehensive for one's life", "for one", window=1)
    assert w1.group == (1, 2)  # "one's" is the word that holds "one"


def test_locate_group_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"'spill the beans' does not occur in the sentence 'He spilled the beans'"):
        st.locate_group("He spilled the beans", "spill the beans")
    with pytest.raises(ValueError, match="at least 2 words"):
        st.locate_group("a word", "word")
    with pytest.raises(ValueError, match="window must be an integer >= 0"):
        st.locate_group("by and large", "by and large", window=-1)


def test_window_vectors_average_the_tokens_of_each_word():
    text = "ab cd"
    offsets = [(0, 0), (0, 1), (1, 2), (3, 5), (0, 0)]  # [CLS] a ##b cd [SEP]
    c = RNG.normal(size=(2, 3, 5, 4))
    out = st.window_vectors(c, offsets, st.locate_group(text, "ab cd"))
    assert out.shape == (2, 3, 2, 4)
    np.testing.assert_allclose(out[..., 0, :], c[:, :, 1:3].mean(axis=2))
    np.testing.assert_allclose(out[..., 1, :], c[:, :, 3])


# --------------------------------------------------------------------------------------------
# across contexts


def _profile(x, group=(0, 1), phrase="g"):
    return st.group_profile(x, list(group), phrase)


def test_spreads_are_zero_for_the_same_shape_and_positive_otherwise():
    x = RNG.normal(size=(2, 2, 5, 3))
    same = [_profile(x), _profile(3 * x), _profile(-x)]  # scaled and reflected: the same shape
    np.testing.assert_allclose(st.distance_spread(same), 0, atol=1e-12)
    np.testing.assert_allclose(st.diagram_spread(same), 0, atol=1e-12)
    moved = [*same, _profile(x + RNG.normal(size=x.shape))]
    assert np.all(st.distance_spread(moved) > 0) and np.all(st.diagram_spread(moved) > 0)
    a, b = st.spreads([*moved, *moved], 4)
    assert a.shape == b.shape == (2, 2, 2)


def test_spreads_need_two_contexts_of_one_group():
    x = RNG.normal(size=(4, 3))
    with pytest.raises(ValueError, match="at least 2 contexts"):
        st.distance_spread([_profile(x)])
    with pytest.raises(ValueError, match="profiles of one group"):
        st.diagram_spread([_profile(x, phrase="a b"), _profile(x, phrase="c d")])
    with pytest.raises(ValueError, match="multiple of m"):
        st.spreads([_profile(x)] * 5, 2)


# --------------------------------------------------------------------------------------------
# the paired comparison


def test_holm_by_hand():
    np.testing.assert_allclose(st.holm(np.array([0.01, 0.04, 0.03, 0.5])), [0.04, 0.09, 0.09, 0.5])
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        st.holm(np.array([1.5]))


def test_paired_test_finds_a_shift_and_its_interval_holds_the_effect():
    d = np.c_[RNG.normal(-0.8, 1.0, 200), RNG.normal(0.0, 1.0, 200)]
    t = st.paired_test(d, n_boot=500)
    assert t.dz[0] < -0.5 and t.p_holm[0] < 1e-6 and t.p_holm[1] > 0.05
    assert np.all((t.ci_low <= t.dz) & (t.dz <= t.ci_high))
    assert np.all(t.p_holm >= t.p)
    assert t.significant(0.05) == ([0], [])
    assert t.take(slice(1, 2)).dz.tolist() == [t.dz[1]]
    with pytest.raises(ValueError, match="constant"):
        st.paired_test(np.ones((10, 2)))


def test_power_paired_t_known_values():
    assert st.power_paired_t(20, 0.0, 0.05) == pytest.approx(0.05)
    assert st.power_paired_t(20, 0.5, 0.05) == pytest.approx(0.5645, abs=1e-3)  # G*Power's value
    assert st.power_paired_t(200, 0.3, 0.05 / 144) > st.power_paired_t(100, 0.3, 0.05 / 144)
    dz = st.detectable_effect(20, 0.05, 0.8)
    assert st.power_paired_t(20, dz, 0.05) == pytest.approx(0.8, abs=1e-3) and 0.6 < dz < 0.7


def _test(dz, lo, hi, p):
    dz, lo, hi, p = map(np.asarray, (dz, lo, hi, p))
    return st.PairedTest(dz, lo, hi, p, p, 100)


def test_verdict_follows_its_rule():
    assert st.verdict(_test([-0.5, 0.1], [-0.7, -0.1], [-0.3, 0.3], [1e-4, 0.5]), 0.05, 0.3) == "supported"
    assert st.verdict(_test([0.5, 0.1], [0.3, -0.1], [0.7, 0.3], [1e-4, 0.5]), 0.05, 0.3) == "refuted"
    assert st.verdict(_test([0.5, -0.5], [0.3, -0.7], [0.7, -0.3], [1e-4, 1e-4]), 0.05, 0.3) == "inconclusive"
    assert st.verdict(_test([0.0, 0.1], [-0.1, -0.1], [0.1, 0.25], [0.9, 0.5]), 0.05, 0.3) == "refuted"
    assert st.verdict(_test([0.0, 0.1], [-0.1, -0.1], [0.1, 0.35], [0.9, 0.5]), 0.05, 0.3) == "inconclusive"


# --------------------------------------------------------------------------------------------
# the generated corpus


def test_heldout_passages_are_not_training_passages():
    train = generate_passages(30, seed=3)
    held = st.heldout_passages(10, seed=3, start=40)
    assert not set(train) & set(held)
    assert held[0] == generate_passages(41, seed=3)[40]


TEXTS = [
    "Velka keeps cutting corners. In the long run, the fox sleeps.",
    'The dog sees strong coffee near Velka. Ada said again: "The fox sleeps in the long run."',
]


def test_phrase_slot_and_grammatical_controls():
    assert st.phrase_slot("cutting corners", TEXTS[:1]) == "noun phrase"
    assert st.phrase_slot("strong coffee", TEXTS[1:]) == "noun phrase"
    assert st.phrase_slot("in the long run", TEXTS) == "adverbial"
    grammar = {*ADJECTIVES, *PREPOSITIONS, *(s for s, _ in NOUNS), "the", "a", "an", "this", "that", "every"}
    for phrase, texts, k in (("cutting corners", TEXTS[:1], 2), ("in the long run", TEXTS, 4)):
        controls = st.grammatical_controls(phrase, texts, 3, random.Random(0))
        assert len(set(controls)) == 3
        for c in controls:
            assert len(c.split()) == k and set(c.split()) <= grammar
            assert all(c not in t.lower() for t in TEXTS)
    assert st.grammatical_controls("in the long run", TEXTS, 1, random.Random(0))[0].split()[0] in PREPOSITIONS
    with pytest.raises(ValueError, match="no noun phrase template with 6 words"):
        st.grammatical_controls("a b c d e f", ["Ada sees a b c d e f."], 1, random.Random(0))


def test_substitute_keeps_capitals_and_refuses_what_it_cannot_tell_apart():
    out = st.substitute(TEXTS[1], "in the long run", "near the old barn")
    assert out.endswith('"The fox sleeps near the old barn."')
    first = st.substitute(TEXTS[0], "in the long run", "near the old barn")
    assert "Near the old barn, the fox" in first
    with pytest.raises(ValueError, match="does not occur"):
        st.substitute(TEXTS[0], "strong coffee", "the old fox")
    with pytest.raises(ValueError, match="already occurs"):
        st.substitute(TEXTS[0], "cutting corners", "the fox")


def test_sentences_and_agreed_verdicts():
    quoted = 'Ada said again: "The fox sleeps in the long run."'
    assert st.sentences(TEXTS[1]) == ["The dog sees strong coffee near Velka.", quoted]
    assert st.sentence_of(TEXTS[0], "the fox") == "In the long run, the fox sleeps."
    assert st.agreed(["refuted", "refuted"]) == "refuted"
    assert st.agreed(["refuted", "supported"]) == "inconclusive"
    with pytest.raises(ValueError, match="need verdicts"):
        st.agreed(["maybe"])


def test_causal_prefix_and_contexts_in():
    assert st.causal_prefix(TEXTS[0], "cutting corners", window=0) == "Velka keeps cutting corners."
    assert st.causal_prefix(TEXTS[0], "cutting corners", window=2) == TEXTS[0]  # "In the" is in the window
    assert st.contexts_in("the fox", TEXTS, 2) == TEXTS
    with pytest.raises(ValueError, match=r"'strong coffee' occurs in 1 of the 2 texts; 2 contexts needed"):
        st.contexts_in("strong coffee", TEXTS, 2)


def test_compare_pairs_each_expression_with_the_mean_of_its_controls():
    s = np.ones((3 * 4, 2, 2))  # 4 blocks: expression, control, control
    s[0::3] = 0.5  # expressions more stable everywhere
    s += RNG.normal(0, 0.01, s.shape)
    out = st.compare(s, s.copy(), 3, n_boot=200)
    assert out["distance"].dz.shape == (4,) and out["overall"].dz.shape == (2,)
    assert np.all(out["distance"].dz < -10) and out["distance"].n == 4
    with pytest.raises(ValueError, match="per_group"):
        st.compare(s, s, 5)


# --------------------------------------------------------------------------------------------
# through a model


def test_profiles_of_a_batch_equal_profiles_of_single_traces(tiny_bert_dir):
    m = load(tiny_bert_dir)
    items = [("the cat", "the cat sat on the mat"), ("on the", "the cat sat on the mat"), ("the dog", "a dog")]
    with pytest.raises(ValueError, match="'the dog' does not occur"):
        st.profiles_of(m, items)
    items[2] = ("a dog", "a dog ran")
    got = st.profiles_of(m, items, window=1, batch_size=2)
    for (phrase, text), prof in zip(items, got, strict=True):
        t = trace(m, text)
        where = st.locate_group(text, phrase, 1)
        ref = st.group_profile(st.window_vectors(t.contexts.numpy(), t.offsets, where), where.group)
        assert prof.distances.shape == (t.n_layers, t.n_heads, 1)
        # float32 traces of a padded batch and of one text differ by round-off (other kernels, and on
        # other CPUs other vector widths); scaled distances carry it at ~1e-5 relative (4e-5 measured
        # under ATEN_CPU_CAPABILITY=default)
        np.testing.assert_allclose(prof.distances, ref.distances, rtol=2e-4, atol=1e-5)
        np.testing.assert_allclose(prof.deaths, ref.deaths, rtol=2e-4, atol=1e-5)
    with pytest.raises(ValueError, match="needs at least 4"):
        st.profiles_of(m, [("a dog", "a dog ran")], window=0, maxdim=1)
    assert st.fitting(m, ["a dog ran", " ".join(["cat"] * 36)], margin=5) == ["a dog ran"]


def test_planted_items_come_in_blocks_and_a_causal_prefix_changes_nothing(tiny_gpt2_dir):
    m = load(tiny_gpt2_dir)
    passages = [f"Ada {v}. Vel keeps cutting corners now. Ada." for v in "abc"]
    items, controls = st.planted_items(m, ["cutting corners"], passages, 2, 2, random.Random(1), window=1, margin=1)
    assert len(items) == 6 and [p for p, _ in items[:2]] == ["cutting corners"] * 2
    assert [p for p, _ in items[2:]] == [controls["cutting corners"][0]] * 2 + [controls["cutting corners"][1]] * 2
    assert items[0][1] == "Ada a. Vel keeps cutting corners now."
    whole, cut = st.profiles_of(m, [("cutting corners", passages[0]), items[0]], window=1)
    np.testing.assert_allclose(whole.distances, cut.distances, rtol=2e-4, atol=1e-5)  # round-off, as above
    np.testing.assert_allclose(whole.deaths, cut.deaths, rtol=2e-4, atol=1e-5)
