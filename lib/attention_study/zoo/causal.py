"""``tiny-gpt2``: the byte-level BPE tokenizer, the token streams, the training loop and the head
scores recorded along it."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attention_study.corpus import generate_passages
from attention_study.heads import (
    first_token_scores,
    induction_scores,
    previous_token_scores,
    repeated_random_tokens,
)
from attention_study.zoo.determinism import _cosine_lr, _deterministic
from attention_study.zoo.recipes import CausalRecipe

EOS_TOKEN = "<|endoftext|>"


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
    seqs = torch.stack(
        [
            torch.cat(
                [
                    torch.tensor([eos]),
                    repeated_random_tokens(p, model.config.vocab_size, 10_000 + i, exclude=[eos, *unseen]),
                ]
            )
            for i in range(recipe.score_sequences)
        ]
    )
    att = torch.stack(model(input_ids=seqs, output_attentions=True).attentions)
    ind = torch.stack([induction_scores(att[:, b], p) for b in range(att.shape[1])]).mean(0)
    model.train(was_training)
    return {
        "previous_token": prev.tolist(),
        "induction": ind.tolist(),
        "first_token": first.tolist(),
    }


def _train_causal(recipe: CausalRecipe, out: Path, log: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Train tokenizer + GPT-2 into ``out``; return the provenance (without the checksum).

    ``log``, if given, is called with each new point of the training curve."""
    from transformers import GPT2Config, GPT2LMHeadModel

    started = time.perf_counter()
    passages = generate_passages(recipe.train_passages + recipe.heldout_passages, recipe.seed, recipe.corpus)
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
                model.transformer.wpe.weight.copy_(_sinusoids(recipe.n_positions, recipe.n_embd) * _SINUSOID_SCALE)
        model.train()
        decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
        no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=recipe.lr,
            betas=(0.9, 0.98),
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
                curve.append(
                    {
                        "step": step + 1,
                        "train_loss": float(np.mean(losses[-recipe.eval_every :])),
                        "heldout_loss": _mean_nll(model, curve_windows),
                        "max_previous_token": max(max(r) for r in scores["previous_token"]),
                        "max_induction": max(max(r) for r in scores["induction"]),
                        "seconds": time.perf_counter() - train_started,
                    }
                )
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
