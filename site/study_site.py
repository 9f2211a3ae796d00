"""Sphinx extension for the book's website (loaded through ``sphinx.local_extensions`` in _config.yml).

It does four things, all at build time, so the built site never asks the network for anything:

* serves MathJax 3 from the site itself: the npm package installed by ``npm ci --prefix site`` into
  ``site/node_modules/mathjax`` is copied to ``_static/mathjax`` and ``mathjax_path`` points there;
* copies every chapter's sources (``chapters/NAME.md`` and the executed ``chapters/NAME.ipynb``) to
  ``downloads/chapters/`` and puts a short "Run this chapter yourself" box under each chapter title,
  with the two downloads, a link to the source file and the commands that re-run it;
* provides the ``chapter-gallery`` directive for the landing page: for every chapter in ``_toc.yml`` whose
  notebook exists, its title (linked), its opening sentences and one figure taken from its committed
  outputs (the image of the first cell tagged ``landing-figure``, else its first PNG);
* adds the site's stylesheet (``site/static/study.css``);
* serves bertviz's scripts itself: require.js, d3 and jQuery (the npm copies that
  ``attention_study.interactive.bertviz_script_files`` names) and the library's ``bertviz_modules.js`` are
  copied to ``_static/bertviz/``, and the block of inline scripts that a notebook's first bertviz view
  carries is replaced, on each page, by ``<script src>`` tags for those copies.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, ClassVar

import yaml
from docutils import nodes
from docutils.statemachine import StringList
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util.docutils import SphinxDirective

HERE = Path(__file__).resolve().parent
MATHJAX_PACKAGE = HERE / "node_modules" / "mathjax" / "es5"
MATHJAX_ENTRY = "tex-mml-chtml.js"
# Parts of the MathJax package the site serves: the combined TeX/MathML -> CommonHTML component, the
# extensions it may load on demand (TeX packages, accessibility, menu, speech rules) and its fonts.
MATHJAX_PARTS = (MATHJAX_ENTRY, "input", "output", "a11y", "ui", "sre", "adaptors")
DOWNLOAD_DIR = "downloads"
GALLERY_DIR = "_static/gallery"
LANDING_TAG = "landing-figure"
DESCRIPTION_WORDS = 70
BERTVIZ_STATIC = "bertviz"


# ---------------------------------------------------------------------------------------------------
# MathJax served by the site


def _require_mathjax() -> None:
    """Raise a clear error when the npm assets were not installed."""
    if not (MATHJAX_PACKAGE / MATHJAX_ENTRY).is_file():
        raise ExtensionError(
            f"MathJax is not installed at {MATHJAX_PACKAGE}. The site serves MathJax itself; install it "
            "with `npm ci --prefix site` (what `make book` does) and build again."
        )


def _configure(app: Sphinx, config: Any) -> None:
    """Point MathJax at the local copy and register the site's static folder and stylesheet."""
    _require_mathjax()
    from attention_study.interactive import bertviz_script_files

    try:
        bertviz_script_files()
    except (FileNotFoundError, RuntimeError) as err:
        raise ExtensionError(f"bertviz's scripts: {err}") from err
    # Sphinx does not see edits to an extension: a fingerprint of this file as an "env" config value makes
    # it re-read and rewrite every page when the extension changes, so no page keeps an old run box.
    config.study_site_fingerprint = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    config.mathjax_path = f"mathjax/{MATHJAX_ENTRY}"
    # The theme's colour mode falls back to "" without this, and its script logs a console error on a
    # reader's first visit ("Got invalid theme mode").
    config.html_context.setdefault("default_mode", "auto")
    static = str(HERE / "static")
    if static not in config.html_static_path:
        config.html_static_path.append(static)


def _copy_bertviz_scripts(outdir: Path) -> None:
    """Copy the scripts bertviz's views need into ``outdir/_static/bertviz`` (idempotent)."""
    from attention_study.interactive import bertviz_script_files

    target = outdir / "_static" / BERTVIZ_STATIC
    target.mkdir(parents=True, exist_ok=True)
    for name, source in bertviz_script_files().items():
        shutil.copy2(source, target / name)


def bertviz_script_tags(up: str) -> str:
    """``<script src>`` tags for the site's copies of bertviz's scripts, in loading order, from a page
    ``up`` (``"../"`` per folder level) below the site root."""
    from attention_study.interactive import bertviz_script_files

    return "".join(
        f'<script src="{html.escape(up)}_static/{BERTVIZ_STATIC}/{html.escape(name)}"></script>'
        for name in bertviz_script_files()
    )


