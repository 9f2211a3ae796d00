"""The offline model zoo: small models trained here, deterministically, and cached by recipe.

Two models are trained by this module (nothing is ever downloaded):

``"tiny-gpt2"``
    A byte-level BPE tokenizer (the ``tokenizers`` library) and a small ``GPT2LMHeadModel``
    trained on the generated corpus of :mod:`attention_study.corpus`.
``"digits-vit"``
    A small ``ViTForImageClassification`` trained on scikit-learn's bundled 8×8 digits images,
    with :class:`DigitsProcessor` as its image processor.

Every setting of a training run (seed, data size, architecture, optimiser, thread count, corpus
recipe) is a field of a frozen recipe dataclass (:class:`CausalRecipe`, :class:`VisionRecipe`).
The cache folder of a run is ``<cache>/<name>-<key>`` where ``<cache>`` is ``$STUDY_CACHE`` or
``~/.cache/attention-study`` and ``<key>`` is the first 16 hex digits of the SHA-256 of the
canonical JSON of ``{"name": name, "recipe": recipe}``. It holds the weights
(``model.safetensors``), the tokenizer or processor files and ``provenance.json`` (recipe, data
sizes, training time, training curve, held-out metrics, SHA-256 of the weights, library versions).
Loading re-hashes the weights; a mismatch warns and retrains, it never loads silently.

Training is deterministic for a recipe on one kind of machine: fixed seeds (private RNG state via
``torch.random.fork_rng``), ``torch.use_deterministic_algorithms(True)``, a fixed thread count,
no dropout, data order from a seeded ``torch.Generator``.

Run ``python -m attention_study.zoo`` to train or reuse every model and print a summary.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import math
import os
import platform
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attention_study.corpus import CorpusRecipe, generate_passages
from attention_study.heads import (
    first_token_scores,
    induction_scores,
    previous_token_scores,
    repeated_random_tokens,
)
from attention_study.models import file_sha256, quiet_transformers

__all__ = [
    "BARS",
    "SHIPPED_SEEDS",
    "TRAINED_NAMES",
    "CausalRecipe",
    "DigitsProcessor",
    "ShippedWeightsError",
    "VisionRecipe",
    "bar_results",
    "cache_dir",
    "cache_key",
    "default_recipe",
    "is_book_recipe",
    "load_trained",
    "main",
    "provenance",
    "provenance_table",
    "shipped_dir",
    "shipped_seeds",
]

TRAINED_NAMES: tuple[str, ...] = ("tiny-gpt2", "digits-vit")
WEIGHTS_FILE = "model.safetensors"
PROVENANCE_FILE = "provenance.json"
PROCESSOR_FILE = "digits_processor.json"
MANIFEST_FILE = "MANIFEST.json"
#: Where the trained weights ship: ``<SHIPPED_ROOT>/<name>/seed-<k>/`` plus ``MANIFEST.json``.
SHIPPED_ROOT = Path(__file__).parent / "data" / "zoo"
#: The seeds of each trained model that ship (claims about a trained model hold on all of them).
SHIPPED_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)
EOS_TOKEN = "<|endoftext|>"


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
        _check_positive(self, ("train_passages", "heldout_passages", "n_layer", "n_head",
                               "n_embd", "seq_len", "batch_size", "steps", "threads",
                               "eval_every", "induction_period", "score_sequences"))
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
            raise ValueError(
                f"position_init must be 'sinusoidal' or 'learned', got {self.position_init!r}"
            )
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
        _check_positive(self, ("patch_size", "hidden_size", "n_layer", "n_head",
                               "intermediate_size", "epochs", "batch_size", "threads"))
        if 8 % self.patch_size:
            raise ValueError(f"patch_size must divide 8 (1, 2, 4 or 8), got {self.patch_size}")
        if self.hidden_size % self.n_head:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by n_head ({self.n_head})"
            )
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction}")


Recipe = CausalRecipe | VisionRecipe


def _check_positive(recipe: object, names: Sequence[str]) -> None:
    for name in names:
        value = getattr(recipe, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{type(recipe).__name__}.{name} must be a positive int, got {value!r}")


class DigitsProcessor:
    """Turns sklearn digits images (8×8, values 0..16) into ViT ``pixel_values``.

    ``processor(images=x, return_tensors="pt")`` accepts one ``[8, 8]`` array, a list of them or
    an array ``[B, 8, 8]`` and returns ``{"pixel_values": FloatTensor [B, 1, 8, 8]}`` with
    ``pixel = (value / 16 - 0.5) / 0.5`` (so 0..16 maps to -1..1).

    Attributes:
        image_size: side of the image, pixels (8).
        patch_size: side of one ViT patch, pixels.
        num_channels: 1 (grayscale).
        max_value: the top of the input scale (16).
    """

    image_size: int = 8
    num_channels: int = 1
    max_value: float = 16.0

    def __init__(self, patch_size: int = 2) -> None:
        if isinstance(patch_size, bool) or not isinstance(patch_size, int) or 8 % patch_size:
            raise ValueError(f"patch_size must be one of 1, 2, 4, 8, got {patch_size!r}")
        self.patch_size = patch_size

    @property
    def num_patches(self) -> int:
        """Patches per image (without the [CLS] token)."""
        return (self.image_size // self.patch_size) ** 2

    def __repr__(self) -> str:
        return f"DigitsProcessor(image_size=8, patch_size={self.patch_size})"

    def __call__(self, images: Any, return_tensors: str = "pt") -> dict[str, torch.Tensor]:
        """Normalise ``images`` (``[8, 8]``, list of ``[8, 8]`` or ``[B, 8, 8]``; 0..16)."""
        if return_tensors != "pt":
            raise ValueError(f"only return_tensors='pt' is supported, got {return_tensors!r}")
        if isinstance(images, list | tuple):
            if not images:
                raise ValueError("images is an empty list; expected 8x8 arrays")
            arrays = [np.asarray(im, dtype=np.float64) for im in images]
            for im in arrays:
                if im.shape != (8, 8):
                    raise ValueError(f"each image must have shape (8, 8), got {im.shape}")
            batch = np.stack(arrays)
        else:
            batch = np.asarray(
                images.detach().cpu() if isinstance(images, torch.Tensor) else images,
                dtype=np.float64,
            )
            if batch.shape == (8, 8):
                batch = batch[None]
            if batch.ndim != 3 or batch.shape[1:] != (8, 8):
                raise ValueError(
                    "images must be one 8x8 array, a list of them or an array [B, 8, 8] "
                    f"(sklearn digits scale 0..16), got shape {batch.shape}"
                )
        if batch.shape[0] == 0:
            raise ValueError("images holds no image; expected at least one 8x8 array")
        if not np.isfinite(batch).all():
            raise ValueError("images contains non-finite values (nan or inf)")
        if batch.min() < 0 or batch.max() > self.max_value:
            raise ValueError(
                f"pixel values must be in [0, {self.max_value:g}] (sklearn digits scale), got "
                f"[{batch.min():g}, {batch.max():g}]"
            )
        pixels = (batch / self.max_value - 0.5) / 0.5
        return {"pixel_values": torch.tensor(pixels, dtype=torch.float32)[:, None]}


# ---------------------------------------------------------------------------------------------
# recipes, keys and cache folders


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


def _recipe_json(name: str, recipe: Recipe) -> str:
    return json.dumps({"name": name, "recipe": asdict(recipe)}, sort_keys=True)


def cache_key(name: str, recipe: Recipe | None = None) -> str:
    """16 hex digits of SHA-256 over the canonical JSON of ``{"name", "recipe"}``."""
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


def _versions() -> dict[str, str]:
    import safetensors
    import sklearn
    import tokenizers
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "machine": platform.machine(),
    }


def _cpu_model() -> str:
    """The processor's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _machine(threads: int) -> dict[str, Any]:
    """The machine a model was trained on: float32 training is bit-identical only on the same
    processor and kernel set (``ATEN_CPU_CAPABILITY``), so provenance records both."""
    return {
        "cpu": _cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "aten_cpu_capability_env": os.environ.get("ATEN_CPU_CAPABILITY"),
        "threads": threads,
        "os": platform.platform(),
        "machine": platform.machine(),
    }


