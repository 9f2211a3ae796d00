"""Training a recipe into a folder: a temporary folder beside it, moved into place atomically, with
its provenance record."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from attention_study.models import file_sha256, quiet_transformers
from attention_study.zoo.cache import PROVENANCE_FILE, WEIGHTS_FILE, cache_key
from attention_study.zoo.causal import _train_causal
from attention_study.zoo.determinism import _machine, _versions
from attention_study.zoo.recipes import Recipe
from attention_study.zoo.vision import _train_vision


def _train_into(name: str, recipe: Recipe, final: Path, log: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Train into a temporary folder next to ``final`` and move it into place atomically."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        trainer = _train_causal if name == "tiny-gpt2" else _train_vision
        with quiet_transformers():
            record = trainer(recipe, tmp, log)  # type: ignore[arg-type]
        record = {
            "name": name,
            "cache_key": cache_key(name, recipe),
            "recipe": asdict(recipe),
            "seed": recipe.seed,
            **record,
            "weights_file": WEIGHTS_FILE,
            "weights_sha256": file_sha256(tmp / WEIGHTS_FILE),
            "versions": _versions(),
            "trained_on": _machine(recipe.threads),
        }
        (tmp / PROVENANCE_FILE).write_text(json.dumps(record, indent=1, sort_keys=True))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return record
