"""A run from start to end (runs.launch.run): statuses, analysis redone when missing or stale, a
full disk, the grammar's copy, the lock across processes, and how the CLI and the sweep executor
report each outcome."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest

import grammarlab.runs.launch as launch
from grammarlab.cli import main
from grammarlab.errors import GrammarlabError
from grammarlab.runs import checkpoint
from grammarlab.runs.folder import RunDir, Status
from grammarlab.sweep.jobs import Job, run_job
from grammarlab.train.config import dumps_config
from grammarlab.train.restore import load_run_model

TIMES = ("time_s", "checkpoint_s")  # seconds measured, not computed: they differ between runs


def _strip(run):
    return [{k: v for k, v in r.items() if k not in TIMES} for r in RunDir(run).read_metrics()]


def test_done_only_after_the_analysis_and_a_relaunch_redoes_a_failed_or_stale_one(
    tiny_cfg, tmp_path, monkeypatch
):
    cfg, run = tiny_cfg(n_generate=0), tmp_path / "r"
    seen = []

    def broken(folder):
        seen.append(folder.read_status())
        raise RuntimeError("no memory left")

    monkeypatch.setattr(launch, "write_run_analysis", broken)
    with pytest.raises(RuntimeError):
        launch.run(cfg, run, quiet=True)
    assert seen == [Status("analysing", 3, "", "done")]  # training had ended
    st = RunDir(run).read_status()
    assert st == Status("failed", 3, "; analysis failed: RuntimeError: no memory left", "done")
    monkeypatch.undo()
    metrics_time = (run / "metrics.jsonl").stat().st_mtime_ns
    assert launch.run(cfg, run, quiet=True) == "done"  # the analysis only: no retraining
    assert (run / "metrics.jsonl").stat().st_mtime_ns == metrics_time
    assert RunDir(run).read_status() == Status("done", 3, "", "done")
    assert RunDir(run).analysis_is_current()
    for stale in ("missing", "older"):
        if stale == "missing":
            (run / "measures.jsonl").unlink()
        else:  # the metrics changed after the analysis was written
            t = (run / "metrics.jsonl").stat().st_mtime_ns - 10**9
            os.utime(run / "measures.jsonl", ns=(t, t))
        assert not RunDir(run).analysis_is_current()
        assert launch.run(cfg, run, quiet=True) == "done"
        assert RunDir(run).analysis_is_current(), stale


def test_a_full_disk_fails_cleanly_and_the_run_resumes_identically(tiny_cfg, tmp_path,
                                                                   monkeypatch):  # fmt: skip
    cfg = tiny_cfg(epochs=4, n_generate=0, checkpoint_every=1)
    launch.run(cfg, tmp_path / "straight", quiet=True)
    real, calls = checkpoint._write_tensors, []

    def full_at_checkpoint_3(tensors, path, *a):
        calls.append(path.name)
        # the checkpoint after 3 updates, its weights written, its optimizer state not
        if calls.count("optimizer.safetensors") == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(tensors, path, *a)

    monkeypatch.setattr(checkpoint, "_write_tensors", full_at_checkpoint_3)
    run = tmp_path / "full"
    with pytest.raises(GrammarlabError, match="cannot write the run folder: No space left"):
        launch.run(cfg, run, quiet=True)
    folder = RunDir(run)
    st = folder.read_status()
    assert st.state == "failed" and "No space left on device" in st.message and st.epoch == 2
    assert [r["epoch"] for r in folder.read_metrics()] == [0, 1, 2]  # intact
    assert folder.checkpoint_epoch() == 2 and not (run / "checkpoint.tmp").exists()
    assert not list(run.rglob(".*.tmp"))
    monkeypatch.undo()
    assert launch.run(cfg, run, quiet=True) == "done"
    assert _strip(run) == _strip(tmp_path / "straight")


def test_a_run_resumes_and_is_analysed_after_its_grammar_file_moved(
    tiny_cfg, tmp_path, monkeypatch, grammar_file
):
    import grammarlab.train.loop as loop

    work = tmp_path / "work"
    (work / "grammars").mkdir(parents=True)
    shutil.copy(grammar_file, work / "grammars" / "h.cfg")
    monkeypatch.chdir(work)
    cfg = tiny_cfg(grammar="grammars/h.cfg", epochs=4, n_generate=2)  # a relative path
    launch.run(cfg, work / "straight", quiet=True)
    real = loop._write_surprisals

    def crash_at_2(run, k, res):
        if k == 2:
            raise RuntimeError("power cut")
        real(run, k, res)

    monkeypatch.setattr(loop, "_write_surprisals", crash_at_2)
    with pytest.raises(RuntimeError):
        launch.run(cfg, work / "r", quiet=True)
    monkeypatch.setattr(loop, "_write_surprisals", real)
    (work / "grammars" / "h.cfg").rename(tmp_path / "moved.cfg")  # the original is gone
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # "grammars/h.cfg" resolves to nothing here
    assert main(["train", str(work / "r" / "config.toml"), "--out", str(work / "r"),
                 "--quiet"]) == 0  # fmt: skip
    assert _strip(work / "r") == _strip(work / "straight")
    assert (work / "r" / "phases.json").is_file()
    assert main(["measures", str(work / "r")]) == 0  # analysed from here too
    load_run_model(work / "r")


_HOLD = textwrap.dedent("""
    import sys, time
    from grammarlab.runs.folder import RunDir
    with RunDir(sys.argv[1]).lock():
        print("locked", flush=True)
        time.sleep(600)
