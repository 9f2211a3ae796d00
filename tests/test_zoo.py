"""The offline zoo: deterministic training, the recipe-keyed cache, checksums, learned structure."""

import dataclasses
import hashlib
import json
import math
import shutil
import warnings

import numpy as np
import pytest
import torch

from attention_study import zoo
from attention_study.corpus import generate_passages
from attention_study.heads import induction_scores, previous_token_scores, repeated_random_tokens

SHORT_GPT = zoo.CausalRecipe(
    train_passages=40, heldout_passages=8, vocab_size=300, n_layer=1, n_head=2, n_embd=32,
    n_positions=64, seq_len=32, batch_size=4, steps=3, eval_every=3, induction_period=8,
    score_sequences=2,
)
SHORT_VIT = zoo.VisionRecipe(
    epochs=1, hidden_size=16, n_layer=1, n_head=2, intermediate_size=32, batch_size=256
)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _folder(name, recipe, root):
    return root / f"{name}-{zoo.cache_key(name, recipe)}"


def test_training_twice_gives_bit_identical_weights_and_tokenizer(tmp_path):
    for root in (tmp_path / "a", tmp_path / "b"):
        zoo.load_trained("tiny-gpt2", recipe=SHORT_GPT, cache=root)
    a, b = (_folder("tiny-gpt2", SHORT_GPT, tmp_path / r) for r in "ab")
    assert (a / zoo.WEIGHTS_FILE).read_bytes() == (b / zoo.WEIGHTS_FILE).read_bytes()
    assert (a / "tokenizer.json").read_bytes() == (b / "tokenizer.json").read_bytes()


def test_vision_training_twice_gives_bit_identical_weights(tmp_path):
    for root in (tmp_path / "a", tmp_path / "b"):
        zoo.load_trained("digits-vit", recipe=SHORT_VIT, cache=root)
    a, b = (_folder("digits-vit", SHORT_VIT, tmp_path / r) / zoo.WEIGHTS_FILE for r in "ab")
    assert a.read_bytes() == b.read_bytes()


def test_cached_model_is_reused_and_matches_its_recorded_checksum(tmp_path):
    model, tokenizer = zoo.load_trained("tiny-gpt2", recipe=SHORT_GPT, cache=tmp_path)
    folder = _folder("tiny-gpt2", SHORT_GPT, tmp_path)
    record = json.loads((folder / zoo.PROVENANCE_FILE).read_text())
    assert record["weights_sha256"] == _sha(folder / zoo.WEIGHTS_FILE)
    stamp = (folder / zoo.WEIGHTS_FILE).stat().st_mtime_ns
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = zoo.provenance("tiny-gpt2", recipe=SHORT_GPT, cache=tmp_path)
    assert again == record
    assert (folder / zoo.WEIGHTS_FILE).stat().st_mtime_ns == stamp
    assert not model.training
    assert model.config._attn_implementation == "eager"
    enc = tokenizer("Ada reads a book.", return_offsets_mapping=True)
    assert len(enc["offset_mapping"]) == len(enc["input_ids"])


def test_checksum_mismatch_warns_and_retrains(tmp_path):
    zoo.load_trained("tiny-gpt2", recipe=SHORT_GPT, cache=tmp_path)
    weights = _folder("tiny-gpt2", SHORT_GPT, tmp_path) / zoo.WEIGHTS_FILE
    good = weights.read_bytes()
    corrupted = bytearray(good)
    corrupted[-1] ^= 0xFF
    weights.write_bytes(bytes(corrupted))
    with pytest.warns(UserWarning, match="checksum mismatch"):
        zoo.load_trained("tiny-gpt2", recipe=SHORT_GPT, cache=tmp_path)
    assert weights.read_bytes() == good


