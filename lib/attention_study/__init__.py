"""The shared library of *A Study of Attention*.

Modules (each small, each named for what it holds):

- ``models``   — one loader and a registry of models, per profile (offline zoo / hub).
- ``tracing``  — one forward pass, every head: attention, queries, keys, values, context vectors.
"""

__version__ = "0.1.0"
