"""The shared library of *A Study of Attention*.

Modules (each small, each named for what it holds):

- ``models``         one loader and a registry of models, per profile (offline zoo / hub).
- ``zoo``, ``corpus``  the offline models trained here on a generated corpus, cached by recipe.
- ``tracing``        one forward pass, every head: attention, queries, keys, values, context vectors.
- ``heads``          head scores (previous-token, induction, first-token).
- ``views``, ``interactive``  static pictures and self-contained HTML views of attention.
- ``rollout``        attention rollout and attention flow.
- ``autoregressive`` the causal property of a causal LM, measured.
- ``groups``, ``equivariance``, ``lora``  symmetry groups, reference attention layers, LoRA.
- ``information``, ``contextuality``  entropy/KL/JS of attention rows; contextuality metrics.
- ``topology``, ``collocations``  persistent homology; phrase-extraction baselines and scoring.
- ``reporting``      numbers printed so that re-execution reproduces them exactly.
"""

import warnings

# tqdm warns about a missing ipywidgets when imported in a notebook; the book uses no widgets, and the
# warning would print a machine-specific path into chapter outputs.
warnings.filterwarnings("ignore", message="IProgress not found")

__version__ = "0.1.0"
