"""Experiment trackers (report_to): the real libraries write to local stores, read back here;
no network. One tiny run in a subprocess feeds all four (trackio reads its folder when it is
imported, W&B starts a service process)."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from grammarlab.errors import ConfigError, GrammarlabError
from grammarlab.runs.trackers import TRACKERS, Trackers, check_names, numeric
from grammarlab.sweep.spec import config_hash
from grammarlab.train import config as config_module
from grammarlab.train.config import diff_configs


def test_the_registry_names_the_config_s_trackers():
    assert tuple(TRACKERS) == config_module.TRACKERS


def test_numeric_keeps_finite_numbers_only():
    rec = {"epoch": 3, "train_loss": 1.5, "lr": 0, "flag": True, "why": "x", "bad": math.nan,
           "none": None, "inf": math.inf}  # fmt: skip
    assert numeric(rec, "m/") == {"m/train_loss": 1.5, "m/lr": 0.0, "m/flag": 1.0}


def test_unknown_trackers_are_refused_by_name(tiny_cfg):
    with pytest.raises(ConfigError, match="report_to must be a list of trackers among"):
        tiny_cfg(report_to=("tensorbored",))
    with pytest.raises(GrammarlabError, match="unknown tracker 'x'"):
        check_names(["x"])


def test_report_to_is_not_part_of_a_run_s_identity(tiny_cfg):
    a, b = tiny_cfg(), tiny_cfg(report_to=("tensorboard", "mlflow"))
    assert config_hash(a) == config_hash(b)  # same run id: a sweep finds the same folders
    assert diff_configs(a, b) == []  # a resume with other trackers is the same run


def test_trackers_open_at_the_first_value_and_close_twice():
    opened = []
    t = Trackers(["tensorboard"], lambda: opened.append(1) or (_ for _ in ()).throw(KeyError))
    t.close()  # never opened: nothing to do
    assert opened == []
    with pytest.raises(KeyError):
        t.log(0, {"x": 1.0})
    assert opened == [1]


def test_a_run_reports_to_all_four_trackers(grammar_file, tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    mlflow = pytest.importorskip("mlflow")
    pytest.importorskip("wandb")
    pytest.importorskip("trackio")
    sweep = tmp_path / "mysweep"
    out = sweep / "run-a"
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'grammar = "{grammar_file}"\nn_train = 6\nn_test = 6\nn_random = 4\nepochs = 3\n'
        "extraction_prefix = 2\nn_generate = 0\n"
        'report_to = ["tensorboard", "wandb", "mlflow", "trackio"]\n'
        '[model]\npreset = "pythia-tiny"\nhidden_size = 32\nnum_layers = 1\n'
    )
    env = {
        **os.environ,
        "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path / "wandb"), "WANDB_SILENT": "true",
        "MLFLOW_TRACKING_URI": f"file:{tmp_path / 'mlruns'}", "MLFLOW_ALLOW_FILE_STORE": "true",
        "TRACKIO_DIR": str(tmp_path / "trackio"), "OMP_NUM_THREADS": "1",
    }  # fmt: skip
    (tmp_path / "wandb").mkdir()
    code = "import sys; from grammarlab.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = [sys.executable, "-c", code, "train", str(cfg), "--out", str(out), "--quiet"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    measures = [json.loads(x) for x in (out / "measures.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [0, 1, 2, 3]
    want = {m["epoch"]: m["test_loss"] for m in metrics}
    meas_key = next(k for k, v in measures[-1].items() if k != "epoch" and isinstance(v, float))

    # TensorBoard: event files in the run folder, read back with TensorBoard's own reader
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    got = {e.step: e.value for e in acc.Scalars("test_loss")}
    assert got.keys() == want.keys()
    for k, v in want.items():  # TensorBoard stores float32
        assert got[k] == pytest.approx(v, rel=2**-23)
    assert f"measures/{meas_key}" in acc.Tags()["scalars"]
    assert "config/text_summary" in acc.Tags()["tensors"]

    # MLflow: the local file store, through MLflow's client
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = mlflow.tracking.MlflowClient(tracking_uri=f"file:{tmp_path / 'mlruns'}")
    exp = client.get_experiment_by_name("mysweep")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.run_name == "run-a" and run.info.status == "FINISHED"
    assert run.data.params["epochs"] == "3" and run.data.params["model.hidden_size"] == "32"
    hist = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "test_loss")}
    assert hist == want  # MLflow keeps float64

    # trackio: its SQLite store (one row per logged step, the values as JSON)
    db = sqlite3.connect(tmp_path / "trackio" / "mysweep.db")
    rows = db.execute("select step, metrics from metrics where run_name = 'run-a'").fetchall()
    logged = {s: json.loads(m)["test_loss"] for s, m in rows if "test_loss" in json.loads(m)}
    assert logged == want
    (cfg_row,) = db.execute("select config from configs where run_name = 'run-a'").fetchall()
    assert json.loads(cfg_row[0])["n_train"] == 6

    # W&B offline: one run folder whose records hold each logged value (protobuf keeps the
    # JSON text of every value as it is; W&B 0.31 ships no Python reader of its own)
    (wb,) = (tmp_path / "wandb" / "wandb").glob("offline-run-*/run-*.wandb")
    blob = wb.read_bytes()
    for v in want.values():
        assert json.dumps(v).encode() in blob
    assert b"measures/" + meas_key.encode() in blob and b"pythia-tiny" in blob


def test_a_missing_tracker_library_is_one_line(monkeypatch, tmp_path):
    import builtins

    real = builtins.__import__

    def no_mlflow(name, *a, **kw):
        if name.startswith("mlflow"):
            raise ImportError("No module named 'mlflow'")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_mlflow)
    from grammarlab.runs.trackers import RunInfo, open_trackers

    with pytest.raises(GrammarlabError, match=r"needs the package 'mlflow-skinny'") as e:
        open_trackers(["mlflow"], RunInfo(Path(tmp_path), "r", "p", {}))
    assert "grammarlab[trackers]" in str(e.value)
