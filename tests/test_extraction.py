"""Tests of attention_study.extraction: extractors, the scorer and the paired comparisons."""

import types

import numpy as np
import pytest

from attention_study import collocations as co
from attention_study import extraction as ex

ITEMS = [
    ("He spilled the beans about the stock market.", ["spilled the beans", "stock market"]),
    ("A red herring in the crime novel.", ["red herring"]),
    ("Nothing here.", ["piece of cake"]),
]


def table_extractor(table):
    return lambda text: list(table.get(text, []))


def test_scorer_counts_on_a_hand_made_case():
    pred = {
        ITEMS[0][0]: ["Stock Market", "the beans", "stock market"],   # 1 TP, duplicates once
        ITEMS[1][0]: ["red herring", "crime novel"],                   # 1 TP
        ITEMS[2][0]: [],
    }
    ev = ex.score_extractor(table_extractor(pred), ITEMS)
    assert ev.true_positives.tolist() == [1, 1, 0]
    assert ev.n_predicted.tolist() == [2, 2, 0]
    assert ev.n_gold.tolist() == [2, 1, 1]
    assert ev.prf.precision == pytest.approx(2 / 4)
    assert ev.prf.recall == pytest.approx(2 / 4)
    assert ev.prf.f1 == pytest.approx(0.5)
    top1 = ex.score_extractor(table_extractor(pred), ITEMS, top=1)
    assert top1.n_predicted.tolist() == [1, 1, 0] and top1.prf.precision == pytest.approx(1.0)
    with pytest.raises(ValueError, match="top must be an int >= 1"):
        ex.score_extractor(table_extractor(pred), ITEMS, top=0)
    with pytest.raises(ValueError, match="no items"):
        ex.score_extractor(table_extractor(pred), [])


def _constructed(n=400):
    """A is right on every item, B on every other one: micro F1 1.0 vs 0.5 (one gold, one guess)."""
    items = [(f"text {i}", [f"gold {i}"]) for i in range(n)]
    a = ex.score_extractor(lambda t: ["gold " + t.split()[1]], items)
    b = ex.score_extractor(
        lambda t: ["gold " + t.split()[1] if int(t.split()[1]) % 2 == 0 else "wrong"], items)
    return a, b


def test_bootstrap_interval_covers_the_known_difference():
    a, b = _constructed()
    assert a.prf.f1 == 1.0 and b.prf.f1 == pytest.approx(0.5)
    diff, lo, hi = ex.paired_bootstrap_f1(a, b, n_boot=1000, seed=1)
    assert diff == pytest.approx(0.5)
    assert lo < 0.5 < hi and lo > 0.35 and hi < 0.65
    same = ex.paired_bootstrap_f1(a, a, n_boot=200)
    assert same == (0.0, 0.0, 0.0)


def test_permutation_test_separates_a_real_difference_from_none():
    a, b = _constructed()
    assert ex.paired_permutation_test(a, b, n_perm=999) == pytest.approx(1 / 1000)
    assert ex.paired_permutation_test(a, a, n_perm=999) == 1.0


def test_comparisons_need_the_same_items():
    a, _ = _constructed(10)
    c, _ = _constructed(12)
    with pytest.raises(ValueError, match="same items"):
        ex.paired_bootstrap_f1(a, c)
    with pytest.raises(ValueError, match="same items"):
        ex.paired_permutation_test(a, c)
    with pytest.raises(ValueError, match="n_boot"):
        ex.paired_bootstrap_f1(a, a, n_boot=5)


def test_stopword_chunker_ranks_longer_runs_first():
    text = "The stock market crash of the big red herring fleet, and cold war."
    assert ex.stopword_chunks(text) == ["big red herring fleet", "stock market crash", "cold war"]
    assert ex.chunker_extractor(n_max=3)(text) == ["stock market crash", "cold war"]
    with pytest.raises(ValueError, match="n_max must be >= 2"):
        ex.chunker_extractor(n_max=1)


