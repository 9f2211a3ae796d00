"""What the running environment holds and does: pinned versions against installed ones, and a
count of model loads and whole-model forward passes (the appendices measure both).

Layer: apart from the model → tracing → metrics → views stack; it imports only transformers' base
class for the count.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any
from unittest import mock

import torch
from packaging.version import Version

_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)")


def canonical(name: str) -> str:
    """A distribution name in its normalised form (PEP 503): ``Jupyter_Book`` -> ``jupyter-book``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> dict[str, str]:
    """``{canonical name: version}`` of every ``name==version`` line of a requirements file.

    Raises ``FileNotFoundError`` naming ``path`` when it does not exist."""
    if not path.is_file():
        raise FileNotFoundError(f"no requirements file at {path}")
    pins = {}
    for line in path.read_text(encoding="utf8").splitlines():
        match = _PIN.match(line.strip())
        if match:
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def installed_versions() -> dict[str, str]:
    """``{canonical name: version}`` of every distribution installed in this interpreter."""
    return {canonical(d.metadata["Name"]): d.version for d in metadata.distributions()}


def same_release(want: str, have: str | None) -> bool:
    """Installed ``have`` is the pinned ``want``, ignoring a local build label (``2.13.0+cpu``)."""
    return have is not None and Version(have).public == Version(want).public


def pin_mismatches(pins: dict[str, str], installed: dict[str, str]) -> dict[str, tuple[str, str | None]]:
    """``{name: (pinned, installed or None)}`` for every pin the installed set does not satisfy."""
    return {
        name: (want, installed.get(name)) for name, want in pins.items() if not same_release(want, installed.get(name))
    }


@contextmanager
def counting_model_work() -> Iterator[dict[str, int]]:
    """Count, inside the block, real model loads (calls of transformers' ``from_pretrained``) and
    forward passes of whole models (top-level ``PreTrainedModel`` modules); yields the live tally
    ``{"loads": n, "forwards": n}``. Both counters are removed on exit, whatever happens."""
    from transformers import PreTrainedModel

    real = PreTrainedModel.from_pretrained.__func__  # type: ignore[attr-defined]
    tally = {"loads": 0, "forwards": 0}

    def counted_load(cls: Any, *args: Any, **kwargs: Any) -> Any:
        tally["loads"] += 1
        return real(cls, *args, **kwargs)

    def counted_forward(module: torch.nn.Module, _args: Any, _output: Any) -> None:
        tally["forwards"] += isinstance(module, PreTrainedModel)

    hook = torch.nn.modules.module.register_module_forward_hook(counted_forward)
    try:
        with mock.patch.object(PreTrainedModel, "from_pretrained", classmethod(counted_load)):
            yield tally
    finally:
        hook.remove()
