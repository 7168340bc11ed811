"""One capacity run: bfloat16 on the CPU, the learning-rate schedule, the device choice."""

import pytest
import torch

from grammarlab.capacity.config import load_config
from grammarlab.capacity.data import make_data
from grammarlab.capacity.grid import expand
from grammarlab.capacity.report import write_report
from grammarlab.capacity.train import lr_at, train_run
from grammarlab.train.models import load_model


def test_bfloat16_runs_on_the_cpu(config_file, tmp_path):
    cfg = load_config(config_file('["bfloat16"]'))
    run = [r for r in expand(cfg) if r.n_train == 4][0]
    data = make_data(cfg.alphabet_size, cfg.length, 4, 4, run.seed)
    rec = train_run(cfg, run.model, 4, run.seed, "bfloat16", data)
    assert rec["final"]["mem_bits"] > 0
    assert all(torch.isfinite(torch.tensor(p["mem_bits_signed"])) for p in rec["curve"])
    model, _ = load_model(run.model, ("a", "b"), seed=0, dtype=torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    text, _ = write_report([{"run_id": "x", "settings": {**run.settings(cfg)}, **rec}],
                           tmp_path / "rep", figures=False)  # fmt: skip
    assert "bfloat16" in text


def test_learning_rate_warms_up_linearly_then_stays_flat():
    assert [lr_at(s, 0.01, 4) for s in (1, 2, 3, 4, 5, 1000)] == pytest.approx(
        [0.0025, 0.005, 0.0075, 0.01, 0.01, 0.01]
    )
    assert lr_at(1, 0.01, 0) == 0.01  # no warm-up: the full rate from the first update