def test_association_extractor_ranks_by_corpus_statistics():
    corpus = ["red herring again.", "a red herring.", "the red herring here.", "red wine and herring."]
    counts = co.ngram_counts(corpus, 1, 3)
    got = ex.association_extractor(counts, "pmi", n_max=3, min_count=2)("One more red herring.")
    assert got == ["red herring"]
    with pytest.raises(ValueError, match="kind"):
        ex.association_extractor(counts, "chi2")
    edged = ex.association_extractor(counts, "t", n_max=3, min_count=1)("a red herring.")
    assert "a red" in edged
    trimmed = ex.association_extractor(counts, "t", n_max=3, min_count=1, stopwords=co.STOPWORDS)
    assert trimmed("a red herring.") == ["red herring"]
    with pytest.raises(ValueError, match="empty"):
        trimmed("   ")


def test_tfidf_extractor_prefers_phrases_rare_in_the_corpus():
    docs = ["common phrase here.", "common phrase there.", "rare gem appears."]
    got = ex.tfidf_extractor(docs, n_max=2)("common phrase and rare gem.")
    assert got[0] == "rare gem"
    with pytest.raises(ValueError, match="at least one document"):
        ex.tfidf_extractor([])


def test_textrank_and_yake_extractors_return_rankings():
    text = "Coral reefs host fish. Coral reefs bleach in warm water; warm water kills coral reefs."
    assert "warm water" in ex.textrank_extractor()(text)
    assert "coral reefs" in ex.yake_extractor()(text)


@pytest.fixture(scope="module")
def encoder():
    from attention_study.models import load

    return load("minilm")


SENTENCES = [
    "The stock market fell while the red herring distracted the jury.",
    "A piece of cake, said the chef, as the souffle rose.",
    "Cold war politics shaped the space race for decades.",
]


def test_topological_extractor_is_the_topology_pipeline_on_one_head(encoder):
    from attention_study import topology as topo
    from attention_study.tracing import trace

    text = SENTENCES[0]
    t = trace(encoder, text)
    expected = [co.normalize_phrase(p.text) for p in topo.text_phrases(
        text, t.contexts[3, 1].double().numpy(), t.offsets, q=0.3, max_len=4, stopwords=co.STOPWORDS)]
    assert ex.phrases_from_trace(t, 3, 1) == expected
    assert ex.topological_phrases(text, encoder, 3, 1) == expected
    assert ex.topological_extractor(encoder, 3, 1)(text) == expected
    with pytest.raises(ValueError, match="valid layers are 0..5"):
        ex.phrases_from_trace(t, 6, 0)
    rand = np.random.default_rng(0).normal(size=(len(t.tokens), 8))
    assert all(isinstance(p, str) for p in ex.phrases_from_trace(t, 0, 0, vectors=rand))
    with pytest.raises(ValueError, match="vectors must be"):
        ex.phrases_from_trace(t, 0, 0, vectors=rand[:3])


def test_batched_word_clouds_give_the_phrases_of_each_text_alone(encoder):
    from attention_study.tracing import trace

    clouds = ex.word_clouds(encoder, SENTENCES, batch_size=2)
    assert clouds.texts == tuple(SENTENCES) and len(clouds.heads) == 72 and clouds.shape == (6, 12)
    for layer, head in [(0, 0), (2, 3), (5, 11)]:
        for options in ({}, {"q": 0.5, "stopwords": frozenset()}, {"rule": "largest_gap", "max_len": 3}):
            got = ex.cloud_rankings(clouds, layer, head, **options)
            assert got == [ex.phrases_from_trace(trace(encoder, s), layer, head, **options) for s in SENTENCES]
    one = ex.topological_extractor(encoder, 2, 3, q=0.5)
    assert ex.extract_many(one, SENTENCES) == [one(s) for s in SENTENCES]
    kept = ex.word_clouds(encoder, SENTENCES, heads=[(2, 3)])
    assert kept.vectors[0].shape[0] == 1
    with pytest.raises(ValueError, match="was not kept"):
        ex.cloud_rankings(kept, 0, 0)