@contextlib.contextmanager
def _deterministic(seed: int, threads: int) -> Iterator[None]:
    """Seeded private RNG state, deterministic algorithms and a fixed thread count."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        # Training may be triggered from a chapter that has switched gradients off.
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            torch.manual_seed(seed)
            yield
    finally:
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)
        torch.set_num_threads(old_threads)


def _cosine_lr(step: int, total: int, warmup: int, peak: float) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


# ---------------------------------------------------------------------------------------------
# tiny-gpt2


def _train_tokenizer(texts: list[str], vocab_size: int) -> Any:
    """Byte-level BPE trained on ``texts``, wrapped as a fast HF tokenizer with offsets."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=EOS_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
    )


def _token_stream(tokenizer: Any, texts: list[str]) -> torch.Tensor:
    """All passages, each followed by ``<|endoftext|>``: LongTensor ``[n_tokens]``."""
    eos = tokenizer.eos_token_id
    ids: list[int] = []
    for row in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        ids.extend(row)
        ids.append(eos)
    return torch.tensor(ids, dtype=torch.long)


def _windows(stream: torch.Tensor, seq_len: int, max_windows: int | None = None) -> torch.Tensor:
    """Non-overlapping windows of ``seq_len`` tokens: ``[n_windows, seq_len]``."""
    n = stream.numel() // seq_len
    if max_windows is not None:
        n = min(n, max_windows)
    return stream[: n * seq_len].view(n, seq_len)