def serve_bertviz_scripts(body: str, up: str) -> str:
    """``body`` with each inline block of bertviz's scripts (a notebook's first bertviz view carries
    one) replaced by script tags for the site's own copies."""
    from attention_study.interactive import SCRIPTS_BEGIN, SCRIPTS_END

    pattern = re.compile(re.escape(SCRIPTS_BEGIN) + ".*?" + re.escape(SCRIPTS_END), re.DOTALL)
    return pattern.sub(lambda _: bertviz_script_tags(up), body)


def _copy_mathjax(outdir: Path) -> None:
    """Copy the MathJax parts into ``outdir/_static/mathjax`` (idempotent)."""
    target = outdir / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        source = MATHJAX_PACKAGE / part
        if source.is_dir():
            shutil.copytree(source, target / part, dirs_exist_ok=True)
        elif source.is_file():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / part)


# ---------------------------------------------------------------------------------------------------
# Chapter pages: downloads, source link, how to run


def _chapter_dir(app: Sphinx) -> str:
    return app.config.study_chapter_dir.strip("/")


def _is_chapter(app: Sphinx, docname: str) -> bool:
    """True for documents in the chapter folder that come from a notebook with a paired .md."""
    prefix = _chapter_dir(app) + "/"
    if not docname.startswith(prefix):
        return False
    src = Path(app.srcdir) / docname
    return src.with_suffix(".ipynb").is_file()


def _chapter_sources(app: Sphinx, docname: str) -> list[Path]:
    """The files of one chapter that readers can download: the notebook and its MyST source."""
    src = Path(app.srcdir) / docname
    return [p for p in (src.with_suffix(".ipynb"), src.with_suffix(".md")) if p.is_file()]


def run_box_html(docname: str, files: list[str], source_url: str, source_suffix: str = ".md") -> str:
    """HTML of the "Run this chapter yourself" box for one chapter page.

    docname: e.g. ``chapters/attention_computed``; files: relative URLs of the downloadable copies
    (from the page), in the order .ipynb, .md; source_url: where the source file (``docname`` +
    ``source_suffix``) is shown.
    """
    path = html.escape(docname)
    notes = {".ipynb": "with outputs", ".md": "MyST source"}
    links = " · ".join(
        f'<a class="reference download" href="{html.escape(url)}" download>'
        f"<code>{html.escape(url.rsplit('/', 1)[-1])}</code></a> "
        f"({notes.get(os.path.splitext(url)[1], 'file')})"
        for url in files
    )
    return (
        '<div class="admonition tip study-run-it">\n'
        '<p class="admonition-title">Run this chapter yourself</p>\n'
        f"<p>Download {links}. Source: "
        f'<a class="reference external" href="{html.escape(source_url)}">'
        f"<code>{path}{html.escape(source_suffix)}</code></a>.</p>\n"
        f"<p>In a clone of the repository, <code>make lab OPEN={path}.md</code> sets up <code>.venv</code> "
        "and opens the chapter as a notebook in JupyterLab, offline (saving it updates its paired "
        f"<code>.ipynb</code>); <code>make execute CHAPTERS={path}.md</code> re-executes it and refreshes "
        "its outputs, <code>make test</code> checks them, "
        "<code>STUDY_MODELS=hub</code> switches to the hub models.</p>\n"
        "</div>\n"
    )


def _insert_after_title(body: str, block: str) -> str:
    """Insert ``block`` right after the first ``</h1>`` of a page body (or at its start)."""
    end = body.find("</h1>")
    if end < 0:
        return block + body
    end += len("</h1>")
    return body[:end] + "\n" + block + body[end:]


