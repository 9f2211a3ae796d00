"""Shared fixtures: tiny randomly initialised models of each family, saved to local folders.

Nothing here touches the network: tokenizers are trained on a few sentences or copied from the
MiniLM package, and weights are random with a fixed seed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

# Tests never download: hub look-ups must fail fast instead of waiting for a network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pathlib import Path

import pytest
import torch

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Pulling rabbits out of hats is what magicians do.",
    "Attention weights are probabilities over keys.",
]


def _byte_level_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(SENTENCES * 5, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>"
    )


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    tokenizer = _byte_level_tokenizer()
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=2, n_head=4,
        bos_token_id=0, eos_token_id=0,
    )
    folder = tmp_path_factory.mktemp("gpt2")
    GPT2LMHeadModel(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def _wordpiece_tokenizer(folder: Path):
    """An uncased WordPiece tokenizer over the words and characters of SENTENCES."""
    from transformers import BertTokenizerFast

    words = {w.strip(".,").lower() for s in SENTENCES for w in s.split()}
    chars = {c.lower() for s in SENTENCES for c in s if not c.isspace()}
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(chars), *sorted(words - chars)]
    vocab += [f"##{c}" for c in sorted(chars)]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("bert")
    tokenizer = _wordpiece_tokenizer(folder)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=64, max_position_embeddings=40,
    )
    BertModel(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_vit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    config = ViTConfig(
        image_size=16, patch_size=4, num_channels=3, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=64, num_labels=10,
    )
    folder = tmp_path_factory.mktemp("vit")
    ViTForImageClassification(config).save_pretrained(folder, safe_serialization=True)
    ViTImageProcessor(size={"height": 16, "width": 16}).save_pretrained(folder)
    return folder


@contextlib.contextmanager
def removing(handles: Sequence[torch.utils.hooks.RemovableHandle]) -> Iterator[None]:
    """Run the block, then remove the hooks ``handles`` (registered already: a list), whatever happens."""
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