def test_provenance_records_recipe_data_time_metrics_and_versions(tmp_path):
    record = zoo.provenance("digits-vit", recipe=SHORT_VIT, cache=tmp_path)
    assert record["recipe"]["epochs"] == 1 and record["seed"] == 0
    assert record["data"]["train_images"] + record["data"]["heldout_images"] == 1797
    assert record["training_seconds"] > 0
    assert len(record["curve"]) == 1
    assert 0.0 <= record["metrics"]["heldout_accuracy"] <= 1.0
    assert record["versions"]["torch"] == torch.__version__
    assert record["trained_on"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert record["trained_on"]["threads"] == SHORT_VIT.threads
    assert len(record["weights_sha256"]) == 64


def _variants(value):
    """Other values of a recipe field, most natural first."""
    if isinstance(value, str):
        return [{"sinusoidal": "learned", "learned": "sinusoidal"}[value]]
    if dataclasses.is_dataclass(value):
        return [dataclasses.replace(value, expression_rate=value.expression_rate / 2)]
    if isinstance(value, float):
        return [value / 2]
    return [value * 2, value + 1, value - 1, value // 2]


def _changed_recipe(recipe, name):
    """``recipe`` with field ``name`` set to the first other value the recipe accepts."""
    value = getattr(recipe, name)
    for candidate in (c for c in _variants(value) if c != value):
        try:
            return dataclasses.replace(recipe, **{name: candidate})
        except ValueError:
            continue
    raise AssertionError(f"no valid other value for {name}")


def test_cache_key_depends_on_every_setting_and_cache_root_on_env(tmp_path, monkeypatch):
    key = zoo.cache_key("tiny-gpt2", SHORT_GPT)
    assert len(key) == 16
    assert key == zoo.cache_key("tiny-gpt2", SHORT_GPT)
    keys = {key}
    for f in dataclasses.fields(SHORT_GPT):
        keys.add(zoo.cache_key("tiny-gpt2", _changed_recipe(SHORT_GPT, f.name)))
    assert len(keys) == len(dataclasses.fields(SHORT_GPT)) + 1, "a setting did not change the key"
    monkeypatch.setenv("STUDY_CACHE", str(tmp_path))
    assert zoo.cache_dir() == tmp_path
    monkeypatch.delenv("STUDY_CACHE")
    assert zoo.cache_dir().name == "attention-study"


def test_unknown_name_and_wrong_recipe_are_rejected():
    with pytest.raises(ValueError, match="tiny-gpt2, digits-vit"):
        zoo.load_trained("gpt5")
    with pytest.raises(TypeError, match="CausalRecipe"):
        zoo.load_trained("tiny-gpt2", recipe=SHORT_VIT)
    with pytest.raises(ValueError, match="n_embd"):
        zoo.CausalRecipe(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="n_inner"):
        zoo.CausalRecipe(n_inner=0)
    for bad in (0.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="qk_init_std"):
            zoo.CausalRecipe(qk_init_std=bad)
    with pytest.raises(ValueError, match="patch_size"):
        zoo.VisionRecipe(patch_size=3)


def test_processor_accepts_one_image_a_list_or_a_batch():
    proc = zoo.DigitsProcessor(patch_size=2)
    image = np.arange(64, dtype=float).reshape(8, 8) % 17
    one = proc(images=image, return_tensors="pt")["pixel_values"]
    assert one.shape == (1, 1, 8, 8) and one.dtype == torch.float32
    assert torch.equal(proc(images=[image, image])["pixel_values"][1], one[0])
    assert proc(images=np.stack([image] * 3))["pixel_values"].shape == (3, 1, 8, 8)
    assert float(one.min()) == -1.0 and float(one.max()) == 1.0
    assert proc.image_size == 8 and proc.patch_size == 2 and proc.num_patches == 16


def test_processor_rejects_wrong_size_and_range():
    proc = zoo.DigitsProcessor()
    with pytest.raises(ValueError, match="8x8"):
        proc(images=np.zeros((28, 28)))
    with pytest.raises(ValueError, match=r"\(8, 8\)"):
        proc(images=[np.zeros((8, 8)), np.zeros((4, 4))])
    with pytest.raises(ValueError, match=r"\[0, 16\]"):
        proc(images=np.full((8, 8), 255.0))
    with pytest.raises(ValueError, match="patch_size"):
        zoo.DigitsProcessor(patch_size=3)


# ---- the shipped weights


def test_book_models_load_from_the_shipped_weights_without_training(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDY_CACHE", str(tmp_path / "empty-cache"))
    for name in zoo.TRAINED_NAMES:
        assert zoo.shipped_seeds(name) == zoo.SHIPPED_SEEDS
        for seed in zoo.SHIPPED_SEEDS:
            record = zoo.provenance(name, seed)
            assert record["seed"] == seed and zoo.is_book_recipe(name, zoo._seeded_recipe(name, seed, None))
    zoo.load_trained("tiny-gpt2", 4)
    assert not (tmp_path / "empty-cache").exists()


def test_every_shipped_seed_records_the_machine_that_trained_it():
    for name in zoo.TRAINED_NAMES:
        for seed in zoo.SHIPPED_SEEDS:
            machine = zoo.provenance(name, seed)["trained_on"]
            assert machine["cpu"] and machine["cpu_capability"] and machine["threads"] >= 1


def test_damaged_shipped_weights_are_an_error_naming_the_file_never_a_retrain(tmp_path, monkeypatch):
    copy = tmp_path / "zoo"
    shutil.copytree(zoo.SHIPPED_ROOT, copy)
    monkeypatch.setattr(zoo.store, "SHIPPED_ROOT", copy)  # where the shipped weights are looked up
    monkeypatch.setenv("STUDY_CACHE", str(tmp_path / "cache"))
    weights = copy / "digits-vit" / "seed-1" / zoo.WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(zoo.ShippedWeightsError, match=r"digits-vit seed 1 .*model\.safetensors"):
        zoo.load_trained("digits-vit", 1)
    weights.unlink()
    with pytest.raises(zoo.ShippedWeightsError, match="missing"):
        zoo.provenance("digits-vit", 1)
    assert not (tmp_path / "cache").exists()


def test_seed_must_be_a_non_negative_int_that_agrees_with_the_recipe():
    with pytest.raises(ValueError, match="non-negative int"):
        zoo.load_trained("tiny-gpt2", -1)
    with pytest.raises(ValueError, match="disagrees"):
        zoo.load_trained("tiny-gpt2", 2, recipe=SHORT_GPT)


def test_bars_are_checked_against_the_recipe_thresholds():
    good = {"name": "digits-vit", "metrics": {"heldout_accuracy": 0.95}}
    bad = {"name": "digits-vit", "metrics": {"heldout_accuracy": 0.85}}
    assert zoo.bar_results(good) == {"heldout_accuracy": (0.95, True)}
    assert zoo.bar_results(bad) == {"heldout_accuracy": (0.85, False)}
    gpt = {"name": "tiny-gpt2", "metrics": {"max_previous_token": 0.6, "max_induction": 0.2,
                                            "heldout_perplexity": 9.0, "unigram_perplexity": 100.0}}
    assert {k: ok for k, (_, ok) in zoo.bar_results(gpt).items()} == {
        "max_previous_token": True, "max_induction": False, "perplexity_ratio": True}


# ---- the book's models, every shipped seed (independent probes, not the recorded numbers)

SEEDS = zoo.SHIPPED_SEEDS


@pytest.mark.parametrize("seed", SEEDS)
def test_causal_model_perplexity_is_far_below_the_unigram_baseline(seed):
    metrics = zoo.provenance("tiny-gpt2", seed)["metrics"]
    assert metrics["heldout_perplexity"] < 0.1 * metrics["unigram_perplexity"]


@pytest.mark.parametrize("seed", SEEDS)
def test_causal_model_has_a_previous_token_head(seed):
    model, tokenizer = zoo.load_trained("tiny-gpt2", seed)
    recipe = zoo.default_recipe("tiny-gpt2")
    text = generate_passages(recipe.train_passages + recipe.heldout_passages + 3, seed, recipe.corpus)[-1]
    ids = tokenizer(text, return_tensors="pt")["input_ids"][:, : recipe.seq_len]
    with torch.no_grad():
        att = torch.stack(model(input_ids=ids, output_attentions=True).attentions)[:, 0]
    assert float(previous_token_scores(att).max()) >= 0.5


@pytest.mark.parametrize("seed", SEEDS)
def test_causal_model_has_an_induction_head_on_repeated_random_tokens(seed):
    model, tokenizer = zoo.load_trained("tiny-gpt2", seed)
    recipe = zoo.default_recipe("tiny-gpt2")
    seen: set[int] = set()
    for row in tokenizer(generate_passages(200, seed=123))["input_ids"]:
        seen.update(row)
    unseen = [i for i in range(len(tokenizer)) if i not in seen]
    eos = tokenizer.eos_token_id
    period = recipe.induction_period
    scores = []
    for probe in range(4):
        body = repeated_random_tokens(period, len(tokenizer), probe, exclude=[eos, *unseen])
        ids = torch.cat([torch.tensor([eos]), body])[None]
        with torch.no_grad():
            att = torch.stack(model(input_ids=ids, output_attentions=True).attentions)[:, 0]
        scores.append(induction_scores(att, period))
    assert float(torch.stack(scores).mean(0).max()) >= 0.3


@pytest.mark.parametrize("seed", SEEDS)
def test_vision_model_heldout_accuracy_is_at_least_0_9(seed):
    model, processor = zoo.load_trained("digits-vit", seed)
    recipe = zoo._seeded_recipe("digits-vit", seed, None)
    _, x_test, _, y_test = zoo._digits_split(recipe)
    with torch.no_grad():
        pred = model(**processor(images=x_test)).logits.argmax(-1).numpy()
    accuracy = float((pred == y_test).mean())
    assert accuracy >= 0.9
    assert math.isclose(accuracy, zoo.provenance("digits-vit", seed)["metrics"]["heldout_accuracy"])


def test_the_command_line_shows_the_shipped_models_and_their_bars(capsys):
    assert zoo.main(["show", "--models", "digits-vit", "--seeds", "0", "4"]) == 0
    out = capsys.readouterr().out
    assert "digits-vit seed 4: show" in out and "heldout_accuracy" in out and "every bar met" in out


def test_verify_fails_when_a_bar_is_missed(monkeypatch, capsys):
    weak = {"name": "digits-vit", "seed": 0, "training_seconds": 1.0, "weights_sha256": "0" * 64,
            "metrics": {"heldout_accuracy": 0.5}}
    monkeypatch.setattr(zoo.cli, "_train_into", lambda *args, **kwargs: weak)  # what verify calls
    assert zoo.main(["verify", "--models", "digits-vit"]) == 1
    out = capsys.readouterr().out
    assert "bars missed: digits-vit seed 0: heldout_accuracy" in out
    assert "different bytes from the shipped weights" in out


def test_cache_key_depends_on_the_training_code(monkeypatch, tmp_path):
    key = zoo.cache_key("tiny-gpt2", SHORT_GPT)
    edited = tmp_path / "causal.py"
    edited.write_bytes(zoo.cache.TRAINING_CODE[5].read_bytes() + b"\n# an edit\n")
    code = list(zoo.cache.TRAINING_CODE)
    code[5] = edited
    monkeypatch.setattr(zoo.cache, "TRAINING_CODE", tuple(code))
    assert zoo.cache_key("tiny-gpt2", SHORT_GPT) != key
