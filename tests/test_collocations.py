"""Tests of attention_study.collocations: n-gram statistics, extractors, P/R/F1."""

import json
import math
from importlib import resources

import pytest

from attention_study import collocations as co

CORPUS = [
    "The cat spilled the beans. Later, a dog spilled the beans again.",
    "My aunt spilled the beans about the party; the cat slept.",
    "Nobody spilled the beans. The dog ran to the park and the cat ran too.",
    "He spilled the beans at dinner, and the dog barked.",
]


def test_chunks_never_cross_punctuation():
    assert co.chunks("Hello, big world. Again!") == [["hello"], ["big", "world"], ["again"]]
    assert ("beans", "later") not in co.ngram_counts(CORPUS, 2, 2)


def test_ngram_counts_count_every_occurrence():
    c = co.ngram_counts(CORPUS, 1, 3)
    assert c[("spilled", "the", "beans")] == 5
    assert c[("the",)] == sum(w == "the" for t in CORPUS for w in co.words(t))


def test_maximal_ngrams_drop_subphrases_with_the_same_count():
    c = co.ngram_counts(CORPUS, 1, 4)
    keep = co.maximal_ngrams(c, 2)
    assert ("spilled", "the", "beans") in keep
    assert ("spilled", "the") not in keep and ("the", "beans") not in keep


def test_pmi_matches_its_definition():
    scores = co.pmi_scores(CORPUS, n_min=2, n_max=3, min_count=2, min_docs=2)
    c = co.ngram_counts(CORPUS, 1, 1)
    n = sum(c.values())
    expected = math.log2(5 / (n * (5 / n) * (c[("the",)] / n) * (5 / n)))
    assert scores["spilled the beans"] == pytest.approx(expected)
    assert max(scores, key=scores.get) == "spilled the beans"


def test_t_score_matches_its_definition():
    scores = co.t_scores(CORPUS, n_min=2, n_max=3, min_count=2, min_docs=2)
    c = co.ngram_counts(CORPUS, 1, 1)
    n = sum(c.values())
    e = n * (5 / n) * (c[("the",)] / n) * (5 / n)
    assert scores["spilled the beans"] == pytest.approx((5 - e) / math.sqrt(5))


def test_min_docs_ignores_repeats_inside_one_text():
    texts = ["green apples fell. green apples fell. green apples fell.", "red pears."]
    assert co.pmi_scores(texts, min_count=2, min_docs=1)
    assert not co.pmi_scores(texts, min_count=2, min_docs=2)


def test_one_word_extensions_give_way_to_the_core_expression():
    texts = [f"{w} keeps spilling the beans. {w} starts spilling the beans." for w in "abcdef"]
    texts += ["Jo keeps spilling the beans." for _ in range(3)]
    scores = co.pmi_scores(texts, min_count=2, min_docs=2)
    assert "spilling the beans" in scores
    assert "keeps spilling the beans" not in scores


def test_association_scores_reject_bad_options():
    with pytest.raises(ValueError, match="n_min"):
        co.pmi_scores(CORPUS, n_min=3, n_max=2)
    with pytest.raises(ValueError, match=">= 2 words"):
        co.t_scores(CORPUS, n_min=1)
    with pytest.raises(ValueError, match="no words"):
        co.pmi_scores(["...", "!"])


def test_candidates_do_not_start_or_end_with_stopwords():
    cands = co.keyphrase_candidates("The quick brown fox of the forest.", 2, 3)
    assert "quick brown fox" in cands
    assert all(c.split()[0] not in co.STOPWORDS and c.split()[-1] not in co.STOPWORDS
               for c in cands)
    assert "fox of the forest" not in cands  # four words > n_max


def test_tfidf_prefers_phrases_specific_to_the_document():
    docs = ["solar panels and wind turbines. solar panels again.", "wind turbines spin.",
            "wind turbines hum."]
    s = co.tfidf_keyphrases(docs)[0]
    assert s["solar panels"] > s["wind turbines"]


def test_textrank_scores_runs_of_content_words():
    text = ("Machine learning models need training data. Training data quality shapes machine "
            "learning models. Good training data is rare.")
    s = co.textrank_keyphrases(text)
    best = co.top_k(s, 1)[0]
    assert "training data" in best or best == "machine learning models"
    assert all(2 <= len(p.split()) <= 4 for p in s)
    with pytest.raises(ValueError, match="window"):
        co.textrank_keyphrases(text, window=1)


def test_yake_returns_multiword_phrases_higher_is_better():
    pytest.importorskip("yake")
    s = co.yake_keyphrases("Climate change drives sea level rise. Sea level rise floods coasts.")
    assert "sea level rise" in s
    assert all(len(p.split()) >= 2 for p in s)


def test_prf_counts_exact_normalized_matches():
    r = co.prf(["Spill the Beans", "red fox", "blue sky"], ["spill the beans!", "green tea"])
    assert (r.true_positives, r.n_predicted, r.n_gold) == (1, 3, 2)
    assert r.precision == pytest.approx(1 / 3)
    assert r.recall == pytest.approx(1 / 2)
    assert r.f1 == pytest.approx(0.4)
    assert co.prf([], ["x y"]).f1 == 0.0


def test_micro_average_sums_counts_before_dividing():
    r = co.prf_micro([["a b"], ["c d", "e f"]], [["a b"], ["x y"]])
    assert (r.true_positives, r.n_predicted, r.n_gold) == (1, 3, 2)
    with pytest.raises(ValueError):
        co.prf_micro([["a b"]], [])


def test_top_k_is_stable_under_ties():
    assert co.top_k({"b": 1.0, "a": 1.0, "c": 2.0}, 2) == ["c", "a"]
    with pytest.raises(ValueError):
        co.top_k({}, -1)


def test_gold_keyphrases_are_well_formed_and_occur_in_their_texts():
    path = resources.files("attention_study") / "data" / "keyphrases.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    items = data["texts"]
    assert len(items) >= 20
    assert len({it["id"] for it in items}) == len(items)
    assert {it["split"] for it in items} == {"dev", "test"}
    for it in items:
        assert 2 <= len(it["keyphrases"]) <= 8, it["id"]
        body = " ".join(co.words(it["text"]))
        for k in it["keyphrases"]:
            norm = co.normalize_phrase(k)
            assert 2 <= len(norm.split()) <= 4, (it["id"], k)
            assert norm.split()[0] not in co.STOPWORDS, (it["id"], k)
            assert norm.split()[-1] not in co.STOPWORDS, (it["id"], k)
            assert f" {norm} " in f" {body} ", (it["id"], k)


def test_association_scores_skip_unseen_phrases_and_check_kind():
    c = co.ngram_counts(CORPUS, 1, 3)
    s = co.association_scores(["spilled the beans", "purple cow", "cat"], c, "t")
    assert list(s) == ["spilled the beans"]
    with pytest.raises(ValueError, match="kind"):
        co.association_scores([], c, "chi2")


def test_rank_by_documents_counts_each_document_once():
    r = co.rank_by_documents([["Red Fox", "red fox", "big dog"], ["red fox"], []])
    assert r == {"red fox": 2.0, "big dog": 1.0}


def test_association_scores_accept_a_precomputed_word_total():
    c = co.ngram_counts(CORPUS, 1, 3)
    total = co.word_total(c)
    assert total == sum(len(co.words(t)) for t in CORPUS)
    assert co.association_scores(["spilled the beans"], c, "t", total) == \
        co.association_scores(["spilled the beans"], c, "t")
    with pytest.raises(ValueError, match="no words"):
        co.association_scores(["spilled the beans"], c, "pmi", 0)
