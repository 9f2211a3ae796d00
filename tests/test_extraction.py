"""Tests of attention_study.extraction: extractors, the scorer and the paired comparisons."""

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
    with pytest.raises(ValueError, match="top must be >= 1"):
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


def test_association_extractor_ranks_by_corpus_statistics():
    corpus = ["red herring again.", "a red herring.", "the red herring here.", "red wine and herring."]
    counts = co.ngram_counts(corpus, 1, 3)
    got = ex.association_extractor(counts, "pmi", n_max=3, min_count=2)("One more red herring.")
    assert got == ["red herring"]
    with pytest.raises(ValueError, match="kind"):
        ex.association_extractor(counts, "chi2")


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


def test_topological_extractor_is_the_topology_pipeline_on_one_head():
    from attention_study import topology as topo
    from attention_study.models import load
    from attention_study.tracing import trace

    model = load("minilm")
    text = "The stock market fell while the red herring distracted the jury."
    t = trace(model, text)
    expected = [co.normalize_phrase(p.text) for p in topo.text_phrases(
        text, t.contexts[3, 1].double().numpy(), t.offsets, q=0.3, max_len=4, stopwords=co.STOPWORDS)]
    assert ex.phrases_from_trace(t, 3, 1) == expected
    assert ex.topological_extractor(model, 3, 1)(text) == expected
    with pytest.raises(ValueError, match="valid layers are 0..5"):
        ex.phrases_from_trace(t, 6, 0)
    rand = np.random.default_rng(0).normal(size=(len(t.tokens), 8))
    assert all(isinstance(p, str) for p in ex.phrases_from_trace(t, 0, 0, vectors=rand))


def test_keybert_extractor_ranks_the_texts_candidates_offline():
    text = "The stock market fell sharply while investors sold technology shares."
    got = ex.keybert_extractor(top=3)(text)
    assert 1 <= len(got) <= 3
    assert set(got) <= set(co.keyphrase_candidates(text, 2, 4))


def test_bootstrap_f1_interval_brackets_the_estimate():
    _, b = _constructed()
    f1, lo, hi = ex.bootstrap_f1(b, n_boot=500)
    assert f1 == pytest.approx(0.5) and lo < 0.5 < hi and hi - lo < 0.2
    with pytest.raises(ValueError, match="level"):
        ex.bootstrap_f1(b, level=1.5)
