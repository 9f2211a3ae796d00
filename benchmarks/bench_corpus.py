"""Corpus-scale statistics: batched tracing, flat memory, and two processes through accelerate.

Three measurements on MiniLM and short sentences of the generated corpus (no downloads):

(a) throughput: ``trace`` one text at a time against ``trace`` on batches of 32, and against the
    whole :func:`~attention_study.corpus_stats.head_statistics` pipeline (tracing plus reductions),
    interleaved batch by batch so that load from other programs hits all three alike;
(b) memory: the peak resident memory *during* ``head_statistics`` over 1,000 and over 10,000
    texts, each in a fresh one-thread process (the peak is reset after the model is loaded and
    warmed up, through ``/proc/self/clear_refs``, so loading the model does not mask the run; one
    thread keeps the 10,000-text run short on a busy machine and does not change the memory);
(c) one process against two processes launched by ``torch.distributed.run`` (what
    ``accelerate launch`` uses for several processes) with an ``accelerate.Accelerator(cpu=True)``:
    the wall time of the ``head_statistics`` call. ``torch.distributed.run`` gives each process one
    thread; the single process keeps torch's default (one per core).

Run as a script (``python bench_corpus.py worker N [--accelerate]``) it is the worker of (b) and (c).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve()
N_THROUGHPUT = 1_000
N_MEMORY = (1_000, 10_000)
N_PROCESSES = 1_000
MAX_WORDS = 8
BATCH_SIZE = 32
#: Longest the interleaved loop of (a) runs; rates are then measured on the texts done so far.
CAP_S = 90.0
MARK = "BENCH_CORPUS "


def short_sentences(n: int, max_words: int = MAX_WORDS) -> Iterator[str]:
    """The first ``n`` sentences of at most ``max_words`` words of the generated corpus, lazily."""
    from attention_study.corpus import generate_passage

    def sentences() -> Iterator[str]:
        for index in itertools.count():
            yield from re.split(r"(?<=[.!?])\s+", generate_passage(index))

    return itertools.islice((s for s in sentences() if 0 < len(s.split()) <= max_words), n)


# ---------------------------------------------------------------------------------------------
# the worker (a separate process)


def _rss_kib(field: str) -> int:
    """``VmRSS`` or ``VmHWM`` (peak) of this process, KiB."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+)", status).group(1))


def _worker(n_texts: int, distributed: bool) -> None:
    import torch

    from attention_study.corpus_stats import head_statistics
    from attention_study.models import load

    torch.set_grad_enabled(False)
    accelerator = None
    if distributed:
        from accelerate import Accelerator

        accelerator = Accelerator(cpu=True)
    loaded = load("minilm")
    head_statistics(loaded, short_sentences(2 * BATCH_SIZE), batch_size=BATCH_SIZE, progress=False)  # warm-up
    before = _rss_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    if accelerator is not None:
        accelerator.wait_for_everyone()
    start = time.perf_counter()
    stats = head_statistics(
        loaded, short_sentences(n_texts), batch_size=BATCH_SIZE, progress=False, accelerator=accelerator
    )
    seconds = time.perf_counter() - start
    if stats.n_texts != n_texts:
        raise RuntimeError(f"read {stats.n_texts} texts, expected {n_texts}")
    if accelerator is None or accelerator.is_main_process:
        record = {"seconds": seconds, "rss_before_mib": before / 1024, "peak_mib": _rss_kib("VmHWM") / 1024,
                  "threads": torch.get_num_threads(), "accumulator_bytes": stats.nbytes}
        print(MARK + json.dumps(record), flush=True)


def _run_worker(n_texts: int, processes: int | None, threads: int | None = None) -> dict:
    """Run the worker in a fresh process (``processes=None``) or under ``torch.distributed.run``;
    ``threads`` sets ``OMP_NUM_THREADS`` (default: torch's, or one per process under torchrun)."""
    if processes is None:
        command = [sys.executable, str(HERE), "worker", str(n_texts)]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                   str(processes), str(HERE), "worker", str(n_texts), "--accelerate"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"worker failed ({' '.join(command)}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len(MARK):])


