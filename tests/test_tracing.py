"""trace() equals the model's own computation, for every family, and rejects bad input clearly."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from attention_study.models import load
from attention_study.tracing import ADAPTERS, trace

#: Set STUDY_TEST_DEVICE=cuda to run these tests on a GPU (the tiny models; MiniLM stays the same).
TEST_DEVICE = os.environ.get("STUDY_TEST_DEVICE", "cpu")

TEXT = "Pulling rabbits out of hats is what magicians do."


def _image(loaded):
    size = int(loaded.model.config.image_size)
    return np.random.default_rng(0).uniform(0, 255, size=(size, size, 3)).astype(np.uint8)


@pytest.fixture(params=["minilm", "tiny_bert_dir", "tiny_gpt2_dir", "tiny_vit_dir"])
def loaded(request):
    """Each family, on the test device (the CPU unless STUDY_TEST_DEVICE says otherwise)."""
    name = request.param
    return load(name if name == "minilm" else request.getfixturevalue(name), device=TEST_DEVICE)


def _inputs(loaded):
    return _image(loaded) if loaded.family == "vit" else TEXT


def _causal_mask(t: int) -> torch.Tensor:
    return torch.triu(torch.full((t, t), float("-inf")), diagonal=1)


def test_trace_shapes_follow_the_documented_layout(loaded):
    t = trace(loaded, _inputs(loaded))
    L, H = loaded.n_layers, loaded.n_heads
    T = len(t.tokens)
    d_head = loaded.model.config.hidden_size // H
    assert t.attentions.shape == (L, H, T, T)
    for tensor in (t.queries, t.keys, t.values, t.contexts):
        assert tensor.shape == (L, H, T, d_head)
    assert t.hidden_states.shape == (L + 1, T, loaded.model.config.hidden_size)
    assert t.special.shape == (T,)


def test_recomputed_softmax_of_traced_queries_and_keys_equals_traced_attention(loaded):
    t = trace(loaded, _inputs(loaded))
    scores = t.queries @ t.keys.transpose(-1, -2) / t.queries.shape[-1] ** 0.5
    if loaded.family == "gpt2":
        scores = scores + _causal_mask(t.n_tokens)
    err = (torch.softmax(scores, dim=-1) - t.attentions).abs().max().item()
    assert err < 1e-5


def test_concatenated_context_vectors_feed_the_output_projection_exactly(loaded):
    """Hook the output projection independently and push the traced contexts through it."""
    outputs = []
    modules = ADAPTERS[loaded.family](loaded.model)
    handles = [m.output.register_forward_hook(lambda _m, _i, out: outputs.append(out[0]))
               for m in modules]
    try:
        t = trace(loaded, _inputs(loaded))
    finally:
        for h in handles:
            h.remove()
    for layer, module in enumerate(modules):
        concat = t.contexts[layer].transpose(0, 1).reshape(t.n_tokens, -1)
        with torch.no_grad():
            projected = module.output(concat.to(outputs[layer].device))
        assert (projected - outputs[layer]).abs().max().item() < 1e-5


def test_context_vectors_are_attention_times_values_with_the_value_bias(loaded):
    t = trace(loaded, _inputs(loaded))
    assert (t.attentions @ t.values - t.contexts).abs().max().item() < 1e-5


def test_values_include_the_bias_of_the_value_projection():
    m = load("minilm")
    t = trace(m, TEXT)
    value = m.model.encoder.layer[2].attention.self.value
    with torch.no_grad():
        v = value(t.hidden_states[2])  # BERT's attention reads the previous layer's output
    per_head = v.reshape(t.n_tokens, m.n_heads, -1).transpose(0, 1)
    assert (per_head - t.values[2]).abs().max().item() < 1e-5
    assert value.bias.abs().max().item() > 1e-3  # the bias matters: it is not zero


def test_hidden_states_and_logits_match_a_plain_forward(loaded):
    t = trace(loaded, _inputs(loaded))
    if loaded.family == "vit":
        inputs = {"pixel_values": t.extras["pixel_values"][None].to(TEST_DEVICE)}
    else:
        inputs = {"input_ids": t.input_ids[None].to(TEST_DEVICE)}
    with torch.no_grad():
        out = loaded.model(**inputs, output_hidden_states=True)
    plain = torch.stack([h[0] for h in out.hidden_states])
    assert (plain.cpu() - t.hidden_states).abs().max().item() < 1e-5
    if t.logits is not None:
        assert (out.logits[0].cpu() - t.logits).abs().max().item() < 1e-4


def test_gpt2_attention_is_causal_in_every_head(tiny_gpt2_dir):
    t = trace(load(tiny_gpt2_dir), TEXT)
    upper = torch.triu(torch.ones(t.n_tokens, t.n_tokens, dtype=torch.bool), diagonal=1)
    assert t.attentions[..., upper].abs().max().item() == 0.0


def test_phrase_lookup_uses_character_offsets_so_special_tokens_never_shift_it():
    t = trace(load("minilm"), TEXT)
    indices = t.token_indices("rabbits out of hats")
    assert t.tokens[0] == "[CLS]"
    assert [t.tokens[i] for i in indices] == ["rabbits", "out", "of", "hats"]
    assert t.token_indices("magicians") == [8, 9]  # 'magician', '##s'


def test_phrase_lookup_on_byte_level_tokens(tiny_gpt2_dir):
    t = trace(load(tiny_gpt2_dir), TEXT)
    pieces = "".join(t.tokens[i] for i in t.token_indices("rabbits out"))
    assert pieces.replace("Ġ", " ").strip() == "rabbits out"


def test_phrase_lookup_matches_whole_words_and_picks_occurrences():
    t = trace(load("minilm"), "a cat and a concatenation and a cat")
    first, second = t.token_indices("cat", 0), t.token_indices("cat", 1)
    assert first != second and t.tokens[first[0]] == t.tokens[second[0]] == "cat"
    with pytest.raises(ValueError, match="occurs 2 time"):
        t.token_indices("cat", 2)


def test_missing_phrase_is_an_error_quoting_it():
    t = trace(load("minilm"), TEXT)
    with pytest.raises(ValueError, match="'top hats' is not in the text"):
        t.token_indices("top hats")


@pytest.mark.parametrize("text", ["", "   \n"])
def test_empty_text_is_rejected(text):
    with pytest.raises(ValueError, match="text is empty"):
        trace(load("minilm"), text)


def test_text_longer_than_the_positions_is_an_error_not_a_truncation(tiny_bert_dir):
    m = load(tiny_bert_dir)  # 40 positions
    with pytest.raises(ValueError, match=r"has \d+ tokens but .* at most 40"):
        trace(m, "word " * 60)


def test_layer_and_head_out_of_range_state_the_valid_range():
    t = trace(load("minilm"), TEXT)
    with pytest.raises(IndexError, match=r"layer 6 is out of range: valid layers are 0..5"):
        t.head(6, 0)
    with pytest.raises(IndexError, match=r"head 12 is out of range: valid heads are 0..11"):
        t.head(0, 12)
    with pytest.raises(IndexError, match="layer -1"):
        t.head(-1, 0)
    h = t.head(5, 11)
    assert torch.equal(h.attention, t.attentions[5, 11])


def test_text_model_given_an_image_and_vision_model_given_text_are_type_errors(tiny_vit_dir):
    with pytest.raises(TypeError, match="text model"):
        trace(load("minilm"), np.zeros((4, 4)))
    with pytest.raises(TypeError, match="vision model"):
        trace(load(tiny_vit_dir), "a picture")


def test_non_finite_pixels_are_rejected(tiny_vit_dir):
    image = np.zeros((16, 16, 3))
    image[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        trace(load(tiny_vit_dir), image)
