"""Run-folder mechanics: metrics lines, rewind, atomic checkpoint swap, config conflicts."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from grammarlab.errors import ConfigError
from grammarlab.runs import folder as runs
from grammarlab.train.config import TrainConfig, dumps_config


def _model_opt():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1.0 - i / 10)
    return model, opt, sched


def test_metrics_append_null_for_non_finite_and_torn_line_dropped(tmp_path):
    runs.append_metrics(tmp_path, {"epoch": 0, "train_loss": 1.5})
    runs.append_metrics(tmp_path, {"epoch": 1, "train_loss": float("nan")})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 2, "trai')  # a kill in the middle of a line
    assert runs.read_metrics(tmp_path) == [
        {"epoch": 0, "train_loss": 1.5},
        {"epoch": 1, "train_loss": None},
    ]


def test_rewind_drops_lines_and_files_from_an_epoch_on(tmp_path):
    for e in range(4):
        runs.append_metrics(tmp_path, {"epoch": e})
        for folder, suffix in (("surprisals", ".npz"), ("generations", ".txt")):
            (tmp_path / folder).mkdir(exist_ok=True)
            (tmp_path / folder / runs.epoch_name(e, suffix)).write_text("x")
    runs.rewind(tmp_path, 2)
    assert [r["epoch"] for r in runs.read_metrics(tmp_path)] == [0, 1]
    assert sorted(p.name for p in (tmp_path / "surprisals").iterdir()) == [
        "epoch_0000.npz",
        "epoch_0001.npz",
    ]
    assert len(list((tmp_path / "generations").iterdir())) == 2


def test_checkpoint_round_trip_and_replacement(tmp_path):
    model, opt, sched = _model_opt()
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    sched.step()
    runs.save_checkpoint(tmp_path, 1, model, opt, sched)
    with torch.no_grad():
        model.weight.add_(1.0)
    runs.save_checkpoint(tmp_path, 2, model, opt, sched)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]  # latest only
    m2, o2, s2 = _model_opt()
    assert runs.load_checkpoint(tmp_path, m2, o2, s2) == 2
    assert torch.equal(m2.weight, model.weight) and s2.last_epoch == 1
    assert o2.state_dict()["state"][0]["step"] == 1


def test_kill_between_renames_falls_back_to_the_old_checkpoint(tmp_path):
    model, opt, sched = _model_opt()
    runs.save_checkpoint(tmp_path, 5, model, opt, sched)
    shutil.move(tmp_path / "checkpoint", tmp_path / "checkpoint.old")  # the state mid-swap
    assert runs.checkpoint_epoch(tmp_path) == 5
    runs.save_checkpoint(tmp_path, 6, model, opt, sched)
    assert runs.checkpoint_epoch(tmp_path) == 6 and not (tmp_path / "checkpoint.old").exists()


def test_no_checkpoint_is_an_error(tmp_path):
    assert runs.checkpoint_epoch(tmp_path) is None
    with pytest.raises(Exception, match="no checkpoint"):
        runs.load_checkpoint(tmp_path, torch.nn.Linear(1, 1))


def test_check_same_config_names_differing_keys(tmp_path):
    cfg = TrainConfig(grammar="g.cfg", n_train=8)
    (tmp_path / "config.toml").write_text(dumps_config(cfg))
    runs.check_same_config(tmp_path, cfg)  # same: fine
    with pytest.raises(ConfigError) as e:
        runs.check_same_config(tmp_path, TrainConfig(grammar="g.cfg", n_train=64, seed=1))
    msg = str(e.value)
    assert "n_train: 8 (saved) vs 64 (now)" in msg and "seed" in msg and "--out" in msg


def test_status_is_json_with_state_epoch_message(tmp_path):
    runs.write_status(tmp_path, "running", 3, "hi")
    assert json.loads((tmp_path / "status.json").read_text()) == {
        "state": "running",
        "epoch": 3,
        "message": "hi",
    }
