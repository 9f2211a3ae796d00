"""The command line: ``python -m attention_study.zoo [show|train|verify|ship]``."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from attention_study.zoo.cache import WEIGHTS_FILE, cache_dir
from attention_study.zoo.recipes import TRAINED_NAMES, _seeded_recipe, bar_results
from attention_study.zoo.store import SHIPPED_SEEDS, _ensure, _manifest, provenance, ship, shipped_seeds
from attention_study.zoo.training import _train_into


def _print_point(point: dict) -> None:
    print("  " + ", ".join(f"{k} {v}" if isinstance(v, int) else f"{k} {v:.3g}" for k, v in point.items()), flush=True)


def _summary(record: dict[str, Any]) -> str:
    """One line: training time, the bars with their measured values, and the weights' digest."""
    bars = ", ".join(f"{k} {v:.3f} {'ok' if ok else 'FAILED'}" for k, (v, ok) in bar_results(record).items())
    return f"trained in {record['training_seconds']:.0f} s; {bars}; sha256 {record['weights_sha256'][:16]}"


def _same_bytes_as_shipped(name: str, record: dict[str, Any]) -> str:
    seed = record["seed"]
    if seed not in shipped_seeds(name):
        return "no shipped copy to compare"
    shipped = _manifest()[name][str(seed)][WEIGHTS_FILE]
    return (
        "bit-identical to the shipped weights"
        if record["weights_sha256"] == shipped
        else "different bytes from the shipped weights (expected on another processor or kernel set)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m attention_study.zoo [show|train|verify|ship]``.

    ``show`` (default) checks the shipped weights and prints their bars; ``train`` trains the book
    recipe into the cache (reusing it); ``verify`` retrains from scratch in a temporary folder and
    fails (exit 1) if a bar is missed; ``ship`` (maintainers) trains into the package.
    """
    parser = argparse.ArgumentParser(prog="python -m attention_study.zoo", description=main.__doc__)
    parser.add_argument("command", nargs="?", default="show", choices=("show", "train", "verify", "ship"))
    parser.add_argument("--models", nargs="+", default=list(TRAINED_NAMES), choices=TRAINED_NAMES)
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=None,
        help="seeds (default: all shipped for show/train/ship, 0 for verify)",
    )
    args = parser.parse_args(argv)
    seeds = args.seeds if args.seeds is not None else ([0] if args.command == "verify" else list(SHIPPED_SEEDS))
    failed = []
    for name in args.models:
        for seed in seeds:
            recipe = _seeded_recipe(name, seed, None)
            print(f"{name} seed {seed}: {args.command}", flush=True)
            if args.command == "show":
                record = provenance(name, seed)
            elif args.command == "ship":
                record = ship(name, seed, log=_print_point)
            elif args.command == "train":
                record = _ensure(name, recipe, cache_dir(), log=_print_point)[1]
            else:
                with tempfile.TemporaryDirectory(prefix="zoo-verify-") as tmp:
                    record = _train_into(name, recipe, Path(tmp) / name, log=_print_point)
            print(f"  {_summary(record)}", flush=True)
            if args.command in ("train", "verify"):
                print(
                    f"  {_same_bytes_as_shipped(name, record)} on this processor "
                    f"({torch.backends.cpu.get_cpu_capability()})",
                    flush=True,
                )
            failed += [f"{name} seed {seed}: {k}" for k, (_, ok) in bar_results(record).items() if not ok]
    return report_bars(failed)


def report_bars(failed: Sequence[str]) -> int:
    """Print the bars missed (``"<model> seed <k>: <bar>"``) or that every bar was met; the exit status."""
    if failed:
        print("bars missed: " + "; ".join(failed), flush=True)
        return 1
    print("every bar met", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
