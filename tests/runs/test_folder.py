"""The run folder: metrics lines, rewind, no pickles read, config conflicts, foreign folders, the
lock (the checkpoint format: tests/runs/test_checkpoint.py)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from grammarlab.errors import ConfigError, GrammarlabError
from grammarlab.runs.folder import RunDir, RunLocked, Status, epoch_name
from grammarlab.train.config import TrainConfig


def test_metrics_null_for_non_finite_and_a_torn_last_line_is_reported(tmp_path):
    run = RunDir(tmp_path)
    run.append_metrics({"epoch": 0, "train_loss": 1.5})
    run.append_metrics({"epoch": 1, "train_loss": float("nan")})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 2, "trai')  # a kill in the middle of a line
    with pytest.raises(GrammarlabError) as e:
        run.read_metrics()
    assert f"{tmp_path / 'metrics.jsonl'}:3: error" in str(e.value)
    assert "run the same training command again" in str(e.value)
    with pytest.warns(UserWarning, match=r"metrics.jsonl:3: incomplete last line"):
        got = run.read_metrics(partial_ok=True)
    assert got == [{"epoch": 0, "train_loss": 1.5}, {"epoch": 1, "train_loss": None}]


def test_metrics_broken_middle_line_and_repeated_epochs_are_errors(tmp_path):
    run = RunDir(tmp_path)
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 0}\n{"epo\n{"epoch": 1}\n')
    with pytest.raises(GrammarlabError, match=r":2: error: broken metrics line"):
        run.read_metrics(partial_ok=True)  # only a last line may be torn
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 0}\n{"epoch": 1}\n{"epoch": 0}\n')
    with pytest.raises(GrammarlabError, match=r":3: error: epoch 0 where epoch 2 was expected"):
        run.read_metrics()


def test_a_failed_append_leaves_the_complete_epochs(tmp_path, monkeypatch):
    run = RunDir(tmp_path)
    run.append_metrics({"epoch": 0})

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError):
        run.append_metrics({"epoch": 1, "train_loss": 2.0})
    monkeypatch.undo()
    assert (tmp_path / "metrics.jsonl").read_text() == '{"epoch": 0}\n'


def test_rewind_drops_lines_and_files_from_an_epoch_on(tmp_path):
    run = RunDir(tmp_path)
    for e in range(4):
        run.append_metrics({"epoch": e})
        run.write_generations(e, "x\n")
        run.write_surprisals(e, {"train_bits": torch.zeros(2, 3).numpy()})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 4, "tr')
    with pytest.warns(UserWarning, match="incomplete last line"):
        run.rewind(2)
    assert [r["epoch"] for r in run.read_metrics()] == [0, 1]
    assert run.surprisal_epochs() == [0, 1] and run.generation_epochs() == [0, 1]
    assert sorted(p.name for p in (tmp_path / "surprisals").iterdir()) == [
        epoch_name(0, ".npz"),
        epoch_name(1, ".npz"),
    ]


class _Evil:
    """A pickle that runs a shell command when unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_no_file_of_a_run_folder_is_unpickled(tiny_cfg, tmp_path):
    """Every file that resuming, scoring or analysing a run reads is replaced by a malicious
    pickle in turn: each is refused with a clear error and the command never runs."""
    from grammarlab.analysis.run_analysis import analyze_run
    from grammarlab.runs.launch import run
    from grammarlab.train.restore import load_run_model

    good = tmp_path / "good"
    run(tiny_cfg(epochs=2, n_generate=2), good, quiet=True)
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Evil(marker))
    files = sorted(p.relative_to(good) for p in good.rglob("*") if p.is_file())
    tried = 0
    for rel in files:
        if rel.name in ("lock", "status.json"):
            continue  # the lock holds no data; a broken status means "not started"
        bad = tmp_path / f"bad{tried}"
        shutil.copytree(good, bad)
        (bad / rel).write_bytes(payload)
        tried += 1
        for action, arg in (
            (load_run_model, bad),
            (analyze_run, bad),
            (lambda d: run(tiny_cfg(epochs=3, n_generate=2), d, quiet=True), bad),
        ):
            try:
                action(arg)
            except GrammarlabError:
                pass  # refused with a clear error
            except Exception as e:  # noqa: BLE001 - which file was accepted or crashed
                pytest.fail(f"{rel}: {type(e).__name__}: {e}")
        assert not marker.exists(), rel
    assert tried >= 15  # config, env, metrics, grammar, data, npz, checkpoint files, analysis
    # the old pickle checkpoint format is refused, never loaded
    old = tmp_path / "old"
    shutil.copytree(good, old)
    (old / "checkpoint" / "training_state.json").unlink()
    (old / "checkpoint" / "state.pt").write_bytes(payload)
    with pytest.raises(GrammarlabError, match="old pickle format"):
        load_run_model(old)
    assert not marker.exists()


def test_check_same_config_names_differing_keys(tmp_path):
    run = RunDir(tmp_path)
    cfg = TrainConfig(grammar="g.cfg", n_train=8)
    run.write_config(cfg)
    run.check_same_config(cfg)  # same: fine
    with pytest.raises(ConfigError) as e:
        run.check_same_config(TrainConfig(grammar="g.cfg", n_train=64, seed=1))
    msg = str(e.value)
    assert "n_train: 8 (saved) vs 64 (now)" in msg and "seed" in msg and "--out" in msg


def test_foreign_folders_are_refused(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "config.toml").write_text('[tool.poetry]\nname = "x"\n')
    with pytest.raises(GrammarlabError, match="is not a grammarlab run folder: its config.toml"):
        RunDir(tmp_path / "a").read_config()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("mine")
    with pytest.raises(GrammarlabError, match="not a grammarlab run folder and is not empty"):
        RunDir(tmp_path / "b").check_fresh()
    RunDir(tmp_path / "new").check_fresh()  # absent or empty: fine
    (tmp_path / "file").write_text("x")
    with pytest.raises(GrammarlabError, match="is a file, not a run folder"):
        RunDir(tmp_path / "file").prepare()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_a_clear_error(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        for path in (ro, ro / "sub"):  # the folder itself, or its parent, read-only
            with pytest.raises(GrammarlabError, match="cannot write the run folder"):
                with RunDir(path).lock():
                    pass
    finally:
        ro.chmod(0o700)


def test_status_is_json_and_says_how_training_ended(tmp_path):
    run = RunDir(tmp_path)
    run.write_status(Status("analysing", 3, "", trained="done"))
    assert json.loads((tmp_path / "status.json").read_text()) == {
        "state": "analysing", "epoch": 3, "message": "", "trained": "done"}  # fmt: skip
    run.write_status(Status("running", None))
    assert run.read_status() == Status("running", None)
    (tmp_path / "status.json").write_text('{"state": "done", "epoch": 4}')  # an older folder
    assert run.read_status() == Status("done", 4, "", "done")


_HOLD = textwrap.dedent("""
    import sys, time
    from grammarlab.runs.folder import RunDir
    with RunDir(sys.argv[1]).lock():
        print("locked", flush=True)
        time.sleep(600)
""")


def test_the_lock_refuses_a_second_process_and_is_taken_over_when_its_holder_dies(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunLocked, match=rf"in use by another process \(pid {holder.pid} on "):
            with RunDir(tmp_path).lock():
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with RunDir(tmp_path).lock():  # the dead holder's lock is taken over
        with RunDir(tmp_path).lock():  # re-entrant within a process
            assert json.loads((tmp_path / "lock").read_text())["pid"] == os.getpid()
    assert (tmp_path / "lock").read_text() == ""
