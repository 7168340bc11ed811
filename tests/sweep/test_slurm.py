"""Sweeps through submitit (its local cluster: processes on this machine, the same code path as
Slurm array tasks) and the one-run-per-GPU executor, on the CPU; the ``[resources]`` table of a
sweep file (grammarlab.sweep.spec)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

# submitit comes with the scale extra, which scripts/setup.sh installs: no skip, a missing
# install must fail here
import submitit  # noqa: E402, F401

from grammarlab.cli import main as cli_main
from grammarlab.errors import ConfigError
from grammarlab.sweep.execute import run_sweep
from grammarlab.sweep.jobs import Job, run_job
from grammarlab.sweep.slurm import (
    RunTask,
    execute_gpus,
    make_executor,
    read_resources,
    save_resources,
)
from grammarlab.sweep.spec import Resources, load_sweep, resources_from_dict
from grammarlab.train.config import dumps_config

GRAMMAR = "S -> A A A A [1.0]\nA -> 'a' [0.5] | 'b' [0.5]\n"
SWEEP = """name = "t"
[base]
grammar = "g.cfg"
epochs = {epochs}
n_train = 4
n_test = 4
n_random = 2
n_generate = 2
extraction_prefix = 2
[base.model]
preset = "pythia-tiny"
hidden_size = 16
num_layers = 1
num_heads = 2
intermediate_size = 32
[grid]
seed = {seeds}
[resources]
gpus_per_run = 0
cpus_per_run = 1
time_min = 10
max_requeues = 2
cluster = "local"
"""


def write_sweep(tmp_path: Path, epochs: int = 3, seeds: str = "[0, 1]") -> Path:
    (tmp_path / "g.cfg").write_text(GRAMMAR)
    path = tmp_path / "s.toml"
    path.write_text(SWEEP.format(epochs=epochs, seeds=seeds))
    return path


def epochs_of(run_dir: Path) -> list[int]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["epoch"] for line in lines]


def main(argv: list[str]) -> int:
    """``grammarlab sweep FILE --executor slurm ...``"""
    return cli_main(["sweep", *argv[:1], "--executor", "slurm", *argv[1:]])


def test_resources_table_is_part_of_the_sweep_and_checked(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path), out=tmp_path / "runs")
    res = sweep.resources
    assert len(sweep.runs) == 2
    assert res == Resources(gpus_per_run=0, cpus_per_run=1, time_min=10, max_requeues=2,
                            cluster="local")  # fmt: skip
    save_resources(sweep.root, res)
    assert read_resources(sweep.root) == res
    # the table does not enter the run ids: the same sweep without it has the same runs
    bare = tmp_path / "bare.toml"
    bare.write_text(SWEEP.format(epochs=3, seeds="[0, 1]").split("[resources]")[0])
    bare_sweep = load_sweep(bare, out=tmp_path / "runs")
    assert [r.run_id for r in bare_sweep.runs] == [r.run_id for r in sweep.runs]
    assert bare_sweep.resources == Resources()  # the defaults
    with pytest.raises(ConfigError, match="unknown key resources.gpu"):
        resources_from_dict({"gpu": 1}, "s.toml")
    with pytest.raises(ConfigError, match="time_min must be"):
        resources_from_dict({"time_min": 0})
    with pytest.raises(ConfigError, match="accelerate config"):
        resources_from_dict({"gpus_per_run": 8})
    with pytest.raises(ConfigError, match="cluster must be"):
        resources_from_dict({"cluster": "pbs"})
    bad = tmp_path / "bad.toml"
    bare_text = SWEEP.format(epochs=3, seeds="[0]").split("[resources]")[0]
    bad.write_text(bare_text.replace('name = "t"\n', 'name = "t"\nresources = 3\n'))
    with pytest.raises(ConfigError, match=r"\[resources\] must be a table"):
        load_sweep(bad, out=tmp_path / "runs")


def test_cli_reports_a_bad_resources_table_or_cluster_in_one_line(tmp_path, capsys):
    bad = write_sweep(tmp_path)
    bad.write_text(bad.read_text() + "gpu = 1\n")
    assert main([str(bad)]) == 2
    err = capsys.readouterr().err
    assert "error: unknown key resources.gpu" in err and "Traceback" not in err
    good = write_sweep(tmp_path)
    assert main([str(good), "--cluster", "pbs", "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "error: resources.cluster must be one of" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # nothing started


def test_two_run_sweep_through_submitit_local(tmp_path, capsys):
    assert main([str(write_sweep(tmp_path)), "--out", str(tmp_path / "runs")]) == 0
    assert "runs: 2 done" in capsys.readouterr().err
    sweep = load_sweep(tmp_path / "s.toml", out=tmp_path / "runs")
    assert read_resources(sweep.root) == sweep.resources  # saved for the array tasks
    for r in sweep.runs:
        assert epochs_of(r.run_dir) == [0, 1, 2, 3]
    assert (tmp_path / "runs" / "curves.csv").is_file()  # the sweep's tables, as locally
    logs = list((tmp_path / "runs" / "slurm").glob("*_log.out"))
    assert len(logs) == 2  # one task per run
    # a relaunch skips the finished runs and submits nothing
    again = run_sweep(sweep, executor="slurm", progress=False)
    assert [o.state for o in again] == ["done", "done"]
    assert len(list((tmp_path / "runs" / "slurm").glob("*_log.out"))) == 2


@pytest.mark.slow
def test_preempted_task_is_requeued_and_resumes_from_its_checkpoint(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path, epochs=400, seeds="[0]"), out=tmp_path / "r")
    res = sweep.resources
    run = sweep.runs[0]
    cfg_path = tmp_path / "run.toml"
    cfg_path.write_text(dumps_config(run.config))
    job = Job(run.run_id, str(run.run_dir), str(cfg_path))
    ex = make_executor(tmp_path / "slurm", res)
    submitted = ex.submit(RunTask(0), job)
    deadline = time.time() + 300
    while time.time() < deadline:  # wait until some epochs and a checkpoint exist
        if (run.run_dir / "metrics.jsonl").is_file() and len(epochs_of(run.run_dir)) >= 20:
            break
        time.sleep(0.2)
    # Slurm signals the task's processes (SIGUSR2) before preempting it; submitit's local
    # controller is the parent of the task process, so signal its children as Slurm would
    pid = submitted._process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    assert children
    for child in children:
        os.kill(int(child), signal.SIGUSR2)
    outcome = submitted.result()
    assert outcome.state == "done", outcome
    assert epochs_of(run.run_dir) == list(range(401))  # every epoch once, after the resume
    log = "".join(p.read_text() for p in (tmp_path / "slurm").glob("*_log.*"))
    # submitit calls it "timed-out" (the local controller has no walltime) and requeues it
    assert "Caught signal SIGUSR2" in log and "Requeued job" in log
    assert log.count("Loading pickle") == 2  # the task ran twice: before and after the requeue
    assert run_sweep(sweep, progress=False)[0].state == "done"


def report_gpu(config_path: str, run_dir: str) -> str:
    """A job target that says which GPU its worker was pinned to."""
    time.sleep(0.5)  # hold the worker so that the other runs go to the other worker
    return f"gpu{os.environ.get('CUDA_VISIBLE_DEVICES')}"


def test_gpu_executor_pins_one_gpu_per_worker(tmp_path):
    target = "tests.sweep.test_slurm:report_gpu"
    jobs = [Job(f"r{i}", str(tmp_path / f"r{i}"), "unused.toml", target) for i in range(4)]

    class Bar:
        n = 0

        def update(self, k):
            self.n += k

    bar = Bar()
    outcomes = execute_gpus(jobs, 0, bar, devices=["3", "5"])
    assert bar.n == 4 and sorted(o.run_id for o in outcomes) == ["r0", "r1", "r2", "r3"]
    assert {o.state for o in outcomes} <= {"gpu3", "gpu5"}
    assert run_job(jobs[0]).state == f"gpu{os.environ.get('CUDA_VISIBLE_DEVICES')}"
    outcomes = execute_gpus(jobs, 2, bar, devices=["3"])  # two workers share GPU 3
    assert bar.n == 8 and {o.state for o in outcomes} == {"gpu3"}
    with pytest.raises(Exception, match="no GPU"):
        execute_gpus(jobs, 0, bar, devices=[])
