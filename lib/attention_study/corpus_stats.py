"""Per-head statistics over a whole corpus, streamed in batches with running sums.

:func:`head_statistics` reads a corpus — any iterable of texts (a list, a generator, a file read
line by line) or a Hugging Face ``datasets`` ``Dataset``/``IterableDataset`` — traces it in batches
with the batched tracer (:func:`attention_study.tracing.trace`), and adds each batch into running
sums. Memory is flat in the size of the corpus: one batch of texts and traces is alive at a time,
and the sums have a fixed shape (``[layer, head]``, ``[layer + 1, d_model]``, one row per tracked
word). Padding never enters a statistic: a :class:`~attention_study.tracing.BatchTrace` has every
padded position at exactly 0 and its ``mask`` marks the real tokens.

What is summed (``L`` layers, ``H`` heads, ``d`` = d_model, ``W`` tracked words):

* **attention, per head** ``[L, H]``: the entropy of every attention row (bits), the weight every
  row gives to the token classes of Clark et al. (2019) — ``[CLS]`` (or ``<s>``,
  ``<|endoftext|>``), ``[SEP]``, punctuation, the token itself, the previous and the next token —
  and the weight to the first token from queries ``1..T-1`` (the "attention sink" score of
  :func:`attention_study.heads.first_token_scores`). Every mean is *pooled*: each query row of the
  corpus weighs the same (a long text counts more than a short one).
* **representations, per layer** ``[L + 1]`` (Ethayarajh 2019), on the hidden states of the tokens
  that are not special tokens: the anisotropy baseline (mean cosine similarity of two tokens from
  different sequences, over *all* such pairs, exactly), and intra-sentence similarity (mean cosine
  of each token with its sequence's mean vector, averaged over sequences).
* **words** ``[W, L + 1]`` (optional, ``words=``): self-similarity, the mean cosine similarity of a
  word's representations in different sequences, exact from the running sum of unit vectors per
  word and per sequence: with ``S = Σ u`` over the ``n`` occurrences and ``S_s`` the part of it from
  sequence ``s``, ``mean_{i≠j, different sequences} cos = (|S|² − Σ_s |S_s|²) / (n² − Σ_s n_s²)``
  (and over all pairs ``(|S|² − n) / (n(n − 1))``); and, with ``word_mev=True``, the maximum
  explainable variance ``σ₁² / Σ σ_i²`` of the (uncentred) occurrence matrix, from its running Gram
  matrix ``Σ x xᵀ`` (``d × d`` per word and layer: 8.3 MB a word for MiniLM, hence opt-in).
* **word samples** (optional, ``word_samples=m``): each tracked word's representations ``[L + 1, d]``
  (float32) at its first occurrence in each of the first ``m`` texts (in corpus order) that contain
  it, ``[W, m, L + 1, d]``: a fixed number of contexts per word, for statistics that depend on the
  number of occurrences, such as MEV (at least ``1/n`` for ``n`` occurrences).

**Blocks, for confidence intervals** (optional, ``blocks=K``): the attention and representation
sums are also kept per block, text ``i`` going to block ``i mod K`` (``[K, ...]``, fixed size);
``blocks`` equal to the number of texts makes every text its own block. :meth:`HeadStatistics.bootstrap`
then redraws blocks with replacement and recomputes any statistic from the redrawn sums (the
cross-sequence pair counts are weighted so that copies of one sequence never pair with each other).

Multi-process (and multi-GPU) runs go through ``accelerate``: pass an ``Accelerator``; process
``k`` of ``K`` traces the items ``k, k + K, k + 2K, ...`` of the corpus, and the running sums are
added across processes with :func:`accelerate.utils.reduce` so every process returns the same
:class:`HeadStatistics`. Launch the script as for any ``accelerate`` program: on GPUs with
``accelerate launch --multi_gpu --num_processes K``; on CPUs with ``torchrun --nproc_per_node K``
and ``Accelerator(cpu=True)`` (gloo backend) — ``accelerate launch --cpu --num_processes K`` starts
one process unless MPI is set up.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .contextuality import CLASS_NAMES, token_classes
from .models import LoadedModel
from .tracing import BatchTrace, batches, trace
from .validation import corpus_text

__all__ = ["HeadStatistics", "frequent_words", "head_statistics", "word_token_ids", "wordnet_statistics"]

#: Families :func:`head_statistics` reads (text models).
TEXT_FAMILIES = ("bert", "gpt2")

_LN2 = math.log(2.0)
#: The class statistics whose sums run over every query (``previous``/``next``/``first`` run over
#: the ``n − 1`` queries that have that neighbour).
_ALL_QUERY_STATS = ("cls", "sep", "punctuation", "self")
_NEIGHBOUR_STATS = ("previous", "next", "first")
#: The sums kept per block (``blocks=K``); those in :data:`_SQUARED_KEYS` are sums over sequences of
#: a squared per-sequence quantity, weighted by the square of a block's multiplicity when resampled.
BLOCK_KEYS = (
    "texts", "sequences", "queries", "neighbour_queries", "entropy", "normalised_entropy", "normalised_rows",
    *_ALL_QUERY_STATS, *_NEIGHBOUR_STATS, "class_tokens", "unit_sum", "unit_sq_by_sequence", "rep_tokens",
    "rep_tokens_sq", "intra", "intra_sequences",
)  # fmt: skip
_SQUARED_KEYS = ("unit_sq_by_sequence", "rep_tokens_sq")
_BLOCK = "block:"


# ---------------------------------------------------------------------------------------------
# the result


@dataclass(frozen=True, eq=False)
class HeadStatistics:
    """Running sums of one corpus (or one shard of it), and the statistics they give.

    ``sums`` holds float64 CPU tensors of fixed shapes (nothing grows with the corpus); the
    properties turn them into NumPy float64 arrays. Two results of the same model and words add up
    with :meth:`merge` (or ``+``): the statistics of the two corpora together. ``samples`` holds the
    word samples (``word_samples=m``): ``"vectors"`` ``[W, m, L + 1, d]`` float32, ``"texts"``
    ``[W, m]`` int64 (the corpus index of each sample's text, -1 where a word has fewer than ``m``).

    Counts: ``n_texts`` items of the corpus, ``n_sequences`` traced sequences (more than
    ``n_texts`` when long texts were split into windows), ``n_tokens`` real tokens (special tokens
    included; padding never counted).

    The sums may carry a leading resample axis ``[R, ...]`` (the views :meth:`bootstrap` hands to
    its statistic); every property then carries it too.
    """

    model_name: str
    n_layers: int
    n_heads: int
    d_model: int
    words: tuple[str, ...]
    sums: Mapping[str, torch.Tensor]
    samples: Mapping[str, torch.Tensor] = field(default_factory=dict)

    # -- counts ----------------------------------------------------------------------------------

    @property
    def n_texts(self) -> int:
        return int(self.sums["texts"])

    @property
    def n_sequences(self) -> int:
        return int(self.sums["sequences"])

    @property
    def n_tokens(self) -> int:
        return int(self.sums["queries"])

    @property
    def n_blocks(self) -> int:
        """Number of blocks kept for :meth:`bootstrap` (0: none)."""
        key = _BLOCK + "texts"
        return int(self.sums[key].shape[0]) if key in self.sums else 0

    @property
    def nbytes(self) -> int:
        """Bytes held by the running sums and samples (independent of the corpus size)."""
        tensors = [*self.sums.values(), *self.samples.values()]
        return sum(t.element_size() * t.nelement() for t in tensors)

    # -- attention, per head ---------------------------------------------------------------------

    @property
    def entropy(self) -> np.ndarray:
        """``[L, H]`` mean entropy of an attention row, in bits, over every query of the corpus."""
        return _ratio(self.sums["entropy"], self.sums["queries"])

    @property
    def normalised_entropy(self) -> np.ndarray:
        """``[L, H]`` mean over rows of ``H(row) / log2(keys the row can see)`` (the *normalised*
        entropy: 1 for a uniform row, 0 for one key), over every row that sees at least two keys
        (as :func:`attention_study.information.normalised_entropy`, pooled over the corpus)."""
        return _ratio(self.sums["normalised_entropy"], self.sums["normalised_rows"])

    def attention_to_classes(self) -> dict[str, np.ndarray]:
        """Pooled :func:`attention_study.contextuality.attention_to_classes`: ``{name: [L, H]}`` for
        ``name`` in :data:`~attention_study.contextuality.CLASS_NAMES`, each in ``[0, 1]``.

        ``cls``, ``sep``, ``punctuation``: mean over every query of the weight on that class;
        ``self``: mean ``A[q, q]``; ``previous``/``next``: mean ``A[q, q ∓ 1]`` over the queries that
        have that neighbour.
        """
        return {name: self._class_mean(name) for name in CLASS_NAMES}

    @property
    def previous_token(self) -> np.ndarray:
        """``[L, H]`` previous-token score: mean ``A[i, i − 1]`` over queries ``i >= 1``."""
        return self._class_mean("previous")

    @property
    def next_token(self) -> np.ndarray:
        """``[L, H]`` next-token score: mean ``A[i, i + 1]`` over queries ``i <= T − 2``."""
        return self._class_mean("next")

    @property
    def first_token(self) -> np.ndarray:
        """``[L, H]`` first-token ("attention sink") score: mean ``A[i, 0]`` over queries ``i >= 1``."""
        return self._class_mean("first")

    @property
    def self_token(self) -> np.ndarray:
        """``[L, H]`` mean ``A[i, i]`` over every query."""
        return self._class_mean("self")

    def class_share(self) -> dict[str, np.ndarray]:
        """Fraction of the corpus's tokens in the classes ``cls``, ``sep`` and ``punctuation`` (the
        chance level of the matching attention share), as arrays (shape ``[]``, or ``[R]``)."""
        counts = self.sums["class_tokens"]
        names = ("cls", "sep", "punctuation")
        return {name: _ratio(counts[..., c], self.sums["queries"]) for c, name in enumerate(names)}

    def class_shares(self) -> dict[str, float]:
        """:meth:`class_share` as floats."""
        return {name: float(v) for name, v in self.class_share().items()}

    def _class_mean(self, name: str) -> np.ndarray:
        count = self.sums["queries"] if name in _ALL_QUERY_STATS else self.sums["neighbour_queries"]
        return _ratio(self.sums[name], count)

    # -- representations, per layer ---------------------------------------------------------------

    @property
    def anisotropy(self) -> np.ndarray:
        """``[L + 1]`` mean cosine similarity of two non-special tokens from different sequences,
        over every such pair of the corpus (Ethayarajh's baseline; ``nan`` with one sequence)."""
        return _cross_sequence_cosine(
            self.sums["unit_sum"],
            self.sums["unit_sq_by_sequence"],
            self.sums["rep_tokens"],
            self.sums["rep_tokens_sq"],
        )

    @property
    def intra_similarity(self) -> np.ndarray:
        """``[L + 1]`` intra-sentence similarity: mean over sequences of ``1/n Σ_i cos(x_i, x̄)``."""
        return _ratio(self.sums["intra"], self.sums["intra_sequences"])

    @property
    def intra_similarity_adjusted(self) -> np.ndarray:
        """``[L + 1]`` intra-sentence similarity minus the anisotropy baseline."""
        return self.intra_similarity - self.anisotropy

    # -- words ------------------------------------------------------------------------------------

    @property
    def word_counts(self) -> np.ndarray:
        """``[W]`` occurrences of each tracked word (as one token, outside special tokens)."""
        return self.sums["word_count"].numpy().copy()

    def self_similarity(self, same_sequence_pairs: bool = False) -> np.ndarray:
        """``[W, L + 1]`` mean cosine similarity of a word's representations.

        By default over pairs of occurrences in different sequences (Ethayarajh's "different
        contexts"; ``nan`` where a word is in fewer than two sequences); with
        ``same_sequence_pairs=True`` over all pairs ``i ≠ j`` (as
        :func:`attention_study.contextuality.self_similarity`; ``nan`` below two occurrences).
        """
        s = self.sums
        if not same_sequence_pairs:
            return _cross_sequence_cosine(
                s["word_unit_sum"], s["word_unit_sq_by_sequence"], s["word_count"], s["word_count_sq"]
            )
        n = s["word_count"][:, None]
        total = (s["word_unit_sum"] ** 2).sum(dim=-1)
        return _ratio(total - n, (n * (n - 1)).expand_as(total))

    def self_similarity_adjusted(self) -> np.ndarray:
        """``[W, L + 1]`` cross-sequence self-similarity minus the anisotropy baseline."""
        return self.self_similarity() - self.anisotropy[None]

    @property
    def mev(self) -> np.ndarray:
        """``[W, L + 1]`` maximum explainable variance of each word's occurrences (uncentred, as
        :func:`attention_study.contextuality.max_explainable_variance`); ``nan`` below two
        occurrences. Needs ``word_mev=True``."""
        if "word_gram" not in self.sums:
            raise ValueError("MEV was not accumulated: call head_statistics(..., word_mev=True)")
        gram = self.sums["word_gram"]  # [W, L + 1, d, d]
        energy = torch.diagonal(gram, dim1=-2, dim2=-1).sum(dim=-1)
        top = torch.linalg.eigvalsh(gram)[..., -1]
        enough = np.where(self.sums["word_count"].numpy()[:, None] >= 2, 1.0, np.nan)
        return _ratio(top, energy, enough)

    def word_samples(self) -> tuple[np.ndarray, np.ndarray]:
        """``(vectors [W, m, L + 1, d] float64, texts [W, m] int)``: each word's representations at
        its first occurrence in each of the first ``m`` texts containing it (``texts`` -1 and
        vectors 0 where a word has fewer). Needs ``word_samples=m``."""
        if not self.samples:
            raise ValueError("word samples were not kept: call head_statistics(..., word_samples=m)")
        return self.samples["vectors"].double().numpy(), self.samples["texts"].numpy().copy()

    # -- blocks and the bootstrap ------------------------------------------------------------------

    def blocks(self) -> dict[str, np.ndarray]:
        """``{key: [K, ...]}`` float64: the sums of :data:`BLOCK_KEYS` per block (``blocks=K``)."""
        if not self.n_blocks:
            raise ValueError("no blocks were kept: call head_statistics(..., blocks=K)")
        return {key: self.sums[_BLOCK + key].numpy() for key in BLOCK_KEYS}

    def resample(self, weights: Any) -> HeadStatistics:
        """The statistics of a corpus in which block ``k`` appears ``weights[..., k]`` times.

        ``weights`` ``[K]`` (or ``[R, K]``: ``R`` resamples at once, each sum then ``[R, ...]``) of
        non-negative counts; ``bincount(units, minlength=K)`` turns drawn block indices into counts.
        Sums over sequences of a squared per-sequence quantity are weighted by the square of the
        count, so copies of one sequence are never taken for a pair of different sequences. The
        result holds the block sums only (no words, no samples, no blocks); sums are computed when
        first read.
        """
        if not self.n_blocks:
            raise ValueError("no blocks were kept: call head_statistics(..., blocks=K)")
        w = torch.as_tensor(np.asarray(weights, dtype=np.float64))
        if w.shape[-1:] != (self.n_blocks,) or w.ndim > 2 or bool((w < 0).any()):
            raise ValueError(f"weights must be [{self.n_blocks}] or [R, {self.n_blocks}] non-negative counts")
        empty = _empty_sums(self.n_layers, self.n_heads, self.d_model, 0, False)
        sums = _WeightedSums(w, {key: self.sums[_BLOCK + key] for key in BLOCK_KEYS}, empty)
        return HeadStatistics(self.model_name, self.n_layers, self.n_heads, self.d_model, (), sums)

    def bootstrap(
        self,
        statistic: Callable[[HeadStatistics], Any],
        *,
        n_resamples: int = 2000,
        confidence: float = 0.95,
        seed: int = 0,
        interval: str = "percentile",
        chunk: int = 500,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Bootstrap interval of any statistic of the block sums, blocks redrawn with replacement.

        ``statistic(view)`` reads a :class:`HeadStatistics` whose sums carry a leading resample axis
        (:meth:`resample`) and returns an array ``[R, ...]``; it is called on the whole corpus
        (``R = 1``) for the estimate and on ``n_resamples`` multinomial redraws of the ``K``
        blocks, ``chunk`` at a time. ``interval="percentile"``: the ``(1 ∓ confidence)/2``
        quantiles; ``"normal"``: ``estimate ± z·SE`` with the bootstrap standard error (for the
        very high confidences of many simultaneous intervals, where a percentile would rest on a
        handful of resamples).

        Returns:
            ``(estimate, low, high)``, each of the statistic's shape ``[...]``.
        """
        if self.n_blocks < 2:
            raise ValueError(f"a bootstrap needs at least 2 blocks, got {self.n_blocks}")
        if not 0 < confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {confidence}")
        if n_resamples < 100:
            raise ValueError(f"n_resamples must be >= 100, got {n_resamples}")
        if interval not in ("percentile", "normal"):
            raise ValueError(f"interval must be 'percentile' or 'normal', got {interval!r}")
        k = self.n_blocks
        estimate = np.asarray(statistic(self.resample(np.ones((1, k)))), dtype=np.float64)[0]
        rng = np.random.default_rng(seed)
        draws = []
        for start in range(0, n_resamples, chunk):
            counts = rng.multinomial(k, np.full(k, 1.0 / k), size=min(chunk, n_resamples - start))
            draws.append(np.asarray(statistic(self.resample(counts)), dtype=np.float64))
        values = np.concatenate(draws)
        if not (np.all(np.isfinite(estimate)) and np.all(np.isfinite(values))):
            raise ValueError("the statistic is not finite on every resample")
        if interval == "normal":
            from scipy.stats import norm

            half = norm.ppf((1 + confidence) / 2) * values.std(axis=0, ddof=1)
            return estimate, estimate - half, estimate + half
        low, high = np.quantile(values, [(1 - confidence) / 2, (1 + confidence) / 2], axis=0)
        return estimate, low, high

    # -- combining ---------------------------------------------------------------------------------

    def merge(self, other: HeadStatistics) -> HeadStatistics:
        """The statistics of both corpora: the running sums added (word samples: the first ``m``
        texts of the two, by corpus index)."""
        mine = (self.model_name, self.n_layers, self.n_heads, self.d_model, self.words, sorted(self.sums))
        theirs = (other.model_name, other.n_layers, other.n_heads, other.d_model, other.words, sorted(other.sums))
        shapes = {k: tuple(v.shape) for k, v in self.samples.items()}
        if mine != theirs or shapes != {k: tuple(v.shape) for k, v in other.samples.items()}:
            raise ValueError("only statistics of the same model, words and options can be merged")
        sums = {key: value + other.sums[key] for key, value in self.sums.items()}
        samples = _merge_samples(self.samples, other.samples) if self.samples else {}
        return HeadStatistics(self.model_name, self.n_layers, self.n_heads, self.d_model, self.words, sums, samples)

    __add__ = merge


class _WeightedSums(Mapping[str, torch.Tensor]):
    """The block sums weighted by ``weights`` ``[K]`` or ``[R, K]``, computed on first read."""

    def __init__(self, weights: torch.Tensor, blocks: dict[str, torch.Tensor], rest: dict[str, torch.Tensor]):
        self._weights, self._blocks, self._rest = weights, blocks, rest
        self._done: dict[str, torch.Tensor] = {}

    def __getitem__(self, key: str) -> torch.Tensor:
        if key not in self._blocks:
            return self._rest[key]
        if key not in self._done:
            block = self._blocks[key]
            w = self._weights**2 if key in _SQUARED_KEYS else self._weights
            self._done[key] = torch.tensordot(w, block, dims=([-1], [0]))
        return self._done[key]

    def __iter__(self) -> Iterator[str]:
        return iter({**self._rest, **self._blocks})

    def __len__(self) -> int:
        return len({**self._rest, **self._blocks})


def _merge_samples(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per word, the ``m`` samples of ``a`` and ``b`` with the smallest text indices."""
    texts = torch.cat([a["texts"], b["texts"]], dim=1)  # [W, 2m]
    vectors = torch.cat([a["vectors"], b["vectors"]], dim=1)
    m = a["texts"].shape[1]
    key = torch.where(texts < 0, torch.iinfo(torch.int64).max, texts)
    order = torch.sort(key, dim=1, stable=True).indices[:, :m]
    picked = torch.gather(vectors, 1, order[:, :, None, None].expand(-1, -1, *vectors.shape[2:]))
    chosen = torch.gather(texts, 1, order)
    return {"texts": chosen, "vectors": picked * (chosen >= 0)[:, :, None, None]}  # empty slots stay 0


def _ratio(num: torch.Tensor, den: torch.Tensor, scale: np.ndarray | float = 1.0) -> np.ndarray:
    """``num / den`` as float64 NumPy, ``nan`` where ``den`` is 0, times ``scale``; ``den`` may have
    fewer axes than ``num`` (matched from the left: ``[R]`` against ``[R, L, H]``)."""
    num_np, den_np = num.double().numpy(), den.double().numpy()
    den_np = den_np.reshape(den_np.shape + (1,) * (num_np.ndim - den_np.ndim))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den_np != 0, num_np / np.where(den_np != 0, den_np, 1.0), np.nan)
    return out * scale


def _cross_sequence_cosine(
    unit_sum: torch.Tensor, sq_by_sequence: torch.Tensor, count: torch.Tensor, count_sq: torch.Tensor
) -> np.ndarray:
    """Mean cosine over pairs of unit vectors from different sequences: ``(|S|² − Σ_s |S_s|²) /
    (n² − Σ_s n_s²)``. ``unit_sum`` ``[..., d]``, ``sq_by_sequence`` ``[...]``; ``count``,
    ``count_sq`` broadcast against ``[...]`` from the left (``[W]`` -> ``[W, 1]``)."""
    while count.ndim < sq_by_sequence.ndim:
        count, count_sq = count[..., None], count_sq[..., None]
    pairs = count**2 - count_sq
    return _ratio((unit_sum**2).sum(dim=-1) - sq_by_sequence, pairs.expand_as(sq_by_sequence))


# ---------------------------------------------------------------------------------------------
# the running sums of one batch


def _empty_sums(
    n_layers: int, n_heads: int, d_model: int, n_words: int, word_mev: bool, blocks: int = 0
) -> dict[str, torch.Tensor]:
    """Zeroed float64 accumulators (shapes in the module doc); with ``blocks`` a ``[blocks, ...]``
    copy of each of :data:`BLOCK_KEYS` under ``"block:<key>"``."""
    head = (n_layers, n_heads)
    depth = n_layers + 1
    sums = {
        "texts": torch.zeros(()),
        "sequences": torch.zeros(()),
        "queries": torch.zeros(()),
        "neighbour_queries": torch.zeros(()),
        "entropy": torch.zeros(head),
        "normalised_entropy": torch.zeros(head),
        "normalised_rows": torch.zeros(()),
        **{name: torch.zeros(head) for name in (*_ALL_QUERY_STATS, *_NEIGHBOUR_STATS)},
        "class_tokens": torch.zeros(3),
        "unit_sum": torch.zeros(depth, d_model),
        "unit_sq_by_sequence": torch.zeros(depth),
        "rep_tokens": torch.zeros(()),
        "rep_tokens_sq": torch.zeros(()),
        "intra": torch.zeros(depth),
        "intra_sequences": torch.zeros(()),
        "word_unit_sum": torch.zeros(n_words, depth, d_model),
        "word_unit_sq_by_sequence": torch.zeros(n_words, depth),
        "word_count": torch.zeros(n_words),
        "word_count_sq": torch.zeros(n_words),
    }
    if word_mev:
        sums["word_gram"] = torch.zeros(n_words, depth, d_model, d_model)
    if blocks:
        sums.update({_BLOCK + key: torch.zeros(blocks, *sums[key].shape) for key in BLOCK_KEYS})
    return {key: value.double() for key, value in sums.items()}


def _empty_samples(n_words: int, m: int, depth: int, d_model: int) -> dict[str, torch.Tensor]:
    """Empty word samples: ``vectors`` ``[W, m, depth, d]`` float32, ``texts`` ``[W, m]`` -1."""
    if m == 0:
        return {}
    return {
        "vectors": torch.zeros(n_words, m, depth, d_model),
        "texts": torch.full((n_words, m), -1, dtype=torch.long),
    }


def _class_masks(tokens: Sequence[Sequence[str]], width: int) -> torch.Tensor:
    """``[3, B, width]`` float64: the ``cls``, ``sep``, ``punctuation`` tokens of each item
    (:func:`attention_study.contextuality.token_classes`); padding is 0."""
    out = torch.zeros(3, len(tokens), width, dtype=torch.float64)
    for b, item in enumerate(tokens):
        masks = token_classes(item)
        for c, name in enumerate(("cls", "sep", "punctuation")):
            out[c, b, : len(item)] = torch.from_numpy(masks[name].astype(np.float64))
    return out


def _attention_items(batch: BatchTrace, causal: bool) -> dict[str, torch.Tensor]:
    """Each item's attention sums (entropy, normalised entropy, token classes, neighbours), every
    value ``[B, ...]`` float64. Sums over one row or one column (at most ``T`` terms) are taken in
    the traced float32, every longer sum in float64."""
    a = batch.attentions  # [B, L, H, T, T] float32, padded rows and columns exactly 0
    f64 = torch.float64
    lengths = batch.mask.sum(dim=1).double()  # [B]
    width = a.shape[-1]
    rows = (-torch.xlogy(a, a).sum(dim=-1)).double() / _LN2  # [B, L, H, T] bits; padded rows 0
    if causal:  # query i sees keys 0..i
        seen = torch.arange(1, width + 1, dtype=f64)[None].expand(len(lengths), -1)
    else:  # every query sees the whole sequence
        seen = lengths[:, None].expand(-1, width)
    valid = batch.mask & (seen >= 2)  # rows that see at least two keys
    log_seen = torch.where(valid, torch.log2(seen.clamp_min(2.0)), 1.0)
    normalised = (rows / log_seen[:, None, None, :] * valid[:, None, None, :]).sum(dim=-1)
    classes = _class_masks(batch.tokens, width)  # [3, B, T]
    per_query = torch.matmul(a, classes.permute(1, 2, 0)[:, None, None].to(a.dtype))  # [B, L, H, T, 3]
    per_class = per_query.sum(dim=3).double().permute(3, 0, 1, 2).contiguous()  # [3, B, L, H]
    items = {
        "queries": lengths,
        "neighbour_queries": (lengths - 1).clamp(min=0),
        "entropy": rows.sum(dim=-1),
        "normalised_entropy": normalised,
        "normalised_rows": valid.sum(dim=1).double(),
        **{name: per_class[c] for c, name in enumerate(("cls", "sep", "punctuation"))},
        "class_tokens": classes.sum(dim=2).T.contiguous(),
        "self": torch.diagonal(a, offset=0, dim1=-2, dim2=-1).sum(dim=-1).double(),
        "previous": torch.diagonal(a, offset=-1, dim1=-2, dim2=-1).sum(dim=-1).double(),  # A[q, q-1]
        "next": torch.diagonal(a, offset=1, dim1=-2, dim2=-1).sum(dim=-1).double(),  # A[q, q+1]
        "first": a[..., 1:, 0].sum(dim=-1).double(),
    }
    return items


def _unit_vectors(hidden: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``hidden`` ``[B, L + 1, T, d]`` scaled to unit length where ``keep`` ``[B, T]``, 0 elsewhere."""
    norms = hidden.norm(dim=-1)  # [B, L + 1, T]
    kept = keep[:, None, :].expand_as(norms)
    if bool((norms[kept] == 0).any()):
        raise ValueError("a token's hidden state is the zero vector: cosine similarity is undefined")
    return hidden / torch.where(kept, norms, 1.0)[..., None] * kept[..., None]


def _representation_items(hidden: torch.Tensor, units: torch.Tensor, keep: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each item's anisotropy and intra-sentence sums, ``[B, ...]``; ``hidden``/``units``
    ``[B, L + 1, T, d]`` float64, ``keep`` ``[B, T]`` the real non-special tokens."""
    per_sequence = units.sum(dim=2)  # [B, L + 1, d]
    counts = keep.sum(dim=1).double()  # [B]
    has = counts > 0
    mean = (hidden * keep[:, None, :, None]).sum(dim=2)  # direction of the mean: the count cancels
    direction = mean / mean.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)
    cosines = (units * direction[:, :, None, :]).sum(dim=-1).sum(dim=2)  # [B, L + 1]
    return {
        "unit_sum": per_sequence,
        "unit_sq_by_sequence": (per_sequence**2).sum(dim=2),
        "rep_tokens": counts,
        "rep_tokens_sq": counts**2,
        "intra": cosines / counts.clamp_min(1.0)[:, None] * has[:, None],
        "intra_sequences": has.double(),
    }


def _add_items(sums: dict[str, torch.Tensor], items: dict[str, torch.Tensor], block_of: torch.Tensor) -> None:
    """Add per-item values ``[B, ...]`` into the totals and, where kept, into block ``block_of[b]``."""
    for key, value in items.items():
        sums[key] += value.sum(dim=0)
        if _BLOCK + key in sums:
            sums[_BLOCK + key].index_add_(0, block_of, value.contiguous())


def _add_words(sums: dict[str, torch.Tensor], hidden: torch.Tensor, units: torch.Tensor, word_of: torch.Tensor) -> None:
    """Add one batch's per-word sums; ``word_of`` ``[B, T]`` is the tracked word at each position
    (-1: none, padding, special token). The batch's vector sums are gathered in float32 (a few
    terms each; ``index_add_`` is much faster there) and added to the float64 totals."""
    n_words = sums["word_count"].shape[0]
    b_idx, t_idx = (word_of >= 0).nonzero(as_tuple=True)
    if n_words == 0 or len(b_idx) == 0:
        return
    word = word_of[b_idx, t_idx]
    groups, inverse = torch.unique(b_idx * n_words + word, return_inverse=True)  # one per (sequence, word)
    group_word = groups % n_words
    found = units[b_idx, :, t_idx].float()  # [K, L + 1, d]
    group_sum = torch.zeros(len(groups), *found.shape[1:]).index_add_(0, inverse, found)
    group_count = torch.bincount(inverse, minlength=len(groups)).double()
    word_sum = torch.zeros(n_words, *found.shape[1:]).index_add_(0, group_word, group_sum)
    sums["word_unit_sum"] += word_sum.double()
    sums["word_unit_sq_by_sequence"].index_add_(0, group_word, (group_sum.double() ** 2).sum(dim=-1))
    sums["word_count"].index_add_(0, group_word, group_count)
    sums["word_count_sq"].index_add_(0, group_word, group_count**2)
    if "word_gram" in sums:
        vectors = hidden[b_idx, :, t_idx]  # [K, L + 1, d]
        for w in torch.unique(word).tolist():
            x = vectors[word == w]
            sums["word_gram"][w] += torch.einsum("nld,nle->lde", x, x)


def _add_samples(
    samples: dict[str, torch.Tensor], hidden: torch.Tensor, word_of: torch.Tensor, text_of: torch.Tensor
) -> None:
    """Fill the word samples: a word's first occurrence in a text, while it has fewer than ``m``
    texts (texts arrive in corpus order on each process; windows of one text count once)."""
    if not samples:
        return
    texts = samples["texts"]
    n_words, m = texts.shape
    open_words = (texts[:, -1] < 0)[word_of.clamp_min(0)] & (word_of >= 0)  # [B, T]: words not yet full
    b_idx, t_idx = open_words.nonzero(as_tuple=True)  # in (sequence, position) order
    if len(b_idx) == 0:
        return
    word = word_of[b_idx, t_idx]
    _, inverse = torch.unique(b_idx * n_words + word, return_inverse=True)
    first = torch.full((int(inverse.max()) + 1,), len(b_idx)).scatter_reduce(
        0, inverse, torch.arange(len(b_idx)), reduce="amin"
    )  # the first position of each (sequence, word), in sequence order
    filled = (texts >= 0).sum(dim=1).tolist()
    for k in first.tolist():
        b, t, w = int(b_idx[k]), int(t_idx[k]), int(word[k])
        n = filled[w]
        if n >= m or (n > 0 and int(texts[w, n - 1]) == int(text_of[b])):
            continue
        samples["vectors"][w, n] = hidden[b, :, t]
        texts[w, n] = text_of[b]
        filled[w] = n + 1


def _add_batch(
    sums: dict[str, torch.Tensor],
    samples: dict[str, torch.Tensor],
    batch: BatchTrace,
    word_lookup: torch.Tensor,
    text_of: torch.Tensor,
    causal: bool,
) -> None:
    """Add one traced batch into the running sums; ``text_of`` ``[B]`` the corpus index of each
    sequence's text (its block is that index modulo the number of blocks)."""
    n_blocks = sums[_BLOCK + "texts"].shape[0] if _BLOCK + "texts" in sums else 1
    block_of = text_of % n_blocks
    keep = batch.mask & ~batch.special
    hidden = batch.hidden_states.double()  # [B, L + 1, T, d]
    units = _unit_vectors(hidden, keep)
    items = {"sequences": torch.ones(len(batch), dtype=torch.float64)}
    items.update(_attention_items(batch, causal))
    items.update(_representation_items(hidden, units, keep))
    _add_items(sums, items, block_of)
    word_of = torch.where(keep, word_lookup[batch.input_ids], -1)
    _add_words(sums, hidden, units, word_of)
    _add_samples(samples, batch.hidden_states, word_of, text_of)


# ---------------------------------------------------------------------------------------------
# reading and checking the corpus


def _datasets_kind(corpus: Any) -> str | None:
    """``"dataset"`` for a ``datasets`` Dataset/IterableDataset, ``"dict"`` for a DatasetDict,
    ``None`` otherwise (``datasets`` is never imported here: a dataset means it already was)."""
    module = sys.modules.get("datasets")
    if module is None:
        return None
    if isinstance(corpus, module.Dataset | module.IterableDataset):
        return "dataset"
    if isinstance(corpus, module.DatasetDict | module.IterableDatasetDict):
        return "dict"
    return None


def _corpus_items(corpus: Any, text_column: str) -> tuple[Iterator[Any], int | None]:
    """An iterator over the corpus's texts (unchecked) and its length when known."""
    if isinstance(corpus, str | bytes):
        raise TypeError("corpus is one string: give an iterable of texts (e.g. [text]), not a str")
    kind = _datasets_kind(corpus)
    if kind == "dict":
        raise TypeError(f"corpus is a DatasetDict with splits {sorted(corpus)}: pick one split, e.g. corpus['train']")
    if kind == "dataset":
        columns = corpus.column_names
        if columns is not None and text_column not in columns:
            raise ValueError(f"text_column {text_column!r} is not a column of the dataset; columns: {columns}")
        rows = corpus.select_columns([text_column])
        return (row[text_column] for row in rows), _length(corpus)
    if not isinstance(corpus, Iterable):
        raise TypeError(f"corpus must be an iterable of texts, got {type(corpus).__name__}")
    return iter(corpus), _length(corpus)


def _length(corpus: Any) -> int | None:
    try:
        return len(corpus)
    except TypeError:
        return None


def _check_options(loaded: LoadedModel, batch_size: int, max_tokens: int | None) -> None:
    if loaded.family not in TEXT_FAMILIES:
        raise ValueError(
            f"head_statistics reads texts; {loaded.name} is a {loaded.family} model "
            f"(supported: {', '.join(TEXT_FAMILIES)})"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if max_tokens is None:
        return
    low = _tokenizer(loaded).num_special_tokens_to_add(pair=False) + 1
    high = loaded.max_positions
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise ValueError(f"max_tokens must be an int or None, got {max_tokens!r}")
    if max_tokens < low or (high is not None and max_tokens > high):
        valid = f"{low}..{high}" if high is not None else f">= {low}"
        raise ValueError(f"max_tokens must be in {valid} for {loaded.name}, got {max_tokens}")


def _tokenizer(loaded: LoadedModel) -> Any:
    """The text model's tokenizer (an error for a model without one)."""
    if loaded.tokenizer is None:
        raise ValueError(f"{loaded.name} has no tokenizer: head_statistics reads texts")
    return loaded.tokenizer


def word_token_ids(loaded: LoadedModel, words: Sequence[str]) -> torch.Tensor:
    """``[vocab]`` int64 lookup: the index in ``words`` of each token id, -1 for other ids.

    A word is tracked where it is one token: its ids are those of ``word`` and of ``" " + word``
    (GPT-2 spells a word after a space with another token) that tokenize to one id. A word that is
    never one token (or only the unknown token), or two words with the same id, is an error.
    """
    tokenizer = _tokenizer(loaded)
    size = max(len(tokenizer), int(loaded.model.config.vocab_size))
    lookup = torch.full((size,), -1, dtype=torch.long)
    for index, word in enumerate(words):
        if not isinstance(word, str) or not word.strip():
            raise ValueError(f"words[{index}] must be a non-empty str, got {word!r}")
        ids = set()
        for form in (word.strip(), " " + word.strip()):
            pieces = tokenizer(form, add_special_tokens=False)["input_ids"]
            if len(pieces) == 1 and pieces[0] != tokenizer.unk_token_id:
                ids.add(pieces[0])
        if not ids:
            pieces = tokenizer.tokenize(word.strip())
            raise ValueError(f"word {word!r} is not one token of {loaded.name} (it is {pieces}): it cannot be tracked")
        for token_id in sorted(ids):
            if lookup[token_id] >= 0:
                raise ValueError(f"words {words[int(lookup[token_id])]!r} and {word!r} are the same token")
            lookup[token_id] = index
    return lookup


def _encode(
    loaded: LoadedModel, chunk: Sequence[tuple[int, str]], max_tokens: int | None
) -> Iterator[tuple[int, list[int]]]:
    """``(corpus index, token ids)`` of each text of ``chunk`` (``(corpus index, text)`` pairs), special tokens added;
    a text longer than ``max_tokens`` becomes consecutive windows of at most ``max_tokens`` tokens,
    each with the special tokens. Without ``max_tokens`` a text longer than the model's positions is
    an error naming its index, its length and the limit."""
    tokenizer = _tokenizer(loaded)
    encoded = tokenizer([text for _, text in chunk], truncation=False)["input_ids"]
    limit = loaded.max_positions if max_tokens is None else max_tokens
    for (index, text), ids in zip(chunk, encoded, strict=True):
        if limit is None or len(ids) <= limit:
            yield index, list(ids)
        elif max_tokens is None:
            raise ValueError(
                f"corpus item {index} has {len(ids)} tokens but {loaded.name} accepts at most {limit}; "
                "pass max_tokens to split long texts into windows (nothing is truncated silently)"
            )
        else:
            windows = tokenizer(text, truncation=True, max_length=max_tokens, return_overflowing_tokens=True)
            yield from ((index, list(w)) for w in windows["input_ids"])


# ---------------------------------------------------------------------------------------------
# the driver


def _shard(
    items: Iterator[Any], process_index: int, num_processes: int, counter: dict[str, int]
) -> Iterator[tuple[int, str]]:
    """Items ``process_index, process_index + num_processes, ...`` as ``(index, text)``, checked.

    Every item's type is checked on every process (cheap), so a bad item fails everywhere alike;
    ``counter["seen"]`` counts the items read (for the progress bar)."""
    for index, item in enumerate(items):
        counter["seen"] = index + 1
        text = corpus_text(item, index)
        if index % num_processes == process_index:
            yield index, text


def _accumulate(
    loaded: LoadedModel,
    texts: Iterator[tuple[int, str]],
    sums: dict[str, torch.Tensor],
    samples: dict[str, torch.Tensor],
    *,
    batch_size: int,
    max_tokens: int | None,
    word_lookup: torch.Tensor,
    bar: Any,
    counter: dict[str, int],
) -> None:
    """Trace ``texts`` in batches of ``batch_size`` sequences and add them into ``sums``."""
    blocks = sums.get(_BLOCK + "texts")
    causal = loaded.role == "causal"

    def sequences() -> Iterator[tuple[int, list[int]]]:
        for chunk in batches(texts, batch_size):
            sums["texts"] += len(chunk)
            if blocks is not None:
                index = torch.tensor([i for i, _ in chunk]) % blocks.shape[0]
                blocks.index_add_(0, index, torch.ones(len(chunk), dtype=torch.float64))
            yield from _encode(loaded, chunk, max_tokens)

    for batch_items in batches(sequences(), batch_size):
        batch = trace(loaded, [ids for _, ids in batch_items])
        if not isinstance(batch, BatchTrace):  # pragma: no cover - a list of sequences is always a batch
            raise TypeError(f"trace returned {type(batch).__name__} for a batch")
        text_of = torch.tensor([index for index, _ in batch_items])
        _add_batch(sums, samples, batch, word_lookup, text_of, causal)
        bar.update(counter["seen"] - bar.n)


def _sum_across_processes(sums: dict[str, torch.Tensor], accelerator: Any) -> dict[str, torch.Tensor]:
    """``sums`` added over every process with :func:`accelerate.utils.reduce` (a no-op alone)."""
    if accelerator is None or accelerator.num_processes == 1:
        return sums
    from accelerate.utils import reduce

    on_device = {key: value.to(accelerator.device) for key, value in sums.items()}
    return {key: value.cpu() for key, value in reduce(on_device, reduction="sum").items()}


def _gather_samples(samples: dict[str, torch.Tensor], accelerator: Any) -> dict[str, torch.Tensor]:
    """The word samples of every process, merged (the first ``m`` texts per word; a no-op alone)."""
    if not samples or accelerator is None or accelerator.num_processes == 1:
        return samples
    from accelerate.utils import gather

    everyone = {key: gather(value.to(accelerator.device)).cpu() for key, value in samples.items()}
    k = accelerator.num_processes
    parts = [{key: value.chunk(k, dim=0)[p] for key, value in everyone.items()} for p in range(k)]
    merged = parts[0]
    for part in parts[1:]:
        merged = _merge_samples(merged, part)
    return merged


def _failures_elsewhere(failed_here: bool, accelerator: Any) -> int:
    """How many other processes failed (0 alone); every process must call this, so that none
    waits forever in a reduction the failed one never joins."""
    if accelerator is None or accelerator.num_processes == 1:
        return 0
    from accelerate.utils import reduce

    flag = torch.tensor([1.0 if failed_here else 0.0], dtype=torch.float64, device=accelerator.device)
    return int(reduce(flag, reduction="sum").item()) - int(failed_here)


def head_statistics(
    loaded: LoadedModel,
    corpus: Iterable[str] | Any,
    *,
    batch_size: int = 32,
    max_tokens: int | None = None,
    words: Sequence[str] = (),
    word_mev: bool = False,
    word_samples: int = 0,
    blocks: int = 0,
    text_column: str = "text",
    progress: bool = True,
    accelerator: Any = None,
) -> HeadStatistics:
    """Per-head attention statistics and per-layer contextuality of a whole corpus, streamed.

    Args:
        loaded: a text model (BERT family or GPT-2) from :func:`attention_study.models.load`; with
            an ``accelerator``, loaded on ``accelerator.device``.
        corpus: an iterable of texts (``str``), read once and lazily (a generator is never
            materialised), or a ``datasets`` ``Dataset``/``IterableDataset`` whose ``text_column``
            holds the texts.
        batch_size: sequences per forward pass (results do not depend on it beyond round-off).
        max_tokens: ``None`` (default): a text longer than the model's positions is an error.
            An int: texts longer than ``max_tokens`` tokens are split into consecutive windows of at
            most ``max_tokens`` tokens (special tokens included in each), every window a sequence.
        words: words whose self-similarity (and MEV) to accumulate, each one token of the model
            (see :func:`word_token_ids`).
        word_mev: also accumulate each word's ``[L + 1, d, d]`` Gram matrix, for :attr:`HeadStatistics.mev`.
        word_samples: keep each word's representations at its first occurrence in each of the
            first ``word_samples`` texts containing it (:meth:`HeadStatistics.word_samples`; float32,
            ``W · m · (L + 1) · d · 4`` bytes).
        blocks: also keep the attention and representation sums per block, text ``i`` in block
            ``i mod blocks`` (0: none), for :meth:`HeadStatistics.bootstrap`.
        progress: show a ``tqdm`` bar (texts read) on the main process.
        accelerator: an ``accelerate.Accelerator``; process ``k`` of ``K`` traces items
            ``k, k + K, ...`` and the sums are added across processes. Every process gets the result.

    Returns:
        :class:`HeadStatistics` (shapes ``[L, H]`` per head, ``[L + 1]`` per layer).

    Raises:
        TypeError: the corpus is one ``str`` or not iterable; an item is not a ``str`` (naming its
            index and type).
        ValueError: empty corpus; an empty text or one longer than the model's positions without
            ``max_tokens`` (naming its index, token count and the limit); bad options or words.
    """
    from tqdm.auto import tqdm

    _check_options(loaded, batch_size, max_tokens)
    for name, value in (("word_samples", word_samples), ("blocks", blocks)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    word_lookup = word_token_ids(loaded, words)
    items, total = _corpus_items(corpus, text_column)
    index, count = (0, 1) if accelerator is None else (accelerator.process_index, accelerator.num_processes)
    config = loaded.model.config
    d_model = int(config.hidden_size)
    sums = _empty_sums(loaded.n_layers, loaded.n_heads, d_model, len(words), word_mev, blocks)
    samples = _empty_samples(len(words), word_samples, loaded.n_layers + 1, d_model)
    counter = {"seen": 0}
    main = accelerator is None or accelerator.is_main_process
    error: BaseException | None = None
    with tqdm(total=total, unit="text", disable=not (progress and main), desc="head statistics") as bar:
        try:
            _accumulate(
                loaded,
                _shard(items, index, count, counter),
                sums,
                samples,
                batch_size=batch_size,
                max_tokens=max_tokens,
                word_lookup=word_lookup,
                bar=bar,
                counter=counter,
            )
            bar.update(counter["seen"] - bar.n)
        except Exception as exc:  # re-raised below, once every process knows
            error = exc
    others = _failures_elsewhere(error is not None, accelerator)
    if error is not None:
        raise error
    if others:
        raise RuntimeError(f"head_statistics failed on {others} other process(es); see their error")
    sums = _sum_across_processes(sums, accelerator)
    samples = _gather_samples(samples, accelerator)
    if counter["seen"] == 0:
        raise ValueError("corpus is empty: give at least one text")
    return HeadStatistics(loaded.name, loaded.n_layers, loaded.n_heads, d_model, tuple(words), sums, samples)


# ---------------------------------------------------------------------------------------------
# the book's real corpus: WordNet segments

#: Clark et al. (2019) read 1,000 segments of at most 128 tokens; the book does the same on WordNet.
WORDNET_SEGMENTS = 1000
WORDNET_MAX_TOKENS = 128
#: A word is tracked when it occurs in at least this many segments (and is sampled in exactly that many).
WORDNET_MIN_TEXTS = 20


def frequent_words(loaded: LoadedModel, texts: Sequence[str], min_texts: int) -> tuple[str, ...]:
    """The words that are one token of the model and occur in at least ``min_texts`` of ``texts``.

    A word here is a token that is alphabetic after the sub-word marks ``Ġ``/``▁`` are removed and
    is not a WordPiece continuation (``##…``), lower-cased by the model's own tokenizer if it
    lower-cases; counted as :func:`head_statistics` tracks it, by token id outside special tokens.
    Sorted; an error if ``min_texts`` is not a positive int.
    """
    if isinstance(min_texts, bool) or not isinstance(min_texts, int) or min_texts < 1:
        raise ValueError(f"min_texts must be a positive int, got {min_texts!r}")
    tokenizer = _tokenizer(loaded)
    in_texts: dict[int, int] = {}
    for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
        for token_id in set(ids):
            in_texts[token_id] = in_texts.get(token_id, 0) + 1
    words = []
    for token_id, n in in_texts.items():
        token = tokenizer.convert_ids_to_tokens(token_id)
        word = token.removeprefix("Ġ").removeprefix("▁")
        if n >= min_texts and word.isascii() and word.isalpha() and not token.startswith("##"):
            words.append(word)
    usable = []
    for word in sorted(set(words)):
        try:
            word_token_ids(loaded, [word])
        except ValueError:
            continue  # e.g. a token that the tokenizer never produces for the word alone
        usable.append(word)
    return tuple(usable)


def wordnet_statistics(
    loaded: LoadedModel,
    n_segments: int = WORDNET_SEGMENTS,
    max_tokens: int = WORDNET_MAX_TOKENS,
    min_texts: int = WORDNET_MIN_TEXTS,
    *,
    batch_size: int = 32,
    progress: bool = False,
) -> tuple[HeadStatistics, list[str]]:
    """The book's paper-scale corpus statistics: WordNet 3.1 glosses and examples packed into
    ``n_segments`` segments of at most ``max_tokens`` tokens (:func:`attention_study.wordnet.segments`,
    counted with the model's tokenizer, special tokens included), streamed through
    :func:`head_statistics` with every text its own block (``blocks = n_segments``), tracking the
    :func:`frequent_words` of the segments (``min_texts``) with ``word_samples = min_texts``.

    Returns:
        ``(statistics, segments)``.
    """
    from . import wordnet

    tokenizer = _tokenizer(loaded)
    texts = list(wordnet.segments(lambda s: len(tokenizer(s)["input_ids"]), max_tokens=max_tokens, limit=n_segments))
    words = frequent_words(loaded, texts, min_texts)
    stats = head_statistics(
        loaded,
        texts,
        batch_size=batch_size,
        words=words,
        word_samples=min_texts,
        blocks=len(texts),
        progress=progress,
    )
    return stats, texts
