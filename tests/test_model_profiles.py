"""The profile helpers chapters use to stay profile-agnostic: seeds per role, offline-only claims,
digits drawn at any ViT's input size through its own processor, and what `make hub` fetches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from attention_study import models
from attention_study.models import LoadedModel


def test_every_hub_role_has_one_seed_and_the_offline_trained_roles_have_five(monkeypatch):
    for role in models.ROLES:
        assert models.role_seeds(role, profile="hub") == (0,)
        assert not models.trained_here(role, profile="hub")
    assert len(models.role_seeds("causal", profile="offline")) == 5
    assert models.trained_here("vision", profile="offline")
    assert not models.trained_here("bidirectional", profile="offline")
    monkeypatch.setenv(models.PROFILE_ENV, "hub")
    assert models.role_seeds("vision") == (0,)


def test_offline_only_is_true_offline_and_prints_the_skipped_claim_elsewhere(monkeypatch, capsys):
    monkeypatch.setenv(models.PROFILE_ENV, "offline")
    assert models.offline_only("a claim") is True
    assert capsys.readouterr().out == ""
    monkeypatch.setenv(models.PROFILE_ENV, "hub")
    assert models.offline_only("the margin exceeds 0.1") is False
    out = capsys.readouterr().out
    assert "skipped in the hub profile" in out and "the margin exceeds 0.1" in out


def _vit_like(image_size: int, rescale: float, channels: int) -> LoadedModel:
    """The shipped digits-vit's weights behind a Hugging Face ViTImageProcessor of another size."""
    from transformers import ViTImageProcessor

    vit = models.load("digits-vit")
    config = type("Config", (), {"image_size": image_size, "num_channels": channels, "patch_size": 2})()
    model = type("Model", (), {"config": config})()
    processor = ViTImageProcessor(size={"height": image_size, "width": image_size}, resample=0,
                                  rescale_factor=rescale, image_mean=[0.5] * channels,
                                  image_std=[0.5] * channels)
    return LoadedModel("vit-like", model, None, processor, vit.family, vit.role, "test")


def test_digits_keep_their_pixels_for_digits_vit_and_become_blocks_on_a_larger_grid():
    digits = load_digits().images[:3]
    vit = models.load("digits-vit")
    assert np.array_equal(models.resize_images(vit, digits), digits)
    big = models.resize_images(_vit_like(24, 1 / 255, 3), digits)
    assert big.shape == (3, 24, 24)
    assert np.array_equal(big, np.repeat(np.repeat(digits, 3, axis=1), 3, axis=2))


def test_pixel_values_through_a_hub_processor_equal_the_zoo_processor_at_the_same_scale():
    digits = load_digits().images[:4]
    vit = models.load("digits-vit")
    like = _vit_like(8, 1 / 16, 1)
    ours, theirs = models.pixel_values(vit, digits), models.pixel_values(like, digits)
    assert ours.shape == theirs.shape == (4, 1, 8, 8)
    assert torch.equal(ours, theirs)
    one = models.processor_images(like, digits[0])
    assert isinstance(one, np.ndarray) and one.shape == (8, 8, 1) and one.dtype == np.uint8


def test_rgb_processor_gets_uint8_images_of_its_size_with_max_value_at_255():
    like = _vit_like(16, 1 / 255, 3)
    batch = models.processor_images(like, np.full((2, 8, 8), 16.0))
    assert len(batch) == 2 and batch[0].shape == (16, 16, 3) and int(batch[0].max()) == 255


@pytest.mark.parametrize("bad, message", [
    (np.zeros(8), "shape"),
    (np.full((8, 8), 17.0), r"\[0, 16\]"),
    (np.full((8, 8), np.nan), "finite"),
])
def test_bad_images_are_rejected_naming_the_problem(bad, message):
    with pytest.raises(ValueError, match=message):
        models.pixel_values(models.load("digits-vit"), bad)


def test_resizing_needs_a_vision_model():
    with pytest.raises(ValueError, match="vision model"):
        models.resize_images(models.load("minilm"), np.zeros((8, 8)))


def test_fetching_names_the_valid_profiles_and_the_offline_profile_needs_nothing():
    with pytest.raises(ValueError, match="offline, hub"):
        models.fetch_profile_models("cloud")
    assert models.fetch_profile_models("offline") == {}


def test_full_size_random_rejects_an_unknown_role():
    with pytest.raises(ValueError, match="bidirectional, causal, vision"):
        models.full_size_random("audio")
