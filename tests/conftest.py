"""Shared fixtures: a small context-free grammar file and a tiny-model run config."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from grammarlab.train.config import TrainConfig
from grammarlab.train.models import ModelSpec

torch.set_num_threads(1)  # the machine is shared; also makes CPU float results thread-stable

# A hierarchical-like grammar (not regular: S -> A B): 18 distinct strings of length 3-6.
GRAMMAR = """\
# test grammar: two levels, terminals 1-7
S -> A B [0.5] | B A [0.5]
A -> '1' '2' [0.5] | '2' '1' C [0.5]
B -> '3' C [0.5] | '4' '4' [0.5]
C -> '5' [0.5] | '6' '7' [0.5]
"""


@pytest.fixture
def grammar_file(tmp_path):
    path = tmp_path / "h.cfg"
    path.write_text(GRAMMAR)
    return path


@pytest.fixture
def tiny_cfg(grammar_file):
    """A factory: a fast run config (pythia-tiny, hidden 32, 1 layer, 6 strings, 3 epochs)."""

    def make(**kw) -> TrainConfig:
        base = TrainConfig(
            grammar=str(grammar_file),
            model=ModelSpec("pythia-tiny", hidden_size=32, num_layers=1),
            n_train=6, n_test=6, n_random=4, epochs=3, extraction_prefix=2, n_generate=8,
        )  # fmt: skip
        return dataclasses.replace(base, **kw)

    return make
