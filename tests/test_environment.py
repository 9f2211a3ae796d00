"""The environment module: pins against installed versions, and the count of model work."""

from __future__ import annotations

import pytest
import torch

from attention_study.environment import (
    canonical,
    counting_model_work,
    installed_versions,
    pin_mismatches,
    read_pins,
    same_release,
)


def test_read_pins_takes_exact_pins_only(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text("# a comment\nTorch==2.13.0\njupyter_book==1.0.4  # note\nloose>=1\n-e .\n", encoding="utf8")
    assert read_pins(path) == {"torch": "2.13.0", "jupyter-book": "1.0.4"}


def test_read_pins_names_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no requirements file"):
        read_pins(tmp_path / "missing.txt")


def test_mismatches_ignore_a_local_build_label_only():
    assert same_release("2.13.0", "2.13.0+cpu")
    assert not same_release("2.13.0", "2.13.1")
    pins = {"torch": "2.13.0", "numpy": "2.4.0", "absent": "1.0"}
    installed = {"torch": "2.13.0+cpu", "numpy": "2.4.1"}
    assert pin_mismatches(pins, installed) == {"numpy": ("2.4.0", "2.4.1"), "absent": ("1.0", None)}


def test_installed_versions_sees_this_environment():
    versions = installed_versions()
    assert same_release("2.13.0", versions["torch"]) and canonical("PyYAML") == "pyyaml"


def test_counting_sees_loads_and_whole_model_passes_only(tmp_path):
    from transformers import GPT2Config, GPT2Model

    GPT2Model(GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=16, n_positions=8)).save_pretrained(tmp_path)
    with counting_model_work() as tally:
        model = GPT2Model.from_pretrained(tmp_path)
        with torch.no_grad():
            model(torch.tensor([[1, 2, 3]]))
            model.h[0](torch.zeros(1, 3, 8))  # a block alone is not a whole model
    assert tally == {"loads": 1, "forwards": 1}
    with torch.no_grad():  # the counters are gone after the block
        model(torch.tensor([[1, 2]]))
    assert tally == {"loads": 1, "forwards": 1}
