"""``digits-gsa``: the p4 group self-attention digit classifiers of the symmetry chapter.

One :class:`~attention_study.gsa_classifier.GroupAttentionClassifier` per variant (the paper's
encoding, the proposed one, the non-equivariant baseline) and seed, trained here on the upright
digits and shipped in the package like the other trained models (DESIGN §5): float32 training
gives other bytes on another processor, so chapters load the shipped weights, checked against
``MANIFEST.json``, and never train. ``python -m attention_study.zoo.gsa verify`` (run by
``make verify-models``) retrains seed 0 of each variant and checks :data:`GSA_BARS`.

Layout: ``<SHIPPED_ROOT>/digits-gsa/<variant>/seed-<k>/{model.safetensors, provenance.json}`` and
``<SHIPPED_ROOT>/digits-gsa/MANIFEST.json`` (``{variant: {seed: {file: sha256}}}``).
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from attention_study import gsa_classifier as gc
from attention_study.models import file_sha256
from attention_study.zoo import store
from attention_study.zoo.cache import PROVENANCE_FILE, WEIGHTS_FILE
from attention_study.zoo.cli import report_bars
from attention_study.zoo.determinism import _cosine_lr, _deterministic, _machine, _versions
from attention_study.zoo.recipes import VisionRecipe, _check_positive
from attention_study.zoo.vision import _digits_split

GSA_NAME = "digits-gsa"
#: Seeds shipped for every variant (claims about the trained classifiers hold on all of them).
GSA_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)
#: The recipe's bars, checked by ``verify``: upright held-out accuracy, and exact invariance
#: (float64 logits of the four rotations) for an encoding that satisfies the condition.
GSA_BARS: dict[str, float] = {"min_upright_accuracy": 0.70, "max_invariance_error_valid": 1e-10}


@dataclass(frozen=True)
class GroupClassifierRecipe:
    """Every setting of a ``digits-gsa`` training run.

    Attributes:
        variant: the group layer's encoding, or ``"baseline"`` (see :mod:`attention_study.gsa_classifier`).
        seed: seeds the initialisation and the batch order.
        split_seed, test_fraction: the stratified split of the 1,797 digits (the same split for
            every variant and seed, so that test results pair digit by digit).
        channels, d_model, n_heads, pool: the classifier's architecture.
        epochs, batch_size, lr, warmup_steps: Adam, one step per batch, linear warm-up to ``lr``
            and cosine decay.
        threads: torch threads during training.
    """

    variant: str = "proposed"
    seed: int = 0
    split_seed: int = 0
    test_fraction: float = 0.25
    channels: int = 32
    d_model: int = 32
    n_heads: int = 2
    pool: int = 2
    epochs: int = 40
    batch_size: int = 50
    lr: float = 0.01
    warmup_steps: int = 50
    threads: int = 2

    def __post_init__(self) -> None:
        gc.check_variant(self.variant)
        _check_positive(
            self, ("channels", "d_model", "n_heads", "pool", "epochs", "batch_size", "warmup_steps", "threads")
        )
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        if not 0.0 < self.lr < 1.0:
            raise ValueError(f"lr must be in (0, 1), got {self.lr}")


def digits(recipe: GroupClassifierRecipe) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The recipe's split: ``train_images [B, 8, 8]`` (float32 in [0, 1]), ``train_labels [B]``,
    ``test_images``, ``test_labels`` (the digits-vit recipe's stratified split for ``split_seed``)."""
    x_train, x_test, y_train, y_test = _digits_split(
        VisionRecipe(seed=recipe.split_seed, test_fraction=recipe.test_fraction)
    )

    def images(x: Any) -> torch.Tensor:
        return torch.as_tensor(x / 16.0, dtype=torch.float32)

    return images(x_train), torch.as_tensor(y_train), images(x_test), torch.as_tensor(y_test)


def build(recipe: GroupClassifierRecipe, dtype: torch.dtype = torch.float32) -> gc.GroupAttentionClassifier:
    """The recipe's untrained classifier (parameters drawn from torch's current random state)."""
    return gc.GroupAttentionClassifier(
        recipe.variant,
        channels=recipe.channels,
        d_model=recipe.d_model,
        n_heads=recipe.n_heads,
        pool=recipe.pool,
        dtype=dtype,
    )


def untrained(recipe: GroupClassifierRecipe) -> gc.GroupAttentionClassifier:
    """The recipe's classifier at initialisation (float32), exactly where its training starts."""
    with _deterministic(recipe.seed, recipe.threads):
        return build(recipe)


def held_out_metrics(model: gc.GroupAttentionClassifier, images: torch.Tensor, labels: torch.Tensor) -> dict:
    """Accuracy at each rotation and the invariance error, from a float64 copy of ``model``."""
    test = gc.rotated_test(build_like(model, torch.float64), images.double(), labels)
    return {
        "accuracy_by_rotation": [float(c.mean()) for c in test.correct],
        "invariance_error": test.invariance_error,
    }