def test_head_grid_scores_every_head_and_best_head_breaks_ties_low():
    clouds = ex.WordClouds(("a b c d",), ((( 0, 1), (2, 3), (4, 5), (6, 7)),),
                           (np.zeros((2, 4, 2)),), ((0, 0), (1, 1)), (2, 2))
    grid = ex.head_grid_f1(clouds, [["a b"]], stopwords=frozenset())
    assert grid.shape == (2, 2) and np.isnan(grid[0, 1]) and np.isnan(grid[1, 0])
    assert grid[0, 0] == grid[1, 1]
    assert ex.best_head(grid) == (0, 0)
    assert ex.best_head(np.array([[0.1, 0.3], [0.3, 0.2]])) == (0, 1)
    with pytest.raises(ValueError, match="gold lists"):
        ex.head_grid_f1(clouds, [])
    with pytest.raises(ValueError, match="finite"):
        ex.best_head(np.full((2, 2), np.nan))


def test_bad_input_gets_errors_that_name_the_problem(encoder):
    with pytest.raises(ValueError, match="empty"):
        ex.topological_phrases("", encoder, 0, 0)
    with pytest.raises(ValueError, match="empty"):
        ex.topological_phrases("   \n", encoder, 0, 0)
    with pytest.raises(TypeError, match="text must be a str"):
        ex.topological_phrases(["a list"], encoder, 0, 0)
    with pytest.raises(IndexError, match="valid layers are 0..5"):
        ex.topological_phrases("some text", encoder, 6, 0)
    with pytest.raises(IndexError, match="valid heads are 0..11"):
        ex.topological_phrases("some text", encoder, 0, 12)
    with pytest.raises(IndexError, match="valid layers"):
        ex.topological_extractor(encoder, -1, 0)
    with pytest.raises(TypeError, match="layer must be an int"):
        ex.topological_phrases("some text", encoder, 1.0, 0)
    with pytest.raises(TypeError, match="head must be an int"):
        ex.topological_extractor(encoder, 0, True)
    with pytest.raises(TypeError, match="unknown option"):
        ex.topological_phrases("some text", encoder, 0, 0, radius=0.3)
    with pytest.raises(ValueError, match="rule must be one of"):
        ex.topological_phrases("some text", encoder, 0, 0, rule="gap")
    with pytest.raises(ValueError, match="q must be in"):
        ex.topological_extractor(encoder, 0, 0, q=1.5)
    with pytest.raises(ValueError, match="text model"):
        ex.topological_phrases("some text", types.SimpleNamespace(family="vit", n_layers=1, n_heads=1), 0, 0)
    with pytest.raises(ValueError, match=r"texts\[1\] is empty"):
        ex.word_clouds(encoder, ["fine", ""])
    with pytest.raises(ValueError, match="texts is empty"):
        ex.word_clouds(encoder, [])
    with pytest.raises(TypeError, match="sequence of str"):
        ex.word_clouds(encoder, "one string")
    with pytest.raises(ValueError, match="batch_size"):
        ex.word_clouds(encoder, ["fine"], batch_size=0)
    assert ex.topological_phrases("...", encoder, 0, 0) == []      # no words: no phrase, no error


def test_random_vector_control_depends_on_the_text_only():
    ctrl = ex.random_vector_extractor(16, seed=3, q=0.5, stopwords=frozenset())
    again = ex.random_vector_extractor(16, seed=3, q=0.5, stopwords=frozenset())
    assert ex.extract_many(ctrl, SENTENCES) == ex.extract_many(again, SENTENCES[::-1])[::-1]
    assert all(len(p.split()) >= 2 for r in ex.extract_many(ctrl, SENTENCES) for p in r)
    with pytest.raises(ValueError, match="dim must be >= 1"):
        ex.random_vector_extractor(0)


def test_keybert_extractor_ranks_the_texts_candidates_offline():
    text = "The stock market fell sharply while investors sold technology shares."
    kb = ex.keybert_extractor(top=3)
    got = kb(text)
    assert 1 <= len(got) <= 3
    assert set(got) <= set(co.keyphrase_candidates(text, 2, 4))
    texts = [text, "Nothing.", "Red herrings, cold wars; stock market."]
    batch = ex.extract_many(kb, texts)
    assert batch[0] == got and batch[1] == []
    assert set(batch[2]) <= set(co.keyphrase_candidates(texts[2], 2, 4))   # never across punctuation
    assert batch == [kb(t) for t in texts]


