"""Running a sweep: jobs, executors (one process, or a local process pool) and relaunch.

:func:`run_sweep` skips runs whose folder says they finished (runs.launch.FINISHED), writes each
remaining run's resolved config to ``<sweep>/configs/<run_id>.toml`` and hands the jobs to an
executor from :data:`EXECUTORS`; each job is runs.launch.run (lock, train or resume, analyse), so
unfinished runs resume from their checkpoints and a run whose analysis is missing gets it. A run
that raises is reported as ``failed``, one that another process holds as ``locked`` (it is never
run twice at once), and the others go on.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from grammarlab.errors import ConfigError
from grammarlab.io import write_text_atomic
from grammarlab.runs import launch
from grammarlab.runs.folder import RunDir, RunLocked
from grammarlab.runs.launch import FINISHED
from grammarlab.train.config import dumps_config, load_config

TRAIN_TARGET = "grammarlab.sweep.execute:train_from_file"


def run_state(run_dir: Path) -> str | None:
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


def _init_worker() -> None:
    # Tiny models gain nothing from intra-op threads; one thread per process scales best.
    torch.set_num_threads(1)


def execute_local(jobs: list[Job], workers: int, bar: Any) -> list[Outcome]:
    """One run after another in this process."""
    out = []
    for job in jobs:
        out.append(run_job(job))
        bar.update(1)
    return out


def execute_parallel(jobs: list[Job], workers: int, bar: Any) -> list[Outcome]:
    """Runs in ``workers`` local processes (forkserver where available, else spawn), each with
    one torch thread. A worker that dies takes down its pool: its runs are reported failed."""
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    out = []
    with ProcessPoolExecutor(max(1, workers), mp_context=mp.get_context(method),
                             initializer=_init_worker) as pool:  # fmt: skip
        futures = {pool.submit(run_job, j): j for j in jobs}
        for f in as_completed(futures):
            try:
                out.append(f.result())
            except Exception as e:  # noqa: BLE001 - e.g. a worker killed for memory
                out.append(Outcome(futures[f].run_id, "failed", f"{type(e).__name__}: {e}", 0.0))
            bar.update(1)
    return out


EXECUTORS = {"local": execute_local, "parallel": execute_parallel}


def run_sweep(
    sweep: Any,  # a grammarlab.sweep.spec.Sweep (spec imports this module)
    executor: str = "local",
    workers: int | None = None,
    progress: bool = True,
    target: str = TRAIN_TARGET,
) -> list[Outcome]:
    """Run every unfinished run of ``sweep`` (finished ones are skipped, unfinished ones resume);
    the caller then writes the sweep's tables (:func:`grammarlab.sweep.tables.aggregate`).
    Returns one outcome per run, skipped runs included with their state."""
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}", hint=f"one of {sorted(EXECUTORS)}")
    sweep.root.mkdir(parents=True, exist_ok=True)
    outcomes, jobs, seen = [], [], set()
    for r in sweep.runs:
        if Path(r.run_dir).resolve() in seen:
            raise ConfigError(f"two runs of sweep {sweep.name} share the folder {r.run_dir}")
        seen.add(Path(r.run_dir).resolve())
        state = run_state(r.run_dir)
        if state in FINISHED:
            outcomes.append(Outcome(r.run_id, state, None, 0.0))
            continue
        cfg_path = sweep.root / "configs" / f"{r.run_id}.toml"
        text = dumps_config(r.config)
        if not cfg_path.is_file() or cfg_path.read_text(encoding="utf-8") != text:
            write_text_atomic(cfg_path, text)
        jobs.append(Job(r.run_id, str(r.run_dir), str(cfg_path), target))
    n = workers or os.cpu_count() or 1
    with tqdm(total=len(sweep.runs), initial=len(outcomes), desc=f"sweep {sweep.name}",
              unit="run", disable=not progress) as bar:  # fmt: skip
        outcomes += EXECUTORS[executor](jobs, n, bar)
    order = {r.run_id: i for i, r in enumerate(sweep.runs)}
    return sorted(outcomes, key=lambda o: order[o.run_id])


from grammarlab.sweep.slurm import execute_gpus, execute_slurm  # noqa: E402 (no cycle: see slurm)

EXECUTORS.update(slurm=execute_slurm, gpus=execute_gpus)