_SINUSOID_SCALE = 0.05


def _init_query_key(model: Any, std: float) -> None:
    """Redraw the query and key thirds of every GPT-2 ``c_attn`` weight from N(0, std²)."""
    d = model.config.n_embd
    with torch.no_grad():
        for block in model.transformer.h:
            block.attn.c_attn.weight[:, : 2 * d].normal_(0.0, std)


def _sinusoids(n_positions: int, dim: int) -> torch.Tensor:
    """Sinusoidal position codes ``[n_positions, dim]`` (sin on even, cos on odd columns)."""
    pos = torch.arange(n_positions, dtype=torch.float64)[:, None]
    freq = torch.exp(-math.log(10_000.0) * torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    codes = torch.zeros(n_positions, dim, dtype=torch.float64)
    codes[:, 0::2] = torch.sin(pos * freq)
    codes[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return codes.float()


@torch.no_grad()
def _mean_nll(model: Any, windows: torch.Tensor, batch: int = 32) -> float:
    """Mean next-token negative log-likelihood (nats/token) over ``windows [N, T]``."""
    total, count = 0.0, 0
    for start in range(0, len(windows), batch):
        x = windows[start : start + batch]
        logits = model(input_ids=x).logits[:, :-1].float()
        nll = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="sum"
        )
        total += float(nll)
        count += x[:, 1:].numel()
    return total / count


def _unigram_nll(train: torch.Tensor, heldout_windows: torch.Tensor, vocab: int) -> float:
    """Held-out NLL (nats/token) of the add-one-smoothed unigram model of the training stream."""
    counts = torch.bincount(train, minlength=vocab).double() + 1.0
    logp = torch.log(counts / counts.sum())
    return float(-logp[heldout_windows[:, 1:].reshape(-1)].mean())


@torch.no_grad()
def _causal_head_scores(
    model: Any, recipe: CausalRecipe, heldout: torch.Tensor, eos: int, unseen: Sequence[int]
) -> dict[str, list[list[float]]]:
    """Previous-token and first-token scores on held-out text windows; induction scores on
    ``<eos>`` + random tokens repeated twice (ids in ``unseen``, never in the training data, are
    not drawn). Each is ``[layer][head]``, averaged over ``recipe.score_sequences`` inputs."""
    was_training = model.training
    model.eval()
    text = heldout[: recipe.score_sequences]
    att = torch.stack(model(input_ids=text, output_attentions=True).attentions)  # [L, B, H, T, T]
    per_text = [att[:, b] for b in range(att.shape[1])]
    prev = torch.stack([previous_token_scores(a) for a in per_text]).mean(0)
    first = torch.stack([first_token_scores(a) for a in per_text]).mean(0)
    p = recipe.induction_period
    seqs = torch.stack([
        torch.cat([torch.tensor([eos]),
                   repeated_random_tokens(p, model.config.vocab_size, 10_000 + i,
                                          exclude=[eos, *unseen])])
        for i in range(recipe.score_sequences)
    ])
    att = torch.stack(model(input_ids=seqs, output_attentions=True).attentions)
    ind = torch.stack([induction_scores(att[:, b], p) for b in range(att.shape[1])]).mean(0)
    model.train(was_training)
    return {
        "previous_token": prev.tolist(),
        "induction": ind.tolist(),
        "first_token": first.tolist(),
    }


def _train_causal(
    recipe: CausalRecipe, out: Path, log: Callable[[dict], None] | None = None
) -> dict[str, Any]:
    """Train tokenizer + GPT-2 into ``out``; return the provenance (without the checksum).

    ``log``, if given, is called with each new point of the training curve."""
    from transformers import GPT2Config, GPT2LMHeadModel

    started = time.perf_counter()
    passages = generate_passages(
        recipe.train_passages + recipe.heldout_passages, recipe.seed, recipe.corpus
    )
    train_texts = passages[: recipe.train_passages]
    heldout_texts = passages[recipe.train_passages :]
    with _deterministic(recipe.seed, recipe.threads):
        tokenizer = _train_tokenizer(train_texts, recipe.vocab_size)
        train = _token_stream(tokenizer, train_texts)
        heldout = _windows(_token_stream(tokenizer, heldout_texts), recipe.seq_len)
        tokenizer.model_max_length = recipe.n_positions
        curve_windows = heldout[:32]
        eos = tokenizer.eos_token_id
        config = GPT2Config(
            vocab_size=len(tokenizer),
            n_positions=recipe.n_positions,
            n_embd=recipe.n_embd,
            n_layer=recipe.n_layer,
            n_head=recipe.n_head,
            n_inner=recipe.n_inner,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            bos_token_id=eos,
            eos_token_id=eos,
            pad_token_id=eos,
        )
        never_seen = torch.nonzero(torch.bincount(train, minlength=len(tokenizer)) == 0)
        unseen: list[int] = never_seen.flatten().tolist()
        model = GPT2LMHeadModel(config)
        model.config._attn_implementation = "eager"
        if recipe.qk_init_std is not None:
            _init_query_key(model, recipe.qk_init_std)
        if recipe.position_init == "sinusoidal":
            with torch.no_grad():
                model.transformer.wpe.weight.copy_(
                    _sinusoids(recipe.n_positions, recipe.n_embd) * _SINUSOID_SCALE
                )
        model.train()
        decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
        no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": recipe.weight_decay},
             {"params": no_decay, "weight_decay": 0.0}],
            lr=recipe.lr, betas=(0.9, 0.98),
        )
        generator = torch.Generator().manual_seed(recipe.seed)
        offsets = torch.arange(recipe.seq_len)
        curve: list[dict[str, float]] = []
        losses: list[float] = []
        train_started = time.perf_counter()
        for step in range(recipe.steps):
            for group in optimizer.param_groups:
                group["lr"] = _cosine_lr(step, recipe.steps, recipe.warmup_steps, recipe.lr)
            max_start = train.numel() - recipe.seq_len
            starts = torch.randint(0, max_start + 1, (recipe.batch_size,), generator=generator)
            x = train[starts[:, None] + offsets]
            loss = model(input_ids=x, labels=x).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            if (step + 1) % recipe.eval_every == 0 or step + 1 == recipe.steps:
                model.eval()
                scores = _causal_head_scores(model, recipe, heldout, eos, unseen)
                curve.append({
                    "step": step + 1,
                    "train_loss": float(np.mean(losses[-recipe.eval_every :])),
                    "heldout_loss": _mean_nll(model, curve_windows),
                    "max_previous_token": max(max(r) for r in scores["previous_token"]),
                    "max_induction": max(max(r) for r in scores["induction"]),
                    "seconds": time.perf_counter() - train_started,
                })
                if log is not None:
                    log(curve[-1])
                model.train()
        train_seconds = time.perf_counter() - train_started
        model.eval()
        heldout_nll = _mean_nll(model, heldout)
        unigram_nll = _unigram_nll(train, heldout, len(tokenizer))
        scores = _causal_head_scores(model, recipe, heldout, eos, unseen)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {
        "data": {
            "train_passages": len(train_texts),
            "heldout_passages": len(heldout_texts),
            "train_tokens": int(train.numel()),
            "heldout_tokens": int(heldout.numel()),
            "vocab_size": len(tokenizer),
        },
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "training_seconds": train_seconds,
        "total_seconds": time.perf_counter() - started,
        "curve": curve,
        "metrics": {
            "heldout_perplexity": math.exp(heldout_nll),
            "unigram_perplexity": math.exp(unigram_nll),
            "head_scores": scores,
            "max_previous_token": max(max(r) for r in scores["previous_token"]),
            "max_induction": max(max(r) for r in scores["induction"]),
            "max_first_token": max(max(r) for r in scores["first_token"]),
        },
    }