# ---------------------------------------------------------------------------------------------
# the rows


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _load() -> str:
    """The machine's 1-minute load average against its cores, for the row names."""
    return f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def _throughput_rows() -> list[dict]:
    import torch

    from attention_study.corpus_stats import head_statistics
    from attention_study.models import load
    from attention_study.tracing import trace

    torch.set_grad_enabled(False)
    loaded = load("minilm")
    texts = list(short_sentences(N_THROUGHPUT))
    warm = texts[:BATCH_SIZE]
    for text in warm:  # warm-up
        trace(loaded, text)
    trace(loaded, warm)
    head_statistics(loaded, warm, batch_size=BATCH_SIZE, progress=False)

    # Interleaved chunk by chunk, so that a change of load on the machine hits all three alike.
    single = batched = pipeline = 0.0
    n_done, start = 0, time.perf_counter()
    for k in range(0, len(texts), BATCH_SIZE):
        chunk = texts[k : k + BATCH_SIZE]
        single += _seconds(lambda chunk=chunk: [trace(loaded, text) for text in chunk])
        batched += _seconds(lambda chunk=chunk: trace(loaded, chunk))
        pipeline += _seconds(
            lambda chunk=chunk: head_statistics(loaded, chunk, batch_size=BATCH_SIZE, progress=False)
        )
        n_done += len(chunk)
        if time.perf_counter() - start > CAP_S:
            break
    single, batched, pipeline = (t * len(texts) / n_done for t in (single, batched, pipeline))
    n, threads = len(texts), torch.get_num_threads()
    sampled = "" if n_done == n else f" (rates of the first {n_done}, time cap)"
    what = f"MiniLM, {n} sentences of <= {MAX_WORDS} words{sampled}, {threads} threads, {_load()}"
    return [
        {
            "name": f"corpus: trace batched ({BATCH_SIZE}) vs one at a time, {what}: "
            f"{n / single:.0f} vs {n / batched:.0f} texts/s",
            "baseline_s": single, "ours_s": batched, "ratio": single / batched,
            "target": "ratio >= 3", "met": single / batched >= 3,
        },
        {
            "name": f"corpus: head_statistics (batched trace + running sums) vs trace one at a time, {what}: "
            f"{n / pipeline:.0f} texts/s",
            "baseline_s": single, "ours_s": pipeline, "ratio": single / pipeline,
            "target": "ratio >= 3", "met": single / pipeline >= 3,
        },
    ]


def _memory_row() -> dict:
    small, large = (_run_worker(n, None, threads=1) for n in N_MEMORY)
    growth = [r["peak_mib"] - r["rss_before_mib"] for r in (small, large)]
    ratio = small["peak_mib"] / large["peak_mib"]
    return {
        "name": f"corpus: peak RSS during head_statistics (1 thread), {N_MEMORY[0]:,} vs {N_MEMORY[1]:,} texts: "
        f"{small['peak_mib']:.0f} vs {large['peak_mib']:.0f} MiB (above the loaded model: "
        f"+{growth[0]:.0f} vs +{growth[1]:.0f} MiB); ratio = peak 1k / peak 10k; "
        f"times {small['seconds']:.1f} s vs {large['seconds']:.1f} s",
        "baseline_s": None, "ours_s": None, "ratio": ratio,
        "target": "10k peak within 10% of 1k (ratio >= 0.91)", "met": large["peak_mib"] <= 1.10 * small["peak_mib"],
    }


def _processes_row() -> dict:
    one, two = _run_worker(N_PROCESSES, 1), _run_worker(N_PROCESSES, 2)
    ratio = one["seconds"] / two["seconds"]
    return {
        "name": f"corpus: head_statistics, 2 processes x {two['threads']} thread vs 1 process x "
        f"{one['threads']} threads (accelerate, gloo), {N_PROCESSES:,} texts, {_load()}",
        "baseline_s": one["seconds"], "ours_s": two["seconds"], "ratio": ratio,
        # Reported, not a goal (the issue asks for the measurement): on a 2-core machine two 1-thread
        # processes share the same two cores as one 2-thread process, so parity is what to expect;
        # the row shows the cost of the data-parallel set-up, and its gain on more cores.
        "target": "reported (2 cores: parity expected)", "met": True,
    }


def rows() -> list[dict]:
    return [*_throughput_rows(), _memory_row(), _processes_row()]


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "worker":
        _worker(int(sys.argv[2]), "--accelerate" in sys.argv[3:])
    else:
        for row in rows():
            print(row)