def _page_context(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Add the run box to chapter pages; serve bertviz's scripts from the site."""
    if doctree is None or "body" not in context:
        return
    depth = pagename.count("/")
    up = "../" * depth
    context["body"] = serve_bertviz_scripts(context["body"], up)
    if not _is_chapter(app, pagename):
        return
    files = [f"{up}{DOWNLOAD_DIR}/{pagename}{p.suffix}" for p in _chapter_sources(app, pagename)]
    source = _chapter_sources(app, pagename)[-1]  # the MyST .md when present, else the notebook
    repo = app.config.study_repository_url.rstrip("/")
    if repo:
        source_url = f"{repo}/blob/{app.config.study_repository_branch}/{pagename}{source.suffix}"
    else:
        source_url = f"{up}{DOWNLOAD_DIR}/{pagename}{source.suffix}"
    block = run_box_html(pagename, files, source_url, source.suffix)
    context["body"] = _insert_after_title(context["body"], block)


def _copy_downloads(app: Sphinx, outdir: Path) -> None:
    """Copy every chapter's sources to ``outdir/downloads/chapters/``."""
    for docname in sorted(app.env.found_docs):
        if not _is_chapter(app, docname):
            continue
        for source in _chapter_sources(app, docname):
            target = outdir / DOWNLOAD_DIR / docname
            target = target.with_suffix(source.suffix)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def write_favicon_ico(path: Path, size: int = 32) -> None:
    """Draw the site's icon (the favicon.svg design: two columns of tokens joined by attention lines)
    as ``favicon.ico``, which browsers request from the site root whatever the page links."""
    from PIL import Image, ImageDraw

    scale = size / 32
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle((0, 0, size - 1, size - 1), radius=int(6 * scale), fill=(31, 78, 121, 255))
    left, right = [(8, y) for y in (9, 16, 23)], [(24, y) for y in (9, 16, 23)]
    for (x1, y1), (x2, y2) in [(left[0], right[0]), (left[0], right[2]), (left[1], right[1]), (left[2], right[0])]:
        draw.line((x1 * scale, y1 * scale, x2 * scale, y2 * scale), fill="white", width=max(1, int(2 * scale)))
    for x, y in left + right:
        r = 2.5 * scale
        draw.ellipse((x * scale - r, y * scale - r, x * scale + r, y * scale + r), fill="white")
    img.save(path, format="ICO", sizes=[(size, size)])


def _build_finished(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    _copy_mathjax(outdir)
    _copy_bertviz_scripts(outdir)
    _copy_downloads(app, outdir)
    write_favicon_ico(outdir / "favicon.ico")


# ---------------------------------------------------------------------------------------------------
# Landing-page gallery


def toc_files(toc_path: Path) -> list[str]:
    """Every ``file:`` entry of a Jupyter Book ``_toc.yml``, in reading order (extensions removed)."""
    data = yaml.safe_load(toc_path.read_text(encoding="utf8")) or {}
    found: list[str] = []

    def walk(item: Any) -> None:
        if isinstance(item, dict):
            if isinstance(item.get("file"), str):
                found.append(os.path.splitext(item["file"])[0])
            for key in ("parts", "chapters", "sections"):
                for child in item.get(key) or []:
                    walk(child)
        elif isinstance(item, list):
            for child in item:
                walk(child)

    walk(data)
    return found


_ROLE = re.compile(r"\{([a-zA-Z:_-]+)\}`([^`]*)`")
_LABEL_LINE = re.compile(r"^\s*\(.*\)=\s*$")


def _strip_roles(text: str) -> str:
    """Remove citations and cross-reference roles, keeping their visible text."""

    def repl(match: re.Match) -> str:
        role, inner = match.group(1), match.group(2)
        if role.startswith("cite"):
            return ""
        if role in {"eq", "numref", "ref", "doc", "term", "download"}:
            shown = inner.split("<", 1)[0].strip()
            return shown if role in {"doc", "term", "download"} and "<" in inner else ""
        return inner

    text = _ROLE.sub(repl, text)
    text = re.sub(r"\[\^[^\]]+\]", "", text)                      # footnote references
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)          # links (relative to the chapter) -> text
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"\(\s*\)", "", text)                 # a parenthesis that held only a citation
    return re.sub(r"\s+([,.;:)])", r"\1", text).strip()


def _shorten(text: str, words: int = DESCRIPTION_WORDS) -> str:
    """The leading sentences of ``text`` up to about ``words`` words (at least one sentence)."""
    sentences = re.split(r"(?<=[.!?])\s+", text)
    kept: list[str] = []
    for sentence in sentences:
        if kept and len(" ".join([*kept, sentence]).split()) > words:
            break
        kept.append(sentence)
    return " ".join(kept)


