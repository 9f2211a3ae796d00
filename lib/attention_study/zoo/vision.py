"""``digits-vit``: the stratified split of sklearn's digits, accuracy and the training loop."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attention_study.zoo.determinism import _cosine_lr, _deterministic
from attention_study.zoo.processor import PROCESSOR_FILE, DigitsProcessor
from attention_study.zoo.recipes import VisionRecipe


def _digits_split(recipe: VisionRecipe) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stratified split of sklearn digits: ``x_train [N, 8, 8]``, ``x_test``, ``y_train``, ``y_test``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    return train_test_split(
        digits.images,
        digits.target,
        test_size=recipe.test_fraction,
        random_state=recipe.seed,
        stratify=digits.target,
    )


@torch.no_grad()
def _accuracy(model: Any, pixels: torch.Tensor, labels: torch.Tensor) -> float:
    pred = model(pixel_values=pixels).logits.argmax(-1)
    return float((pred == labels).double().mean())


def _train_vision(recipe: VisionRecipe, out: Path, log: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Train the digits ViT into ``out``; return the provenance (without the checksum).

    ``log``, if given, is called with each new point of the training curve (one per epoch)."""
    from transformers import ViTConfig, ViTForImageClassification

    started = time.perf_counter()
    x_train, x_test, y_train, y_test = _digits_split(recipe)
    processor = DigitsProcessor(recipe.patch_size)
    train_px = processor(images=x_train)["pixel_values"]
    test_px = processor(images=x_test)["pixel_values"]
    train_y = torch.tensor(y_train, dtype=torch.long)
    test_y = torch.tensor(y_test, dtype=torch.long)
    with _deterministic(recipe.seed, recipe.threads):
        config = ViTConfig(  # type: ignore[call-arg]  # num_labels: a PretrainedConfig keyword, untyped here
            image_size=8,
            patch_size=recipe.patch_size,
            num_channels=1,
            hidden_size=recipe.hidden_size,
            num_hidden_layers=recipe.n_layer,
            num_attention_heads=recipe.n_head,
            intermediate_size=recipe.intermediate_size,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
            num_labels=10,
            id2label={i: str(i) for i in range(10)},
            label2id={str(i): i for i in range(10)},
        )
        model = ViTForImageClassification(config)
        model.config._attn_implementation = "eager"
        optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        generator = torch.Generator().manual_seed(recipe.seed)
        n = len(train_y)
        steps_per_epoch = math.ceil(n / recipe.batch_size)
        total = recipe.epochs * steps_per_epoch
        curve: list[dict[str, float]] = []
        train_started = time.perf_counter()
        step = 0
        for epoch in range(recipe.epochs):
            model.train()
            order = torch.randperm(n, generator=generator)
            losses = []
            for start in range(0, n, recipe.batch_size):
                idx = order[start : start + recipe.batch_size]
                for group in optimizer.param_groups:
                    group["lr"] = _cosine_lr(step, total, steps_per_epoch, recipe.lr)
                loss = model(pixel_values=train_px[idx], labels=train_y[idx]).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(float(loss.detach()))
                step += 1
            model.eval()
            curve.append(
                {
                    "epoch": epoch + 1,
                    "train_loss": float(np.mean(losses)),
                    "test_accuracy": _accuracy(model, test_px, test_y),
                    "seconds": time.perf_counter() - train_started,
                }
            )
            if log is not None:
                log(curve[-1])
        train_seconds = time.perf_counter() - train_started
        model.eval()
        metrics = {
            "train_accuracy": _accuracy(model, train_px, train_y),
            "heldout_accuracy": _accuracy(model, test_px, test_y),
        }
    model.save_pretrained(out)
    (out / PROCESSOR_FILE).write_text(json.dumps({"patch_size": recipe.patch_size}))
    return {
        "data": {"train_images": int(n), "heldout_images": len(test_y), "image_size": 8},
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "training_seconds": train_seconds,
        "total_seconds": time.perf_counter() - started,
        "curve": curve,
        "metrics": metrics,
    }
