"""Print the performance table: every ``benchmarks/bench_*.py`` module's ``rows()``.

Each row is measured side by side in this one run (medians of repeats), so ratios compare like with
like on whatever machine runs it. ``ratio`` is always baseline time / our time (higher is faster).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def load_rows(folder: Path) -> list[dict]:
    rows: list[dict] = []
    for path in sorted(folder.glob("bench_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(f"measuring {path.name} ...", file=sys.stderr, flush=True)
        rows.extend(module.rows())
    return rows


def fmt_seconds(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x * 1e3:.2f} ms" if x < 1 else f"{x:.2f} s"


def table(rows: list[dict]) -> str:
    header = ("benchmark", "baseline", "ours", "ratio", "target", "met")
    body = [
        (
            r["name"],
            fmt_seconds(r.get("baseline_s")),
            fmt_seconds(r.get("ours_s")),
            "-" if r.get("ratio") is None else f"{r['ratio']:.3g}x",
            r["target"],
            "yes" if r["met"] else "NO",
        )
        for r in rows
    ]
    widths = [max(len(str(line[i])) for line in [header, *body]) for i in range(len(header))]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)) for line in [header, *body]]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


if __name__ == "__main__":
    rows = load_rows(Path(__file__).parent)
    print(table(rows))
    missed = [r["name"] for r in rows if not r["met"]]
    summary = f"\n{len(rows) - len(missed)} of {len(rows)} targets met"
    print(summary + (f"; missed: {', '.join(missed)}" if missed else ""))