def notebook_summary(nb: dict) -> tuple[str, str, tuple[str, bytes] | None]:
    """Title, a plain opening description and one figure from a notebook's JSON.

    The figure, ``(suffix, bytes)`` with suffix ``.png`` or ``.svg`` (None when the notebook has no
    image output), is the first image output of a cell tagged ``landing-figure``, else the first
    image output of the notebook.
    """
    title, description = "", ""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        text = "".join(cell.get("source", ""))
        paragraphs = re.split(r"\n\s*\n", text)
        for para in paragraphs:
            stripped = para.strip()
            if not title:
                if stripped.startswith("# "):
                    title = stripped.splitlines()[0][2:].strip()
                continue
            lines = [ln for ln in stripped.splitlines() if not _LABEL_LINE.match(ln)]
            candidate = " ".join(ln.strip() for ln in lines).strip()
            if not candidate or candidate[0] in "#:`$<{|!>" or re.match(r"([-*+]|\d+\.)\s", candidate):
                continue  # headings, directives, math, HTML, tables, lists: not a descriptive paragraph
            description = _shorten(_strip_roles(candidate))
            break
        if title and description:
            break

    def first_image(tagged_only: bool) -> tuple[str, bytes] | None:
        for cell in nb.get("cells", []):
            if cell.get("cell_type") != "code":
                continue
            if tagged_only and LANDING_TAG not in cell.get("metadata", {}).get("tags", []):
                continue
            for out in cell.get("outputs", []):
                bundle = out.get("data", {})
                png, svg = bundle.get("image/png"), bundle.get("image/svg+xml")
                if png:
                    return ".png", base64.b64decode("".join(png) if isinstance(png, list) else png)
                if svg:
                    return ".svg", ("".join(svg) if isinstance(svg, list) else svg).encode("utf8")
        return None

    return title, description, first_image(True) or first_image(False)


class ChapterGallery(SphinxDirective):
    """``chapter-gallery``: one card per existing chapter of the table of contents.

    Options: ``exclude`` — space-separated docnames to leave out (e.g. appendices).
    """

    has_content = False
    option_spec: ClassVar[dict[str, Any]] = {"exclude": lambda arg: (arg or "").split()}

    def run(self) -> list[nodes.Node]:
        srcdir = Path(self.env.srcdir)
        toc = srcdir / getattr(self.config, "external_toc_path", "_toc.yml")  # absolute paths stay as they are
        self.env.note_dependency(str(toc))
        excluded = set(self.options.get("exclude", []))
        prefix = self.config.study_chapter_dir.strip("/") + "/"
        outdir = Path(self.env.app.outdir)
        here = os.path.dirname(self.env.docname)
        grid = nodes.container(classes=["study-gallery"])
        for docname in toc_files(toc) if toc.is_file() else []:
            notebook = srcdir / f"{docname}.ipynb"
            if not docname.startswith(prefix) or docname in excluded or not notebook.is_file():
                continue
            self.env.note_dependency(str(notebook))
            nb = json.loads(notebook.read_text(encoding="utf8"))
            title, description, figure = notebook_summary(nb)
            grid += self._card(docname, title or docname, description, figure, outdir, here)
        if not grid.children:
            para = nodes.paragraph(text="The chapters are being written; none is in the table of contents yet.")
            grid += para
        return [grid]

    def _card(
        self,
        docname: str,
        title: str,
        description: str,
        figure: tuple[str, bytes] | None,
        outdir: Path,
        here: str,
    ) -> nodes.container:
        card = nodes.container(classes=["study-gallery-card"])
        if figure is not None:
            suffix, data = figure
            name = docname.replace("/", "__") + suffix
            target = outdir / GALLERY_DIR / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            src = os.path.relpath(f"{GALLERY_DIR}/{name}", here or ".")
            card += nodes.raw(
                "",
                f'<a href="{html.escape(os.path.relpath(docname + ".html", here or "."))}">'
                f'<img class="study-gallery-figure" src="{html.escape(src)}" '
                f'alt="{html.escape("A figure from the chapter " + title)}"/></a>',
                format="html",
            )
        heading = nodes.paragraph(classes=["study-gallery-title"])
        ref = addnodes.pending_xref(
            "", refdomain="std", reftype="doc", reftarget="/" + docname, refexplicit=True, refwarn=True
        )
        ref += nodes.inline("", title)
        heading += nodes.strong("", "", ref)
        card += heading
        if description:
            holder = nodes.container(classes=["study-gallery-text"])
            self.state.nested_parse(StringList([description]), self.content_offset, holder)
            card += holder
        return card


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("study_repository_url", "", "html", types=[str])
    app.add_config_value("study_repository_branch", "main", "html", types=[str])
    app.add_config_value("study_chapter_dir", "chapters", "env", types=[str])
    app.add_config_value("study_site_fingerprint", "", "env", types=[str])
    if "comments_config" not in app.config.values:
        # Jupyter Book always passes this value for sphinx_comments, which the site leaves out (no
        # third-party comment services); declaring it keeps the strict build free of a spurious warning.
        app.add_config_value("comments_config", {}, "html")
    app.connect("config-inited", _configure)
    app.connect("html-page-context", _page_context)
    app.connect("build-finished", _build_finished)
    app.add_directive("chapter-gallery", ChapterGallery)
    app.add_css_file("study.css")
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
