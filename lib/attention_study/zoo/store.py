"""Where trained models come from: the weights shipped in the package (checked against
``MANIFEST.json``) or the cache (trained first if missing); loading and provenance.

The shipped weights are looked up through this module's :data:`SHIPPED_ROOT` (patch
``attention_study.zoo.store.SHIPPED_ROOT`` to point them elsewhere)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from attention_study.models import file_sha256, quiet_transformers
from attention_study.zoo.cache import (
    PROVENANCE_FILE,
    _locked,
    _model_dir,
    _verified_provenance,
)
from attention_study.zoo.processor import PROCESSOR_FILE, DigitsProcessor
from attention_study.zoo.recipes import (
    TRAINED_NAMES,
    Recipe,
    _check_name,
    _check_recipe,
    _seeded_recipe,
    is_book_recipe,
)
from attention_study.zoo.training import _train_into

MANIFEST_FILE = "MANIFEST.json"
#: Where the trained weights ship: ``<SHIPPED_ROOT>/<name>/seed-<k>/`` plus ``MANIFEST.json``.
SHIPPED_ROOT = Path(__file__).parent.parent / "data" / "zoo"
#: The seeds of each trained model that ship (claims about a trained model hold on all of them).
SHIPPED_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)


# ---------------------------------------------------------------------------------------------
# shipped weights


class ShippedWeightsError(RuntimeError):
    """The repository's copy of a trained model is missing or does not match its recorded digest."""


def _manifest() -> dict[str, dict[str, dict[str, str]]]:
    """``{name: {seed: {file: sha256}}}`` of the weights shipped in the package ({} if none)."""
    path = SHIPPED_ROOT / MANIFEST_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def shipped_seeds(name: str) -> tuple[int, ...]:
    """The seeds of ``name`` whose weights ship with the library (the book uses 0–4)."""
    _check_name(name)
    return tuple(sorted(int(seed) for seed in _manifest().get(name, {})))


def shipped_dir(name: str, seed: int) -> Path:
    """The package folder holding the shipped weights of ``name``, ``seed``."""
    _check_name(name)
    return SHIPPED_ROOT / name / f"seed-{seed}"


def _verified_shipped(name: str, seed: int) -> dict[str, Any]:
    """The provenance of a shipped model after checking every file against the manifest.

    Raises:
        ShippedWeightsError: a file is missing or its SHA-256 differs from the recorded one.
    """
    expected = _manifest().get(name, {}).get(str(seed))
    folder = shipped_dir(name, seed)
    if expected is None:
        raise ShippedWeightsError(f"{name} seed {seed} is not shipped; shipped seeds: {list(shipped_seeds(name))}")
    restore = f"git checkout -- {SHIPPED_ROOT.name}) or retrain into the cache with `make models`"
    check_files(f"{name} seed {seed}", folder, expected, restore)
    return json.loads((folder / PROVENANCE_FILE).read_text())


def check_files(label: str, folder: Path, expected: dict[str, str], restore: str) -> None:
    """Check every file of ``folder`` named in ``expected`` (``{file: sha256}``) against its digest.

    Raises:
        ShippedWeightsError: naming ``label``, the first missing or damaged file and ``restore``
            (how to get a good copy back).
    """
    for file, digest in sorted(expected.items()):
        path = folder / file
        found = file_sha256(path) if path.is_file() else "missing"
        if found != digest:
            raise ShippedWeightsError(
                f"shipped weights of {label} are damaged: {path} has sha256 {found}, "
                f"the manifest records {digest}. Restore the repository copy ({restore})."
            )


def file_digests(folder: Path) -> dict[str, str]:
    """``{file name: sha256}`` of every file directly in ``folder`` (a manifest entry)."""
    return {p.name: file_sha256(p) for p in sorted(folder.iterdir()) if p.is_file()}


