"""Head ablation and activation patching equal a forward pass recomputed by hand with the head's
context vectors edited, for every family; controls show the checks can fail; hooks never leak."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import pytest
import torch

from attention_study.interventions import (
    KINDS,
    ablate_heads,
    mean_head_outputs,
    patch_heads,
    select_heads,
)
from attention_study.models import load
from attention_study.tracing import attention_modules, trace

#: Set STUDY_TEST_DEVICE=cuda to run these tests on a GPU.
TEST_DEVICE = os.environ.get("STUDY_TEST_DEVICE", "cpu")

TEXT = "Pulling rabbits out of hats is what magicians do."
TEXTS = ["The dog.", "The quick brown fox jumps over the lazy dog.", TEXT]


@pytest.fixture
def gpt2(tiny_gpt2_dir):
    return load(tiny_gpt2_dir, device=TEST_DEVICE)


def _ids(loaded, seed: int, n: int = 12) -> torch.Tensor:
    """``n`` random token ids: two inputs of the same length, as patching needs."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, loaded.model.config.vocab_size, (n,), generator=generator)


def _image(loaded, seed: int = 0) -> np.ndarray:
    size = int(loaded.model.config.image_size)
    return np.random.default_rng(seed).uniform(0, 255, size=(size, size, 3)).astype(np.uint8)


def _gpt2_by_hand(loaded, ids: torch.Tensor, edit=None) -> tuple[list[torch.Tensor], torch.Tensor]:
    """GPT-2 recomputed from its weights: per layer ``ln_1``, ``c_attn``, causal softmax(QKᵀ/√d),
    context vectors ``[H, T, d_head]`` (then ``edit(layer, contexts)``), ``c_proj``, residual, MLP.
    Returns the residual stream after each layer ``[T, d_model]`` and the logits ``[T, vocab]``."""
    model = loaded.model
    base = model.transformer
    n_heads, width, n = loaded.n_heads, model.config.hidden_size, len(ids)
    d_head = width // n_heads
    causal = torch.triu(torch.full((n, n), float("-inf")), diagonal=1).to(TEST_DEVICE)
    with torch.no_grad():
        x = base.wte(ids.to(TEST_DEVICE)) + base.wpe(torch.arange(n, device=TEST_DEVICE))
        states = [x]
        for layer, block in enumerate(base.h):
            q, k, v = block.attn.c_attn(block.ln_1(x)).split(width, dim=-1)
            q, k, v = (t.reshape(n, n_heads, d_head).transpose(0, 1) for t in (q, k, v))
            weights = torch.softmax(q @ k.transpose(-1, -2) / d_head**0.5 + causal, dim=-1)
            contexts = weights @ v
            if edit is not None:
                contexts = edit(layer, contexts)
            x = x + block.attn.c_proj(contexts.transpose(0, 1).reshape(n, width))
            x = x + block.mlp(block.ln_2(x))
            states.append(x)
        logits = model.lm_head(base.ln_f(x))
    return [s.cpu() for s in states], logits.cpu()


def _set_heads(heads: dict[int, list[int]], value: Callable) -> Callable:
    """An ``edit`` for :func:`_gpt2_by_hand`: the chosen heads' contexts become ``value(layer, head)``."""

    def edit(layer: int, contexts: torch.Tensor) -> torch.Tensor:
        contexts = contexts.clone()
        for head in heads.get(layer, []):
            contexts[head] = value(layer, head).to(contexts)
        return contexts

    return edit


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


# ---------------------------------------------------------------------------------------------
# the hand-computed forward is right (without it the comparisons below would prove nothing)


def test_the_hand_computed_gpt2_forward_equals_the_model(gpt2):
    ids = _ids(gpt2, 0)
    states, logits = _gpt2_by_hand(gpt2, ids)
    t = trace(gpt2, ids)
    assert _max_diff(states[1], t.hidden_states[1]) < 1e-5
    assert _max_diff(logits, t.logits) < 1e-4


# ---------------------------------------------------------------------------------------------
# zero and mean ablation


