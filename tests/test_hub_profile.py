"""The hub profile, run end to end without a network.

What this proves is the *plumbing*: that with ``STUDY_MODELS=hub`` and ``HF_HUB_OFFLINE=1`` every
chapter reaches its models through the hub profile's names (``bert-base-uncased``, ``gpt2``,
``google/vit-base-patch16-224``), loads them from a Hugging Face cache with real
``from_pretrained`` code, sizes its inputs from their configs and processors, and runs to its
end. It does not prove that the chapters' claims hold on the real hub checkpoints: no network is
available to fetch them. So the cache built here (a temporary ``HF_HOME``, in the hub cache
layout ``hub/models--org--name/snapshots/<rev>/`` with ``refs/main``) holds the offline zoo's
models saved under the hub names: MiniLM as ``bert-base-uncased``, ``tiny-gpt2`` seed 0 as
``gpt2`` and ``digits-vit`` seed 0 as ``google/vit-base-patch16-224`` (its processor written as a
Hugging Face ``ViTImageProcessor`` that gives the same pixel values as the zoo's), chosen so that
the chapters' claims hold there too and a chapter that fails points at the plumbing.

The chapters run one at a time in a fresh kernel each (2 cores: running them in parallel does not
pay), read from their ``.md`` sources and executed in memory, with a temporary copy of
``chapters/`` as the working folder (as ``make hub`` does in ``_build/hub/chapters``); ``chapters/``
itself is never written.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from attention_study import models

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.md"))
REVISION = "0" * 40
#: Files outside chapters/ that a chapter reads (the Reproducibility appendix: the pins, the sanitizers).
READ_BY_CHAPTERS = ("requirements.txt", "site/package-lock.json", "tests/nbval_sanitize.cfg")


def _snapshot(hf_home: Path, name: str) -> Path:
    """The snapshot folder of ``name`` in the hub cache under ``hf_home``, with ``refs/main``."""
    repo = hf_home / "hub" / ("models--" + name.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(REVISION)
    folder = repo / "snapshots" / REVISION
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def build_hub_cache(hf_home: Path) -> dict[str, Path]:
    """Save the offline models under the hub profile's names into a hub cache at ``hf_home``."""
    from transformers import ViTImageProcessor

    saved = {}
    for role, name in models.PROFILE_MODELS["hub"].items():
        loaded = models.load_role(role, profile="offline", seed=0)
        folder = _snapshot(hf_home, name)
        loaded.model.save_pretrained(folder, safe_serialization=True)
        if loaded.family == "vit":
            config = loaded.model.config
            ViTImageProcessor(  # = DigitsProcessor: (value / 16 - 0.5) / 0.5, no resize needed
                do_resize=True, size={"height": config.image_size, "width": config.image_size},
                resample=0, do_rescale=True, rescale_factor=1 / 16,
                image_mean=[0.5] * config.num_channels, image_std=[0.5] * config.num_channels,
            ).save_pretrained(folder)
        else:
            loaded.tokenizer.save_pretrained(folder)
        saved[name] = folder
    return saved


@pytest.fixture(scope="module")
def hub_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("hf_home")
    build_hub_cache(home)
    return home


def test_hub_cache_loads_through_the_hub_path(hub_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    code = (
        "from attention_study import models\n"
        "for role in models.ROLES:\n"
        "    m = models.load_role(role)\n"
        "    assert m.source == 'hub' and m.role == role, (m.name, m.source)\n"
        "    assert models.role_seeds(role) == (0,)\n"
        "    assert not models.trained_here(role)\n"
        "    print(m.name)\n"
    )
    env = dict(os.environ, STUDY_MODELS="hub", HF_HOME=str(hub_home), HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1")
    env.pop("HF_HUB_CACHE", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == list(models.PROFILE_MODELS["hub"].values())


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_every_chapter_runs_to_its_end_on_the_hub_profile(
    chapter: Path, hub_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jupytext
    import nbclient

    for key, value in {"STUDY_MODELS": "hub", "HF_HOME": str(hub_home), "HF_HUB_OFFLINE": "1",
                       "TRANSFORMERS_OFFLINE": "1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    notebook = jupytext.read(chapter)
    work = tmp_path / "chapters"  # a copy, as `make hub` makes: the corrections appendix reads it
    shutil.copytree(chapter.parent, work, ignore=shutil.ignore_patterns("_build", ".ipynb_checkpoints"))
    for pinned in READ_BY_CHAPTERS:
        (tmp_path / pinned).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / pinned, tmp_path / pinned)
    client = nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": str(work)}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if a cell fails
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]


def test_no_chapter_but_the_models_appendix_names_an_offline_model() -> None:
    """Chapters ask for models by role; only the Models appendix, which documents the offline
    models, may name them (their registry names, or the encoder's checkpoint and package names)."""
    names = [*models.PROFILE_MODELS["offline"].values(), "all-MiniLM-L6-v2", models.MINILM_PACKAGE[0]]
    found = {
        chapter.name: [name for name in names if name.lower() in chapter.read_text(encoding="utf8").lower()]
        for chapter in CHAPTERS
        if chapter.stem != "appendix_models"
    }
    assert not {chapter: hits for chapter, hits in found.items() if hits}
