"""The recipes of the two trained models, the checks of names and recipes, and the recipes' bars."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from attention_study.corpus import CorpusRecipe

TRAINED_NAMES: tuple[str, ...] = ("tiny-gpt2", "digits-vit")


@dataclass(frozen=True)
class CausalRecipe:
    """Every setting of a ``tiny-gpt2`` training run.

    The defaults are chosen so that the two heads of an induction circuit form within the time
    budget (minutes on 2 CPU cores; the Models appendix shows the scores): two layers, the
    smallest depth with a previous-token head feeding an induction head; a narrow MLP, so steps are
    cheap; query and key weights that start larger than GPT-2's; and the corpus's long recitals
    (:class:`~attention_study.corpus.CorpusRecipe`), so that verbatim copies occur at distances as
    long as the induction probe's period.

    Attributes:
        seed: seeds the corpus, the weight initialisation and the batch order.
        corpus: the corpus generator's settings.
        train_passages, heldout_passages: passages of the corpus used for training / held out
            (held-out passages are the next indices of the same seed, never seen in training).
        vocab_size: BPE vocabulary size (incl. the one special token ``<|endoftext|>``).
        n_layer, n_head, n_embd, n_positions: GPT-2 architecture.
        seq_len: training window, tokens.
        batch_size: windows per step.
        steps: optimiser steps.
        lr, warmup_steps, weight_decay, grad_clip: AdamW with linear warm-up and cosine decay.
        threads: torch threads during training.
        eval_every: steps between points of the training curve.
        induction_period: tokens per copy of the repeated random sequence used for head scores.
        score_sequences: repeated random sequences (and held-out windows) averaged for scores.
        position_init: ``"sinusoidal"`` (position embeddings start as scaled sinusoids, as in
            Vaswani et al. 2017, and are then learned) or ``"learned"`` (GPT-2's random init).
        qk_init_std: if set, the query and key weights start from N(0, qk_init_std²) instead
            of GPT-2's N(0, 0.02²): sharper attention from the start, so that position- and
            content-matching heads (previous-token, induction) need fewer steps to form.
        n_inner: width of each block's MLP (``None``: GPT-2's ``4 * n_embd``). A narrower MLP
            makes a step cheaper, so more steps fit the time budget.
    """

    seed: int = 0
    corpus: CorpusRecipe = field(default_factory=CorpusRecipe)
    train_passages: int = 8000
    heldout_passages: int = 400
    vocab_size: int = 1024
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 128
    n_positions: int = 256
    seq_len: int = 128
    batch_size: int = 16
    steps: int = 3500
    lr: float = 3e-3
    warmup_steps: int = 60
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    threads: int = 2
    eval_every: int = 250
    induction_period: int = 40
    score_sequences: int = 8
    position_init: str = "sinusoidal"
    qk_init_std: float | None = 0.1
    n_inner: int | None = 256

    def __post_init__(self) -> None:
        _check_positive(
            self,
            (
                "train_passages",
                "heldout_passages",
                "n_layer",
                "n_head",
                "n_embd",
                "seq_len",
                "batch_size",
                "steps",
                "threads",
                "eval_every",
                "induction_period",
                "score_sequences",
            ),
        )
        if self.n_inner is not None:
            _check_positive(self, ("n_inner",))
        if self.qk_init_std is not None and not (math.isfinite(self.qk_init_std) and self.qk_init_std > 0):
            raise ValueError(f"qk_init_std must be a positive finite float or None, got {self.qk_init_std!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.seq_len > self.n_positions:
            raise ValueError(f"seq_len ({self.seq_len}) must be <= n_positions ({self.n_positions})")
        if 2 * self.induction_period + 1 > self.seq_len:
            raise ValueError(
                f"2 * induction_period + 1 must be <= seq_len ({self.seq_len}), "
                f"got induction_period={self.induction_period}"
            )
        if self.position_init not in ("sinusoidal", "learned"):
            raise ValueError(f"position_init must be 'sinusoidal' or 'learned', got {self.position_init!r}")
        if self.vocab_size < 260:
            raise ValueError(f"vocab_size must be >= 260 (256 bytes + merges), got {self.vocab_size}")


@dataclass(frozen=True)
class VisionRecipe:
    """Every setting of a ``digits-vit`` training run.

    Attributes:
        seed: seeds the train/test split, the initialisation and the batch order.
        test_fraction: share of the 1797 digits images held out (stratified split).
        patch_size: pixels per patch side (8×8 images: 4 patches per side for 2).
        hidden_size, n_layer, n_head, intermediate_size: ViT architecture.
        epochs, batch_size, lr, weight_decay: AdamW with cosine decay, one step per batch.
        threads: torch threads during training.
    """

    seed: int = 0
    test_fraction: float = 0.25
    patch_size: int = 2
    hidden_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    intermediate_size: int = 128
    epochs: int = 40
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.01
    threads: int = 1

    def __post_init__(self) -> None:
        _check_positive(
            self,
            ("patch_size", "hidden_size", "n_layer", "n_head", "intermediate_size", "epochs", "batch_size", "threads"),
        )
        if 8 % self.patch_size:
            raise ValueError(f"patch_size must divide 8 (1, 2, 4 or 8), got {self.patch_size}")
        if self.hidden_size % self.n_head:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be divisible by n_head ({self.n_head})")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction}")


Recipe = CausalRecipe | VisionRecipe


def _check_positive(recipe: object, names: Sequence[str]) -> None:
    for name in names:
        value = getattr(recipe, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{type(recipe).__name__}.{name} must be a positive int, got {value!r}")


def default_recipe(name: str) -> Recipe:
    """The recipe the book uses for ``name`` (one of :data:`TRAINED_NAMES`)."""
    _check_name(name)
    return CausalRecipe() if name == "tiny-gpt2" else VisionRecipe()


def _check_name(name: str) -> None:
    if name not in TRAINED_NAMES:
        raise ValueError(f"unknown trained model {name!r}; valid names: {', '.join(TRAINED_NAMES)}")


def _check_recipe(name: str, recipe: Recipe | None) -> Recipe:
    _check_name(name)
    if recipe is None:
        return default_recipe(name)
    expected = CausalRecipe if name == "tiny-gpt2" else VisionRecipe
    if not isinstance(recipe, expected):
        raise TypeError(f"{name!r} needs a {expected.__name__}, got {type(recipe).__name__}")
    return recipe


def is_book_recipe(name: str, recipe: Recipe) -> bool:
    """Whether ``recipe`` is the book's recipe for ``name`` up to its seed."""
    return recipe == dataclasses.replace(default_recipe(name), seed=recipe.seed)