def test_zero_ablation_equals_the_forward_with_the_heads_contexts_zeroed_by_hand(gpt2):
    ids, heads = _ids(gpt2, 0), {0: [1], 1: [2, 3]}
    plain = trace(gpt2, ids)
    states, logits = _gpt2_by_hand(gpt2, ids, _set_heads(heads, lambda _l, _h: torch.zeros(1)))
    with ablate_heads(gpt2, heads, kind="zero"):
        ablated = trace(gpt2, ids)
    assert _max_diff(ablated.hidden_states[1], states[1]) < 1e-5
    assert _max_diff(ablated.logits, logits) < 1e-4
    assert _max_diff(ablated.logits, plain.logits) > 1e-3  # the ablation matters: the check can fail
    assert ablated.contexts[0, 1].abs().max().item() == 0.0
    assert _max_diff(ablated.contexts[0, [0, 2, 3]], plain.contexts[0, [0, 2, 3]]) < 1e-6


def test_mean_ablation_equals_the_forward_with_the_mean_context_put_in_by_hand(gpt2):
    ids, heads = _ids(gpt2, 1), {1: [0]}
    means = mean_head_outputs(gpt2, TEXTS)
    _, logits = _gpt2_by_hand(gpt2, ids, _set_heads(heads, lambda layer, head: means[layer, head]))
    with ablate_heads(gpt2, heads, kind="mean", means=means):
        ablated = trace(gpt2, ids)
    assert _max_diff(ablated.logits, logits) < 1e-4
    assert _max_diff(ablated.contexts[1, 0], means[1, 0].expand(len(ids), -1)) < 1e-6
    assert _max_diff(ablated.logits, trace(gpt2, ids).logits) > 1e-3


def test_mean_head_outputs_average_every_real_token_and_no_padding(tiny_bert_dir):
    m = load(tiny_bert_dir)
    one_at_a_time = torch.cat([trace(m, text).contexts for text in TEXTS], dim=2)  # [L, H, all tokens, d]
    expected = one_at_a_time.mean(dim=2)
    assert _max_diff(mean_head_outputs(m, TEXTS, batch_size=2), expected) < 1e-5
    assert _max_diff(mean_head_outputs(m, iter(TEXTS), batch_size=1), expected) < 1e-5  # any iterable
    tokens = [trace(m, text) for text in TEXTS]
    words = torch.cat([t.contexts[:, :, ~t.special] for t in tokens], dim=2).mean(dim=2)
    assert _max_diff(mean_head_outputs(m, TEXTS, include_special=False), words) < 1e-5
    assert _max_diff(words, expected) > 1e-4  # leaving [CLS]/[SEP] out changes the mean


def test_ablating_no_heads_changes_nothing(gpt2):
    ids = _ids(gpt2, 2)
    plain = trace(gpt2, ids)
    for heads in ({}, {0: []}):
        for kind, means in (("zero", None), ("mean", torch.ones(2, 4, 8))):
            with ablate_heads(gpt2, heads, kind=kind, means=means) as selected:
                assert selected == {}
                again = trace(gpt2, ids)
            assert torch.equal(again.logits, plain.logits)


@pytest.mark.parametrize("name", ["tiny_bert_dir", "tiny_gpt2_dir", "tiny_vit_dir", "minilm"])
def test_ablation_acts_at_the_output_projection_in_every_family(name, request):
    """The ablated layer's output equals the layer recomputed by hand from its input and the plain
    context vectors with the head zeroed; later layers change."""
    m = load(name if name == "minilm" else request.getfixturevalue(name), device=TEST_DEVICE)
    x = _image(m) if m.family == "vit" else TEXT
    plain = trace(m, x)
    head = m.n_heads - 1
    with ablate_heads(m, {0: head}):
        ablated = trace(m, x)
    contexts = plain.contexts[0].clone()
    contexts[head] = 0
    concatenated = contexts.transpose(0, 1).reshape(plain.n_tokens, -1).to(TEST_DEVICE)
    residual = plain.hidden_states[0].to(TEST_DEVICE)
    layer = _layers(m)[0]
    with torch.no_grad():
        if m.family == "bert":  # post-LN: LayerNorm(dense(c) + x), then the feed-forward block
            attended = layer.attention.output(concatenated, residual)
            by_hand = layer.output(layer.intermediate(attended), attended)
        elif m.family == "vit":  # pre-LN: x + o_proj(c), then x + MLP(LN(x))
            attended = residual + attention_modules(m)[0].output(concatenated)
            by_hand = attended + layer.mlp(layer.layernorm_after(attended))
        else:  # GPT-2: x + c_proj(c), then x + MLP(LN(x))
            attended = residual + layer.attn.c_proj(concatenated)
            by_hand = attended + layer.mlp(layer.ln_2(attended))
    assert _max_diff(ablated.hidden_states[1], by_hand.cpu()) < 1e-5
    assert ablated.contexts[0, head].abs().max().item() == 0.0
    assert _max_diff(ablated.hidden_states[-1], plain.hidden_states[-1]) > 1e-4


