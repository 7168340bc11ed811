"""One run on several processes (accelerate launch, DDP over gloo on the CPU): every string
evaluated once, the same losses and surprisals as one process, a killed run resumed exactly."""

from __future__ import annotations

import shutil
from pathlib import Path

import accelerate_runs
import numpy as np
import pytest
from accelerate_runs import metrics, same_run, surprisals
from numerics import assert_runs_close

from grammarlab.errors import GrammarlabError
from grammarlab.runs.folder import RunDir
from grammarlab.runs.launch import run as launch
from grammarlab.train.config import dumps_config
from grammarlab.train.distributed import ReadOnlyRun, shard

CONFIG = "ddp_2_processes.yaml"


@pytest.mark.parametrize("n, world", [(7, 2), (6, 3), (1, 2), (0, 2), (10, 4)])
def test_shard_gives_every_string_to_exactly_one_rank(n, world):
    lengths = [(5 * i) % 7 for i in range(n)]
    parts = [shard(lengths, r, world) for r in range(world)]
    assert sorted(np.concatenate(parts).tolist()) == list(range(n))  # disjoint and covering
    assert max(map(len, parts)) - min(map(len, parts)) <= 1  # balanced
    # dealt in order of length: rank 0 gets the shortest string, rank 1 the next one, ...
    order = np.argsort(lengths, kind="stable")
    for r, part in enumerate(parts):
        assert part.tolist() == sorted(order[r::world].tolist())


def test_ranks_other_than_0_only_read_the_run_folder(tmp_path):
    run = RunDir(tmp_path)
    run.append_metrics({"epoch": 0, "train_loss": 1.0})
    view = ReadOnlyRun(run)
    view.append_metrics({"epoch": 1, "train_loss": 2.0})
    view.clear()
    with view.lock():  # rank 0's lock: nothing to take here
        pass
    assert [r["epoch"] for r in view.read_metrics()] == [0]


def _launch(toml: Path, out: Path, kill_at: int, tmp_path: Path) -> int:
    """``grammarlab train`` on 2 processes (DDP) through ``accelerate launch``."""
    return accelerate_runs.launch(toml, out, kill_at, tmp_path, CONFIG)


@pytest.fixture
def two_process_run(tiny_cfg, tmp_path):
    """A 2-process run killed in its second checkpoint write, then resumed on 2 processes, and
    the same run in this process: (killed-and-resumed folder, single-process folder, config)."""
    cfg = tiny_cfg(epochs=4, n_generate=4, checkpoint_every=1, n_train=7)  # 7: unequal shares
    toml = tmp_path / "run.toml"
    toml.write_text(dumps_config(cfg))
    one, two = tmp_path / "one", tmp_path / "two"
    assert launch(cfg, one, quiet=True) == "done"
    assert _launch(toml, two, 2, tmp_path) != 0  # killed
    assert RunDir(two).checkpoint_epoch() == 1 and (two / "checkpoint.tmp").exists()
    # a checkpoint of 2 processes is not resumed by 1: the rounding would not continue exactly
    with pytest.raises(GrammarlabError, match="written by a run on 2 process"):
        _resume_alone(cfg, two, tmp_path)
    _launch(toml, two, 0, tmp_path)
    return two, one, cfg


def _resume_alone(cfg, two: Path, tmp_path: Path) -> None:
    copy = tmp_path / "alone"
    shutil.copytree(two, copy)
    launch(cfg, copy, quiet=True)


@pytest.mark.numerics
def test_two_processes_match_one_and_resume_after_a_kill(two_process_run):
    two, one, _ = two_process_run
    assert RunDir(two).read_status().state == "done"
    assert [r["epoch"] for r in metrics(two)] == [0, 1, 2, 3, 4]
    env = RunDir(two).read_env()  # the folder says it ran on 2 processes, and how
    assert env["distributed"] == {"world_size": 2, "backend": "gloo", "strategy": "ddp",
                                  "mixed_precision": "no"}  # fmt: skip
    assert RunDir(one).read_env()["distributed"]["world_size"] == 1
    # The two runs differ only by float32 rounding, epoch 0 included: the ranks' micro-batches
    # hold other strings (other padding widths, other orders of summation) and the gradients are
    # summed over ranks; measured 3e-8 nats/token after 3 updates and 7e-7 bits per token,
    # within numerics.assert_runs_close's bound (2 gamma_256 = 3e-5 relative, derived there).
    # Accuracies and greedy matches are compared only where no near tie can flip an argmax.
    assert_runs_close(metrics(two), metrics(one), surprisals(two), surprisals(one))
    # rank 0 wrote the analysis; the resume removed the killed write's checkpoint.tmp
    assert (two / "phases.json").is_file() and not list(two.glob("checkpoint.*"))
    assert len((two / "generations/epoch_0004.txt").read_text().splitlines()) == 4


@pytest.mark.slow
def test_a_killed_two_process_run_resumes_bit_identically(two_process_run, tmp_path):
    two, _, _ = two_process_run
    _launch(tmp_path / "run.toml", tmp_path / "straight", 0, tmp_path)
    same_run(two, tmp_path / "straight")


@pytest.mark.slow
def test_a_killed_two_process_lora_dropout_run_resumes_bit_identically(tiny_cfg, tmp_path):
    # dropout masks differ between the ranks; each rank's come from (seed, epoch, rank)
    cfg = tiny_cfg(epochs=3, n_generate=2, checkpoint_every=1,
                   lora={"rank": 2, "alpha": 4.0, "dropout": 0.5})  # fmt: skip
    toml = tmp_path / "run.toml"
    toml.write_text(dumps_config(cfg))
    assert _launch(toml, tmp_path / "killed", 2, tmp_path) != 0
    _launch(toml, tmp_path / "killed", 0, tmp_path)
    _launch(toml, tmp_path / "straight", 0, tmp_path)
    same_run(tmp_path / "killed", tmp_path / "straight")
