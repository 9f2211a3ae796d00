"""Every internal link of the built site resolves: each href/src names a file that exists, and each
``#anchor`` names an element id on the page it points to. Also checks the per-chapter downloads and the
landing-page gallery that the site's extension adds."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from bs4 import BeautifulSoup

LINK_ATTRS = {"a": "href", "link": "href", "script": "src", "img": "src", "source": "src", "iframe": "src"}
NOT_FILES = ("http:", "https:", "mailto:", "data:", "blob:", "javascript:", "tel:", "about:")


def internal_links(soup: BeautifulSoup) -> list[str]:
    """Internal link targets of a page (external addresses, data: URLs and bare ``#`` excluded)."""
    links = []
    for tag, attr in LINK_ATTRS.items():
        for el in soup.find_all(tag):
            value = (el.get(attr) or "").strip()
            if value and value != "#" and not value.lower().startswith(NOT_FILES) and not value.startswith("//"):
                links.append(value)
    return links


@cache
def ids_of(path: Path) -> frozenset[str]:
    soup = BeautifulSoup(path.read_text(encoding="utf8"), "html.parser")
    return frozenset(el["id"] for el in soup.find_all(id=True)) | frozenset(
        el["name"] for el in soup.find_all("a", attrs={"name": True})
    )


def resolve(site: Path, page: str, link: str) -> tuple[Path, str]:
    """The file a link from ``page`` points to, and its fragment ('' when none)."""
    parts = urlsplit(link)
    base = (site / page).parent
    target = (base / unquote(parts.path)).resolve() if parts.path else (site / page).resolve()
    if target.is_dir():
        target = target / "index.html"
    return target, unquote(parts.fragment)


def broken_links(site: Path, pages: dict[str, BeautifulSoup]) -> list[str]:
    broken = []
    for page, soup in pages.items():
        for link in internal_links(soup):
            target, fragment = resolve(site, page, link)
            if not target.is_relative_to(site):
                broken.append(f"{page}: {link} leaves the site folder")
            elif not target.is_file():
                broken.append(f"{page}: {link} -> missing file {target.relative_to(site)}")
            elif fragment and target.suffix == ".html" and fragment not in ids_of(target):
                broken.append(f"{page}: {link} -> no element with id '{fragment}'")
    return broken


def test_checker_reports_missing_files_and_anchors(tmp_path: Path) -> None:
    (tmp_path / "a.html").write_text('<p id="here">x</p>', encoding="utf8")
    soup = BeautifulSoup(
        '<a href="a.html#here">ok</a><a href="a.html#gone">bad anchor</a><img src="nope.png">'
        '<a href="https://example.org">external</a><a href="#">top</a>', "html.parser"
    )
    assert broken_links(tmp_path, {"b.html": soup}) == [
        "b.html: a.html#gone -> no element with id 'gone'",
        "b.html: nope.png -> missing file nope.png",
    ]


def test_every_internal_link_resolves(site_dir: Path, pages: dict[str, BeautifulSoup]) -> None:
    broken = broken_links(site_dir, pages)
    assert not broken, f"{len(broken)} broken internal links:\n" + "\n".join(broken[:50])


def chapter_pages(pages: dict[str, BeautifulSoup], source_root: Path) -> list[str]:
    return [p for p in pages if p.startswith("chapters/") and (source_root / p).with_suffix(".ipynb").is_file()]


def test_each_chapter_page_offers_its_downloads_and_how_to_run_it(
    site_dir: Path, pages: dict[str, BeautifulSoup], source_root: Path
) -> None:
    chapters = chapter_pages(pages, source_root)
    if not chapters:
        pytest.skip("the site has no chapter pages yet")
    for page in chapters:
        box = pages[page].select_one(".study-run-it")
        assert box is not None, f"{page} has no 'Run this chapter yourself' box"
        hrefs = [a["href"] for a in box.find_all("a", href=True)]
        stem = Path(page).stem
        expected = [".ipynb"] + ([".md"] if (source_root / page).with_suffix(".md").is_file() else [])
        for suffix in expected:
            matches = [h for h in hrefs if h.endswith(f"/{stem}{suffix}")]
            assert matches, f"{page}: no link to {stem}{suffix}"
            target, _ = resolve(site_dir, page, matches[0])
            source = (source_root / page).with_suffix(suffix)
            assert target.read_bytes() == source.read_bytes(), f"{page}: the download differs from {source}"
        commands = [code.get_text() for code in box.find_all("code")]
        assert f"make lab OPEN={page.removesuffix('.html')}.md" in commands, f"{page}: {commands}"
        assert f"make execute CHAPTERS={page.removesuffix('.html')}.md" in commands, f"{page}: {commands}"


def test_downloaded_notebooks_are_valid_notebooks(site_dir: Path) -> None:
    notebooks = sorted((site_dir / "downloads").rglob("*.ipynb"))
    for nb in notebooks:
        data = json.loads(nb.read_text(encoding="utf8"))
        assert data.get("nbformat") == 4 and data.get("cells"), f"{nb} is not a notebook with cells"


def test_landing_page_shows_one_card_per_chapter(
    pages: dict[str, BeautifulSoup], source_root: Path, study_site
) -> None:
    soup = pages["intro.html"]
    intro = (source_root / "intro.md").read_text(encoding="utf8")
    excluded = {name for line in intro.splitlines() if line.startswith(":exclude:") for name in line.split()[1:]}
    expected = [
        d for d in study_site.toc_files(source_root / "_toc.yml")
        if d.startswith("chapters/") and d not in excluded and (source_root / f"{d}.ipynb").is_file()
    ]
    cards = soup.select(".study-gallery-card")
    assert len(cards) == len(expected), (len(cards), expected)
    for card, docname in zip(cards, expected, strict=True):
        assert card.select_one(f'a[href="{docname}.html"]') is not None, f"card for {docname} lacks its link"
        nb = json.loads((source_root / f"{docname}.ipynb").read_text(encoding="utf8"))
        has_figure = study_site.notebook_summary(nb)[2] is not None
        assert (card.select_one("img.study-gallery-figure") is not None) == has_figure, (
            f"card for {docname}: figure shown does not match the notebook's figures"
        )


def test_bibliography_page_lists_references(pages: dict[str, BeautifulSoup]) -> None:
    soup = pages["bibliography.html"]
    assert soup.select(".citation, dl.citation > dt, div.citation"), "the bibliography page lists no reference"


def test_every_chapter_cites_its_sources(pages: dict[str, BeautifulSoup], source_root: Path) -> None:
    uncited = [
        page for page in chapter_pages(pages, source_root)
        if not pages[page].select('a[href*="bibliography.html#"]')
    ]
    assert not uncited, f"chapters citing nothing from references.bib: {uncited}"
