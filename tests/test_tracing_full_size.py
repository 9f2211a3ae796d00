"""trace() on the hub profile's architectures at full size, at their longest inputs.

gpt2 (1,024 positions), bert-base (512) and vit-base (224×224 pixels in 16×16 patches: 197 tokens),
randomly initialised (``models.full_size_random``: no download), are traced once each at their
maximum input length. The checks are those of ``tests/test_tracing.py`` — the documented shapes,
softmax(QKᵀ/√d + mask) equal to the returned attention, contexts equal to attention × values, and
the concatenated contexts equal to the input of the attention output projection (float32, 1e-5) —
plus the size of what the trace holds. Time and peak memory are measured by ``make bench``
(``benchmarks/bench_tracing.py``, the "full size" rows).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attention_study.models import ROLES, full_size_random
from attention_study.tracing import ADAPTERS, trace

TOL = 1e-5
#: (tokens traced, the length that must be refused) per role; vision: [CLS] + a 14 × 14 patch grid.
LENGTHS = {"causal": 1024, "bidirectional": 512, "vision": 1 + (224 // 16) ** 2}


def max_input(loaded):
    """The longest input the model takes: token ids filling every position, or one full-size image."""
    if loaded.family == "vit":
        side = int(loaded.model.config.image_size)
        return np.random.default_rng(0).integers(0, 256, size=(side, side, 3), dtype=np.uint8)
    ids = torch.randint(0, len(loaded.tokenizer), (loaded.max_positions,), generator=torch.Generator().manual_seed(0))
    return ids


@pytest.fixture(scope="module", params=ROLES)
def traced(request):
    """(model, its trace at maximum length, the output projections' inputs recorded independently)."""
    torch.set_grad_enabled(False)
    loaded = full_size_random(request.param)
    seen = []
    modules = ADAPTERS[loaded.family](loaded.model)
    handles = [m.output.register_forward_pre_hook(lambda _m, args: seen.append(args[0][0].clone()))
               for m in modules]
    try:
        t = trace(loaded, max_input(loaded))
    finally:
        for h in handles:
            h.remove()
    yield loaded, t, seen
    torch.set_grad_enabled(True)


def test_full_size_trace_has_the_documented_shapes_at_maximum_length(traced):
    loaded, t, _ = traced
    config = loaded.model.config
    L, H, d = config.num_hidden_layers, config.num_attention_heads, config.hidden_size
    T = LENGTHS[loaded.role]
    assert (L, H, d) == (12, 12, 768)
    assert t.attentions.shape == (L, H, T, T)
    for tensor in (t.queries, t.keys, t.values, t.contexts):
        assert tensor.shape == (L, H, T, d // H)
    assert t.hidden_states.shape == (L + 1, T, d)
    held = sum(x.numel() * x.element_size() for x in (t.attentions, t.queries, t.keys, t.values, t.contexts))
    assert held == 4 * L * H * T * (T + 4 * (d // H))   # float32, nothing kept twice


def test_full_size_recomputed_softmax_equals_the_traced_attention(traced):
    loaded, t, _ = traced
    scores = t.queries @ t.keys.transpose(-1, -2) / t.queries.shape[-1] ** 0.5
    if loaded.family == "gpt2":
        scores = scores + torch.triu(torch.full((t.n_tokens, t.n_tokens), float("-inf")), diagonal=1)
    assert (torch.softmax(scores, dim=-1) - t.attentions).abs().max().item() < TOL


def test_full_size_contexts_are_attention_times_values_and_feed_the_output_projection(traced):
    _, t, seen = traced
    assert (t.attentions @ t.values - t.contexts).abs().max().item() < TOL
    for layer, concat in enumerate(seen):
        mine = t.contexts[layer].transpose(0, 1).reshape(t.n_tokens, -1)
        assert (mine - concat).abs().max().item() < TOL


def test_one_token_more_than_the_positions_is_refused_naming_the_limit():
    loaded = full_size_random("causal")
    too_long = torch.zeros(loaded.max_positions + 1, dtype=torch.long)
    with pytest.raises(ValueError, match=str(loaded.max_positions)):
        trace(loaded, too_long)
