"""LoRA wrapper: W + (alpha/r) B A, on our layers and on a Hugging Face attention module."""

import pytest
import torch
from torch import nn

from attention_study.equivariance import SelfAttention
from attention_study.lora import LoRALinear, add_lora, randomize_lora_


def test_lora_starts_as_the_identity_adaptation_and_matches_merged_weight():
    torch.manual_seed(0)
    base = nn.Linear(6, 4, dtype=torch.float64)
    lora = LoRALinear(base, rank=2)
    x = torch.randn(3, 6, dtype=torch.float64)
    assert torch.equal(lora(x), base(x))
    lora.randomize_(0.5, torch.Generator().manual_seed(1))
    assert not torch.allclose(lora(x), base(x))
    expected = x @ lora.weight.T + lora.bias
    assert torch.allclose(lora(x), expected, atol=1e-13)
    delta = lora.weight - base.weight
    assert torch.linalg.matrix_rank(delta) == 2


@pytest.mark.parametrize("rank", [0, -1, 5, 2.0])
def test_lora_rank_out_of_range_is_an_error_naming_the_range(rank):
    with pytest.raises(ValueError, match=r"\[1, 4\]"):
        LoRALinear(nn.Linear(6, 4), rank=rank)


def test_lora_wraps_only_linear():
    with pytest.raises(TypeError, match="nn.Linear"):
        LoRALinear(nn.Conv1d(2, 2, 1), rank=1)


def test_add_lora_wraps_query_key_value_output_of_our_layer():
    layer = SelfAttention(8, 2)
    wrapped = add_lora(layer, rank=2)
    assert sorted(wrapped) == ["key", "output", "query", "value"]
    assert all(isinstance(getattr(layer, n), LoRALinear) for n in wrapped)
    trainable = [n for n, p in layer.named_parameters() if p.requires_grad]
    assert all("lora_" in n for n in trainable)


def test_add_lora_unknown_target_lists_linear_maps():
    with pytest.raises(ValueError, match="linear maps here"):
        add_lora(SelfAttention(8, 2), rank=1, targets=("proj",))


def test_add_lora_bad_rank_changes_nothing():
    layer = SelfAttention(8, 2)
    with pytest.raises(ValueError, match=r"\[1, 8\]"):
        add_lora(layer, rank=9)
    assert isinstance(layer.query, nn.Linear)


def test_add_lora_on_a_hugging_face_bert_attention_changes_its_output():
    from transformers import BertConfig
    from transformers.models.bert.modeling_bert import BertAttention

    torch.manual_seed(0)
    cfg = BertConfig(hidden_size=16, num_attention_heads=2, intermediate_size=32)
    cfg._attn_implementation = "eager"
    att = BertAttention(cfg).double().eval()
    x = torch.randn(1, 5, 16, dtype=torch.float64)
    before = att(x)[0]
    wrapped = add_lora(att, rank=2, targets=("self.query", "self.key", "self.value", "output.dense"))
    assert sorted(wrapped) == ["output.dense", "self.key", "self.query", "self.value"]
    assert torch.allclose(att(x)[0], before, atol=1e-14)  # B = 0 at start
    randomize_lora_(wrapped, 0.3, torch.Generator().manual_seed(2))
    assert not torch.allclose(att(x)[0], before, atol=1e-3)


def test_lora_output_change_is_zero_at_initialisation_and_measurable_after_randomising():
    from attention_study.lora import lora_output_change

    torch.manual_seed(0)
    layer = SelfAttention(8, 2)
    x = torch.randn(5, 8, dtype=torch.float64)
    base = layer(x).detach()
    adapters = add_lora(layer, rank=2)
    assert lora_output_change(layer, x) == 0.0  # B = 0: the adapted layer is the base layer
    randomize_lora_(adapters, 0.3, torch.Generator().manual_seed(1))
    change = lora_output_change(layer, x)
    with torch.no_grad():
        expected = float(torch.linalg.norm(layer(x) - base) / torch.linalg.norm(base))
    assert change > 1e-2
    assert abs(change - expected) < 1e-12  # the switched-off layer is the original layer


def test_lora_disabled_restores_the_scales_even_after_an_error():
    from attention_study.lora import lora_disabled

    layer = SelfAttention(8, 2)
    adapters = add_lora(layer, rank=2, alpha=4.0)
    with pytest.raises(RuntimeError, match="inside"):
        with lora_disabled(layer):
            assert all(a.scale == 0.0 for a in adapters.values())
            raise RuntimeError("inside")
    assert all(a.scale == 2.0 for a in adapters.values())


def test_lora_output_change_of_a_module_without_adapters_is_an_error():
    from attention_study.lora import lora_output_change

    with pytest.raises(ValueError, match="no LoRA adapters"):
        lora_output_change(SelfAttention(8, 2), torch.randn(3, 8, dtype=torch.float64))


def test_with_lora_adds_seeded_random_adapters_in_place_as_add_lora_and_randomize_do():
    from attention_study.lora import lora_output_change, with_lora

    x = torch.randn(5, 8, dtype=torch.float64)
    torch.manual_seed(0)
    by_hand = SelfAttention(8, 2)
    randomize_lora_(add_lora(by_hand, 2), 0.3, torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    base = SelfAttention(8, 2)
    layer = with_lora(base, rank=2, seed=1)
    assert layer is base
    assert {n for n, m in layer.named_modules() if isinstance(m, LoRALinear)} == {"query", "key", "value", "output"}
    assert torch.equal(layer(x), by_hand(x))
    assert lora_output_change(layer, x) > 1e-2
    torch.manual_seed(0)
    other_seed = with_lora(SelfAttention(8, 2), rank=2, seed=2)
    assert not torch.equal(other_seed(x), layer(x))