""")


def test_a_locked_run_is_refused_by_the_cli_and_skipped_by_the_sweep(tiny_cfg, tmp_path, capsys):
    toml = tmp_path / "c.toml"
    toml.write_text(dumps_config(tiny_cfg(n_generate=0)))
    run = tmp_path / "r"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(run)], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["train", str(toml), "--out", str(run), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert f"error: run folder is in use by another process (pid {holder.pid} on " in err
        assert main(["measures", str(run)]) == 2  # nothing to analyse yet, and locked anyway
        out = run_job(Job("r", str(run), str(toml)))
        assert out.state == "locked" and f"pid {holder.pid}" in out.error
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert not (run / "metrics.jsonl").exists()  # nobody trained it meanwhile
    assert run_job(Job("r", str(run), str(toml))).state == "done"  # the dead holder's lock


def test_a_diverging_run_is_diverged_for_the_sweep(tiny_cfg, tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text(dumps_config(tiny_cfg(n_generate=0, lr=1e9)))
    out = run_job(Job("r", str(tmp_path / "r"), str(toml)))
    assert (out.state, out.error) == ("diverged", None)


def test_cli_run_folder_mistakes_are_one_line_errors(tiny_cfg, tmp_path, capsys):
    toml = tmp_path / "c.toml"
    toml.write_text(dumps_config(tiny_cfg(n_generate=0)))
    (tmp_path / "afile").write_text("x")
    assert main(["train", str(toml), "--out", str(tmp_path / "afile")]) == 2
    err = capsys.readouterr().err
    assert "afile is a file" in err and "Traceback" not in err
    foreign = tmp_path / "proj"
    foreign.mkdir()
    (foreign / "config.toml").write_text("[tool.black]\nline-length = 100\n")
    assert main(["train", str(toml), "--out", str(foreign)]) == 2
    err = capsys.readouterr().err
    assert "is not a grammarlab run folder: its config.toml is not a run config" in err
    assert (foreign / "config.toml").read_text().startswith("[tool.black]")  # untouched


def test_read_only_out_is_a_one_line_error(tiny_cfg, tmp_path, capsys, monkeypatch):
    from pathlib import Path

    def refuse(self, *a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    toml = tmp_path / "c.toml"
    toml.write_text(dumps_config(tiny_cfg(n_generate=0)))
    monkeypatch.setattr(Path, "mkdir", refuse)  # as in a read-only parent, even for root
    assert main(["train", str(toml), "--out", str(tmp_path / "ro" / "r")]) == 2
    err = capsys.readouterr().err
    assert "error: cannot write the run folder: Permission denied" in err