def test_bootstrap_f1_interval_brackets_the_estimate():
    _, b = _constructed()
    f1, lo, hi = ex.bootstrap_f1(b, n_boot=500)
    assert f1 == pytest.approx(0.5) and lo < 0.5 < hi and hi - lo < 0.2
    with pytest.raises(ValueError, match="level"):
        ex.bootstrap_f1(b, level=1.5)


def test_holm_adjusts_step_down():
    adj = ex.holm([0.01, 0.04, 0.03])
    # sorted 0.01, 0.03, 0.04 times 3, 2, 1 -> 0.03, 0.06, 0.04 -> monotone 0.03, 0.06, 0.06
    assert adj == pytest.approx([0.03, 0.06, 0.06])
    assert ex.holm([0.5, 0.9]).tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ex.holm([0.1, 1.2])
    with pytest.raises(ValueError, match="non-empty"):
        ex.holm([])


def test_verdicts_follow_the_stated_criterion():
    a, b = _constructed()
    rows = ex.compare_with_baselines(a, {"weak": b, "same": a}, n_boot=200, n_perm=999)
    assert [r.verdict for r in rows] == ["better", "no detectable difference"]
    assert rows[0].p_adjusted == pytest.approx(2 * rows[0].p_value) and rows[0].low > 0
    assert ex.overall_verdict(rows) == "inconclusive"
    assert ex.overall_verdict(rows[:1]) == "supported"
    worse = ex.compare_with_baselines(b, {"strong": a}, n_boot=200, n_perm=999)
    assert worse[0].verdict == "worse" and ex.overall_verdict(worse + rows[:1]) == "refuted"
    with pytest.raises(ValueError, match="no baselines"):
        ex.compare_with_baselines(a, {})
    with pytest.raises(ValueError, match="unknown verdicts"):
        ex.overall_verdict([ex.PairedComparison("x", 0, 0, 0, 1, 1, "maybe")])


def test_detectable_difference_shrinks_with_the_square_root_of_the_sample():
    a, b = _constructed(200)
    d100 = ex.min_detectable_difference(a, b, 100)
    d400 = ex.min_detectable_difference(a, b, 400)
    assert d400 == pytest.approx(d100 / 2)
    assert ex.min_detectable_difference(a, b, 100, alpha=0.01) > d100
    with pytest.raises(ValueError, match="n_items"):
        ex.min_detectable_difference(a, b, 0)


def test_bootstrap_prf_brackets_each_score():
    _, b = _constructed()
    got = ex.bootstrap_prf(b, n_boot=500)
    for key, value in (("precision", 0.5), ("recall", 0.5), ("f1", 0.5)):
        est, lo, hi = got[key]
        assert est == pytest.approx(value) and lo < value < hi
    rows = ex.summary_rows({"b": b}, n_boot=200)
    assert rows[0]["returned"] == 400 and rows[0]["items"] == 400 and rows[0]["F1 lo"] < 0.5


def test_choose_breaks_ties_by_the_stated_order():
    golds = [["red herring"], ["cold war"]]
    rankings = {
        "first": [["red herring", "big red herring fleet"], ["cold war"]],
        "second": [["red herring"], ["cold war"]],
    }
    c = ex.choose(rankings, golds, ks=(3, 1), n_maxes=(4, 2))
    assert (c.setting, c.n_max, c.k, c.f1) == ("first", 2, 1, 1.0)
    assert c.evaluation.prf.true_positives == 2
    assert ex.at_most(["a b", "a b c"], 2) == ["a b"] and ex.at_most(["a b c"], None) == ["a b c"]
    short = ex.shorter(lambda t: ["a b", "a b c"], 2)
    assert short("x") == ["a b"] and ex.extract_many(short, ["x", "y"]) == [["a b"], ["a b"]]
    with pytest.raises(ValueError, match="at least one"):
        ex.choose(rankings, golds, ks=())


