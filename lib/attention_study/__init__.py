"""The shared library of *A Study of Attention*.

Modules (each small, each named for what it holds):

- ``models``   — one loader and a registry of models, per profile (offline zoo / hub).
- ``tracing``  — one forward pass, every head: attention, queries, keys, values, context vectors.
- ``reporting`` — numbers printed so that re-execution reproduces them exactly.
"""

import warnings

# tqdm warns about a missing ipywidgets when imported in a notebook; the book uses no widgets, and the
# warning would print a machine-specific path into chapter outputs.
warnings.filterwarnings("ignore", message="IProgress not found")

__version__ = "0.1.0"