def build_like(model: gc.GroupAttentionClassifier, dtype: torch.dtype) -> gc.GroupAttentionClassifier:
    """A copy of ``model`` in ``dtype``, in eval mode (the original is left as it is)."""
    return copy.deepcopy(model).to(dtype).eval()


def train(
    recipe: GroupClassifierRecipe, log: Callable[[dict], None] | None = None
) -> tuple[gc.GroupAttentionClassifier, dict[str, Any]]:
    """Train the recipe deterministically; return the float32 model (eval mode) and its record.

    ``log``, if given, receives each point of the training curve (one per epoch)."""
    started = time.perf_counter()
    x_train, y_train, x_test, y_test = digits(recipe)
    curve = []
    model = untrained(recipe)
    with _deterministic(recipe.seed, recipe.threads):
        optimiser = torch.optim.Adam(model.parameters(), lr=recipe.lr)
        order = torch.Generator().manual_seed(recipe.seed)
        steps_per_epoch = -(-len(y_train) // recipe.batch_size)
        total_steps, step = recipe.epochs * steps_per_epoch, 0
        for epoch in range(recipe.epochs):
            perm = torch.randperm(len(y_train), generator=order)
            total = 0.0
            for start in range(0, len(perm), recipe.batch_size):
                idx = perm[start : start + recipe.batch_size]
                for group in optimiser.param_groups:
                    group["lr"] = _cosine_lr(step, total_steps, recipe.warmup_steps, recipe.lr)
                step += 1
                optimiser.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
                loss.backward()
                optimiser.step()
                total += loss.item() * len(idx)
            point = {"epoch": epoch + 1, "train_loss": total / len(perm)}
            curve.append(point)
            if log is not None:
                log(point)
    training_seconds = time.perf_counter() - started
    model.eval()
    record = {
        "name": GSA_NAME,
        "recipe": asdict(recipe),
        "seed": recipe.seed,
        "data": {"train_images": len(y_train), "test_images": len(y_test)},
        "parameters": sum(p.numel() for p in model.parameters()),
        "training_seconds": training_seconds,
        "curve": curve,
        "metrics": held_out_metrics(model, x_test, y_test),
        "versions": _versions(),
        "trained_on": _machine(recipe.threads),
    }
    return model, record


def bar_results(record: dict[str, Any]) -> dict[str, tuple[float, bool]]:
    """``{bar: (measured value, met)}`` of a training record (see :data:`GSA_BARS`)."""
    metrics = record["metrics"]
    upright = metrics["accuracy_by_rotation"][0]
    results = {"upright accuracy": (upright, upright >= GSA_BARS["min_upright_accuracy"])}
    if record["recipe"]["variant"] == "proposed":
        err = metrics["invariance_error"]
        results["invariance error"] = (err, err < GSA_BARS["max_invariance_error_valid"])
    return results


# ---------------------------------------------------------------------------------------------
# shipped weights


def _root() -> Path:
    return store.SHIPPED_ROOT / GSA_NAME


def _manifest() -> dict[str, dict[str, dict[str, str]]]:
    path = _root() / store.MANIFEST_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def shipped_seeds(variant: str) -> tuple[int, ...]:
    """The seeds of ``variant`` whose weights ship with the library."""
    gc.check_variant(variant)
    return tuple(sorted(int(seed) for seed in _manifest().get(variant, {})))


def shipped_dir(variant: str, seed: int) -> Path:
    """The package folder of the shipped weights of ``variant``, ``seed``."""
    gc.check_variant(variant)
    return _root() / variant / f"seed-{seed}"


def _write(folder: Path, model: gc.GroupAttentionClassifier, record: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / WEIGHTS_FILE))
    record = {**record, "weights_file": WEIGHTS_FILE, "weights_sha256": file_sha256(folder / WEIGHTS_FILE)}
    (folder / PROVENANCE_FILE).write_text(json.dumps(record, indent=1, sort_keys=True))


