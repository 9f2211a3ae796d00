"""Head scores on hand-made attention patterns whose answers are known."""

import pytest
import torch

from attention_study.heads import (
    first_token_scores,
    induction_scores,
    previous_token_scores,
    repeated_random_tokens,
)


def _causal_uniform(n: int) -> torch.Tensor:
    """[n, n] rows uniform over keys 0..i."""
    a = torch.tril(torch.ones(n, n))
    return a / a.sum(-1, keepdim=True)


def _previous_token(n: int) -> torch.Tensor:
    a = torch.zeros(n, n)
    a[0, 0] = 1.0
    a[torch.arange(1, n), torch.arange(n - 1)] = 1.0
    return a


def _induction(period: int) -> torch.Tensor:
    n = 2 * period
    a = _causal_uniform(n).clone()
    for i in range(period, n):
        a[i] = 0.0
        a[i, i - period + 1] = 1.0
    return a


def _stack(*patterns: torch.Tensor) -> torch.Tensor:
    """[1 layer, len(patterns) heads, n, n]."""
    return torch.stack(patterns)[None]


def test_previous_token_head_scores_one_and_uniform_head_scores_mean_of_1_over_i():
    n = 10
    scores = previous_token_scores(_stack(_previous_token(n), _causal_uniform(n)))
    assert scores.shape == (1, 2)
    assert scores[0, 0] == pytest.approx(1.0)
    expected = sum(1 / (i + 1) for i in range(1, n)) / (n - 1)
    assert scores[0, 1] == pytest.approx(expected)


def test_induction_head_scores_one_and_previous_token_head_scores_zero():
    period = 6
    attn = _stack(_induction(period), _previous_token(2 * period))
    scores = induction_scores(attn, period)
    assert scores[0, 0] == pytest.approx(1.0)
    assert scores[0, 1] == pytest.approx(0.0)


def test_induction_with_a_prefix_token_uses_the_last_period_tokens():
    period = 5
    n = 2 * period + 1  # a BOS token before the two copies
    a = torch.zeros(n, n)
    a[:, 0] = 1.0
    for i in range(n - period, n):
        a[i] = 0.0
        a[i, i - period + 1] = 1.0
    assert induction_scores(_stack(a), period)[0, 0] == pytest.approx(1.0)


def test_first_token_score_of_a_sink_head_is_one():
    n = 8
    sink = torch.zeros(n, n)
    sink[:, 0] = 1.0
    scores = first_token_scores(_stack(sink, _previous_token(n)))
    assert scores[0, 0] == pytest.approx(1.0)
    assert scores[0, 1] == pytest.approx(1 / (n - 1))


def test_scores_have_layer_head_shape():
    attn = torch.rand(3, 5, 12, 12).softmax(-1)
    for scores in (previous_token_scores(attn), first_token_scores(attn), induction_scores(attn, 6)):
        assert scores.shape == (3, 5)
        assert torch.all((scores >= 0) & (scores <= 1))


def test_repeated_random_tokens_repeat_without_duplicates_and_avoid_excluded():
    x = repeated_random_tokens(50, 100, seed=0, exclude=[0, 1, 2])
    assert x.dtype == torch.long and x.shape == (100,)
    assert torch.equal(x[:50], x[50:])
    assert len(set(x[:50].tolist())) == 50
    assert not set(x.tolist()) & {0, 1, 2}
    assert torch.equal(x, repeated_random_tokens(50, 100, seed=0, exclude=[0, 1, 2]))
    assert not torch.equal(x, repeated_random_tokens(50, 100, seed=1, exclude=[0, 1, 2]))


@pytest.mark.parametrize(
    ("attn", "match"),
    [
        (torch.rand(4, 4), "4 dimensions"),
        (torch.rand(1, 1, 4, 5), "square"),
        (torch.rand(1, 1, 1, 1), "at least 2 tokens"),
        (torch.full((1, 1, 3, 3), float("nan")), "non-finite"),
    ],
)
def test_bad_attention_is_rejected(attn, match):
    with pytest.raises(ValueError, match=match):
        previous_token_scores(attn)


def test_bad_period_and_arguments_are_rejected():
    attn = torch.rand(1, 1, 10, 10)
    with pytest.raises(ValueError, match=r"period must be in \[1, 5\]"):
        induction_scores(attn, 6)
    with pytest.raises(TypeError, match="period"):
        induction_scores(attn, 2.5)
    with pytest.raises(TypeError, match="torch.Tensor"):
        previous_token_scores([[0.0]])
    with pytest.raises(TypeError, match="floating"):
        first_token_scores(torch.ones(1, 1, 3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="length must be in"):
        repeated_random_tokens(10, 8, seed=0)
    with pytest.raises(ValueError, match="exclude"):
        repeated_random_tokens(3, 8, seed=0, exclude=[9])