def _layers(loaded):
    base = loaded.model.base_model
    if loaded.family == "gpt2":
        return base.h
    return base.encoder.layer if hasattr(base, "encoder") else base.layers


def test_ablation_applies_to_every_item_of_a_batch(gpt2):
    with ablate_heads(gpt2, {0: [0, 1, 2, 3]}):
        batch = trace(gpt2, TEXTS)
        singles = [trace(gpt2, text) for text in TEXTS]
    for traced, single in zip(batch, singles, strict=True):
        assert traced.contexts[0].abs().max().item() == 0.0
        assert _max_diff(traced.logits, single.logits) < 1e-4


# ---------------------------------------------------------------------------------------------
# activation patching


def test_patching_a_head_from_the_same_input_changes_nothing(gpt2):
    """The negative control: patched values equal the ones the head computes anyway."""
    ids = _ids(gpt2, 3)
    plain = trace(gpt2, ids)
    with patch_heads(gpt2, {0: [0, 1], 1: [3]}, source=ids):
        patched = trace(gpt2, ids)
    assert _max_diff(patched.logits, plain.logits) < 1e-6
    with patch_heads(gpt2, {0: [0, 1], 1: [3]}, source=plain):
        assert _max_diff(trace(gpt2, ids).logits, plain.logits) < 1e-6


def test_patching_from_another_input_equals_the_hand_computed_forward(gpt2):
    target, source = _ids(gpt2, 4), _ids(gpt2, 5)
    heads = {0: [2], 1: [0, 1]}
    donor = trace(gpt2, source)
    states, logits = _gpt2_by_hand(gpt2, target, _set_heads(heads, lambda layer, head: donor.contexts[layer, head]))
    with patch_heads(gpt2, heads, source=donor):
        patched = trace(gpt2, target)
    assert _max_diff(patched.hidden_states[1], states[1]) < 1e-5
    assert _max_diff(patched.logits, logits) < 1e-4
    assert _max_diff(patched.logits, trace(gpt2, target).logits) > 1e-3  # a different input changes it
    assert torch.equal(patched.contexts[0, 2], donor.contexts[0, 2])


@pytest.mark.parametrize("name", ["tiny_bert_dir", "tiny_vit_dir"])
def test_patching_works_for_bert_and_vit(name, request):
    m = load(request.getfixturevalue(name), device=TEST_DEVICE)
    if m.family == "vit":
        target, source = _image(m, 0), _image(m, 1)
    else:
        target, source = _ids(m, 6, 10), _ids(m, 7, 10)
    donor, plain = trace(m, source), trace(m, target)
    with patch_heads(m, {1: [0, 3]}, source=source):
        patched = trace(m, target)
    assert torch.equal(patched.contexts[1, [0, 3]], donor.contexts[1, [0, 3]])
    assert _max_diff(patched.contexts[1, [1, 2]], plain.contexts[1, [1, 2]]) < 1e-6
    assert _max_diff(patched.hidden_states[2], plain.hidden_states[2]) > 1e-4
    with patch_heads(m, {1: [0, 3]}, source=target):
        assert _max_diff(trace(m, target).hidden_states[2], plain.hidden_states[2]) < 1e-6


def test_patching_inputs_of_different_lengths_is_an_error_naming_both(gpt2):
    with patch_heads(gpt2, {0: [0]}, source=_ids(gpt2, 0, 12)):
        with pytest.raises(ValueError, match="the source has 12 tokens but the patched input has 9"):
            trace(gpt2, _ids(gpt2, 1, 9))


def test_patching_from_a_batch_or_another_model_is_refused(gpt2, tiny_bert_dir):
    with pytest.raises(TypeError, match="patch from one input"):
        with patch_heads(gpt2, {0: [0]}, source=trace(gpt2, TEXTS)):
            pass
    with pytest.raises(TypeError, match="patch from one input"):
        with patch_heads(gpt2, {0: [0]}, source=TEXTS):
            pass
    with pytest.raises(ValueError, match="source was traced with"):
        with patch_heads(gpt2, {0: [0]}, source=trace(load(tiny_bert_dir), TEXT)):
            pass


# ---------------------------------------------------------------------------------------------
# bad input, and hooks that never outlive the block


