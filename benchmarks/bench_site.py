"""Website build times: a cold `make book` build and the rebuild after one chapter changes.

The book's sources are copied to a temporary folder (the site's npm assets linked, not copied) so the
measurement never touches the working tree or its _build. The cold build starts from an empty output
folder; the rebuild follows a change of one chapter notebook's modification time, as an edit does.
Both run the strict command of `make book`. Times are reported (no target: they depend on the
machine and the number of chapters).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = Path(sys.executable).parent / "jupyter-book"
IGNORE = shutil.ignore_patterns(".git", ".venv", ".venv-bench", "_build", "node_modules", "__pycache__",
                                ".ipynb_checkpoints", ".pytest_cache", ".ruff_cache", ".mypy_cache", "*.egg-info")
COLD_REPEATS = 2
REBUILD_REPEATS = 3


def copy_book(dest: Path) -> Path:
    """A copy of the book's sources in ``dest/book`` with site/node_modules linked to the original."""
    book = dest / "book"
    shutil.copytree(ROOT, book, ignore=IGNORE, symlinks=True)
    modules = ROOT / "site" / "node_modules"
    if not modules.is_dir():
        raise RuntimeError("site/node_modules is missing: run `make site-assets` (npm ci --prefix site) first")
    (book / "site" / "node_modules").symlink_to(modules, target_is_directory=True)
    return book


def build(book: Path) -> float:
    """Seconds of one strict HTML build of ``book`` (into ``book/_build``)."""
    start = time.perf_counter()
    subprocess.run(
        [str(JUPYTER_BOOK), "build", str(book), "--builder", "html", "-W", "-n", "--keep-going", "--quiet"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    return time.perf_counter() - start


def toc_notebooks(book: Path) -> list[Path]:
    """Chapter notebooks named in ``_toc.yml``, in reading order."""
    found: list[Path] = []

    def walk(item: object) -> None:
        if isinstance(item, dict):
            file = item.get("file")
            if isinstance(file, str) and (book / f"{os.path.splitext(file)[0]}.ipynb").is_file():
                found.append(book / f"{os.path.splitext(file)[0]}.ipynb")
            for key in ("parts", "chapters", "sections"):
                walk(item.get(key) or [])
        elif isinstance(item, list):
            for child in item:
                walk(child)

    walk(yaml.safe_load((book / "_toc.yml").read_text(encoding="utf8")))
    return found


def chapter_to_edit(book: Path) -> Path:
    notebooks = toc_notebooks(book)
    if not notebooks:
        raise RuntimeError("no chapter notebook in _toc.yml to edit")
    return notebooks[0]


def rows() -> list[dict]:
    cold, rebuild = [], []
    with tempfile.TemporaryDirectory(prefix="study-bench-site-") as tmp:
        book = copy_book(Path(tmp))
        for _ in range(COLD_REPEATS):
            shutil.rmtree(book / "_build", ignore_errors=True)
            cold.append(build(book))
        chapter = chapter_to_edit(book)
        for _ in range(REBUILD_REPEATS):
            now = time.time()
            os.utime(chapter, (now, now))
            rebuild.append(build(book))
    cold_s, rebuild_s = statistics.median(cold), statistics.median(rebuild)
    return [
        {
            "name": "site: cold `make book` build (empty output folder)",
            "baseline_s": None,
            "ours_s": cold_s,
            "ratio": None,
            "target": "reported",
            "met": True,
        },
        {
            "name": f"site: rebuild after editing one chapter ({chapter.stem}); baseline = cold build",
            "baseline_s": cold_s,
            "ours_s": rebuild_s,
            "ratio": cold_s / rebuild_s,
            "target": "reported",
            "met": True,
        },
    ]


if __name__ == "__main__":
    for row in rows():
        print(row)
