"""The built site asks nothing from outside itself: no script, stylesheet, font, image or frame URL with a
scheme (http:, https:) or a protocol-relative ``//`` address; MathJax is the site's own copy."""

from __future__ import annotations

import re
from pathlib import Path

from bs4 import BeautifulSoup

# Attributes that make the browser fetch something when the page loads.
FETCHING = {
    "script": ["src"],
    "img": ["src", "srcset"],
    "source": ["src", "srcset"],
    "video": ["src", "poster"],
    "audio": ["src"],
    "track": ["src"],
    "iframe": ["src"],
    "embed": ["src"],
    "object": ["data"],
    "input": ["src"],
    "image": ["href", "xlink:href"],
    "use": ["href", "xlink:href"],
    "feimage": ["href", "xlink:href"],
}
# <link rel=...> kinds that load a resource (stylesheet, font, icon, script) or open a connection.
LINK_RELS = {"stylesheet", "preload", "modulepreload", "prefetch", "preconnect", "dns-prefetch", "icon",
             "shortcut", "apple-touch-icon", "manifest"}
EXTERNAL = re.compile(r"^\s*([a-zA-Z][a-zA-Z0-9+.-]*:|//)")
LOCAL_SCHEMES = ("data:", "blob:", "about:", "#")
CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)")
CSS_IMPORT = re.compile(r"@import\s+['\"]([^'\"]+)")
# URLs an inline script may legitimately contain: XML namespace names, which are never fetched.
NAMESPACE = re.compile(r"https?://www\.w3\.org/[0-9]{4}/(svg|xlink|xhtml|XML/1998/namespace)|http://www\.w3\.org/1999/xhtml")
SCRIPT_URL = re.compile(r"(?:https?:)?//[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}[^\s'\"`)]*")


def is_external(url: str) -> bool:
    """True when fetching ``url`` would leave the site (any scheme but data/blob/about, or ``//host``)."""
    url = url.strip()
    if not url or url.startswith(LOCAL_SCHEMES):
        return False
    return bool(EXTERNAL.match(url))


def srcset_urls(value: str) -> list[str]:
    return [part.strip().split()[0] for part in value.split(",") if part.strip()]


def fetched_urls(soup: BeautifulSoup) -> list[tuple[str, str]]:
    """(element, url) for every address a page makes the browser fetch: attributes and inline CSS."""
    found: list[tuple[str, str]] = []
    for tag, attrs in FETCHING.items():
        for el in soup.find_all(tag):
            for attr in attrs:
                value = el.get(attr)
                if not value:
                    continue
                urls = srcset_urls(value) if attr == "srcset" else [value]
                found += [(f"<{tag} {attr}>", u) for u in urls]
    for el in soup.find_all("link"):
        rels = {r.lower() for r in (el.get("rel") or [])}
        if rels & LINK_RELS and el.get("href"):
            found.append((f"<link rel={'/'.join(sorted(rels))}>", el["href"]))
    css_texts = [s.get_text() for s in soup.find_all("style")]
    css_texts += [el["style"] for el in soup.find_all(style=True)]
    for css in css_texts:
        found += [("inline CSS", u) for u in CSS_URL.findall(css) + CSS_IMPORT.findall(css)]
    return found


def inline_script_urls(soup: BeautifulSoup) -> list[str]:
    """Web addresses written inside inline <script> elements (which could be fetched by the script)."""
    urls = []
    for el in soup.find_all("script"):
        if el.get("src"):
            continue
        text = NAMESPACE.sub("", el.get_text())
        urls += SCRIPT_URL.findall(text)
    return urls


def test_detector_flags_external_and_accepts_local_urls() -> None:
    html = (
        '<script src="https://cdn.example.org/x.js"></script><link rel="stylesheet" href="//fonts.example.org/a.css">'
        '<img src="_images/a.png"><img srcset="a.png 1x, http://example.org/b.png 2x">'
        '<div style="background: url(\'https://example.org/bg.png\')"></div><img src="data:image/png;base64,AA==">'
        '<a href="https://doi.org/10.1/x">a citation link is not fetched</a>'
    )
    flagged = [u for _, u in fetched_urls(BeautifulSoup(html, "html.parser")) if is_external(u)]
    assert flagged == [
        "https://cdn.example.org/x.js", "http://example.org/b.png", "//fonts.example.org/a.css",
        "https://example.org/bg.png",
    ]


def test_inline_script_detector_ignores_svg_namespace() -> None:
    soup = BeautifulSoup(
        '<script>document.createElementNS("http://www.w3.org/2000/svg", "svg");'
        'const URL = "https://unpkg.com/thebe@0.8.2/lib/index.js";</script>', "html.parser"
    )
    assert inline_script_urls(soup) == ["https://unpkg.com/thebe@0.8.2/lib/index.js"]


def test_no_page_fetches_an_external_url(pages: dict[str, BeautifulSoup]) -> None:
    offenders = [
        f"{page}: {where} {url}"
        for page, soup in pages.items()
        for where, url in fetched_urls(soup)
        if is_external(url)
    ]
    assert not offenders, "pages load resources from outside the site:\n" + "\n".join(offenders)


def test_no_inline_script_names_an_external_address(pages: dict[str, BeautifulSoup]) -> None:
    offenders = [f"{page}: {url}" for page, soup in pages.items() for url in inline_script_urls(soup)]
    assert not offenders, "inline scripts carry outside addresses:\n" + "\n".join(offenders)


def test_stylesheets_load_nothing_from_outside(site_dir: Path) -> None:
    offenders = []
    for css in sorted(site_dir.rglob("*.css")):
        text = css.read_text(encoding="utf8", errors="replace")
        for url in CSS_URL.findall(text) + CSS_IMPORT.findall(text):
            if is_external(url):
                offenders.append(f"{css.relative_to(site_dir)}: {url}")
    assert not offenders, "stylesheets fetch outside resources (fonts, images):\n" + "\n".join(offenders)


def test_mathjax_is_served_by_the_site(site_dir: Path, pages: dict[str, BeautifulSoup]) -> None:
    mathjax = site_dir / "_static" / "mathjax" / "tex-mml-chtml.js"
    assert mathjax.is_file(), "MathJax is missing from _static/mathjax"
    fonts = list((site_dir / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))
    assert fonts, "MathJax's CommonHTML fonts are missing from the site"
    loaders = [
        page for page, soup in pages.items()
        if any("mathjax" in (s.get("src") or "").lower() for s in soup.find_all("script"))
    ]
    assert loaders, "no page loads MathJax: is math rendered at all?"
    for page in loaders:
        srcs = [s["src"] for s in pages[page].find_all("script", src=True) if "mathjax" in s["src"].lower()]
        assert all(src.split("?")[0].endswith("_static/mathjax/tex-mml-chtml.js") for src in srcs), (page, srcs)


def test_no_launch_buttons_or_live_code_services(pages: dict[str, BeautifulSoup]) -> None:
    offenders = [
        page for page, soup in pages.items()
        if soup.select(".thebe-launch-button, .launch-buttons, script[type='text/x-thebe-config']")
    ]
    assert not offenders, f"pages offer launch buttons that need outside services: {offenders}"
