"""The committed capacity grids load, and the architecture and GPU grids keep their promise: the
largest dataset holds at least twice the bits that 3.6 bits/param would store in the largest
model (parameters as the runs count them: those a string can use)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from grammarlab.capacity.config import load_config
from grammarlab.capacity.data import uniform_grammar
from grammarlab.capacity.train import used_parameters
from grammarlab.train.models import load_model

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
MORRIS_BITS_PER_PARAM = 3.6


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("capacity_*.toml")), ids=lambda p: p.stem)
def test_capacity_grid_loads(path):
    cfg = load_config(path)
    assert cfg.name == path.stem


@pytest.mark.parametrize("stem", ["capacity_arch", "capacity_gpu"])
def test_largest_dataset_holds_twice_what_3_6_bits_per_param_would_store(stem):
    torch.set_num_threads(1)
    cfg = load_config(EXPERIMENTS / f"{stem}.toml")
    g = uniform_grammar(cfg.alphabet_size, cfg.length)
    params = [
        used_parameters(load_model(m, g.terminals, seed=0)[0], cfg.length + 1) for m in cfg.models
    ]
    largest_data_bits = max(cfg.dataset_sizes) * cfg.string_bits
    assert largest_data_bits >= 2 * MORRIS_BITS_PER_PARAM * max(params)


def test_the_architecture_grid_compares_four_architectures_with_three_seeds():
    cfg = load_config(EXPERIMENTS / "capacity_arch.toml")
    assert [m.preset for m in cfg.models] == ["pythia-tiny", "pythia-tiny-seq", "gpt2-tiny",
                                              "llama-tiny"]  # fmt: skip
    assert len(cfg.seeds) >= 3
