"""Unit tests of the site's Sphinx extension (site/study_site.py): pure functions, no build needed."""

from __future__ import annotations

import base64
from pathlib import Path

PNG = base64.b64encode(b"\x89PNG fake").decode()


def notebook(cells: list[dict]) -> dict:
    return {"nbformat": 4, "cells": cells}


def md(text: str) -> dict:
    return {"cell_type": "markdown", "source": text, "metadata": {}}


def code(png: str | None = None, tags: list[str] | None = None) -> dict:
    outputs = [{"output_type": "display_data", "data": {"image/png": png}}] if png else []
    return {"cell_type": "code", "source": "", "metadata": {"tags": tags or []}, "outputs": outputs}


def test_toc_files_lists_files_in_reading_order(tmp_path: Path, study_site) -> None:
    toc = tmp_path / "_toc.yml"
    toc.write_text(
        "format: jb-book\nroot: intro\nparts:\n  - caption: A\n    chapters:\n      - file: chapters/one\n"
        "        sections:\n          - file: chapters/one_b.ipynb\n  - caption: B\n    chapters:\n"
        "      - file: bibliography\n",
        encoding="utf8",
    )
    assert study_site.toc_files(toc) == ["chapters/one", "chapters/one_b", "bibliography"]


def test_summary_takes_title_first_paragraph_and_first_png(study_site) -> None:
    nb = notebook([
        md("# Attention, computed\n\n(sec-label)=\nWe compute the weights {cite}`vaswani2017attention` of "
           "every head, see {eq}`eq-a`. Second sentence.\n\n## Method"),
        code(),
        code(PNG),
    ])
    title, description, png = study_site.notebook_summary(nb)
    assert title == "Attention, computed"
    assert description == "We compute the weights of every head, see. Second sentence."
    assert png == (".png", b"\x89PNG fake")


def test_summary_prefers_the_tagged_figure(study_site) -> None:
    other = base64.b64encode(b"tagged").decode()
    nb = notebook([md("# T\n\nText."), code(PNG), code(other, tags=["landing-figure"])])
    assert study_site.notebook_summary(nb)[2] == (".png", b"tagged")


def test_summary_without_figure_gives_none(study_site) -> None:
    assert study_site.notebook_summary(notebook([md("# T\n\nText.")])) == ("T", "Text.", None)


def test_description_is_cut_at_a_sentence_boundary(study_site) -> None:
    text = " ".join(f"Sentence number {i} has five words." for i in range(40))
    short = study_site._shorten(text, words=20)
    assert short.endswith(".") and len(short.split()) <= 20


def test_run_box_escapes_and_links_both_downloads(study_site) -> None:
    box = study_site.run_box_html(
        "chapters/x<y", ["../downloads/chapters/x<y.ipynb", "../downloads/chapters/x<y.md"], "../src/x.md"
    )
    assert "<y" not in box.replace("<p", "").replace("<a", "").replace("<code", "").replace("<div", "")
    assert box.count("download>") == 2 and "make execute" in box


def test_run_box_gives_the_commands_that_open_and_rerun_the_chapter(study_site) -> None:
    box = study_site.run_box_html(
        "chapters/attention_computed", ["../downloads/chapters/attention_computed.ipynb"], "../src/a.md"
    )
    assert "<code>make lab OPEN=chapters/attention_computed.md</code>" in box
    assert "<code>make execute CHAPTERS=chapters/attention_computed.md</code>" in box
    assert "jupyter lab" not in box  # a bare `jupyter lab` runs without the book's configuration


def test_insert_after_title_places_the_box_under_the_heading(study_site) -> None:
    body = "<section><h1>Title<a href='#t'>#</a></h1><p>text</p></section>"
    out = study_site._insert_after_title(body, "<div>BOX</div>")
    assert out.index("BOX") > out.index("</h1>") and out.index("BOX") < out.index("<p>text")


def test_summary_accepts_svg_figures(study_site) -> None:
    cell = {"cell_type": "code", "metadata": {}, "outputs": [{"data": {"image/svg+xml": ["<svg>", "</svg>"]}}]}
    assert study_site.notebook_summary(notebook([md("# T\n\nText."), cell]))[2] == (".svg", b"<svg></svg>")


def test_citation_only_parentheses_disappear(study_site) -> None:
    assert study_site._strip_roles("adapters (LoRA {cite}`hu2022lora`) and more ({cite}`x`).") == (
        "adapters (LoRA) and more."
    )


def test_links_and_footnotes_become_plain_text(study_site) -> None:
    text = "See the [previous chapter](symmetry_permutation.md) and a note[^n]."
    assert study_site._strip_roles(text) == "See the previous chapter and a note."


def test_inline_bertviz_scripts_become_the_sites_own_copies(study_site) -> None:
    from attention_study.interactive import SCRIPTS_BEGIN, SCRIPTS_END, notebook_scripts

    body = "<p>a</p>" + notebook_scripts() + "<div>view</div>" + SCRIPTS_BEGIN + "x" + SCRIPTS_END
    served = study_site.serve_bertviz_scripts(body, "../")
    assert SCRIPTS_BEGIN not in served and "<p>a</p>" in served and "<div>view</div>" in served
    tags = [
        '<script src="../_static/bertviz/d3.min.js"></script>',
        '<script src="../_static/bertviz/jquery.min.js"></script>',
        '<script src="../_static/bertviz/require.js"></script>',
        '<script src="../_static/bertviz/bertviz_modules.js"></script>',
    ]
    assert served.count("".join(tags)) == 2  # d3 and jQuery before require.js: they set globals, not AMD
    assert study_site.serve_bertviz_scripts("<p>no views</p>", "") == "<p>no views</p>"
