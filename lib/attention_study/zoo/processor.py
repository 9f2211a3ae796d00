"""The image processor of ``digits-vit``: sklearn digits images to ViT ``pixel_values``."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

PROCESSOR_FILE = "digits_processor.json"


class DigitsProcessor:
    """Turns sklearn digits images (8×8, values 0..16) into ViT ``pixel_values``.

    ``processor(images=x, return_tensors="pt")`` accepts one ``[8, 8]`` array, a list of them or
    an array ``[B, 8, 8]`` and returns ``{"pixel_values": FloatTensor [B, 1, 8, 8]}`` with
    ``pixel = (value / 16 - 0.5) / 0.5`` (so 0..16 maps to -1..1).

    Attributes:
        image_size: side of the image, pixels (8).
        patch_size: side of one ViT patch, pixels.
        num_channels: 1 (grayscale).
        max_value: the top of the input scale (16).
    """

    image_size: int = 8
    num_channels: int = 1
    max_value: float = 16.0

    def __init__(self, patch_size: int = 2) -> None:
        if isinstance(patch_size, bool) or not isinstance(patch_size, int) or 8 % patch_size:
            raise ValueError(f"patch_size must be one of 1, 2, 4, 8, got {patch_size!r}")
        self.patch_size = patch_size

    @property
    def num_patches(self) -> int:
        """Patches per image (without the [CLS] token)."""
        return (self.image_size // self.patch_size) ** 2

    def __repr__(self) -> str:
        return f"DigitsProcessor(image_size=8, patch_size={self.patch_size})"

    def __call__(self, images: Any, return_tensors: str = "pt") -> dict[str, torch.Tensor]:
        """Normalise ``images`` (``[8, 8]``, list of ``[8, 8]`` or ``[B, 8, 8]``; 0..16)."""
        if return_tensors != "pt":
            raise ValueError(f"only return_tensors='pt' is supported, got {return_tensors!r}")
        if isinstance(images, list | tuple):
            if not images:
                raise ValueError("images is an empty list; expected 8x8 arrays")
            arrays = [np.asarray(im, dtype=np.float64) for im in images]
            for im in arrays:
                if im.shape != (8, 8):
                    raise ValueError(f"each image must have shape (8, 8), got {im.shape}")
            batch = np.stack(arrays)
        else:
            batch = np.asarray(
                images.detach().cpu() if isinstance(images, torch.Tensor) else images,
                dtype=np.float64,
            )
            if batch.shape == (8, 8):
                batch = batch[None]
            if batch.ndim != 3 or batch.shape[1:] != (8, 8):
                raise ValueError(
                    "images must be one 8x8 array, a list of them or an array [B, 8, 8] "
                    f"(sklearn digits scale 0..16), got shape {batch.shape}"
                )
        if batch.shape[0] == 0:
            raise ValueError("images holds no image; expected at least one 8x8 array")
        if not np.isfinite(batch).all():
            raise ValueError("images contains non-finite values (nan or inf)")
        if batch.min() < 0 or batch.max() > self.max_value:
            raise ValueError(
                f"pixel values must be in [0, {self.max_value:g}] (sklearn digits scale), got "
                f"[{batch.min():g}, {batch.max():g}]"
            )
        pixels = (batch / self.max_value - 0.5) / 0.5
        return {"pixel_values": torch.tensor(pixels, dtype=torch.float32)[:, None]}
