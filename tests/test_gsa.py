"""The p4 group self-attention digit classifiers: layers, invariance, training, shipped weights, bad input."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch

from attention_study import gsa_classifier as gc
from attention_study.groups import GridElement, act_on_grid, act_on_group_signal, point_group
from attention_study.zoo import gsa, store

F64 = torch.float64
TINY = gsa.GroupClassifierRecipe(channels=4, d_model=4, n_heads=1, epochs=1, batch_size=200, warmup_steps=2)


def test_the_lift_is_equivariant_for_the_action_the_group_layer_assumes():
    p4 = point_group("p4")
    torch.manual_seed(0)
    lift = gc.LiftingConvolution(3, dtype=F64)
    image = torch.rand(8, 8, dtype=F64)
    with torch.no_grad():
        for rotation in range(4):
            for shift in ((0, 0), (2, 5)):
                g = GridElement(shift, rotation)
                moved = lift(act_on_grid(p4, g, image[..., None])[None, ..., 0])[0]
                assert torch.allclose(moved, act_on_group_signal(p4, g, lift(image[None])[0]), atol=1e-13)


def test_rot90_of_an_image_is_an_element_of_p4_on_the_torus():
    p4, image = point_group("p4"), torch.rand(8, 8, dtype=F64)
    shifts = {1: (7, 0), 2: (7, 7), 3: (0, 7)}
    for k, shift in shifts.items():
        assert torch.equal(torch.rot90(image, k), act_on_grid(p4, GridElement(shift, k), image[..., None])[..., 0])


def test_batched_group_attention_equals_the_reference_layer_item_by_item():
    torch.manual_seed(0)
    model = gc.GroupAttentionClassifier("paper", channels=4, d_model=4, n_heads=2, encoding_std=1.0, dtype=F64)
    signal = torch.randn(3, 4, 4, 4, 4, dtype=F64)
    with torch.no_grad():
        batched = gc.batched_group_attention(model.attention, signal)
        assert torch.allclose(batched, torch.stack([model.attention(s) for s in signal]), atol=1e-13)
    with pytest.raises(ValueError, match=r"\[B, 4, 4, 4, 4\]"):
        gc.batched_group_attention(model.attention, signal[:, :2])


@pytest.mark.parametrize(("variant", "invariant"), [("proposed", True), ("paper", False), ("baseline", False)])
def test_logits_are_rotation_invariant_exactly_when_the_encoding_is_valid(variant, invariant):
    torch.manual_seed(0)
    model = gc.GroupAttentionClassifier(variant, channels=8, d_model=8, n_heads=1, encoding_std=2.0, dtype=F64)
    model.attention.logit_scale = 5.0  # attention far from uniform (4 channels: every unit dead, logits constant)
    err = gc.rotation_invariance_error(gc.rotated_logits(model, torch.rand(4, 8, 8, dtype=F64)))
    assert (err < 1e-12) if invariant else (err > 1e-4)


def test_training_is_deterministic_and_records_its_bars():
    first, record = gsa.train(TINY)
    second, _ = gsa.train(TINY)
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key]), key
    assert record["data"] == {"train_images": 1347, "test_images": 450}
    assert len(record["curve"]) == TINY.epochs and len(record["metrics"]["accuracy_by_rotation"]) == 4
    assert set(gsa.bar_results(record)) == {"upright accuracy", "invariance error"}
    assert gsa.bar_results(record)["invariance error"][1]  # a valid encoding is invariant after training too


def test_every_variant_ships_every_seed_and_meets_its_bars():
    for variant in gc.STUDIED_VARIANTS:
        assert gsa.shipped_seeds(variant) == gsa.GSA_SEEDS
        for seed in gsa.GSA_SEEDS:
            record = gsa.provenance(variant, seed)
            assert record["recipe"] == {**vars(gsa.GroupClassifierRecipe(variant=variant, seed=seed))}
            assert all(ok for _, ok in gsa.bar_results(record).values()), (variant, seed)


def test_the_shipped_proposed_classifier_is_invariant_on_the_test_digits():
    model = gsa.load_group_classifier("proposed", 1)
    assert next(model.parameters()).dtype == F64 and not model.training
    _, _, images, _ = gsa.digits(gsa.GroupClassifierRecipe())
    assert gc.rotation_invariance_error(gc.rotated_logits(model, images[:64].double())) < 1e-12


def test_damaged_or_missing_shipped_weights_are_an_error_naming_the_file(tmp_path, monkeypatch):
    copy = tmp_path / "zoo"
    shutil.copytree(store.SHIPPED_ROOT, copy)
    monkeypatch.setattr(store, "SHIPPED_ROOT", copy)
    weights = gsa.shipped_dir("paper", 2) / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(store.ShippedWeightsError, match=r"digits-gsa paper seed 2 .*model\.safetensors"):
        gsa.load_group_classifier("paper", 2)
    weights.unlink()
    with pytest.raises(store.ShippedWeightsError, match="missing"):
        gsa.provenance("paper", 2)
    with pytest.raises(store.ShippedWeightsError, match="not shipped"):
        gsa.provenance("paper", 99)


def test_bad_input_is_an_error_naming_the_valid_range():
    with pytest.raises(ValueError, match="unknown variant 'p4'; valid: baseline, paper"):
        gc.GroupAttentionClassifier("p4")
    with pytest.raises(ValueError, match="pool must divide the image side 8"):
        gc.GroupAttentionClassifier("proposed", pool=3)
    with pytest.raises(ValueError, match="n_classes must be >= 2"):
        gc.GroupAttentionClassifier("proposed", n_classes=1)
    with pytest.raises(ValueError, match="channels must be >= 1"):
        gc.LiftingConvolution(0)
    model = gc.GroupAttentionClassifier("proposed", channels=4, d_model=4, n_heads=1)
    with pytest.raises(ValueError, match="built for 8 x 8 images; got 6 x 6"):
        model(torch.zeros(2, 6, 6))
    with pytest.raises(ValueError, match=r"square images \[B, N, N\]"):
        model(torch.zeros(2, 8, 7))
    with pytest.raises(ValueError, match="NaN or infinite"):
        model(torch.full((1, 8, 8), float("nan")))
    with pytest.raises(TypeError, match="torch.Tensor"):
        gc.check_images(np.zeros((1, 8, 8)))
    with pytest.raises(ValueError, match="block size must divide the grid side 8"):
        gc.block_mean(torch.zeros(1, 4, 8, 8, 2), 3)
    with pytest.raises(ValueError, match=r"rotations >= 2"):
        gc.rotation_invariance_error(torch.zeros(1, 2, 10))
    with pytest.raises(ValueError, match="must agree"):
        gc.correct_by_rotation(torch.zeros(4, 3, 10), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="one shape"):
        gc.paired_gap(np.ones(3, bool), np.ones(4, bool))
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        replace(TINY, epochs=0)
    with pytest.raises(ValueError, match=r"lr must be in \(0, 1\)"):
        replace(TINY, lr=2.0)
    with pytest.raises(ValueError, match="divisible by n_heads"):
        replace(TINY, d_model=5, n_heads=2)


def test_accuracy_and_paired_gap_intervals():
    correct = np.array([1, 1, 1, 0] * 25, dtype=bool)
    acc, low, high = gc.accuracy_with_interval(correct)
    assert acc == 0.75 and low < 0.75 < high
    assert gc.paired_gap(correct, correct) == (0.0, 0.0, 0.0)
    gap, low, high = gc.paired_gap(correct, np.ones(100, bool))
    assert gap == -0.25 and low < -0.25 < high < 0