def _hook_counts(loaded) -> list[int]:
    return [len(modules.output._forward_pre_hooks) for modules in attention_modules(loaded)]


def test_hooks_are_removed_on_exit_even_after_an_exception(gpt2):
    ids = _ids(gpt2, 8)
    plain = trace(gpt2, ids)
    before = _hook_counts(gpt2)
    with pytest.raises(RuntimeError, match="boom"):
        with ablate_heads(gpt2, {0: [0], 1: [1]}):
            assert _hook_counts(gpt2) == [n + 1 for n in before]
            raise RuntimeError("boom")
    assert _hook_counts(gpt2) == before
    with pytest.raises(ValueError, match="same length"):  # raised inside the model's forward pass
        with patch_heads(gpt2, {1: [2]}, source=_ids(gpt2, 9, 5)):
            trace(gpt2, ids)
    assert _hook_counts(gpt2) == before
    assert torch.equal(trace(gpt2, ids).logits, plain.logits)


@pytest.mark.parametrize(
    ("heads", "message"),
    [
        ({2: [0]}, r"layer 2 is out of range: valid layers are 0..1"),
        ({-1: [0]}, r"layer -1 is out of range: valid layers are 0..1"),
        ({0: [4]}, r"head 4 is out of range: valid heads are 0..3"),
        ({1: 7}, r"head 7 is out of range: valid heads are 0..3"),
    ],
)
def test_layers_and_heads_out_of_range_are_value_errors_naming_the_valid_range(gpt2, heads, message):
    before = _hook_counts(gpt2)
    for intervention in (ablate_heads(gpt2, heads), patch_heads(gpt2, heads, source=TEXT)):
        with pytest.raises(ValueError, match=message):
            with intervention:
                pass
    assert _hook_counts(gpt2) == before


def test_head_selections_are_normalised_and_type_checked():
    assert select_heads({1: [3, 0, 3], 0: 2, np.int64(2): []}, 3, 4) == {0: (2,), 1: (0, 3)}
    with pytest.raises(TypeError, match="mapping"):
        select_heads([(0, 1)], 2, 4)
    with pytest.raises(TypeError, match="head must be an int, got str"):
        select_heads({0: ["1"]}, 2, 4)
    with pytest.raises(TypeError, match="layer must be an int, got bool"):
        select_heads({True: [1]}, 2, 4)


def test_an_unknown_kind_lists_the_valid_kinds(gpt2):
    with pytest.raises(ValueError, match=r"unknown ablation kind 'resample'; valid kinds: zero, mean"):
        with ablate_heads(gpt2, {0: [0]}, kind="resample"):
            pass
    assert KINDS == ("zero", "mean")


def test_mean_ablation_needs_means_of_the_right_shape(gpt2):
    with pytest.raises(ValueError, match="needs means .* mean_head_outputs"):
        with ablate_heads(gpt2, {0: [0]}, kind="mean"):
            pass
    with pytest.raises(ValueError, match=r"means has shape \(2, 4\) but .* \(2, 4, 8\)"):
        with ablate_heads(gpt2, {0: [0]}, kind="mean", means=torch.zeros(2, 4)):
            pass
    with pytest.raises(ValueError, match="non-finite"):
        with ablate_heads(gpt2, {0: [0]}, kind="mean", means=torch.full((2, 4, 8), float("nan"))):
            pass
    with pytest.raises(ValueError, match="only used by kind='mean'"):
        with ablate_heads(gpt2, {0: [0]}, kind="zero", means=torch.zeros(2, 4, 8)):
            pass


def test_mean_head_outputs_reject_a_bad_corpus(gpt2):
    with pytest.raises(TypeError, match="not one str"):
        mean_head_outputs(gpt2, TEXT)
    with pytest.raises(TypeError, match="text 3 is a int, not a str"):
        mean_head_outputs(gpt2, ["a", "b", "c", 4], batch_size=2)
    with pytest.raises(ValueError, match="no tokens to average"):
        mean_head_outputs(gpt2, [])
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        mean_head_outputs(gpt2, TEXTS, batch_size=0)
    with pytest.raises(ValueError, match="text 3 is an empty text"):
        mean_head_outputs(gpt2, ["a", "b", "c", " "], batch_size=2)
    with pytest.raises(ValueError, match="text 1 of the batch has .* tokens but") as err:
        mean_head_outputs(gpt2, ["a", "b", "c", "dog " * 100], batch_size=2)
    assert "items 2..3 of the texts" in "".join(err.value.__notes__)
