"""Entropy and pairwise Jensen–Shannon distances over every head of a 128-token text.

Baseline: the per-row Python loop of the original notebooks — one call per attention row for its
entropy and one per pair of rows for their JS distance (plain NumPy on two 128-vectors; this is
faster than calling ``scipy.spatial.distance.jensenshannon`` per pair, so the ratio is
conservative). Ours: :func:`attention_study.information.entropy` and
:func:`~attention_study.information.pairwise_js_distance`, vectorised over ``[layer, head]``.
Both compute the same numbers (checked before timing).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.append(str(Path(__file__).parent))  # benchmarks/ is a folder of scripts, not a package
from timing import median_seconds

from attention_study.information import entropy, pairwise_js_distance
from attention_study.models import load
from attention_study.tracing import trace

N_TOKENS = 128
SENTENCE = (
    "The river bank was quiet at dawn, and the old ferryman counted the boats that drifted past "
    "the mill before the market opened."
)


def text_of_exactly(n_tokens: int) -> str:
    """A text that MiniLM's tokenizer turns into exactly ``n_tokens`` tokens (with specials)."""
    m = load("minilm")
    words = (SENTENCE + " ") * 8
    words = words.split()
    for k in range(len(words), 0, -1):
        text = " ".join(words[:k])
        if len(m.tokenizer(text)["input_ids"]) == n_tokens:
            return text
    raise RuntimeError(f"no prefix of the sample text has exactly {n_tokens} tokens")


def loop_entropy_and_js(attn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The original style: Python loops over heads, rows and pairs of rows."""
    n_layers, n_heads, n, _ = attn.shape
    ent = np.zeros((n_layers, n_heads, n))
    js = np.zeros((n_layers, n_heads, n, n))
    for layer in range(n_layers):
        for head in range(n_heads):
            rows = attn[layer, head]
            for i in range(n):
                p = rows[i]
                ent[layer, head, i] = -np.sum(np.where(p > 0, p * np.log2(p), 0.0))
                for j in range(n):
                    q = rows[j]
                    m = 0.5 * (p + q)
                    kl_pm = np.sum(np.where(p > 0, p * np.log2(p / m), 0.0))
                    kl_qm = np.sum(np.where(q > 0, q * np.log2(q / m), 0.0))
                    js[layer, head, i, j] = np.sqrt(max(0.5 * kl_pm + 0.5 * kl_qm, 0.0))
    return ent, js


def vectorised_entropy_and_js(attn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return entropy(attn), pairwise_js_distance(attn)


def rows() -> list[dict]:
    m = load("minilm")
    t = trace(m, text_of_exactly(N_TOKENS))
    attn = t.attentions.double().numpy()
    attn /= attn.sum(axis=-1, keepdims=True)  # float32 rows, renormalised in float64 for both
    assert attn.shape[-1] == N_TOKENS

    ent_vec, js_vec = vectorised_entropy_and_js(attn)
    ours = median_seconds(lambda: vectorised_entropy_and_js(attn), repeats=7, warmup=1)
    times = []
    for _ in range(3):  # the loop takes tens of seconds: three timed runs, no warm-up
        start = time.perf_counter()
        ent_loop, js_loop = loop_entropy_and_js(attn)
        times.append(time.perf_counter() - start)
    baseline = statistics.median(times)
    assert np.abs(ent_loop - ent_vec).max() < 1e-9, np.abs(ent_loop - ent_vec).max()
    assert np.abs(js_loop - js_vec).max() < 1e-6, np.abs(js_loop - js_vec).max()
    ratio = baseline / ours
    return [
        {
            "name": f"entropy + pairwise JS, all {t.n_layers}x{t.n_heads} heads, {N_TOKENS} tokens",
            "baseline_s": baseline,
            "ours_s": ours,
            "ratio": ratio,
            "target": "ratio >= 50",
            "met": ratio >= 50,
        }
    ]


if __name__ == "__main__":
    for row in rows():
        print(row)
