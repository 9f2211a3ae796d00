"""Check that every chapter's MyST source and its committed notebook hold the same cells.

Usage: python tests/check_pairs.py chapters/*.md  — exits 1 naming each pair that drifted apart and
the command that fixes it: ``make execute CHAPTERS=chapters/<name>.md`` syncs that one pair (jupytext
takes the newer file as the source: the .md after an edit) and re-executes it, refreshing its
outputs. Saving a chapter from ``make lab`` writes both files and keeps them in sync.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jupytext


def cells(path: Path) -> list[tuple[str, str]]:
    notebook = jupytext.read(path)
    return [(cell.cell_type, cell.source.strip()) for cell in notebook.cells]


def fix_command(md: Path) -> str:
    """The command that brings ``md``'s pair back in sync, with fresh outputs."""
    return f"make execute CHAPTERS={md.as_posix()}"


def drift(md: Path) -> str | None:
    """A one-line description of how ``md`` and its paired notebook differ and how to fix it, or None."""
    ipynb = md.with_suffix(".ipynb")
    fix = f"run `{fix_command(md)}`"
    if not ipynb.exists():
        return f"{md}: no paired {ipynb.name} ({fix})"
    ours, theirs = cells(md), cells(ipynb)
    if len(ours) != len(theirs):
        return f"{md}: {len(ours)} cells, but {ipynb.name} has {len(theirs)} ({fix})"
    for index, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        if a != b:
            return f"{md}: cell {index} differs from {ipynb.name} ({a[0]}: {a[1][:60]!r}; {fix})"
    executed = [c for c in jupytext.read(ipynb).cells if c.cell_type == "code"]
    if executed and all(not c.get("outputs") for c in executed):
        return f"{ipynb}: committed without outputs ({fix})"
    return None


def main(paths: list[str]) -> int:
    problems = [p for p in (drift(Path(path)) for path in paths) if p]
    for problem in problems:
        print(problem)
    print(f"chapter pairs: {len(paths) - len(problems)} in sync, {len(problems)} drifted")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