# ---------------------------------------------------------------------------------------------
# digits-vit


def _digits_split(recipe: VisionRecipe) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stratified split of sklearn digits: ``x_train [N, 8, 8]``, ``x_test``, ``y_train``, ``y_test``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    return train_test_split(
        digits.images, digits.target, test_size=recipe.test_fraction,
        random_state=recipe.seed, stratify=digits.target,
    )


@torch.no_grad()
def _accuracy(model: Any, pixels: torch.Tensor, labels: torch.Tensor) -> float:
    pred = model(pixel_values=pixels).logits.argmax(-1)
    return float((pred == labels).double().mean())


def _train_vision(
    recipe: VisionRecipe, out: Path, log: Callable[[dict], None] | None = None
) -> dict[str, Any]:
    """Train the digits ViT into ``out``; return the provenance (without the checksum).

    ``log``, if given, is called with each new point of the training curve (one per epoch)."""
    from transformers import ViTConfig, ViTForImageClassification

    started = time.perf_counter()
    x_train, x_test, y_train, y_test = _digits_split(recipe)
    processor = DigitsProcessor(recipe.patch_size)
    train_px = processor(images=x_train)["pixel_values"]
    test_px = processor(images=x_test)["pixel_values"]
    train_y = torch.tensor(y_train, dtype=torch.long)
    test_y = torch.tensor(y_test, dtype=torch.long)
    with _deterministic(recipe.seed, recipe.threads):
        config = ViTConfig(  # type: ignore[call-arg]  # num_labels: a PretrainedConfig keyword, untyped here
            image_size=8, patch_size=recipe.patch_size, num_channels=1,
            hidden_size=recipe.hidden_size, num_hidden_layers=recipe.n_layer,
            num_attention_heads=recipe.n_head, intermediate_size=recipe.intermediate_size,
            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_labels=10,
            id2label={i: str(i) for i in range(10)}, label2id={str(i): i for i in range(10)},
        )
        model = ViTForImageClassification(config)
        model.config._attn_implementation = "eager"
        optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr,
                                      weight_decay=recipe.weight_decay)
        generator = torch.Generator().manual_seed(recipe.seed)
        n = len(train_y)
        steps_per_epoch = math.ceil(n / recipe.batch_size)
        total = recipe.epochs * steps_per_epoch
        curve: list[dict[str, float]] = []
        train_started = time.perf_counter()
        step = 0
        for epoch in range(recipe.epochs):
            model.train()
            order = torch.randperm(n, generator=generator)
            losses = []
            for start in range(0, n, recipe.batch_size):
                idx = order[start : start + recipe.batch_size]
                for group in optimizer.param_groups:
                    group["lr"] = _cosine_lr(step, total, steps_per_epoch, recipe.lr)
                loss = model(pixel_values=train_px[idx], labels=train_y[idx]).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(float(loss.detach()))
                step += 1
            model.eval()
            curve.append({
                "epoch": epoch + 1,
                "train_loss": float(np.mean(losses)),
                "test_accuracy": _accuracy(model, test_px, test_y),
                "seconds": time.perf_counter() - train_started,
            })
            if log is not None:
                log(curve[-1])
        train_seconds = time.perf_counter() - train_started
        model.eval()
        metrics = {
            "train_accuracy": _accuracy(model, train_px, train_y),
            "heldout_accuracy": _accuracy(model, test_px, test_y),
        }
    model.save_pretrained(out)
    (out / PROCESSOR_FILE).write_text(json.dumps({"patch_size": recipe.patch_size}))
    return {
        "data": {"train_images": int(n), "heldout_images": len(test_y), "image_size": 8},
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "training_seconds": train_seconds,
        "total_seconds": time.perf_counter() - started,
        "curve": curve,
        "metrics": metrics,
    }


