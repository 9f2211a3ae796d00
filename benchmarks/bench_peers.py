"""trace() against the tools researchers use for the same capture: TransformerLens and nnsight.

The peers live in their own environment, ``.venv-bench`` (``make bench-env``: the book's pins plus
``benchmarks/requirements-peers.txt``), so that nothing they pull in reaches the book. This module
runs ``benchmarks/peer_worker.py`` there once; the worker times a plain MiniLM forward with
attentions, ``trace()``, TransformerLens 4's ``TransformerBridge.run_with_cache`` restricted to the
same tensors (pattern, q, k, v, z) and nnsight's ``trace`` saving the same tensors, interleaved in one
process, and checks that their context vectors agree with ours. ``ratio`` is the peer's time over
ours (higher: we are faster); the trace row's ratio is the plain forward's time over ours.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv-bench" / "bin" / "python"
WORKER = Path(__file__).resolve().parent / "peer_worker.py"


def rows() -> list[dict]:
    if not PYTHON.exists():
        return [{"name": "peers (TransformerLens, nnsight): .venv-bench missing, run `make bench-env`",
                 "baseline_s": None, "ours_s": None, "ratio": None, "target": "measured", "met": False}]
    result = subprocess.run([str(PYTHON), str(WORKER)], capture_output=True, text=True, check=True, cwd=ROOT)
    m = json.loads(result.stdout.strip().splitlines()[-1])
    label = f"MiniLM, {m['tokens']} tokens, all 6 x 12 heads"
    out = [{
        "name": f"peers run: trace() vs forward(output_attentions=True), {label}",
        "baseline_s": m["forward_s"], "ours_s": m["trace_s"], "ratio": m["forward_s"] / m["trace_s"],
        "target": "trace <= 1.10x forward (ratio >= 0.91)", "met": m["trace_s"] <= 1.10 * m["forward_s"],
    }]
    for tool, key in (("TransformerLens 4.3 TransformerBridge.run_with_cache", "transformer_lens"),
                      ("nnsight 0.8.1 trace + save", "nnsight")):
        diff = m[f"{key}_max_diff"]
        out.append({
            "name": f"{tool} vs trace(), {label} (context vectors differ by <= {diff:.0e})",
            "baseline_s": m[f"{key}_s"], "ours_s": m["trace_s"], "ratio": m[f"{key}_s"] / m["trace_s"],
            "target": "trace no slower (ratio >= 1), same tensors (diff <= 1e-5)",
            "met": m[f"{key}_s"] >= m["trace_s"] and diff <= 1e-5,
        })
    return out
