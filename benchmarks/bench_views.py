"""Benchmarks of issue 4: attention flow, attention rollout, and the weight of an embedded model view.

Rows (see benchmarks/run.py):
- attention flow on 20 tokens × 6 layers (12 heads): ours (scipy's max-flow on integer capacities)
  against the networkx reference, side by side; target ours <= 10 s.
- attention rollout on 128 tokens × 12 layers (12 heads); target ours <= 0.1 s.
- the model view of 6 layers × 12 heads × 32 tokens: its size in bytes; target <= 1 MB (1,000,000
  bytes). ``ours_s`` is the time to build it.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
from timing import median_seconds, paired_medians  # benchmarks/ is on sys.path when run.py runs

from attention_study.interactive import model_view
from attention_study.rollout import attention_flow, attention_flow_networkx, rollout


def random_attentions(layers: int, heads: int, tokens: int, seed: int = 0) -> np.ndarray:
    """Row-stochastic ``[layer, head, query, key]`` weights, peaked like trained heads."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(layers, heads, tokens, tokens)) * 3
    weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return weights / weights.sum(axis=-1, keepdims=True)


def _row(name: str, baseline: float | None, ours: float, target: str, met: bool) -> dict:
    ratio = None if baseline is None else baseline / ours
    return {"name": name, "baseline_s": baseline, "ours_s": ours, "ratio": ratio,
            "target": target, "met": bool(met)}


def rows() -> list[dict]:
    flow_input = random_attentions(6, 12, 20)
    ours = median_seconds(lambda: attention_flow(flow_input), repeats=5)
    out = [_row("attention flow 20 tokens x 6 layers, all 400 pairs", None, ours,
                "ours <= 10 s", ours <= 10.0)]
    # Side by side with the networkx reference on 3 query rows (60 max-flow problems each).
    rows3 = [0, 9, 19]
    baseline, ours = paired_medians(
        lambda: attention_flow_networkx(flow_input, queries=rows3),
        lambda: attention_flow(flow_input, queries=rows3),
        repeats=3,
        warmup=0,
    )
    out.append(_row("attention flow 20 tokens x 6 layers, 3 rows (baseline: networkx)",
                    baseline, ours, "ratio >= 10", baseline / ours >= 10))

    rollout_input = random_attentions(12, 12, 128, seed=1)
    ours = median_seconds(lambda: rollout(rollout_input), repeats=20)
    out.append(_row("attention rollout 128 tokens x 12 layers", None, ours, "ours <= 0.1 s",
                    ours <= 0.1))

    trace = SimpleNamespace(
        attentions=torch.tensor(random_attentions(6, 12, 32, seed=2), dtype=torch.float32),
        tokens=[f"token{i}" for i in range(32)],
    )
    ours = median_seconds(lambda: model_view(trace), repeats=5)
    size = model_view(trace).nbytes
    out.append(_row(f"model view 6x12x32 page weight: {size} bytes", None, ours,
                    "bytes <= 1,000,000", size <= 1_000_000))
    return out


if __name__ == "__main__":
    for row in rows():
        print(row)
