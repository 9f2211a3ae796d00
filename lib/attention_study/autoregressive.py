"""The autoregressive property of a causal LM, measured: mask, perturbation, Jacobian, generation.

Every function takes a loaded causal model (``load("tiny-gpt2")``, ``load("gpt2")`` or a local
GPT-2 folder) and token ids ``[token]`` (int64), so the same code runs on any GPT-2-family model.

- :func:`forward_ids`: one forward pass, traced: hidden states ``[layer + 1, token, d_model]``,
  logits ``[token, vocab]``, attentions ``[layer, head, query, key]``.
- :func:`upper_triangle_max`: the largest attention weight above the diagonal (0.0 under the mask).
- :func:`perturbation_effect`: max |difference| per position after replacing one token.
- :func:`jacobian_blocks`: ``[token_out, token_in]`` Frobenius norms of the blocks
  ∂h_out[t] / ∂e[s] of the final hidden state with respect to the input embeddings.
- :func:`greedy_steps`: greedy decoding with the newest token's attention (drawn by
  :func:`attention_study.views.plot_generation`).
- :func:`head_taxonomy`: previous-token, first-token and induction scores of every head (from
  :mod:`attention_study.heads`; drawn by :func:`attention_study.views.plot_head_scores`).
- :class:`InductionProbe`, :func:`induction_probe`: the book's one induction probe (random tokens
  the model knows, repeated twice): every head's induction score and the in-context copying loss;
  run it inside :func:`attention_study.interventions.ablate_heads` to see what a head contributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch

from .heads import first_token_scores, induction_scores, previous_token_scores, repeated_random_tokens
from .tracing import BatchTrace, phrase_token_indices, trace

__all__ = [
    "INDUCTION_PROBE",
    "ForwardResult",
    "GenerationStep",
    "InductionProbe",
    "ProbeResult",
    "encode",
    "forward_ids",
    "greedy_steps",
    "head_taxonomy",
    "induction_probe",
    "jacobian_blocks",
    "known_ids",
    "perturbation_effect",
    "token_position",
    "upper_triangle_max",
]


@dataclass(frozen=True)
class ForwardResult:
    """One forward pass: ``hidden_states`` [layer + 1, token, d_model], ``logits`` [token, vocab],
    ``attentions`` [layer, head, query, key] (float32)."""

    hidden_states: torch.Tensor
    logits: torch.Tensor
    attentions: torch.Tensor


def _check_causal(loaded: Any) -> None:
    if getattr(loaded, "role", None) != "causal":
        raise ValueError(
            f"this needs a causal language model (role 'causal'); {getattr(loaded, 'name', loaded)!r}"
            f" has role {getattr(loaded, 'role', None)!r}"
        )


def _check_ids(loaded: Any, ids: Any, min_tokens: int = 2) -> torch.Tensor:
    ids = torch.as_tensor(ids)
    if ids.ndim != 1 or ids.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"ids must be a 1-D integer tensor [token]; got {tuple(ids.shape)} {ids.dtype}")
    if ids.numel() < min_tokens:
        raise ValueError(f"need at least {min_tokens} tokens; got {ids.numel()}")
    vocab = int(loaded.model.config.vocab_size)
    if int(ids.min()) < 0 or int(ids.max()) >= vocab:
        raise ValueError(f"token ids must be in 0..{vocab - 1}")
    limit = loaded.max_positions
    if limit is not None and ids.numel() > limit:
        raise ValueError(f"{ids.numel()} tokens but the model accepts at most {limit}")
    return ids.long()


def _tokenize(loaded: Any, text: str) -> Any:
    """The tokenizer's encoding of ``text``, with character offsets (the one call behind
    :func:`encode` and :func:`token_position`, so their positions agree)."""
    _check_causal(loaded)
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text is empty: give at least two words")
    return loaded.tokenizer(text, return_offsets_mapping=True)


def encode(loaded: Any, text: str, min_tokens: int = 2) -> torch.Tensor:
    """Token ids ``[token]`` of ``text`` (no special tokens added); at least ``min_tokens``."""
    ids = torch.tensor(_tokenize(loaded, text)["input_ids"], dtype=torch.long)
    if ids.numel() < min_tokens:
        raise ValueError(f"text {text!r} has {ids.numel()} token(s); this needs at least {min_tokens}")
    return _check_ids(loaded, ids, min_tokens)


def token_position(loaded: Any, text: str, phrase: str, occurrence: int = 0) -> int:
    """Position in ``encode(loaded, text)`` of the first token of ``phrase`` (its
    ``occurrence``-th whole-word match), found by character offsets, so it never depends on how
    the tokenizer splits the words before it. Raises ``ValueError`` quoting a missing phrase."""
    encoding = _tokenize(loaded, text)
    return phrase_token_indices(text, encoding["offset_mapping"], phrase, occurrence)[0]


def _eager(model: Any) -> None:
    if getattr(model.config, "_attn_implementation", "eager") != "eager":
        model.set_attn_implementation("eager")


def forward_ids(loaded: Any, ids: Any) -> ForwardResult:
    """Run the causal model once on ``ids`` ``[token]`` (a :func:`~attention_study.tracing.trace`
    of the ids, on the model's device) and keep every layer's output, float32 on the CPU."""
    _check_causal(loaded)
    traced = trace(loaded, _check_ids(loaded, ids, min_tokens=1))
    if traced.logits is None:
        raise ValueError(f"{loaded.name} has no language-model head: it gives no next-token logits")
    return ForwardResult(hidden_states=traced.hidden_states, logits=traced.logits, attentions=traced.attentions)


def upper_triangle_max(attentions: torch.Tensor) -> float:
    """Largest weight with key > query over ``[layer, head, query, key]`` (0.0 under a causal mask)."""
    if attentions.ndim != 4 or attentions.shape[-1] != attentions.shape[-2]:
        raise ValueError(f"attentions must be [layer, head, query, key]; got {tuple(attentions.shape)}")
    n = attentions.shape[-1]
    above = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
    return float(attentions[..., above].abs().max()) if n > 1 else 0.0


def perturbation_effect(loaded: Any, ids: Any, position: int, new_id: int) -> dict[str, np.ndarray]:
    """Replace the token at ``position`` by ``new_id`` and measure what changes.

    Returns:
        ``hidden``: ``[layer + 1, token]`` max |Δ| of each hidden state (over d_model);
        ``logits``: ``[token]`` max |Δ| of the logits. Entries before ``position`` are exactly 0.0
        for a causal model.
    """
    ids = _check_ids(loaded, ids)
    n = ids.numel()
    if not 0 <= position < n:
        raise IndexError(f"position {position} is out of range: valid positions are 0..{n - 1}")
    if int(new_id) == int(ids[position]):
        raise ValueError(f"new_id {new_id} is the token already at position {position}")
    changed = ids.clone()
    changed[position] = int(new_id)
    changed = _check_ids(loaded, changed)
    before, after = forward_ids(loaded, ids), forward_ids(loaded, changed)
    hidden = (after.hidden_states - before.hidden_states).abs().amax(dim=-1)
    logits = (after.logits - before.logits).abs().amax(dim=-1)
    return {"hidden": hidden.numpy(), "logits": logits.numpy()}


def jacobian_blocks(loaded: Any, ids: Any) -> np.ndarray:
    """``[token_out, token_in]`` Frobenius norms of ∂h_L[t] / ∂e[s] (float64 numpy).

    ``e`` are the input token embeddings ``[token, d_model]`` (positions are added inside the
    model) and ``h_L`` the final hidden state. A causal model gives an exactly block
    lower-triangular Jacobian: every block with ``s > t`` is zero. Keep sequences short: the full
    Jacobian has ``(token · d_model)²`` entries.
    """
    _check_causal(loaded)
    ids = _check_ids(loaded, ids)
    model = loaded.model
    _eager(model)
    ids = ids.to(next(model.parameters()).device)
    embeddings = model.get_input_embeddings()(ids).detach()
    mask = torch.ones_like(ids)[None]

    def final_hidden(e: torch.Tensor) -> torch.Tensor:
        out = model(inputs_embeds=e[None], attention_mask=mask, output_hidden_states=True)
        return out.hidden_states[-1][0]

    # Hundreds of tiny backward passes: extra intra-op threads only add contention.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        jacobian = torch.autograd.functional.jacobian(final_hidden, embeddings)  # [T, d, T, d]
    finally:
        torch.set_num_threads(threads)
    return jacobian.double().pow(2).sum(dim=(1, 3)).sqrt().cpu().numpy()


@dataclass(frozen=True)
class GenerationStep:
    """One greedy step: the context ``ids`` [token], the chosen ``next_id``, and the newest
    token's attention ``attention`` [layer, head, key] (query = the last context position)."""

    ids: torch.Tensor
    next_id: int
    attention: torch.Tensor


def greedy_steps(loaded: Any, prompt_ids: Any, steps: int) -> list[GenerationStep]:
    """Greedy decoding for ``steps`` tokens, one full forward pass per step (no cache)."""
    ids = _check_ids(loaded, prompt_ids, min_tokens=1)
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int; got {steps!r}")
    limit = loaded.max_positions
    if limit is not None and ids.numel() + steps > limit:
        raise ValueError(f"prompt of {ids.numel()} + {steps} steps exceeds {limit} positions")
    out = []
    for _ in range(steps):
        result = forward_ids(loaded, ids)
        next_id = int(result.logits[-1].argmax())
        out.append(GenerationStep(ids, next_id, result.attentions[:, :, -1, :]))
        ids = torch.cat([ids, torch.tensor([next_id])])
    return out


def head_taxonomy(loaded: Any, text_ids: Any, texts: Any, probe: InductionProbe | None = None) -> dict[str, Any]:
    """Previous-token and first-token scores on ``text_ids``; induction scores from the book's
    probe (:data:`INDUCTION_PROBE` unless ``probe`` is given), drawing from the ids of ``texts``.

    Returns a dict of ``[layer, head]`` float64 tensors ``previous``, ``first``, ``induction``,
    plus the probe's result ``probe`` (:class:`ProbeResult`).
    """
    text = forward_ids(loaded, _check_ids(loaded, text_ids))
    result = induction_probe(loaded, texts, INDUCTION_PROBE if probe is None else probe)
    return {
        "previous": previous_token_scores(text.attentions),
        "first": first_token_scores(text.attentions),
        "induction": result.scores,
        "probe": result,
    }


@dataclass(frozen=True)
class InductionProbe:
    """The book's induction probe, one definition for every chapter.

    ``n_sequences`` inputs, input ``k`` being the model's start token (BOS, else end-of-text) followed
    by ``period`` distinct token ids drawn with seed ``seed + k`` and then the same ``period`` ids
    again. The ids are drawn from :func:`known_ids`: tokens that occur in text of the model's domain,
    so the probe never asks a model to copy a token it was never trained on (a small model's unseen
    ids keep near-random embeddings, and copying them fails for reasons unrelated to induction).
    """

    period: int = 40
    n_sequences: int = 8
    seed: int = 10_000

    def __post_init__(self) -> None:
        for name in ("period", "n_sequences"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")


#: The probe every chapter uses.
INDUCTION_PROBE = InductionProbe()


@dataclass(frozen=True)
class ProbeResult:
    """What :func:`induction_probe` measures.

    ``scores`` ``[layer, head]`` float64: each head's induction score (mean weight from a token of
    the second copy to the token after its first occurrence), averaged over the sequences;
    ``copying_loss`` and ``first_copy_loss``: mean next-token cross-entropy (nats) over the tokens of
    the second copy that induction can predict (all but its first) and over the same positions of
    the first copy, where the tokens are random; ``ids`` ``[sequence, token]``; ``attentions``
    ``[layer, head, query, key]`` of the first sequence (for a picture).
    """

    scores: torch.Tensor
    copying_loss: float
    first_copy_loss: float
    ids: torch.Tensor
    attentions: torch.Tensor


def known_ids(loaded: Any, texts: Any) -> list[int]:
    """Sorted token ids that occur in ``texts`` (a non-empty list of ``str``), special ids excluded."""
    if isinstance(texts, str) or not texts or not all(isinstance(t, str) for t in texts):
        raise ValueError("texts must be a non-empty list of str (text of the model's domain)")
    tokenizer = loaded.tokenizer
    seen = {int(i) for row in tokenizer(list(texts), verbose=False)["input_ids"] for i in row}
    return sorted(seen - set(tokenizer.all_special_ids))


def _start_id(loaded: Any) -> int:
    tokenizer = loaded.tokenizer
    for candidate in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    raise ValueError(f"{loaded.name}'s tokenizer has no BOS or end-of-text token to start the probe with")


def probe_sequences(loaded: Any, allowed: Any, probe: InductionProbe = INDUCTION_PROBE) -> torch.Tensor:
    """The probe's inputs ``[n_sequences, 1 + 2 * period]`` (int64): start token, ``r``, ``r``."""
    allowed = sorted({int(i) for i in allowed})
    if len(allowed) < probe.period:
        raise ValueError(f"{len(allowed)} allowed ids cannot fill a period of {probe.period} distinct tokens")
    table = torch.tensor(allowed, dtype=torch.long)
    start = torch.tensor([_start_id(loaded)])
    rows = []
    for k in range(probe.n_sequences):
        picks = repeated_random_tokens(probe.period, len(allowed), probe.seed + k)  # indices into ``allowed``
        rows.append(torch.cat([start, table[picks]]))
    ids = torch.stack(rows)
    limit = loaded.max_positions
    if limit is not None and ids.shape[1] > limit:
        raise ValueError(f"the probe has {ids.shape[1]} tokens but {loaded.name} accepts at most {limit}")
    return ids


@torch.no_grad()
def induction_probe(
    loaded: Any, texts: Any, probe: InductionProbe = INDUCTION_PROBE, allowed: Any = None
) -> ProbeResult:
    """Run ``probe`` on ``loaded`` (ids drawn from :func:`known_ids` of ``texts``, or from the ids
    ``allowed`` when given, to compare pools): every head's induction score and the in-context
    copying loss, in one batched trace. Inside :func:`attention_study.interventions.ablate_heads`
    it measures the ablated model."""
    _check_causal(loaded)
    pool = known_ids(loaded, texts) if allowed is None else allowed
    ids = probe_sequences(loaded, pool, probe)
    traced = cast(BatchTrace, trace(loaded, ids))  # a 2-D tensor of ids: a batch
    if traced.logits is None:
        raise ValueError(f"{loaded.name} has no language-model head: it gives no next-token logits")
    p = probe.period
    scores = torch.stack([induction_scores(item.attentions, p) for item in traced]).mean(dim=0)
    logprobs = torch.log_softmax(traced.logits.double(), dim=-1)  # [sequence, token, vocab]

    def loss(targets: range) -> float:
        """Mean NLL of the tokens at ``targets``, each predicted from the position before it."""
        positions = torch.tensor(list(targets))
        picked = logprobs[:, positions - 1].gather(-1, ids[:, positions, None])
        return float(-picked.mean())

    # positions: 0 start, 1..p first copy, p+1..2p second copy; the second copy's first token follows
    # the end of the first copy, which nothing predicts, so both losses cover copy positions 2..p.
    return ProbeResult(
        scores=scores,
        copying_loss=loss(range(p + 2, 2 * p + 1)),
        first_copy_loss=loss(range(2, p + 1)),
        ids=ids,
        attentions=traced[0].attentions,
    )


@dataclass(frozen=True)
class CircuitAblation:
    """The induction probe run plain, with the previous-token head ablated, and with a control head
    of the same layer ablated (the one with the lowest previous-token score). Heads are
    ``(layer, head)``; scores are the induction head's probe score, losses the copying loss (nats)."""

    previous: tuple[int, int]
    induction: tuple[int, int]
    control: tuple[int, int]
    score: float
    score_ablated: float
    score_control: float
    loss: float
    loss_ablated: float
    loss_control: float
    random_loss: float


def _top_head(scores: torch.Tensor) -> tuple[int, int]:
    """``(layer, head)`` of the largest entry of ``[layer, head]`` scores (first one on a tie)."""
    layer, head = divmod(int(scores.argmax()), int(scores.shape[1]))
    return layer, head


def induction_ablation(
    loaded: Any, taxonomy: dict[str, Any], texts: Any, probe: InductionProbe = INDUCTION_PROBE
) -> CircuitAblation:
    """Zero-ablate the top previous-token head of ``taxonomy`` (from :func:`head_taxonomy` on
    ``loaded`` with the same ``probe`` and ``texts``) and, as a control, the head of its layer with
    the lowest previous-token score; run the probe each time and read the top induction head's
    score and the copying loss."""
    from .interventions import ablate_heads

    previous = taxonomy["previous"]
    p_layer, p_head = _top_head(previous)
    i_layer, i_head = _top_head(taxonomy["induction"])
    control = int(previous[p_layer].argmin())
    if control == p_head:
        raise ValueError(f"layer {p_layer} has one head: there is no control head to ablate")
    plain: ProbeResult = taxonomy["probe"]
    with ablate_heads(loaded, {p_layer: [p_head]}):
        ablated = induction_probe(loaded, texts, probe)
    with ablate_heads(loaded, {p_layer: [control]}):
        controlled = induction_probe(loaded, texts, probe)
    return CircuitAblation(
        previous=(p_layer, p_head),
        induction=(i_layer, i_head),
        control=(p_layer, control),
        score=float(plain.scores[i_layer, i_head]),
        score_ablated=float(ablated.scores[i_layer, i_head]),
        score_control=float(controlled.scores[i_layer, i_head]),
        loss=plain.copying_loss,
        loss_ablated=ablated.copying_loss,
        loss_control=controlled.copying_loss,
        random_loss=plain.first_copy_loss,
    )
