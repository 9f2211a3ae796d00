"""The generated corpus: deterministic, grammatical in the ways it promises, planted at its rates."""

import re

import pytest

from attention_study.corpus import (
    NAMES,
    CorpusRecipe,
    count_expression,
    generate_passage,
    generate_passages,
    planted_expressions,
    vocabulary,
)


def test_same_seed_gives_same_passages_and_prefixes_agree():
    assert generate_passages(30, seed=3) == generate_passages(30, seed=3)
    assert generate_passages(10, seed=3) == generate_passages(30, seed=3)[:10]
    assert generate_passage(7, seed=3) == generate_passages(8, seed=3)[7]


def test_different_seeds_give_different_passages():
    assert generate_passages(5, seed=0) != generate_passages(5, seed=1)


def test_planted_expressions_are_at_least_20_multiword_and_distinct():
    expressions = planted_expressions()
    assert len(expressions) >= 20
    assert len(set(expressions)) == len(expressions)
    assert all(2 <= len(e.split()) <= 5 for e in expressions)
    assert "pulling rabbits out of hats" in expressions


def test_vocabulary_has_several_hundred_words():
    assert len(vocabulary()) >= 300


def test_expression_rate_matches_recipe():
    recipe = CorpusRecipe(echo_rate=0.0, recital_rate=0.0, expression_rate=0.3)
    text = " ".join(generate_passages(600, seed=5, recipe=recipe))
    sentences = len(re.findall(r"[.!?]", text))
    planted = sum(count_expression(text, e) for e in planted_expressions())
    assert sentences > 4000
    assert planted / sentences == pytest.approx(0.3, abs=0.03)
    per_expression = [count_expression(text, e) for e in planted_expressions()]
    assert min(per_expression) > 0


def test_zero_expression_rate_plants_nothing():
    recipe = CorpusRecipe(expression_rate=0.0)
    text = " ".join(generate_passages(200, seed=2, recipe=recipe))
    assert sum(count_expression(text, e) for e in planted_expressions()) == 0


def test_invented_names_recur_within_a_passage_and_are_the_only_names():
    recipe = CorpusRecipe(names_per_passage=3, recital_rate=0.0)
    vocab = set(vocabulary())
    for passage in generate_passages(20, seed=1, recipe=recipe):
        words = re.findall(r"[A-Za-z]+", passage)
        names = [w for w in words if w not in vocab and w.lower() not in vocab]
        counts = {n: names.count(n) for n in set(names)}
        assert 1 <= len(counts) <= 3
        assert max(counts.values()) >= 2


def test_fixed_cast_draws_names_from_the_list():
    recipe = CorpusRecipe(invented_names=False, names_per_passage=2, recital_rate=0.0)
    for passage in generate_passages(20, seed=1, recipe=recipe):
        used = {w for w in re.findall(r"[A-Z][a-z]+", passage) if w in NAMES}
        assert 1 <= len(used) <= 2


def test_echoes_and_recitals_repeat_text_verbatim():
    recipe = CorpusRecipe(echo_rate=0.5, recital_rate=1.0)
    passage = generate_passages(1, seed=4, recipe=recipe)[0]
    quoted = re.findall(r': "([^"]+)"', passage)
    assert quoted and all(q in passage.replace(f'"{q}"', "", 1) for q in quoted)
    listed = re.findall(r"the words: ([a-z ]+)\.", passage)
    assert len(listed) == 2 and listed[0] == listed[1]


def test_subject_verb_agreement_for_plain_plural_subjects():
    recipe = CorpusRecipe(relative_clause_rate=0.0, echo_rate=0.0, recital_rate=0.0)
    text = " ".join(generate_passages(100, seed=6, recipe=recipe))
    assert re.search(r"\b(These|Those|Some) \w+ (sleeps|runs|waits|sings)\b", text) is None
    assert re.search(r"\b(This|That|Every) \w+ (sleep|run|wait|sing)\b", text) is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"expression_rate": 1.5}, "expression_rate"),
        ({"names_per_passage": 0}, "names_per_passage"),
        ({"sentences_min": 5, "sentences_max": 2}, "sentences_min"),
        ({"recital_min_words": 0}, "recital_min_words"),
    ],
)
def test_bad_recipe_is_rejected_with_the_setting_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CorpusRecipe(**kwargs)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="n must be"):
        generate_passages(-1)
    with pytest.raises(ValueError, match="seed"):
        generate_passages(2, seed=-3)
    with pytest.raises(ValueError, match="expression"):
        count_expression("text", "  ")
