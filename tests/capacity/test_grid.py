"""A 2-size x 2-dataset-size grid end to end (seconds), resuming, a foreign run file, the order
of the runs."""

import dataclasses
import json

import pytest

from grammarlab.capacity.config import load_config
from grammarlab.capacity.grid import collect, expand, run_grid
from grammarlab.cli import main


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
    record = {
        "run_id": "x",
        "settings": {"seed": 99},
        "n_params": 1,
        "dataset_bits": 1.0,
        "final": {"mem_bits": 0.0, "mem_bits_signed": 0.0, "auc": 0.5},
        "curve": [],
    }
    (out / "runs" / f"{run.run_id(cfg)}.json").write_text(json.dumps(record))
    assert main(["capacity", str(config_file()), "--out", str(out), "--quiet"]) == 2
    assert "other settings" in capsys.readouterr().err


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