def ship(name: str, seed: int, log: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Train the book recipe of ``name`` with ``seed`` into the package and record its digests.

    For maintainers: the shipped weights are what every chapter and test loads."""
    recipe = _seeded_recipe(name, seed, None)
    folder = shipped_dir(name, seed)
    record = _train_into(name, recipe, folder, log)
    _record_shipped(name, seed)
    return record


def _record_shipped(name: str, seed: int) -> None:
    """Write the SHA-256 of every file of a shipped folder into the manifest."""
    folder = shipped_dir(name, seed)
    manifest = _manifest()
    manifest.setdefault(name, {})[str(seed)] = file_digests(folder)
    SHIPPED_ROOT.mkdir(parents=True, exist_ok=True)
    (SHIPPED_ROOT / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


# ---------------------------------------------------------------------------------------------
# load: shipped weights or the cache


def _ensure(
    name: str,
    recipe: Recipe | None,
    root: str | os.PathLike | None,
    log: Callable[[dict], None] | None = None,
) -> tuple[Path, dict]:
    """The folder and provenance of a model: shipped weights for a book recipe (when no cache
    root is named), else the cache entry, trained first if it is missing."""
    recipe = _check_recipe(name, recipe)
    if root is None and is_book_recipe(name, recipe) and recipe.seed in shipped_seeds(name):
        return shipped_dir(name, recipe.seed), _verified_shipped(name, recipe.seed)
    folder = _model_dir(name, recipe, root)
    folder.parent.mkdir(parents=True, exist_ok=True)
    # One trainer per cache entry: concurrent callers wait for it, then load what it wrote.
    with _locked(folder.parent / f".{folder.name}.lock"):
        record = _verified_provenance(folder)
        if record is None:
            record = _train_into(name, recipe, folder, log)
    return folder, record


def load_trained(
    name: str,
    seed: int | None = None,
    *,
    recipe: Recipe | None = None,
    cache: str | os.PathLike | None = None,
) -> tuple[Any, Any]:
    """Load a zoo model and its tokenizer/processor.

    The book's recipes with a shipped seed load the weights shipped in the package, checked
    against their recorded SHA-256 (never retrained). Any other recipe, or any recipe with an
    explicit ``cache``, loads from the cache and is trained there first if it is missing.

    Args:
        name: one of :data:`TRAINED_NAMES`.
        seed: the book recipe's seed (default 0; shipped: :func:`shipped_seeds`).
        recipe: a training recipe instead of the book's (its seed must agree with ``seed``).
        cache: cache root; ``None`` means ``$STUDY_CACHE`` or ``~/.cache/attention-study``.

    Returns:
        ``(model, tokenizer)`` for ``"tiny-gpt2"`` (``GPT2LMHeadModel``, fast tokenizer with
        offsets) or ``(model, processor)`` for ``"digits-vit"`` (``ViTForImageClassification``,
        :class:`DigitsProcessor`); eager attention, eval mode.

    Raises:
        ValueError: unknown name (the message lists the valid ones), bad or conflicting seed.
        ShippedWeightsError: the shipped copy is damaged.
    """
    folder, _ = _ensure(name, _seeded_recipe(name, seed, recipe), cache)
    with quiet_transformers():
        return _load_folder(name, folder)


def _load_folder(name: str, folder: Path) -> tuple[Any, Any]:
    """Model (eager attention, eval mode) and tokenizer/processor from a verified cache folder."""
    model: Any
    if name == "tiny-gpt2":
        from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

        model = GPT2LMHeadModel.from_pretrained(
            folder, attn_implementation="eager", use_safetensors=True, local_files_only=True
        )
        helper: Any = PreTrainedTokenizerFast.from_pretrained(folder, local_files_only=True)
    else:
        from transformers import ViTForImageClassification

        model = ViTForImageClassification.from_pretrained(
            folder, attn_implementation="eager", use_safetensors=True, local_files_only=True
        )
        settings = json.loads((folder / PROCESSOR_FILE).read_text())
        helper = DigitsProcessor(int(settings["patch_size"]))
    model.eval()
    return model, helper


def provenance(
    name: str,
    seed: int | None = None,
    *,
    recipe: Recipe | None = None,
    cache: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """The provenance record of a zoo model (arguments as :func:`load_trained`).

    Keys: ``name, cache_key, recipe, seed, data, parameters, training_seconds, total_seconds,
    curve, metrics, weights_file, weights_sha256, versions, trained_on`` (the machine: CPU model,
    ``torch.backends.cpu.get_cpu_capability()``, thread count).
    """
    return _ensure(name, _seeded_recipe(name, seed, recipe), cache)[1]


def provenance_table(seeds: Sequence[int] | None = None) -> Any:
    """One row per shipped model and seed: data size, time, machine, metrics, checksum.

    Args:
        seeds: the seeds to list (default: every shipped seed).

    Returns:
        ``pandas.DataFrame`` indexed by (model, seed).
    """
    import pandas as pd

    rows = []
    for name in TRAINED_NAMES:
        for seed in shipped_seeds(name) if seeds is None else seeds:
            rec = provenance(name, seed)
            m = rec["metrics"]
            data = rec["data"]
            machine = rec.get("trained_on", {})
            rows.append(
                {
                    "model": name,
                    "seed": seed,
                    "training data": (
                        f"{data['train_tokens']} tokens" if name == "tiny-gpt2" else f"{data['train_images']} images"
                    ),
                    "training time (s)": round(rec["training_seconds"]),
                    "trained on": f"{machine.get('cpu', '?')}, {machine.get('cpu_capability', '?')}, "
                    f"{machine.get('threads', '?')} threads",
                    "held-out metric": (
                        f"perplexity {m['heldout_perplexity']:.2f} (unigram {m['unigram_perplexity']:.1f})"
                        if name == "tiny-gpt2"
                        else f"accuracy {m['heldout_accuracy']:.3f}"
                    ),
                    "weights sha256": rec["weights_sha256"][:16],
                }
            )
    return pd.DataFrame(rows).set_index(["model", "seed"])
