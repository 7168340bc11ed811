"""A 2-size x 2-dataset-size grid end to end (seconds), resuming, bfloat16, bad configs."""

import dataclasses
import json

import pytest
import torch

from grammarlab.capacity.config import load_config
from grammarlab.capacity.grid import collect, expand, run_grid
from grammarlab.capacity.report import write_report
from grammarlab.cli import main

CONFIG = """\
name = "e2e"
alphabet_size = 4
length = 6
dataset_sizes = [4, 24]
seeds = [0]
dtypes = {dtypes}
n_test = 16

[train]
batch_size = 8
max_steps = 200
lr = 1e-2
warmup_steps = 10
eval_every = 50

[saturation]
window = 2
rel_tol = 0.02
min_steps = 100

[[models]]
preset = "pythia-tiny"
hidden_size = 8
num_layers = 1
num_heads = 2
intermediate_size = 16

[[models]]
preset = "llama-tiny"
hidden_size = 16
num_layers = 1
num_heads = 2
intermediate_size = 32
"""


@pytest.fixture
def config_file(tmp_path):
    def make(dtypes='["float32"]', text=CONFIG):
        p = tmp_path / "cap.toml"
        p.write_text(text.format(dtypes=dtypes))
        return p

    return make


def test_grid_end_to_end_and_resume(config_file, tmp_path, capsys):
    path = config_file()
    out = tmp_path / "grid"
    assert main(["capacity", str(path), "--out", str(out), "--quiet"]) == 0
    recs = collect(out)
    assert len(recs) == 4
    for r in recs:
        f = r["final"]
        assert r["dataset_bits"] == pytest.approx(r["settings"]["n_train"] * 12.0, abs=1e-9)
        assert 0.0 <= f["mem_bits"] <= r["dataset_bits"] + 1e-6
        assert f["mem_bits"] >= f["mem_bits_signed"]
        assert r["steps"] <= 200 and r["steps"] % 50 == 0
        assert r["saturated"] == (r["saturated_at_step"] is not None)
        assert 0.0 <= f["auc"] <= 1.0
    # 4 strings of 12 bits are learnt within 200 steps: most of their 48 bits memorized
    small = [r for r in recs if r["settings"]["n_train"] == 4]
    assert all(r["final"]["mem_bits"] > 24 for r in small)
    for name in (
        "runs.csv",
        "capacity.csv",
        "fit.csv",
        "summary.txt",
        "capacity_memorized.png",
        "capacity_vs_params.pdf",
        "capacity_mia.csv",
        "capacity_test_loss.png",
    ):
        assert (out / name).is_file(), name
    printed = capsys.readouterr().out
    assert "bits/param float32 all:" in printed

    # relaunch: every run is skipped (files untouched), tables redrawn
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}
    seen = []
    run_grid(load_config(path), out, progress=lambda rid, rec: seen.append(rec))
    assert seen == [None] * 4
    assert stamps == {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}

    # a killed grid: a lost result file is the only run redone
    lost = sorted((out / "runs").iterdir())[0]
    lost.unlink()
    seen.clear()
    run_grid(load_config(path), out, progress=lambda rid, rec: seen.append(rid if rec else None))
    assert seen.count(None) == 3 and lost.stem in seen


def test_other_settings_in_the_same_folder_is_an_error(config_file, tmp_path, capsys):
    out = tmp_path / "grid"
    cfg = load_config(config_file())
    run = expand(cfg)[0]
    (out / "runs").mkdir(parents=True)
    (out / "runs" / f"{run.run_id}.json").write_text(json.dumps({"settings": {"seed": 99}}))
    assert main(["capacity", str(config_file()), "--out", str(out), "--quiet"]) == 2
    assert "other settings" in capsys.readouterr().err


def test_bfloat16_runs_on_the_cpu(config_file, tmp_path):
    cfg = load_config(config_file('["bfloat16"]'))
    from grammarlab.capacity.data import make_data
    from grammarlab.capacity.train import train_run
    from grammarlab.train.models import load_model

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


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("alphabet_size = 4", "alphabet_size = 70000"),
            "alphabet_size must be an integer 2..65536",
        ),
        (("max_steps = 200", "max_step = 300"), "unknown config key 'train.max_step'"),
        (('preset = "llama-tiny"', 'preset = "pythia-1b"'), "only applies to tiny presets"),
        (("dtypes = {dtypes}", 'dtypes = ["float16"]'), "dtypes[] must be one of"),
    ],
)
def test_bad_config_is_one_error_line(config_file, tmp_path, capsys, edit, message):
    path = config_file(text=CONFIG.replace(*edit))
    assert main(["capacity", str(path), "--out", str(tmp_path / "g"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert str(path) in err


def test_grid_order_is_seed_then_dtype_then_model_largest_data_first(config_file):
    cfg = load_config(config_file(dtypes='["float32", "bfloat16"]'))
    cfg = dataclasses.replace(cfg, seeds=(0, 1))
    runs = expand(cfg)
    assert len(runs) == 2 * 2 * 2 * 2
    # a grid stopped after its first half has both dtypes and both model sizes of seed 0
    first = runs[:8]
    assert {r.seed for r in first} == {0}
    assert {r.dtype for r in first} == {"float32", "bfloat16"}
    assert {r.model.preset for r in first[:4]} == {"pythia-tiny", "llama-tiny"}
    assert [r.n_train for r in first[:2]] == [24, 4]
