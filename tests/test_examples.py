"""The example configs in examples/ stay valid: each sweep expands, the run config resolves."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grammarlab.sweep.spec import load_sweep
from grammarlab.train.config import load_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name, n_runs", [("entropy_sweep.toml", 30), ("sequential.toml", 3)])
def test_example_sweeps_expand(name, n_runs, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # grammar paths in the examples are relative to the repository
    sweep = load_sweep(ROOT / "examples" / name, out=tmp_path / "sweep")
    assert len(sweep.runs) == n_runs
    assert len({r.run_id for r in sweep.runs}) == n_runs  # every point its own folder
    if name == "sequential.toml":
        assert all(r.config.sequential for r in sweep.runs)


def test_example_train_config_loads():
    cfg = load_config(ROOT / "examples" / "train.toml")
    assert (
        cfg.n_train == 8
        and cfg.model.preset == "pythia-tiny"
        and os.path.exists(ROOT / cfg.grammar)
    )
