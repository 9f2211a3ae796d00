"""Attention rollout and attention flow (Abnar & Zuidema 2020).

Both methods treat a transformer as a layered graph: layer ``l`` has one node per token, and the
edge from token ``i`` at layer ``l`` down to token ``j`` at layer ``l - 1`` carries the weight of the
*residual-augmented* attention

    Ã_l = normalise_rows(α · mean_h A_l,h + (1 - α) · I),        α = ``attention_share`` (0.5),

where the identity accounts for the residual connection around attention.

- **Rollout** multiplies these matrices layer by layer, R_l = Ã_l · R_{l-1}, R_0 = I. Every R_l is
  row-stochastic: row ``i`` is a probability distribution over input tokens.
- **Flow** reads each edge weight as a capacity and takes, for an output token ``i`` and an input
  token ``j``, the value of the maximum flow from node (L, i) to node (0, j). Each value lies in
  [0, 1] because the capacities leaving (L, i) sum to 1.

Shapes: ``attentions`` is ``[layer, head, query, key]`` (as in ``Trace.attentions``) or
``[layer, query, key]`` when heads are already reduced. Results are float64 numpy arrays.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.sparse import csr_array
from scipy.sparse.csgraph import maximum_flow
from threadpoolctl import threadpool_limits

from .validation import finite_float64

__all__ = [
    "FLOW_RESOLUTION",
    "FLOW_SCALE",
    "attention_flow",
    "attention_flow_networkx",
    "layer_graph_matrices",
    "rollout",
]

#: Capacities are scaled by this factor and rounded to integers for the max-flow solver, so flow
#: values are at most (number of cut edges) / FLOW_SCALE below the exact value (floored capacities).
FLOW_SCALE = 1_000_000
FLOW_RESOLUTION = 1.0 / FLOW_SCALE


def _as_layer_stack(attentions: object) -> np.ndarray:
    """Return attentions as float64 ``[layer, head, query, key]``; validate shape and values."""
    array = finite_float64(attentions, "attentions")
    if array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4 or array.shape[-1] != array.shape[-2]:
        raise ValueError(
            "attentions must have shape [layer, head, query, key] or [layer, query, key] with "
            f"query == key; got {tuple(array.shape)}"
        )
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"attentions need at least one layer and one head; got {array.shape}")
    if array.shape[-1] < 2:
        raise ValueError(f"rollout and flow need at least 2 tokens; got {array.shape[-1]}")
    if np.any(array < 0):
        raise ValueError("attentions must be non-negative (they are softmax outputs)")
    return array


def _check_share(attention_share: float) -> None:
    if not 0.0 <= attention_share <= 1.0:
        raise ValueError(f"attention_share must lie in [0, 1]; got {attention_share}")


def layer_graph_matrices(attentions: object, attention_share: float = 0.5) -> np.ndarray:
    """Residual-augmented, head-averaged attention per layer.

    Args:
        attentions: ``[layer, head, query, key]`` (or ``[layer, query, key]``) attention weights.
        attention_share: α in ``α·A + (1-α)·I``; 0.5 as in Abnar & Zuidema.

    Returns:
        ``[layer, token, token]`` row-stochastic matrices Ã_l (rows renormalised to sum to 1).
    """
    _check_share(attention_share)
    array = _as_layer_stack(attentions)
    mean = array.mean(axis=1)
    n_tokens = mean.shape[-1]
    mixed = attention_share * mean + (1.0 - attention_share) * np.eye(n_tokens)
    return mixed / mixed.sum(axis=-1, keepdims=True)


def rollout(attentions: object, attention_share: float = 0.5) -> np.ndarray:
    """Attention rollout after every layer.

    Args:
        attentions: ``[layer, head, query, key]`` attention weights.
        attention_share: α in ``α·A + (1-α)·I`` (0.5 by default).

    Returns:
        ``[layer, query, key]`` float64: entry ``[l, i, j]`` is how much of token ``i``'s
        representation after layer ``l`` (0-based) is attributed to input token ``j``. Each row
        sums to 1. ``rollout(...)[-1]`` is the rollout through the whole model.
    """
    mixed = layer_graph_matrices(attentions, attention_share)
    out = np.empty_like(mixed)
    current = np.eye(mixed.shape[-1])
    # Small products: one BLAS thread avoids thread oversubscription on busy, shared CPUs.
    with threadpool_limits(limits=1, user_api="blas"):
        for layer, matrix in enumerate(mixed):
            current = matrix @ current
            out[layer] = current
    return out


def _flow_graph(mixed: np.ndarray) -> tuple[csr_array, int]:
    """Integer-capacity CSR graph of the layered attention graph; node (l, i) -> l * T + i.

    Edges run from layer l (1..L) down to layer l-1 with capacity round(Ã_l[i, j] · FLOW_SCALE).
    """
    n_layers, n_tokens, _ = mixed.shape
    n_nodes = (n_layers + 1) * n_tokens
    capacities = np.floor(mixed * FLOW_SCALE).astype(np.int32)
    rows, cols, vals = [], [], []
    local_i, local_j = np.nonzero(np.ones((n_tokens, n_tokens), dtype=bool))
    for layer in range(1, n_layers + 1):
        block = capacities[layer - 1]
        keep = block[local_i, local_j] > 0
        rows.append(layer * n_tokens + local_i[keep])
        cols.append((layer - 1) * n_tokens + local_j[keep])
        vals.append(block[local_i, local_j][keep])
    graph = csr_array(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_nodes, n_nodes),
    )
    graph.sort_indices()
    return graph, n_tokens


def _check_queries(queries: Sequence[int] | None, n_tokens: int) -> list[int]:
    if queries is None:
        return list(range(n_tokens))
    chosen = [int(q) for q in queries]
    bad = [q for q in chosen if not 0 <= q < n_tokens]
    if bad:
        raise ValueError(f"query token(s) {bad} out of range; valid: 0..{n_tokens - 1}")
    return chosen


def _check_layer(layer: int | None, n_layers: int) -> int:
    if layer is None:
        return n_layers
    if not 1 <= layer <= n_layers:
        raise ValueError(f"layer must be in 1..{n_layers} (flow after that layer); got {layer}")
    return layer


def attention_flow(
    attentions: object,
    attention_share: float = 0.5,
    *,
    layer: int | None = None,
    queries: Sequence[int] | None = None,
) -> np.ndarray:
    """Attention flow: maximum flow through the layered attention graph.

    Args:
        attentions: ``[layer, head, query, key]`` attention weights.
        attention_share: α in ``α·A + (1-α)·I`` (0.5 by default).
        layer: flow from the outputs of this layer (1-based count of layers used; default: all).
        queries: output tokens to compute rows for (default: all). Each row costs one max-flow
            problem per input token.

    Returns:
        ``[len(queries), token]`` float64 in [0, 1]: entry ``[r, j]`` is the maximum flow from
        output token ``queries[r]`` (after ``layer`` layers) to input token ``j``. Values are exact
        from below up to ``FLOW_RESOLUTION`` per cut edge (capacities are floored to multiples
        of 1e-6, so values never exceed the exact flow).
    """
    mixed = layer_graph_matrices(attentions, attention_share)
    n_layers = _check_layer(layer, mixed.shape[0])
    mixed = mixed[:n_layers]
    graph, n_tokens = _flow_graph(mixed)
    rows = _check_queries(queries, n_tokens)
    out = np.zeros((len(rows), n_tokens))
    top = n_layers * n_tokens
    for r, query in enumerate(rows):
        for key in range(n_tokens):
            result = maximum_flow(graph, top + query, key)
            out[r, key] = result.flow_value / FLOW_SCALE
    return out


def attention_flow_networkx(
    attentions: object,
    attention_share: float = 0.5,
    *,
    layer: int | None = None,
    queries: Sequence[int] | None = None,
) -> np.ndarray:
    """Reference implementation of :func:`attention_flow` with networkx (float capacities).

    Same arguments and result as :func:`attention_flow`; slower. Used to cross-check and as the
    benchmark baseline.
    """
    import networkx as nx

    mixed = layer_graph_matrices(attentions, attention_share)
    n_layers = _check_layer(layer, mixed.shape[0])
    mixed = mixed[:n_layers]
    n_tokens = mixed.shape[-1]
    rows = _check_queries(queries, n_tokens)
    graph = nx.DiGraph()
    for lay in range(1, n_layers + 1):
        for i in range(n_tokens):
            for j in range(n_tokens):
                graph.add_edge((lay, i), (lay - 1, j), capacity=float(mixed[lay - 1, i, j]))
    out = np.zeros((len(rows), n_tokens))
    for r, query in enumerate(rows):
        for key in range(n_tokens):
            out[r, key] = nx.maximum_flow_value(graph, (n_layers, query), (0, key))
    return out