def test_settings_are_chosen_on_dev_and_scored_once_on_test():
    dev = [("He spilled the beans.", ["spilled the beans"]), ("A cold war.", ["cold war"])]
    cands = {"chunker": {"": ex.chunker_extractor(n_max=4)}, "nothing": {"": lambda t: []}}
    chosen = ex.choose_settings(cands, dev, ks=(1,), n_maxes=(2, 3))
    assert chosen["chunker"].n_max == 2 and chosen["chunker"].f1 == pytest.approx(2 / 3)
    evals = ex.evaluate_choices(cands, chosen, ITEMS)
    assert evals["nothing"].prf.f1 == 0.0 and evals["chunker"].n_gold.tolist() == [2, 1, 1]
    with pytest.raises(ValueError, match="no choice"):
        ex.evaluate_choices(cands, {"chunker": chosen["chunker"]}, ITEMS)
    with pytest.raises(ValueError, match="not one of"):
        ex.evaluate_choices({"chunker": {"x": ex.chunker_extractor()}}, chosen, ITEMS)


def test_extract_many_checks_the_batch_result():
    class Short:
        def __call__(self, text):
            return []

        def many(self, texts):
            return []

    with pytest.raises(ValueError, match="returned 0 rankings for 2 texts"):
        ex.extract_many(Short(), ["a", "b"])
    with pytest.raises(ValueError, match="gold lists"):
        ex.score_rankings([[]], [])


def test_wordnet_items_are_a_seeded_sample_of_one_split():
    from attention_study import wordnet

    full = wordnet.benchmark_items("dev")
    got = ex.wordnet_items("dev", 50, seed=1)
    assert len(got) == 50 and len(set(got)) == 50 and set(got) <= set(full)
    assert got == ex.wordnet_items("dev", 50, seed=1) and got != ex.wordnet_items("dev", 50, seed=2)
    assert ex.wordnet_items("dev", 20, seed=1) == got[:20]             # the first m of a draw
    assert ex.wordnet_items("dev") == full
    with pytest.raises(ValueError, match="unknown split 'train'; valid splits: dev, test"):
        ex.wordnet_items("train")
    with pytest.raises(ValueError, match=f"n must be in 1..{len(full)}"):
        ex.wordnet_items("dev", len(full) + 1)


def test_score_on_wordnet_scores_any_extractor():
    items = ex.wordnet_items("test", 40, seed=0)
    gold = dict(items)
    oracle = ex.score_on_wordnet(lambda s: list(gold[s]), "test", n=40, seed=0)
    assert oracle.prf.f1 == 1.0 and oracle.prf.n_gold == sum(len(g) for g in gold.values())
    assert ex.score_on_wordnet(lambda s: [], "test", n=40).prf.f1 == 0.0
    chunks = ex.score_on_wordnet(ex.chunker_extractor(n_max=4), "test", n=40, top=2)
    assert chunks.n_predicted.max() <= 2
    with pytest.raises(ValueError, match="unknown split"):
        ex.score_on_wordnet(lambda s: [], "validation")
    with pytest.raises(ValueError, match="top must be"):
        ex.score_on_wordnet(lambda s: [], "test", n=5, top=0)


def test_keeping_short_phrases_equals_a_smaller_n_max():
    """The chapter's n_max setting filters a 2..4-word ranking; for these extractors that is the
    same as running them with the smaller limit (YAKE is the exception and is not claimed)."""
    texts = ["The big red herring fleet sailed past the stock market crash site at dawn.",
             "Cold war politics: the space race, the arms race and the red herring."]
    counts = co.ngram_counts(texts * 3, 1, 4)
    cases = [
        (ex.association_extractor(counts, "pmi", 4, 1), 2, ex.association_extractor(counts, "pmi", 2, 1)),
        (ex.association_extractor(counts, "t", 4, 1), 3, ex.association_extractor(counts, "t", 3, 1)),
        (ex.tfidf_extractor(texts, 4), 2, ex.tfidf_extractor(texts, 2)),
        (ex.textrank_extractor(4), 3, ex.textrank_extractor(3)),
        (ex.chunker_extractor(n_max=4), 2, ex.chunker_extractor(n_max=2)),
        (ex.keybert_extractor(n_max=4), 2, ex.keybert_extractor(n_max=2)),
    ]
    for long, n, short in cases:
        assert ex.extract_many(ex.shorter(long, n), texts) == ex.extract_many(short, texts)
