"""The shared library of *A Study of Attention*.

Modules (each small, each named for what it holds):

- ``models``         one loader and a registry of models, per profile (offline zoo / hub).
- ``zoo``, ``corpus``  the offline models trained here on a generated corpus, cached by recipe.
- ``tracing``        one forward pass, every head: attention, queries, keys, values, context vectors.
- ``interventions``  head ablation and activation patching over the tracer's hooks.
- ``corpus_stats``   per-head statistics streamed over a corpus in batches (running sums; accelerate).
- ``heads``          head scores (previous-token, induction, first-token).
- ``views``, ``interactive``  static pictures and self-contained HTML views of attention.
- ``rollout``        attention rollout and attention flow.
- ``autoregressive`` the causal property of a causal LM, measured.
- ``groups``, ``equivariance``, ``lora``  symmetry groups, reference attention layers, LoRA.
- ``information``, ``contextuality``  entropy/KL/JS of attention rows; contextuality metrics.
- ``topology``, ``collocations``  persistent homology; phrase-extraction baselines and scoring.
- ``reporting``      numbers printed so that re-execution reproduces them exactly.

How they fit together: ARCHITECTURE.md at the root of the repository.
"""

__version__ = "0.1.0"
