"""The autoregressive helpers run on any GPT-2-config model loaded from a local folder."""

import itertools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from attention_study import autoregressive as ar
from attention_study import views
from attention_study.models import load

WORDS = "the a cat dog sat ran on under mat rug and then it was big small".split()


@pytest.fixture(scope="module")
def causal(tmp_path_factory):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    vocab = {"<bos>": 0, "<unk>": 1, **{w: i + 2 for i, w in enumerate(WORDS)}}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<bos>", unk_token="<unk>")
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(vocab), n_positions=64, n_embd=32, n_layer=2, n_head=4)
    folder = tmp_path_factory.mktemp("tiny-random-gpt2")
    GPT2LMHeadModel(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return load(str(folder))


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_causal_mask_leaves_the_upper_triangle_exactly_zero(causal):
    result = ar.forward_ids(causal, ar.encode(causal, "the cat sat on the mat"))
    assert result.attentions.shape == (2, 4, 6, 6)
    assert ar.upper_triangle_max(result.attentions) == 0.0


def test_changing_token_t_leaves_earlier_positions_exactly_unchanged(causal):
    ids = ar.encode(causal, "the cat sat on the mat and then it ran")
    effect = ar.perturbation_effect(causal, ids, position=4, new_id=int(ids[4]) + 1)
    assert effect["hidden"].shape == (3, 10)
    assert effect["hidden"][:, :4].max() == 0.0 and effect["logits"][:4].max() == 0.0
    assert effect["hidden"][1:, 4:].min() > 0 and effect["logits"][4:].min() > 0


def test_jacobian_is_block_lower_triangular(causal):
    blocks = ar.jacobian_blocks(causal, ar.encode(causal, "the cat sat on the mat"))
    assert blocks.shape == (6, 6)
    assert np.triu(blocks, k=1).max() == 0.0
    assert blocks[np.tril_indices(6)].min() > 0.0


def test_greedy_steps_and_their_figure(causal):
    steps = ar.greedy_steps(causal, ar.encode(causal, "the cat sat"), steps=4)
    assert [s.ids.numel() for s in steps] == [3, 4, 5, 6]
    assert all(int(s.ids[-1]) == prev.next_id for prev, s in itertools.pairwise(steps))
    torch.testing.assert_close(steps[0].attention.sum(dim=-1), torch.ones(2, 4))
    fig = views.plot_generation(causal, steps)
    assert fig.axes[0].images[0].get_array().shape == (4, 6)


def test_head_taxonomy_scores_every_head(causal):
    probe = ar.InductionProbe(period=6, n_sequences=2)
    scores = ar.head_taxonomy(causal, ar.encode(causal, "the cat sat on the mat"), [" ".join(WORDS)], probe)
    for key in ("previous", "first", "induction"):
        assert scores[key].shape == (2, 4)
        assert float(scores[key].min()) >= 0 and float(scores[key].max()) <= 1
    assert torch.equal(scores["induction"], scores["probe"].scores)
    assert scores["probe"].attentions.shape == (2, 4, 13, 13)
    assert len(views.plot_head_scores(scores).axes) == 3


def test_token_position_finds_a_word_by_offsets_in_the_encoded_ids(causal):
    text = "the cat sat on the mat"
    ids = ar.encode(causal, text)
    words = text.split()
    for word, occurrence in (("cat", 0), ("the", 1), ("mat", 0)):
        position = ar.token_position(causal, text, word, occurrence)
        index = [i for i, w in enumerate(words) if w == word][occurrence]
        assert causal.tokenizer.convert_ids_to_tokens(int(ids[position])) == word
        assert position == index


def test_bad_input_is_refused(causal):
    with pytest.raises(ValueError, match="empty"):
        ar.encode(causal, "  ")
    with pytest.raises(ValueError, match="at least 2"):
        ar.encode(causal, "cat")
    with pytest.raises(ValueError, match="'rug'"):
        ar.token_position(causal, "the cat sat", "rug")
    with pytest.raises(ValueError, match="empty"):
        ar.token_position(causal, " ", "cat")
    ids = ar.encode(causal, "the cat sat")
    with pytest.raises(IndexError, match="0..2"):
        ar.perturbation_effect(causal, ids, position=3, new_id=2)
    with pytest.raises(ValueError, match="already"):
        ar.perturbation_effect(causal, ids, position=0, new_id=int(ids[0]))
    with pytest.raises(ValueError, match="token ids must be in"):
        ar.forward_ids(causal, torch.tensor([0, 999]))
    with pytest.raises(ValueError, match="causal"):
        ar.forward_ids(load("minilm"), ids)


SMALL_PROBE = ar.InductionProbe(period=6, n_sequences=3, seed=7)


def test_probe_sequences_are_a_start_token_and_two_copies_of_known_ids(causal):
    allowed = ar.known_ids(causal, [" ".join(WORDS)])
    assert allowed == sorted(causal.tokenizer.convert_tokens_to_ids(WORDS))  # no special id
    ids = ar.probe_sequences(causal, allowed, SMALL_PROBE)
    p = SMALL_PROBE.period
    assert ids.shape == (SMALL_PROBE.n_sequences, 1 + 2 * p)
    assert (ids[:, 0] == causal.tokenizer.bos_token_id).all()
    assert torch.equal(ids[:, 1:p + 1], ids[:, p + 1:])
    for row in ids:
        assert len(set(row[1:p + 1].tolist())) == p and set(row[1:].tolist()) <= set(allowed)
    assert not torch.equal(ids[0], ids[1])  # one seed per sequence
    assert torch.equal(ids, ar.probe_sequences(causal, allowed, SMALL_PROBE))  # and deterministic


def test_induction_probe_scores_and_losses_match_a_hand_computation(causal):
    result = ar.induction_probe(causal, [" ".join(WORDS)], SMALL_PROBE)
    p = SMALL_PROBE.period
    ids = result.ids
    with torch.no_grad():
        out = causal.model(input_ids=ids, output_attentions=True)
    attentions = torch.stack(out.attentions, dim=1)  # [sequence, layer, head, query, key]
    queries = torch.arange(p + 1, 2 * p + 1)
    expected = attentions[:, :, :, queries, queries - p + 1].mean(dim=(0, 3)).double()
    torch.testing.assert_close(result.scores, expected, atol=1e-6, rtol=0)
    logp = torch.log_softmax(out.logits.double(), dim=-1)
    second = [-logp[s, t - 1, ids[s, t]] for s in range(len(ids)) for t in range(p + 2, 2 * p + 1)]
    first = [-logp[s, t - 1, ids[s, t]] for s in range(len(ids)) for t in range(2, p + 1)]
    assert result.copying_loss == pytest.approx(float(torch.stack(second).mean()), abs=1e-9)
    assert result.first_copy_loss == pytest.approx(float(torch.stack(first).mean()), abs=1e-9)


def test_induction_probe_sees_an_ablation(causal):
    from attention_study.interventions import ablate_heads

    plain = ar.induction_probe(causal, [" ".join(WORDS)], SMALL_PROBE)
    with ablate_heads(causal, {0: [0, 1, 2, 3]}):
        ablated = ar.induction_probe(causal, [" ".join(WORDS)], SMALL_PROBE)
    assert not torch.equal(plain.scores[1], ablated.scores[1])  # layer 1 reads layer 0's heads
    assert plain.copying_loss != ablated.copying_loss
    torch.testing.assert_close(plain.scores[0], ablated.scores[0])  # layer 0's own weights are untouched


def test_induction_ablation_matches_ablating_by_hand(causal):
    from attention_study.interventions import ablate_heads

    texts = [" ".join(WORDS)]
    taxonomy = ar.head_taxonomy(causal, ar.encode(causal, " ".join(WORDS)), texts, SMALL_PROBE)
    result = ar.induction_ablation(causal, taxonomy, texts, SMALL_PROBE)
    layer, head = result.previous
    assert result.control[0] == layer and result.control[1] != head
    with ablate_heads(causal, {layer: [head]}):
        by_hand = ar.induction_probe(causal, texts, SMALL_PROBE)
    assert result.score_ablated == float(by_hand.scores[result.induction])
    assert result.loss_ablated == by_hand.copying_loss
    assert result.score == float(taxonomy["induction"][result.induction])
    assert result.random_loss == taxonomy["probe"].first_copy_loss


def test_induction_probe_rejects_bad_input(causal):
    with pytest.raises(ValueError, match="period must be an int >= 1"):
        ar.InductionProbe(period=0)
    with pytest.raises(ValueError, match="non-empty list of str"):
        ar.induction_probe(causal, "the cat")
    with pytest.raises(ValueError, match="cannot fill a period of 40"):
        ar.induction_probe(causal, ["the cat sat"])
    with pytest.raises(ValueError, match="accepts at most 64"):
        ar.probe_sequences(causal, range(40), ar.InductionProbe(period=32))
    with pytest.raises(ValueError, match="causal"):
        ar.induction_probe(load("minilm"), ["the cat"])
