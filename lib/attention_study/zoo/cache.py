"""The cache of trained models: file names, recipe keys, cache folders, the lock of one entry and
the check of its weights against its provenance."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from attention_study.models import file_sha256
from attention_study.zoo.recipes import Recipe, _check_recipe

WEIGHTS_FILE = "model.safetensors"
PROVENANCE_FILE = "provenance.json"


#: The source files whose code decides what a training run produces (and records): the recipes,
#: the corpus generator, the training loops and the head scores of the provenance.
_PACKAGE = Path(__file__).resolve().parents[1]
TRAINING_CODE: tuple[Path, ...] = tuple(
    _PACKAGE / part
    for part in (
        "corpus.py",
        "heads.py",
        "zoo/recipes.py",
        "zoo/processor.py",
        "zoo/determinism.py",
        "zoo/causal.py",
        "zoo/vision.py",
        "zoo/training.py",
    )
)


def code_digest() -> str:
    """SHA-256 over the training code's source files, so that a change of the code trains anew."""
    digest = hashlib.sha256()
    for path in TRAINING_CODE:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _recipe_json(name: str, recipe: Recipe) -> str:
    return json.dumps({"name": name, "recipe": asdict(recipe), "code": code_digest()}, sort_keys=True)


def cache_key(name: str, recipe: Recipe | None = None) -> str:
    """16 hex digits of SHA-256 over the canonical JSON of ``{"name", "recipe", "code"}``: the
    recipe's every setting and the digest of the code that trains it (:func:`code_digest`), so a
    cached model made by older code is never taken for the current code's."""
    recipe = _check_recipe(name, recipe)
    return hashlib.sha256(_recipe_json(name, recipe).encode()).hexdigest()[:16]


def cache_dir(root: str | os.PathLike | None = None) -> Path:
    """The cache root: ``root``, else ``$STUDY_CACHE``, else ``~/.cache/attention-study``."""
    if root is not None:
        return Path(root)
    env = os.environ.get("STUDY_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "attention-study"


def _model_dir(name: str, recipe: Recipe, root: str | os.PathLike | None) -> Path:
    return cache_dir(root) / f"{name}-{cache_key(name, recipe)}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (POSIX ``flock``; a no-op where unavailable)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _verified_provenance(folder: Path) -> dict[str, Any] | None:
    """The folder's provenance if present and its weights hash to the recorded SHA-256.

    Returns ``None`` (nothing cached) when the folder does not exist; warns and returns ``None``
    when the entry is incomplete or its checksum does not match.
    """
    if not folder.exists():
        return None
    record_path, weights = folder / PROVENANCE_FILE, folder / WEIGHTS_FILE
    if not record_path.is_file() or not weights.is_file():
        warnings.warn(
            f"cache entry {folder} is incomplete (missing {PROVENANCE_FILE} or {WEIGHTS_FILE}); retraining it",
            stacklevel=3,
        )
        return None
    record = json.loads(record_path.read_text())
    actual = file_sha256(weights)
    if actual != record.get("weights_sha256"):
        warnings.warn(
            f"checksum mismatch for {weights}: recorded {record.get('weights_sha256')}, "
            f"found {actual}; not loading it, retraining",
            stacklevel=3,
        )
        return None
    return record