def _seeded_recipe(name: str, seed: int | None, recipe: Recipe | None) -> Recipe:
    """``recipe``, or the book recipe with ``seed`` (default 0); the two must not disagree."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if recipe is None:
        return dataclasses.replace(default_recipe(name), seed=0 if seed is None else seed)
    recipe = _check_recipe(name, recipe)
    if seed is not None and seed != recipe.seed:
        raise ValueError(f"seed={seed} disagrees with recipe.seed={recipe.seed}; pass one of them")
    return recipe


# ---------------------------------------------------------------------------------------------
# the recipe's bars


#: What a training run of the book recipe must reach: ``metric -> (comparison, threshold)``.
#: ``perplexity_ratio`` is the held-out perplexity over the unigram baseline's.
BARS: dict[str, dict[str, tuple[str, float]]] = {
    "tiny-gpt2": {
        "max_previous_token": (">=", 0.5),
        "max_induction": (">=", 0.3),
        "perplexity_ratio": ("<", 0.1),
    },
    "digits-vit": {"heldout_accuracy": (">=", 0.9)},
}


def bar_results(record: dict[str, Any]) -> dict[str, tuple[float, bool]]:
    """Each bar of the record's model: ``metric -> (measured value, passed)``."""
    metrics = dict(record["metrics"])
    if "heldout_perplexity" in metrics:
        metrics["perplexity_ratio"] = metrics["heldout_perplexity"] / metrics["unigram_perplexity"]
    out = {}
    for metric, (op, bar) in BARS[record["name"]].items():
        value = float(metrics[metric])
        out[metric] = (value, value >= bar if op == ">=" else value < bar)
    return out