# ---------------------------------------------------------------------------------------------
# cache: train, verify, load


def _train_into(
    name: str, recipe: Recipe, final: Path, log: Callable[[dict], None] | None = None
) -> dict[str, Any]:
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
            f"cache entry {folder} is incomplete (missing {PROVENANCE_FILE} or {WEIGHTS_FILE}); "
            "retraining it", stacklevel=3,
        )
        return None
    record = json.loads(record_path.read_text())
    actual = file_sha256(weights)
    if actual != record.get("weights_sha256"):
        warnings.warn(
            f"checksum mismatch for {weights}: recorded {record.get('weights_sha256')}, "
            f"found {actual}; not loading it, retraining", stacklevel=3,
        )
        return None
    return record


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


def is_book_recipe(name: str, recipe: Recipe) -> bool:
    """Whether ``recipe`` is the book's recipe for ``name`` up to its seed."""
    return recipe == dataclasses.replace(default_recipe(name), seed=recipe.seed)


def _verified_shipped(name: str, seed: int) -> dict[str, Any]:
    """The provenance of a shipped model after checking every file against the manifest.

    Raises:
        ShippedWeightsError: a file is missing or its SHA-256 differs from the recorded one.
    """
    expected = _manifest().get(name, {}).get(str(seed))
    folder = shipped_dir(name, seed)
    if expected is None:
        raise ShippedWeightsError(
            f"{name} seed {seed} is not shipped; shipped seeds: {list(shipped_seeds(name))}"
        )
    for file, digest in sorted(expected.items()):
        path = folder / file
        found = file_sha256(path) if path.is_file() else "missing"
        if found != digest:
            raise ShippedWeightsError(
                f"shipped weights of {name} seed {seed} are damaged: {path} has sha256 {found}, "
                f"the manifest records {digest}. Restore the repository copy "
                f"(git checkout -- {SHIPPED_ROOT.name}) or retrain into the cache with `make models`."
            )
    return json.loads((folder / PROVENANCE_FILE).read_text())


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
    manifest.setdefault(name, {})[str(seed)] = {
        p.name: file_sha256(p) for p in sorted(folder.iterdir()) if p.is_file()
    }
    SHIPPED_ROOT.mkdir(parents=True, exist_ok=True)
    (SHIPPED_ROOT / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


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
            rows.append({
                "model": name,
                "seed": seed,
                "training data": (
                    f"{data['train_tokens']} tokens" if name == "tiny-gpt2"
                    else f"{data['train_images']} images"
                ),
                "training time (s)": round(rec["training_seconds"]),
                "trained on": f"{machine.get('cpu', '?')}, {machine.get('cpu_capability', '?')}, "
                              f"{machine.get('threads', '?')} threads",
                "held-out metric": (
                    f"perplexity {m['heldout_perplexity']:.2f} (unigram {m['unigram_perplexity']:.1f})"
                    if name == "tiny-gpt2" else f"accuracy {m['heldout_accuracy']:.3f}"
                ),
                "weights sha256": rec["weights_sha256"][:16],
            })
    return pd.DataFrame(rows).set_index(["model", "seed"])


def _print_point(point: dict) -> None:
    print("  " + ", ".join(f"{k} {v}" if isinstance(v, int) else f"{k} {v:.3g}"
                           for k, v in point.items()), flush=True)


def _summary(record: dict[str, Any]) -> str:
    """One line: training time, the bars with their measured values, and the weights' digest."""
    bars = ", ".join(f"{k} {v:.3f} {'ok' if ok else 'FAILED'}" for k, (v, ok) in bar_results(record).items())
    return f"trained in {record['training_seconds']:.0f} s; {bars}; sha256 {record['weights_sha256'][:16]}"


def _same_bytes_as_shipped(name: str, record: dict[str, Any]) -> str:
    seed = record["seed"]
    if seed not in shipped_seeds(name):
        return "no shipped copy to compare"
    shipped = _manifest()[name][str(seed)][WEIGHTS_FILE]
    return ("bit-identical to the shipped weights" if record["weights_sha256"] == shipped
            else "different bytes from the shipped weights (expected on another processor or kernel set)")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m attention_study.zoo [show|train|verify|ship]``.

    ``show`` (default) checks the shipped weights and prints their bars; ``train`` trains the book
    recipe into the cache (reusing it); ``verify`` retrains from scratch in a temporary folder and
    fails (exit 1) if a bar is missed; ``ship`` (maintainers) trains into the package.
    """
    parser = argparse.ArgumentParser(prog="python -m attention_study.zoo", description=main.__doc__)
    parser.add_argument("command", nargs="?", default="show", choices=("show", "train", "verify", "ship"))
    parser.add_argument("--models", nargs="+", default=list(TRAINED_NAMES), choices=TRAINED_NAMES)
    parser.add_argument("--seeds", nargs="+", type=int, default=None,
                        help="seeds (default: all shipped for show/train/ship, 0 for verify)")
    args = parser.parse_args(argv)
    seeds = args.seeds if args.seeds is not None else (
        [0] if args.command == "verify" else list(SHIPPED_SEEDS))
    failed = []
    for name in args.models:
        for seed in seeds:
            recipe = _seeded_recipe(name, seed, None)
            print(f"{name} seed {seed}: {args.command}", flush=True)
            if args.command == "show":
                record = provenance(name, seed)
            elif args.command == "ship":
                record = ship(name, seed, log=_print_point)
            elif args.command == "train":
                record = _ensure(name, recipe, cache_dir(), log=_print_point)[1]
            else:
                with tempfile.TemporaryDirectory(prefix="zoo-verify-") as tmp:
                    record = _train_into(name, recipe, Path(tmp) / name, log=_print_point)
            print(f"  {_summary(record)}", flush=True)
            if args.command in ("train", "verify"):
                print(f"  {_same_bytes_as_shipped(name, record)} on this processor "
                      f"({torch.backends.cpu.get_cpu_capability()})", flush=True)
            failed += [f"{name} seed {seed}: {k}" for k, (_, ok) in bar_results(record).items() if not ok]
    if failed:
        print("bars missed: " + "; ".join(failed), flush=True)
        return 1
    print("every bar met", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
