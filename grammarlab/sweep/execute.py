"""Running a sweep: :func:`run_sweep` and the executors it can hand the jobs to.

:func:`run_sweep` skips runs whose folder says they finished (runs.launch.FINISHED), writes each
remaining run's resolved config to ``<sweep>/configs/<run_id>.toml`` and hands the jobs
(:class:`grammarlab.sweep.jobs.Job`) to an executor from :data:`EXECUTORS`; each job is
runs.launch.run (lock, train or resume, analyse), so unfinished runs resume from their
checkpoints and a run whose analysis is missing gets it. A run that raises is reported as
``failed``, one that another process holds as ``locked`` (it is never run twice at once), and the
others go on.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grammarlab.errors import ConfigError
from grammarlab.io import write_text_atomic
from grammarlab.progress import progress as progress_bar
from grammarlab.runs.launch import FINISHED
from grammarlab.sweep.jobs import (
    TRAIN_TARGET,
    Job,
    Outcome,
    execute_local,
    execute_parallel,
    run_state,
)
from grammarlab.sweep.slurm import execute_gpus, execute_slurm, save_resources
from grammarlab.sweep.spec import Sweep, writing
from grammarlab.train.config import dumps_config

#: executor name -> ``(jobs, workers, bar) -> outcomes`` (``bar`` has ``update(n)``)
EXECUTORS: dict[str, Callable[[list[Job], int, Any], list[Outcome]]] = {
    "local": execute_local,  # one after another in this process
    "parallel": execute_parallel,  # local processes, one torch thread each
    "slurm": execute_slurm,  # one Slurm array job (submitit), the sweep's [resources]
    "gpus": execute_gpus,  # worker processes per visible GPU (--workers, default 1)
}


def run_sweep(
    sweep: Sweep,
    executor: str = "local",
    workers: int | None = None,
    progress: bool = True,
    target: str = TRAIN_TARGET,
) -> list[Outcome]:
    """Run every unfinished run of ``sweep`` (finished ones are skipped, unfinished ones resume);
    the caller then writes the sweep's tables (:func:`grammarlab.sweep.tables.aggregate`).
    With ``progress``, a bar on a terminal, else one line per finished run with the time (run
    id, state, seconds; :func:`grammarlab.cli.console.progress`). Returns one
    outcome per run, skipped runs included with their state."""
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}", hint=f"one of {sorted(EXECUTORS)}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):  # fmt: skip
        raise ConfigError(f"workers must be an integer >= 1, got {workers!r}", file="--workers")
    with writing(sweep.root):
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
            with writing(sweep.root):
                write_text_atomic(cfg_path, text)
        jobs.append(Job(r.run_id, str(r.run_dir), str(cfg_path), target))
    if executor == "slurm":  # what its array tasks get: read back by execute_slurm
        with writing(sweep.root):
            save_resources(sweep.root, sweep.resources)
    # the gpus executor takes workers per GPU (default 1), the others workers in all
    n = workers or (1 if executor == "gpus" else os.cpu_count() or 1)
    with progress_bar(len(sweep.runs), f"sweep {sweep.name}", "runs", show=progress,
                      initial=len(outcomes)) as bar:  # fmt: skip
        outcomes += EXECUTORS[executor](jobs, n, bar)
    order = {r.run_id: i for i, r in enumerate(sweep.runs)}
    return sorted(outcomes, key=lambda o: order[o.run_id])
