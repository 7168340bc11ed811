"""A sweep's unit of work: a job (one run folder and its config file), how it ended, and the two
executors that run jobs on this machine's CPUs (one after another, or a local process pool).

A job's target is ``module:function`` called as ``function(config_path, run_dir) -> state``; the
default, :func:`train_from_file`, is runs.launch.run (lock, train or resume, analyse), so an
unfinished run resumes from its checkpoint and a run whose analysis is missing gets it. Tests
swap in fake trainers by target.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from grammarlab.runs import launch
from grammarlab.runs.folder import RunDir, RunLocked
from grammarlab.train.config import load_config

TRAIN_TARGET = "grammarlab.sweep.jobs:train_from_file"


def run_state(run_dir: Path | str) -> str | None:
    """The state in a run folder's status (None when it has not started)."""
    status = RunDir(Path(run_dir)).read_status()
    return None if status is None else status.state


@dataclass(frozen=True)
class Job:
    """What a worker needs: the run id, its folder and the TOML file of its config."""

    run_id: str
    run_dir: str
    config_path: str
    target: str = TRAIN_TARGET


@dataclass(frozen=True)
class Outcome:
    """How a job ended: the run's state (``failed`` with the error when it raised)."""

    run_id: str
    state: str | None
    error: str | None
    seconds: float  # wall-clock
    cpu_seconds: float = 0.0  # CPU time of the process that ran it (all its threads)


def train_from_file(config_path: str, run_dir: str) -> str:
    """Load a run config (TOML) and train, resume or finish its run folder
    (runs.launch.run); the final state: done or diverged."""
    return launch.run(load_config(config_path), Path(run_dir), quiet=True)


def run_job(job: Job) -> Outcome:
    """Run one job; any exception becomes a ``failed`` outcome (the sweep goes on)."""
    t0, c0 = time.perf_counter(), time.process_time()
    module, func = job.target.split(":")
    try:
        state = getattr(importlib.import_module(module), func)(job.config_path, job.run_dir)
        error = None
    except RunLocked as e:  # another process runs it: not failed, not run twice
        state, error = "locked", str(e)
    except Exception as e:  # noqa: BLE001 - reported per run, the other runs go on
        state, error = "failed", f"{type(e).__name__}: {e}"
    return Outcome(job.run_id, state, error, time.perf_counter() - t0, time.process_time() - c0)


def init_worker() -> None:
    """Process-pool initializer: one torch thread per worker process. Tiny models gain nothing
    from intra-op threads, while runs are independent: one thread per process scales best."""
    torch.set_num_threads(1)


def finished(bar: Any, outcome: Outcome) -> None:
    """Count a finished run on the sweep's progress, naming it, its state and its seconds (a
    bar without ``set_postfix_str`` only counts it)."""
    name = getattr(bar, "set_postfix_str", None)
    if name is not None:
        name(f"{outcome.run_id} {outcome.state} in {outcome.seconds:.0f} s")
    bar.update(1)


def execute_local(jobs: list[Job], workers: int, bar: Any) -> list[Outcome]:
    """One run after another in this process (``workers`` is unused)."""
    out = []
    for job in jobs:
        out.append(run_job(job))
        finished(bar, out[-1])
    return out


def run_in_pool(jobs: list[Job], pool: ProcessPoolExecutor, bar: Any) -> list[Outcome]:
    """Every job through ``pool``, in completion order; a worker that dies (which takes down its
    pool, e.g. killed for memory) makes its runs ``failed`` outcomes."""
    out = []
    futures = {pool.submit(run_job, j): j for j in jobs}
    for f in as_completed(futures):
        try:
            out.append(f.result())
        except Exception as e:  # noqa: BLE001 - reported per run, the other runs go on
            out.append(Outcome(futures[f].run_id, "failed", f"{type(e).__name__}: {e}", 0.0))
        finished(bar, out[-1])
    return out


def execute_parallel(jobs: list[Job], workers: int, bar: Any) -> list[Outcome]:
    """Runs in ``workers`` local processes (forkserver where available, else spawn), each with
    one torch thread. A worker that dies takes down its pool: its runs are reported failed."""
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(max(1, workers), mp_context=mp.get_context(method),
                             initializer=init_worker) as pool:  # fmt: skip
        return run_in_pool(jobs, pool, bar)
