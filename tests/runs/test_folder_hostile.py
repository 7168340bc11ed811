"""Hostile run folders: symbolic links in the layout, crafted checkpoint states and env.json
counts, edited data and grammar files, garbage analysis files. Each is refused with one error
naming the file before anything is written, truncated or pruned."""

from __future__ import annotations

import json
import shutil

import pytest

import grammarlab.runs.launch as launch
from grammarlab.cli import main
from grammarlab.errors import GrammarlabError
from grammarlab.runs.folder import RunDir
from grammarlab.train.config import dumps_config


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny run (3 epochs, a checkpoint at 3) and its config file, made once."""
    import dataclasses

    from grammarlab.train.models import ModelSpec
    from tests.conftest import GRAMMAR

    root = tmp_path_factory.mktemp("finished")
    (root / "h.cfg").write_text(GRAMMAR)
    from grammarlab.train.config import TrainConfig

    model = ModelSpec("pythia-tiny", hidden_size=32, num_layers=1)
    cfg = TrainConfig(grammar=str(root / "h.cfg"), model=model, n_train=6, n_test=6, n_random=4,
                      epochs=3, extraction_prefix=2, n_generate=0)  # fmt: skip
    cfg = dataclasses.replace(cfg, checkpoint_every=1)
    assert launch.run(cfg, root / "run", quiet=True) == "done"
    (root / "c.toml").write_text(dumps_config(cfg))
    return root


@pytest.fixture
def run(finished, tmp_path):
    """A copy of the finished run whose status says it was killed at epoch 2 (a resume then
    rewinds and retrains from the checkpoint)."""
    path = tmp_path / "run"
    shutil.copytree(finished / "run", path)
    (path / "status.json").write_text('{"state": "running", "epoch": 2}')
    return path


def _train(finished, run, capsys) -> str:
    assert main(["train", str(finished / "c.toml"), "--out", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 2  # error + hint
    return err


def _snapshot(run):
    return {p.relative_to(run).as_posix(): p.read_bytes() for p in sorted(run.rglob("*"))
            if p.is_file() and p.name != "lock"}  # fmt: skip


def test_a_symlinked_lock_is_refused_and_its_target_kept(finished, run, tmp_path, capsys):
    precious = tmp_path / "precious.txt"
    precious.write_text("years of work\n")
    (run / "lock").unlink(missing_ok=True)
    (run / "lock").symlink_to(precious)
    assert main(["measures", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"{run / 'lock'}: error: lock in the run folder is a symbolic link" in err
    assert precious.read_text() == "years of work\n"
    with pytest.raises(GrammarlabError, match="symbolic link"), RunDir(run).lock():
        pass
    assert precious.read_text() == "years of work\n"


def test_a_lock_that_is_a_fifo_is_refused_without_blocking(run):
    import os

    (run / "lock").unlink(missing_ok=True)
    os.mkfifo(run / "lock")
    with pytest.raises(GrammarlabError, match="lock in the run folder is not a regular file"):
        with RunDir(run).lock():
            pass


@pytest.mark.parametrize("name", ["surprisals", "generations", "metrics.jsonl", "checkpoint"])
def test_a_symlinked_run_path_is_neither_written_nor_pruned(finished, run, tmp_path, capsys,
                                                            name):  # fmt: skip
    outside = tmp_path / "outside"
    shutil.move(run / name, outside) if (run / name).exists() else outside.mkdir()
    if outside.is_dir():
        (outside / "epoch_0009.npz").write_text("someone else's file")
    (run / name).symlink_to(outside, target_is_directory=outside.is_dir())
    before = {p.name: p.read_bytes() for p in outside.iterdir()} if outside.is_dir() else \
        outside.read_bytes()  # fmt: skip
    inside = _snapshot(run)
    err = _train(finished, run, capsys)
    assert f"{name} in the run folder is a symbolic link" in err
    after = {p.name: p.read_bytes() for p in outside.iterdir()} if outside.is_dir() else \
        outside.read_bytes()  # fmt: skip
    assert after == before
    assert {k: v for k, v in _snapshot(run).items() if k != "status.json"} == \
        {k: v for k, v in inside.items() if k != "status.json"}  # fmt: skip


@pytest.mark.parametrize("epoch", [-5, 0, 99, 2.5, "3", True, None])
def test_a_crafted_checkpoint_epoch_is_refused_before_the_metrics_are_touched(
    finished, run, capsys, epoch
):
    path = run / "checkpoint" / "training_state.json"
    state = json.loads(path.read_text())
    state["epoch"] = epoch
    path.write_text(json.dumps(state))
    metrics = (run / "metrics.jsonl").read_bytes()
    err = _train(finished, run, capsys)
    if epoch == 99:
        assert "the checkpoint is at epoch 99, beyond the run's 3 epochs" in err
    else:
        assert "training_state.json: error: not a grammarlab checkpoint state: epoch must be " \
               f"an integer >= 1, got {epoch!r}" in err  # fmt: skip
    assert (run / "metrics.jsonl").read_bytes() == metrics


@pytest.mark.parametrize(("key", "value", "why"), [
    ("world_size", 0, "world_size must be an integer >= 1"),
    ("scheduler", [], "scheduler must be an object"),
    ("optimizer", {"state": {}, "param_groups": [{"lr": -1.0}]}, "lr must be a finite number"),
    ("rng", {"numpy": ["MT19937", 10**6, 0, 0.0]}, "rng.numpy must be"),
])  # fmt: skip
def test_other_crafted_checkpoint_values_are_refused(finished, run, capsys, key, value, why):
    path = run / "checkpoint" / "training_state.json"
    state = json.loads(path.read_text())
    state[key] = value
    path.write_text(json.dumps(state))
    metrics = (run / "metrics.jsonl").read_bytes()
    assert why in _train(finished, run, capsys)
    assert (run / "metrics.jsonl").read_bytes() == metrics


def test_a_checkpoint_state_that_does_not_fit_is_one_line(finished, run, capsys):
    path = run / "checkpoint" / "training_state.json"
    state = json.loads(path.read_text())
    state["optimizer"]["param_groups"].append(dict(state["optimizer"]["param_groups"][0]))
    path.write_text(json.dumps(state))
    err = _train(finished, run, capsys)
    assert "training_state.json: error: the checkpoint's training state does not fit" in err


@pytest.mark.parametrize("threads", [100000, 0, -1, "2", 1.5])
def test_env_thread_counts_this_machine_cannot_give_are_refused(finished, run, capsys, threads):
    env = json.loads((run / "env.json").read_text())
    env["threads"] = threads
    (run / "env.json").write_text(json.dumps(env))
    metrics = (run / "metrics.jsonl").read_bytes()
    err = _train(finished, run, capsys)  # 100000 threads segfaulted torch (exit 139)
    assert f"env.json: error: threads = {threads!r}: the run started with a count" in err
    assert (run / "metrics.jsonl").read_bytes() == metrics


def test_an_edited_grammar_with_its_copy_deleted_is_refused(finished, run, capsys):
    (run / "grammar.cfg").unlink()
    grammar = finished / "h.cfg"
    text = grammar.read_text()
    try:
        grammar.write_text(text.replace("[0.5] | '4' '4' [0.5]", "[0.25] | '4' '4' [0.75]"))
        metrics = (run / "metrics.jsonl").read_bytes()
        err = _train(finished, run, capsys)
    finally:
        grammar.write_text(text)
    assert "has a checkpoint but no grammar.cfg" in err
    assert (run / "metrics.jsonl").read_bytes() == metrics


def test_a_resume_refuses_edited_data(finished, run, capsys):
    lines = (run / "data" / "train.txt").read_text().splitlines()
    lines[1] = "4 4 1 2"
    (run / "data" / "train.txt").write_text("\n".join(lines) + "\n")
    metrics = (run / "metrics.jsonl").read_bytes()
    err = _train(finished, run, capsys)
    assert "data/train.txt:2: error: the run's train strings differ from those" in err
    assert (run / "metrics.jsonl").read_bytes() == metrics
    (run / "data" / "train.txt").write_text("1 2 4 4\n")  # fewer strings: the analysis refuses
    assert main(["measures", str(run)]) == 2
    assert "train.txt: error: 1 strings, but the run's config.toml asks for 6" in \
        capsys.readouterr().err  # fmt: skip


def test_a_non_utf8_grammar_against_a_run_folder_is_one_line(finished, run, tmp_path, capsys):
    bad = tmp_path / "bad.cfg"
    bad.write_bytes(b"S -> '\xff' S [0.3] | 'b' [0.7]\n")
    cfg = (finished / "c.toml").read_text().replace(str(finished / "h.cfg"), str(bad))
    (tmp_path / "bad.toml").write_text(cfg)
    assert main(["train", str(tmp_path / "bad.toml"), "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert "changed since the run in" in err and "Traceback" not in err


@pytest.mark.parametrize(("name", "content", "why"), [
    ("phases.json", b"{]", "phases.json: error: not valid JSON"),
    ("phases.json", b"[1, 2]", "phases.json: error: not a JSON object"),
    ("status.json", None, "status.json: error: cannot read it"),
    ("status.json", b'{"state": "done", "epoch": "abc"}', "status.json: error: not a run status"),
    ("status.json", b'{"state": "done", "trained": 7}', "status.json: error: not a run status"),
    ("measures.jsonl", bytes(range(128, 256)), "measures.jsonl: error: not a measures file"),
    ("measures.jsonl", b'{"epoch": 0}\n[3]\n', "measures.jsonl:2: error: not an epoch object"),
    ("per_string.csv", b'x,"y\n\x00\x01,,,\n', "per_string.csv: error: not a readable CSV"),
    ("per_position.csv", b"a,b\n1,2\n", "per_position.csv: error: the table lacks the column"),
    ("per_string.csv", b"epoch,dataset,index,model_bits\nx,train,0,1\n",
     "per_string.csv: error: column epoch holds values that are not numbers"),
])  # fmt: skip
def test_garbage_analysis_files_are_errors_naming_them(finished, run, tmp_path, capsys, name,
                                                       content, why):  # fmt: skip
    (run / "status.json").write_text('{"state": "done", "epoch": 3}')
    (run / name).unlink()
    if content is None:
        (run / name).mkdir()
    else:
        (run / name).write_bytes(content)
    assert main(["report", str(run), "-o", str(tmp_path / "report.md")]) == 2
    err = capsys.readouterr().err
    assert why in err and "Traceback" not in err
    assert "no runs" not in err


def test_non_numeric_metrics_are_an_error_naming_the_line(finished, run, capsys):
    lines = (run / "metrics.jsonl").read_text().splitlines()
    rec = json.loads(lines[1])
    rec["train_loss"] = "abc"
    lines[1] = json.dumps(rec)
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(GrammarlabError, match=r"metrics.jsonl:2: error: train_loss is 'abc'"):
        RunDir(run).read_metrics(partial_ok=True)
    assert main(["phases", str(run)]) == 2
    assert "train_loss is 'abc', not a number" in capsys.readouterr().err


def test_a_symlinked_file_inside_a_run_sub_folder_is_not_written_through(run, tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("mine")
    target = run / "surprisals" / "epoch_0000.npz"
    target.unlink()
    target.symlink_to(precious)
    with pytest.raises(GrammarlabError, match="epoch_0000.npz in the run folder is a symbolic"):
        RunDir(run).write_surprisals(0, {})
    (run / "data" / "train.txt").unlink()
    (run / "data" / "train.txt").symlink_to(precious)
    with pytest.raises(GrammarlabError, match="train.txt in the run folder is a symbolic link"):
        RunDir(run).write_data({"train": [("1",)]})
    assert precious.read_text() == "mine"