def ship(variant: str, seed: int, log: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Train the book recipe of ``variant`` with ``seed`` into the package and record its digests (maintainers)."""
    model, record = train(GroupClassifierRecipe(variant=variant, seed=seed), log)
    folder = shipped_dir(variant, seed)
    _write(folder, model, record)
    manifest = _manifest()
    manifest.setdefault(variant, {})[str(seed)] = store.file_digests(folder)
    (_root() / store.MANIFEST_FILE).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return record


def provenance(variant: str, seed: int) -> dict[str, Any]:
    """The provenance record of a shipped classifier, after checking its files against the manifest.

    Raises:
        ShippedWeightsError: a file is missing or damaged, or the seed is not shipped.
    """
    expected = _manifest().get(gc.check_variant(variant), {}).get(str(seed))
    if expected is None:
        raise store.ShippedWeightsError(
            f"{GSA_NAME} {variant} seed {seed} is not shipped; shipped seeds: {list(shipped_seeds(variant))}"
        )
    folder = shipped_dir(variant, seed)
    store.check_files(f"{GSA_NAME} {variant} seed {seed}", folder, expected, f"git checkout -- {folder}")
    return json.loads((folder / PROVENANCE_FILE).read_text())


def load_group_classifier(variant: str, seed: int, dtype: torch.dtype = torch.float64) -> gc.GroupAttentionClassifier:
    """The shipped classifier of ``variant`` and ``seed`` (checked against the manifest), in ``dtype``, eval mode.

    The chapter evaluates in float64, so that an exactly invariant model gives the same prediction
    for the four rotations of every digit (its logits differ by round-off near 1e-16).
    """
    record = provenance(variant, seed)
    recipe = GroupClassifierRecipe(**record["recipe"])
    with torch.random.fork_rng(devices=[]):
        model = build(recipe)
    model.load_state_dict(load_file(str(shipped_dir(variant, seed) / WEIGHTS_FILE)))
    return model.to(dtype).eval()


def provenance_table(variants: Sequence[str] = gc.STUDIED_VARIANTS) -> Any:
    """One row per shipped classifier: training time, machine, upright held-out accuracy, checksum."""
    import pandas as pd

    rows = []
    for variant in variants:
        for seed in shipped_seeds(variant):
            rec = provenance(variant, seed)
            machine = rec["trained_on"]
            rows.append(
                {
                    "variant": variant,
                    "seed": seed,
                    "training images": rec["data"]["train_images"],
                    "training time (s)": round(rec["training_seconds"]),
                    "trained on": f"{machine.get('cpu', '?')}, {machine.get('cpu_capability', '?')}, "
                    f"{machine.get('threads', '?')} threads",
                    "upright test accuracy": round(rec["metrics"]["accuracy_by_rotation"][0], 3),
                    "weights sha256": rec["weights_sha256"][:16],
                }
            )
    return pd.DataFrame(rows).set_index(["variant", "seed"])


def _same_bytes_as_shipped(model: gc.GroupAttentionClassifier, record: dict[str, Any]) -> str:
    """Whether a retrained classifier's weights file has the shipped file's SHA-256."""
    variant, seed = record["recipe"]["variant"], record["seed"]
    shipped = _manifest().get(variant, {}).get(str(seed), {}).get(WEIGHTS_FILE)
    if shipped is None:
        return "no shipped copy to compare"
    with tempfile.TemporaryDirectory(prefix="gsa-verify-") as tmp:
        _write(Path(tmp), model, record)
        same = file_sha256(Path(tmp) / WEIGHTS_FILE) == shipped
    capability = torch.backends.cpu.get_cpu_capability()
    if same:
        return f"bit-identical to the shipped weights on this processor ({capability})"
    return f"different bytes from the shipped weights on this processor ({capability}; expected on another kernel set)"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m attention_study.zoo.gsa [show|verify|ship]``.

    ``show`` (default) checks the shipped weights and prints their bars; ``verify`` retrains seed 0
    of each variant in memory and fails (exit 1) if a bar is missed; ``ship`` trains into the package.
    """
    parser = argparse.ArgumentParser(prog="python -m attention_study.zoo.gsa", description=main.__doc__)
    parser.add_argument("command", nargs="?", default="show", choices=("show", "verify", "ship"))
    parser.add_argument("--variants", nargs="+", default=list(gc.STUDIED_VARIANTS), choices=gc.STUDIED_VARIANTS)
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="default: 0 for verify, else all shipped")
    args = parser.parse_args(argv)
    seeds = args.seeds if args.seeds is not None else ([0] if args.command == "verify" else list(GSA_SEEDS))
    failed = []
    for variant in args.variants:
        for seed in seeds:
            print(f"{GSA_NAME} {variant} seed {seed}: {args.command}", flush=True)
            if args.command == "show":
                record = provenance(variant, seed)
            elif args.command == "ship":
                record = ship(variant, seed)
            else:
                model, record = train(GroupClassifierRecipe(variant=variant, seed=seed))
                print(f"  {_same_bytes_as_shipped(model, record)}", flush=True)
            bars = bar_results(record)
            print(
                f"  trained in {record['training_seconds']:.0f} s; accuracy by rotation "
                + ", ".join(f"{a:.3f}" for a in record["metrics"]["accuracy_by_rotation"])
                + "; "
                + ", ".join(f"{k} {v:.3g} {'ok' if ok else 'FAILED'}" for k, (v, ok) in bars.items()),
                flush=True,
            )
            failed += [f"{variant} seed {seed}: {k}" for k, (_, ok) in bars.items() if not ok]
    return report_bars(failed)


if __name__ == "__main__":
    raise SystemExit(main())
