"""The pair check (tests/check_pairs.py, `make test-sync`): a chapter whose .md and .ipynb drifted apart is
named, with the command that fixes it."""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import pytest
from check_pairs import drift, main

HEADER = {
    "jupytext": {"formats": "ipynb,md:myst"},
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
}


def write_pair(folder: Path, sources: list[str], outputs: bool = True) -> Path:
    """A chapter pair ``folder/chapter.md`` + ``.ipynb`` with one code cell per source."""
    notebook = nbformat.v4.new_notebook(metadata=HEADER)
    notebook.cells = [nbformat.v4.new_markdown_cell("# A chapter")]
    for source in sources:
        cell = nbformat.v4.new_code_cell(source)
        if outputs:
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="2\n")]
        notebook.cells.append(cell)
    md = folder / "chapter.md"
    jupytext.write(notebook, md, fmt="md:myst")
    jupytext.write(notebook, md.with_suffix(".ipynb"))
    return md


def test_a_pair_in_sync_passes(tmp_path: Path) -> None:
    assert drift(write_pair(tmp_path, ["print(1 + 1)"])) is None


def test_an_edited_chapter_is_named_with_the_command_that_fixes_it(tmp_path: Path) -> None:
    md = write_pair(tmp_path, ["print(1 + 1)"])
    md.write_text(md.read_text().replace("print(1 + 1)", "print(2 + 2)"))
    message = drift(md)
    assert message is not None and message.startswith(f"{md}: cell 1 differs from chapter.ipynb")
    assert message.endswith(f"run `make execute CHAPTERS={md.as_posix()}`)")


def test_an_added_cell_and_a_missing_notebook_say_how_to_fix_them(tmp_path: Path) -> None:
    md = write_pair(tmp_path, ["print(1 + 1)"])
    md.write_text(md.read_text() + "\n```{code-cell} ipython3\nprint(3)\n```\n")
    assert drift(md) == f"{md}: 3 cells, but chapter.ipynb has 2 (run `make execute CHAPTERS={md.as_posix()}`)"
    md.with_suffix(".ipynb").unlink()
    assert drift(md) == f"{md}: no paired chapter.ipynb (run `make execute CHAPTERS={md.as_posix()}`)"


def test_a_notebook_without_outputs_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    md = write_pair(tmp_path, ["print(1 + 1)"], outputs=False)
    assert main([str(md)]) == 1
    assert "committed without outputs (run `make execute CHAPTERS=" in capsys.readouterr().out
