"""The offline model zoo: small models trained here, deterministically, and cached by recipe.

Two models are trained by this package (nothing is ever downloaded):

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
canonical JSON of ``{"name": name, "recipe": recipe, "code": code_digest()}`` (the training
code's own digest, so a change of the code trains anew). It holds the weights
(``model.safetensors``), the tokenizer or processor files and ``provenance.json`` (recipe, data
sizes, training time, training curve, held-out metrics, SHA-256 of the weights, library versions).
Loading re-hashes the weights; a mismatch warns and retrains, it never loads silently.

Training is deterministic for a recipe on one kind of machine: fixed seeds (private RNG state via
``torch.random.fork_rng``), ``torch.use_deterministic_algorithms(True)``, a fixed thread count,
no dropout, data order from a seeded ``torch.Generator``.

Run ``python -m attention_study.zoo`` to train or reuse every model and print a summary.

The package's modules, in import order:

``recipes``
    :class:`CausalRecipe`, :class:`VisionRecipe`, :func:`default_recipe`, the checks of names
    and recipes, :data:`BARS` and :func:`bar_results`.
``processor``
    :class:`DigitsProcessor`.
``cache``
    The file names of a model folder, :func:`cache_key`, :func:`cache_dir`, the lock of one
    cache entry and the check of its weights against its provenance.
``determinism``
    The deterministic training context, the learning-rate schedule, the versions and machine
    recorded in provenance.
``causal``, ``vision``
    The training loops of ``tiny-gpt2`` (tokenizer, token streams, head scores) and
    ``digits-vit`` (digits split, accuracy).
``training``
    Training a recipe into a folder, atomically, with its provenance record.
``store``
    The shipped weights (:data:`SHIPPED_ROOT`, ``MANIFEST.json``, :func:`shipped_seeds`,
    :func:`shipped_dir`, :func:`ship`), :func:`load_trained`, :func:`provenance`,
    :func:`provenance_table`.
``cli``
    :func:`main`, behind ``python -m attention_study.zoo``.

The names below are re-exported for reading. Code that looks a name up at call time does so in
the module that defines or imports it: to redirect the shipped weights, patch
``attention_study.zoo.store.SHIPPED_ROOT``, not this package's copy.
"""

from attention_study.zoo.cache import PROVENANCE_FILE as PROVENANCE_FILE
from attention_study.zoo.cache import WEIGHTS_FILE as WEIGHTS_FILE
from attention_study.zoo.cache import _verified_provenance as _verified_provenance
from attention_study.zoo.cache import cache_dir, cache_key
from attention_study.zoo.causal import EOS_TOKEN as EOS_TOKEN
from attention_study.zoo.cli import main
from attention_study.zoo.determinism import _cosine_lr as _cosine_lr
from attention_study.zoo.determinism import _deterministic as _deterministic
from attention_study.zoo.determinism import _machine as _machine
from attention_study.zoo.determinism import _versions as _versions
from attention_study.zoo.processor import PROCESSOR_FILE as PROCESSOR_FILE
from attention_study.zoo.processor import DigitsProcessor
from attention_study.zoo.recipes import (
    BARS,
    TRAINED_NAMES,
    CausalRecipe,
    VisionRecipe,
    bar_results,
    default_recipe,
    is_book_recipe,
)
from attention_study.zoo.recipes import Recipe as Recipe
from attention_study.zoo.recipes import _check_name as _check_name
from attention_study.zoo.recipes import _check_recipe as _check_recipe
from attention_study.zoo.recipes import _seeded_recipe as _seeded_recipe
from attention_study.zoo.store import MANIFEST_FILE as MANIFEST_FILE
from attention_study.zoo.store import SHIPPED_ROOT as SHIPPED_ROOT
from attention_study.zoo.store import (
    SHIPPED_SEEDS,
    ShippedWeightsError,
    load_trained,
    provenance,
    provenance_table,
    shipped_dir,
    shipped_seeds,
)
from attention_study.zoo.store import _ensure as _ensure
from attention_study.zoo.store import _manifest as _manifest
from attention_study.zoo.store import _record_shipped as _record_shipped
from attention_study.zoo.store import _verified_shipped as _verified_shipped
from attention_study.zoo.store import ship as ship
from attention_study.zoo.training import _train_into as _train_into
from attention_study.zoo.vision import _digits_split as _digits_split

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
