"""Fixtures of the website checks: the built site (``_build/html`` unless STUDY_SITE_DIR says otherwise)
and its pages parsed once.

These checks read the output of ``make book``; ``make test-site`` builds the site first. Without a
built site they are skipped with a message that says how to build it.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest
from bs4 import BeautifulSoup

REPO = Path(__file__).resolve().parents[2]


def site_root() -> Path:
    """The folder of the built website."""
    return Path(os.environ.get("STUDY_SITE_DIR", REPO / "_build" / "html")).resolve()


@pytest.fixture(scope="session")
def site_dir() -> Path:
    root = site_root()
    if not (root / "index.html").is_file():
        pytest.skip(f"no built website at {root}: run `make book` (or `make test-site`) first")
    return root


@pytest.fixture(scope="session")
def pages(site_dir: Path) -> dict[str, BeautifulSoup]:
    """Every HTML page of the site, keyed by its path relative to the site root."""
    found = {}
    for path in sorted(site_dir.rglob("*.html")):
        rel = path.relative_to(site_dir).as_posix()
        if rel.startswith(("_static/", "_sources/", "downloads/")):
            continue
        found[rel] = BeautifulSoup(path.read_text(encoding="utf8"), "html.parser")
    assert found, f"{site_dir} holds no HTML pages"
    return found


@pytest.fixture(scope="session")
def source_root() -> Path:
    """The book's source folder (the repository root, or STUDY_BOOK_DIR)."""
    return Path(os.environ.get("STUDY_BOOK_DIR", REPO)).resolve()


@pytest.fixture(scope="session")
def study_site() -> ModuleType:
    """The site's Sphinx extension module (site/study_site.py), loaded from its file."""
    path = REPO / "site" / "study_site.py"
    spec = importlib.util.spec_from_file_location("study_site", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
