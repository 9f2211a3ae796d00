"""The offline zoo: deterministic training, the recipe-keyed cache, checksums, learned structure."""

import hashlib
import json
import math
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
    assert len(record["weights_sha256"]) == 64


def test_cache_key_depends_on_every_setting_and_cache_root_on_env(tmp_path, monkeypatch):
    key = zoo.cache_key("tiny-gpt2", SHORT_GPT)
    assert len(key) == 16
    assert key == zoo.cache_key("tiny-gpt2", SHORT_GPT)
    changed = zoo.CausalRecipe(**{**SHORT_GPT.__dict__, "seed": 1})
    assert zoo.cache_key("tiny-gpt2", changed) != key
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


# ---- the book's models (trained by `python -m attention_study.zoo`, else trained here: slow)


@pytest.fixture(scope="module")
def gpt():
    return zoo.load_trained("tiny-gpt2")


@pytest.mark.slow
def test_causal_model_perplexity_is_far_below_the_unigram_baseline():
    metrics = zoo.provenance("tiny-gpt2")["metrics"]
    assert metrics["heldout_perplexity"] < 0.1 * metrics["unigram_perplexity"]


@pytest.mark.slow
def test_causal_model_has_a_previous_token_head(gpt):
    model, tokenizer = gpt
    recipe = zoo.default_recipe("tiny-gpt2")
    text = generate_passages(recipe.train_passages + recipe.heldout_passages + 3, recipe.seed,
                             recipe.corpus)[-1]
    ids = tokenizer(text, return_tensors="pt")["input_ids"][:, : recipe.seq_len]
    with torch.no_grad():
        att = torch.stack(model(input_ids=ids, output_attentions=True).attentions)[:, 0]
    assert float(previous_token_scores(att).max()) >= 0.5


@pytest.mark.slow
def test_causal_model_has_an_induction_head_on_repeated_random_tokens(gpt):
    model, tokenizer = gpt
    recipe = zoo.default_recipe("tiny-gpt2")
    seen: set[int] = set()
    for row in tokenizer(generate_passages(200, seed=123))["input_ids"]:
        seen.update(row)
    unseen = [i for i in range(len(tokenizer)) if i not in seen]
    eos = tokenizer.eos_token_id
    period = recipe.induction_period
    scores = []
    for seed in range(4):
        body = repeated_random_tokens(period, len(tokenizer), seed, exclude=[eos, *unseen])
        ids = torch.cat([torch.tensor([eos]), body])[None]
        with torch.no_grad():
            att = torch.stack(model(input_ids=ids, output_attentions=True).attentions)[:, 0]
        scores.append(induction_scores(att, period))
    assert float(torch.stack(scores).mean(0).max()) >= 0.3


@pytest.mark.slow
def test_vision_model_heldout_accuracy_is_at_least_0_9():
    model, processor = zoo.load_trained("digits-vit")
    recipe = zoo.default_recipe("digits-vit")
    _, x_test, _, y_test = zoo._digits_split(recipe)
    with torch.no_grad():
        pred = model(**processor(images=x_test)).logits.argmax(-1).numpy()
    accuracy = float((pred == y_test).mean())
    assert accuracy >= 0.9
    assert math.isclose(accuracy, zoo.provenance("digits-vit")["metrics"]["heldout_accuracy"])
