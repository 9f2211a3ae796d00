"""trace() equals the model's own computation, for every family, and rejects bad input clearly."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from conftest import removing

from attention_study.models import load
from attention_study.tracing import ADAPTERS, BatchTrace, LayerHeadRangeError, Trace, trace

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
    with removing([m.output.register_forward_hook(lambda _m, _i, out: outputs.append(out[0])) for m in modules]):
        t = trace(loaded, _inputs(loaded))
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


# ---------------------------------------------------------------------------------------------
# batches, token ids, devices

SHORT = "The dog."
LONG = "The quick brown fox jumps over the lazy dog, and attention weights are probabilities over keys."


def _texts_or_images(loaded) -> list:
    """A batch whose items differ a lot in length (texts), or three different images (ViT)."""
    if loaded.family == "vit":
        size = int(loaded.model.config.image_size)
        rng = np.random.default_rng(1)
        return [rng.uniform(0, 255, size=(size, size, 3)).astype(np.uint8) for _ in range(3)]
    return [SHORT, LONG, TEXT]


def _assert_same_trace(batched, single, atol: float = 1e-5) -> None:
    """Every field of two traces of the same input agrees (tensors to float32 round-off)."""
    assert batched.tokens == single.tokens
    assert batched.offsets == single.offsets
    assert batched.text == single.text
    assert torch.equal(batched.special, single.special)
    for name in ("attentions", "queries", "keys", "values", "contexts", "hidden_states"):
        a, b = getattr(batched, name), getattr(single, name)
        assert a.shape == b.shape, name
        assert (a - b).abs().max().item() < atol, name
    assert (batched.logits is None) == (single.logits is None)
    if single.logits is not None:
        assert batched.logits.shape == single.logits.shape
        assert (batched.logits - single.logits).abs().max().item() < 10 * atol
    if single.input_ids is not None:
        assert torch.equal(batched.input_ids, single.input_ids)
    assert batched.extras.keys() == single.extras.keys()
    for key in single.extras:
        assert torch.equal(batched.extras[key], single.extras[key])


def test_a_batch_equals_its_items_traced_one_at_a_time(loaded):
    items = _texts_or_images(loaded)
    batch = trace(loaded, items)
    assert isinstance(batch, BatchTrace) and len(batch) == len(items)
    if loaded.family != "vit":
        lengths = batch.lengths
        assert min(lengths) <= 6 and max(lengths) >= 20  # very different lengths: real padding
    for item, traced in zip(items, batch, strict=True):
        _assert_same_trace(traced, trace(loaded, item))


def test_padding_is_zero_in_every_batch_tensor_and_absent_from_every_item(tiny_gpt2_dir):
    m = load(tiny_gpt2_dir)
    batch = trace(m, [SHORT, LONG])
    pad = ~batch.mask[0]
    assert pad.any()
    assert batch.attentions[0][..., pad, :].abs().max().item() == 0.0
    assert batch.attentions[0][..., pad].abs().max().item() == 0.0
    assert batch.contexts[0][..., pad, :].abs().max().item() == 0.0
    assert batch.hidden_states[0][:, pad].abs().max().item() == 0.0
    short = batch[0]
    assert short.n_tokens == int(batch.mask[0].sum()) == len(short.tokens) < batch.mask.shape[1]
    assert torch.allclose(short.attentions.sum(dim=-1), torch.ones(m.n_layers, m.n_heads, short.n_tokens))


def test_batch_trace_is_a_sequence_of_traces(tiny_bert_dir):
    batch = trace(load(tiny_bert_dir), [SHORT, TEXT, LONG])
    assert [t.text for t in batch] == [SHORT, TEXT, LONG]
    assert batch[-1].text == LONG and [t.text for t in batch[1:]] == [TEXT, LONG]
    assert batch[1].token_indices("rabbits") == trace(load(tiny_bert_dir), TEXT).token_indices("rabbits")
    with pytest.raises(IndexError, match=r"item 3 is out of range: valid items are 0..2"):
        batch[3]
    single = trace(load(tiny_bert_dir), [TEXT])
    assert isinstance(single, BatchTrace) and len(single) == 1


def test_a_tuple_of_texts_is_a_batch_too(tiny_gpt2_dir):
    assert isinstance(trace(load(tiny_gpt2_dir), (SHORT, LONG)), BatchTrace)


@pytest.mark.parametrize("name", ["tiny_bert_dir", "tiny_gpt2_dir"])
def test_token_ids_trace_like_the_text_they_encode(name, request):
    m = load(request.getfixturevalue(name), device=TEST_DEVICE)
    by_text = trace(m, TEXT)
    for ids in (by_text.input_ids, by_text.input_ids.tolist(), by_text.input_ids.numpy()):
        by_ids = trace(m, ids)
        assert isinstance(by_ids, Trace) and by_ids.text is None and by_ids.offsets is None
        assert by_ids.tokens == by_text.tokens
        assert torch.equal(by_ids.special, by_text.special)
        assert torch.equal(by_ids.input_ids, by_text.input_ids)
        assert torch.equal(by_ids.contexts, by_text.contexts)
        assert torch.equal(by_ids.hidden_states, by_text.hidden_states)
    with pytest.raises(ValueError, match="token ids, which have no character offsets"):
        by_ids.token_indices("rabbits")


@pytest.mark.parametrize("name", ["tiny_bert_dir", "tiny_gpt2_dir"])
def test_a_ragged_list_of_token_id_sequences_is_a_padded_batch(name, request):
    m = load(request.getfixturevalue(name))
    singles = [trace(m, text) for text in (SHORT, LONG)]
    batch = trace(m, [t.input_ids.tolist() for t in singles])
    for traced, single in zip(batch, singles, strict=True):
        assert traced.text is None
        assert traced.n_tokens == single.n_tokens
        assert (traced.contexts - single.contexts).abs().max().item() < 1e-5
        assert (traced.hidden_states - single.hidden_states).abs().max().item() < 1e-5


@pytest.mark.parametrize("name", ["tiny_bert_dir", "tiny_gpt2_dir"])
def test_left_padded_token_ids_with_a_mask_trace_like_each_sequence_alone(name, request):
    """Position ids count real tokens only, so even left padding (with junk ids) cannot leak."""
    m = load(request.getfixturevalue(name))
    singles = [trace(m, text) for text in (SHORT, LONG)]
    width = max(t.n_tokens for t in singles)
    ids = torch.full((2, width), 7, dtype=torch.long)  # the junk in padded slots must not matter
    mask = torch.zeros(2, width, dtype=torch.long)
    for row, single in enumerate(singles):
        ids[row, width - single.n_tokens:] = single.input_ids
        mask[row, width - single.n_tokens:] = 1
    batch = trace(m, ids, attention_mask=mask)
    for traced, single in zip(batch, singles, strict=True):
        assert torch.equal(traced.input_ids, single.input_ids)
        assert traced.tokens == single.tokens
        for name_ in ("attentions", "contexts", "values", "hidden_states"):
            assert (getattr(traced, name_) - getattr(single, name_)).abs().max().item() < 1e-5, name_


def test_a_2d_tensor_of_token_ids_without_a_mask_is_an_unpadded_batch(tiny_gpt2_dir):
    m = load(tiny_gpt2_dir)
    ids = trace(m, TEXT).input_ids
    batch = trace(m, torch.stack([ids, ids.flip(0)]))
    assert len(batch) == 2 and batch.lengths == [len(ids)] * 2
    _assert_same_trace(batch[1], trace(m, ids.flip(0)))


def test_a_list_of_images_is_a_batch_and_a_nested_list_is_one_image(tiny_vit_dir):
    m = load(tiny_vit_dir)
    image = _image(m)
    assert isinstance(trace(m, [image, image]), BatchTrace)
    one = trace(m, image.tolist())
    assert isinstance(one, Trace)
    _assert_same_trace(one, trace(m, image))


def test_device_defaults_to_the_models_and_a_wrong_one_is_named(tiny_bert_dir):
    m = load(tiny_bert_dir, device=TEST_DEVICE)
    default = trace(m, TEXT)
    _assert_same_trace(trace(m, TEXT, device=TEST_DEVICE), default, atol=0.0 + 1e-12)
    _assert_same_trace(trace(m, TEXT, device=torch.device(TEST_DEVICE)), default, atol=1e-12)
    assert default.contexts.device.type == "cpu"  # results always come back to the CPU
    with pytest.raises(ValueError, match=r"device meta was asked for but .* is on (cpu|cuda)"):
        trace(m, TEXT, device="meta")


@pytest.mark.parametrize("batch", [[], ()])
def test_an_empty_batch_is_rejected(batch, tiny_bert_dir, tiny_vit_dir):
    with pytest.raises(ValueError, match="batch is empty"):
        trace(load(tiny_bert_dir), batch)
    with pytest.raises(ValueError, match="batch is empty"):
        trace(load(tiny_vit_dir), batch)


def test_a_batch_mixing_texts_and_images_is_a_type_error_naming_the_item(tiny_bert_dir, tiny_vit_dir):
    with pytest.raises(TypeError, match=r"item 1 of the batch is an? ndarray of float64: .* only texts"):
        trace(load(tiny_bert_dir), [TEXT, np.zeros((16, 16, 3))])
    with pytest.raises(TypeError, match=r"item 1 of the batch is a str, but .* is a vision model"):
        trace(load(tiny_vit_dir), [np.zeros((16, 16, 3)), "a picture"])
    with pytest.raises(TypeError, match=r"item 1 of the batch is a list but item 0 is a str: the batch mixes"):
        trace(load(tiny_bert_dir), [TEXT, [1, 2, 3]])


@pytest.mark.parametrize("item", [None, 3.5, b"bytes"])
def test_a_non_text_item_in_a_batch_is_named(item, tiny_gpt2_dir):
    with pytest.raises(TypeError, match=rf"item 2 of the batch is a {type(item).__name__}"):
        trace(load(tiny_gpt2_dir), [SHORT, LONG, item])


def test_an_empty_or_too_long_text_in_a_batch_is_named(tiny_bert_dir):
    m = load(tiny_bert_dir)
    with pytest.raises(ValueError, match="text 1 of the batch is empty"):
        trace(m, [TEXT, "  "])
    with pytest.raises(ValueError, match=r"text 2 of the batch has \d+ tokens but .* at most 40"):
        trace(m, [TEXT, SHORT, "word " * 60])


@pytest.mark.parametrize("bad", [-1, 10_000])
def test_token_ids_outside_the_vocabulary_name_the_id_and_the_valid_range(bad, tiny_gpt2_dir):
    m = load(tiny_gpt2_dir)
    top = m.model.config.vocab_size - 1
    with pytest.raises(ValueError, match=rf"token id {bad} at position 2 of the token ids .* valid ids are 0..{top}"):
        trace(m, [1, 2, bad, 3])
    with pytest.raises(ValueError, match=rf"token id {bad} at position 0 of the token ids 1 of the batch"):
        trace(m, [[1, 2], [bad]])


def test_bad_token_id_inputs_are_rejected_clearly(tiny_bert_dir):
    m = load(tiny_bert_dir)
    with pytest.raises(ValueError, match="token ids are empty"):
        trace(m, torch.zeros(0, dtype=torch.long))
    with pytest.raises(TypeError, match="text model"):
        trace(m, torch.zeros(3))  # floats are not token ids
    with pytest.raises(TypeError, match="1-D .* or 2-D"):
        trace(m, torch.zeros(1, 2, 3, dtype=torch.long))
    ids = torch.ones(2, 4, dtype=torch.long)
    with pytest.raises(ValueError, match=r"attention_mask has shape \(2, 3\) but the token ids have shape \(2, 4\)"):
        trace(m, ids, attention_mask=torch.ones(2, 3))
    with pytest.raises(ValueError, match="attention_mask row 1 has no real token"):
        trace(m, ids, attention_mask=torch.tensor([[1, 1, 1, 1], [0, 0, 0, 0]]))
    with pytest.raises(ValueError, match="only 0 .* and 1"):
        trace(m, ids, attention_mask=torch.full((2, 4), 2))
    with pytest.raises(ValueError, match="attention_mask is only for a 2-D tensor of token ids"):
        trace(m, [TEXT], attention_mask=torch.ones(1, 4))


def test_layer_head_range_errors_are_value_errors_too():
    t = trace(load("minilm"), TEXT)
    with pytest.raises(ValueError, match=r"head 12 is out of range: valid heads are 0..11"):
        t.head(0, 12)
    assert issubclass(LayerHeadRangeError, IndexError) and issubclass(LayerHeadRangeError, ValueError)


def test_queries_keys_values_equal_the_outputs_of_the_models_own_projections(loaded):
    """The recorder reads Q, K, V where the attention function receives them; hooks on the projection
    modules (the adapters) see the same numbers, split per head."""
    modules = ADAPTERS[loaded.family](loaded.model)
    captured: list[list[torch.Tensor]] = [[] for _ in modules]
    handles = [
        module.register_forward_hook(lambda _m, _i, out, into=outputs: into.append(out[0]))
        for layer, outputs in zip(modules, captured, strict=True)
        for module in layer.qkv
    ]
    with removing(handles):
        t = trace(loaded, _inputs(loaded))
    for layer, outputs in enumerate(captured):
        q, k, v = torch.cat(outputs, dim=-1).cpu().chunk(3, dim=-1)
        for projected, traced in ((q, t.queries), (k, t.keys), (v, t.values)):
            per_head = projected.reshape(t.n_tokens, loaded.n_heads, -1).transpose(0, 1)
            assert torch.equal(per_head, traced[layer])


def test_trace_restores_the_models_attention_implementation_even_after_an_error(tiny_gpt2_dir):
    m = load(tiny_gpt2_dir)
    m.model.set_attn_implementation("sdpa")
    try:
        t = trace(m, TEXT)
        assert m.model.config._attn_implementation == "sdpa"
        assert torch.allclose(t.attentions.sum(-1), torch.ones(()))  # eager weights, recorded under sdpa too
        with pytest.raises(ValueError, match="out of the vocabulary"):
            trace(m, [10**6])
        original = m.model.forward

        def failing(*args, **kwargs):
            raise RuntimeError("stop")

        m.model.forward = failing
        with pytest.raises(RuntimeError, match="stop"):
            trace(m, TEXT)
        m.model.forward = original
        assert m.model.config._attn_implementation == "sdpa"
    finally:
        m.model.set_attn_implementation("eager")


def test_ids_holding_the_pad_id_trace_without_a_missing_mask_warning():
    import logging

    from transformers.utils import logging as hf_logging

    class Recorder(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.WARNING)
            self.messages: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.messages.append(record.getMessage())

    loaded = load("tiny-gpt2")
    pad = loaded.model.config.pad_token_id
    assert pad is not None
    ids = torch.tensor([pad, 5, 6, pad])
    recorder, library = Recorder(), hf_logging.get_logger("transformers")
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_warning()
    library.addHandler(recorder)
    try:
        logging.Logger.warning_once.cache_clear()  # transformers warns once per message and process
        with torch.no_grad():
            loaded.model(input_ids=ids[None])  # the model itself warns without a mask: the check sees it
        assert any("attention_mask" in m for m in recorder.messages)
        recorder.messages.clear()
        logging.Logger.warning_once.cache_clear()
        t = trace(loaded, ids)
        assert not any("attention_mask" in m for m in recorder.messages)
    finally:
        library.removeHandler(recorder)
        hf_logging.set_verbosity(level)
    assert t.n_tokens == 4
