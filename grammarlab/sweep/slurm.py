"""Sweeps on a Slurm cluster (through submitit) and on the GPUs of one machine.

Two executors with the signature of :data:`grammarlab.sweep.execute.EXECUTORS`
(``jobs, workers, bar -> outcomes``):

* ``slurm``: the sweep's unfinished runs as ONE Slurm array job, one run per array task, with
  the resources of the sweep file's ``[resources]`` table (:class:`Resources`). A task that is
  preempted or reaches its time limit is requeued (submitit's checkpoint protocol,
  :class:`RunTask`) and the relaunched training resumes from the run folder's last checkpoint,
  as any resumed run does. submitit's logs and pickles go to ``<sweep>/slurm/``.
* ``gpus``: one worker process per visible GPU, each pinned to its GPU through
  ``CUDA_VISIBLE_DEVICES`` before torch initializes CUDA, taking the next run when it finishes
  one.

Trust boundary: submitit passes work through pickles. Submitting writes the task (a
:class:`RunTask` and its :class:`~grammarlab.sweep.jobs.Job`) as a pickle into ``<sweep>/slurm/``,
and the array task on the cluster unpickles it: whoever can write that folder can run code as
you on the cluster, so it must be yours and writable by you alone (:func:`check_folder` refuses
one that is group- or world-writable or owned by someone else). Nothing on the submitting side
is unpickled: each task writes its outcome as JSON (``<sweep>/slurm/outcomes/``, grammarlab's
own format), and the executor waits on the job's state and reads that JSON instead of
submitit's pickled results (``Job.result()``). The run folders themselves hold no pickle
(runs/folder.py).

The slurm executor reads the sweep's ``[resources]`` table
(:class:`grammarlab.sweep.spec.Resources`), which :func:`grammarlab.sweep.execute.run_sweep`
saves to ``<sweep>/slurm/resources.json`` before it submits. From the command line:
``grammarlab sweep SWEEP.toml --executor slurm|gpus [--cluster local]``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing as mp
import os
import stat
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

from grammarlab.errors import GrammarlabError
from grammarlab.io import write_json_atomic
from grammarlab.sweep.jobs import Job, Outcome, run_in_pool, run_job, run_state
from grammarlab.sweep.spec import Resources, resources_from_dict

FOLDER = "slurm"  # under the sweep root: submitit's files and resources.json


def save_resources(root: Path, res: Resources) -> None:
    """``<root>/slurm/resources.json``: what the executors of this sweep read."""
    write_json_atomic(Path(root) / FOLDER / "resources.json", dataclasses.asdict(res))


def read_resources(root: Path) -> Resources:
    """The resources saved for the sweep in ``root`` (defaults when none were saved)."""
    path = Path(root) / FOLDER / "resources.json"
    if not path.is_file():
        return Resources()
    return resources_from_dict(json.loads(path.read_text(encoding="utf-8")), str(path))


# ----------------------------------------------------------------------------- the task


class RunTask:
    """What one array task runs: train (or resume) one run; submitit pickles it.

    It has submitit's ``checkpoint`` method: on preemption or timeout submitit calls it and
    requeues the task with the same job, and the training resumes from the run folder's last
    checkpoint (the run folder is the state; nothing else needs saving)."""

    def __init__(self, gpus: int = 1, accelerate_config: str | None = None,
                 outcomes: str | None = None) -> None:  # fmt: skip
        self.gpus = gpus
        self.accelerate_config = accelerate_config
        self.outcomes = outcomes  # folder of the outcome JSON files (None: return it only)

    def __call__(self, job: Job) -> Outcome:
        out = self._run(job)
        if self.outcomes is not None:
            write_json_atomic(
                outcome_path(Path(self.outcomes), job.run_id), dataclasses.asdict(out)
            )
        return out

    def _run(self, job: Job) -> Outcome:
        if self.gpus <= 1:
            return run_job(job)
        # several GPUs per run: one process per GPU under accelerate (untested here: no GPU)
        cmd = [sys.executable, "-m", "accelerate.commands.launch",
               "--config_file", str(self.accelerate_config), "--num_processes", str(self.gpus),
               "-m", "grammarlab", "train", job.config_path, "--out", job.run_dir,
               "--quiet"]  # fmt: skip
        rc = subprocess.run(cmd, check=False).returncode
        state = run_state(Path(job.run_dir)) if rc == 0 else "failed"
        return Outcome(job.run_id, state, None if rc == 0 else f"accelerate exit code {rc}", 0.0)

    def checkpoint(self, job: Job) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(self, job)


def outcome_path(folder: Path, run_id: str) -> Path:
    """The outcome JSON of run ``run_id`` (named by a hash: run ids hold slashes)."""
    return folder / (hashlib.sha256(run_id.encode()).hexdigest()[:20] + ".json")


def read_outcome(folder: Path, job: Job) -> Outcome | None:
    """The outcome a task wrote for ``job`` (None when it wrote none: killed, out of memory,
    its requeues spent); a file that is not one is None too."""
    try:
        obj = json.loads(outcome_path(folder, job.run_id).read_text(encoding="utf-8"))
        out = Outcome(**obj)
    except (OSError, ValueError, TypeError):
        return None
    ok = (out.run_id == job.run_id and (out.state is None or isinstance(out.state, str))
          and (out.error is None or isinstance(out.error, str)))  # fmt: skip
    return out if ok else None


def check_folder(folder: Path) -> None:
    """Refuse a submitit folder that others could write: its pickles run on the cluster as the
    user who submits (module docstring)."""
    folder.mkdir(parents=True, exist_ok=True)
    st = folder.stat()
    if st.st_uid != os.getuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise GrammarlabError(
            "the sweep's slurm folder can be written by other users, and the pickles submitit "
            "writes there run as you on the cluster",
            file=str(folder),
            hint=f"make it yours and private: chmod go-w {folder}",
        )


# ----------------------------------------------------------------------------- executors


def make_executor(folder: Path, res: Resources) -> Any:
    """A submitit AutoExecutor for ``res`` writing into ``folder``."""
    try:
        import submitit
    except ImportError:
        raise GrammarlabError(
            "the slurm executor needs submitit, which is not installed",
            hint="pip install 'grammarlab[scale]' (or pip install submitit)",
        ) from None
    ex = submitit.AutoExecutor(folder=folder, cluster=res.cluster,
                               slurm_max_num_timeout=res.max_requeues)  # fmt: skip
    params: dict[str, Any] = dict(
        name="grammarlab", timeout_min=res.time_min, nodes=1, tasks_per_node=1,
        cpus_per_task=res.cpus_per_run, gpus_per_node=res.gpus_per_run, mem_gb=res.mem_gb,
        slurm_partition=res.partition, slurm_account=res.account, slurm_qos=res.qos,
        slurm_constraint=res.constraint, slurm_array_parallelism=res.max_parallel,
        slurm_setup=list(res.setup) or None,
    )  # fmt: skip
    ex.update_parameters(**{k: v for k, v in params.items() if v is not None})
    return ex


def execute_slurm(jobs: list[Job], workers: int, bar: Any) -> list[Outcome]:
    """Submit ``jobs`` as one array job (one run per task) and, unless ``resources.wait`` is
    false, wait for them. ``workers`` is unused: the array's parallelism is
    ``resources.max_parallel``. Runs that the cluster could not finish are ``failed``."""
    if not jobs:
        return []
    root = Path(jobs[0].config_path).parent.parent  # <sweep>/configs/<run_id>.toml
    res = read_resources(root)
    check_folder(root / FOLDER)
    outcomes = root / FOLDER / "outcomes"
    for j in jobs:  # an outcome of an earlier submission is not this one's
        outcome_path(outcomes, j.run_id).unlink(missing_ok=True)
    ex = make_executor(root / FOLDER, res)
    task = RunTask(res.gpus_per_run, res.accelerate_config, str(outcomes))
    submitted = ex.map_array(task, jobs)  # one array job, task i = jobs[i]
    if not res.wait:
        bar.update(len(jobs))
        return [Outcome(j.run_id, "submitted", f"job {s.job_id}", 0.0)
                for j, s in zip(jobs, submitted, strict=True)]  # fmt: skip
    out = []
    for j, s in zip(jobs, submitted, strict=True):
        s.wait()  # polls the job's state; unlike s.result() it unpickles nothing
        got = read_outcome(outcomes, j)
        if got is None:  # the task died (killed, out of memory, requeues spent)
            got = Outcome(j.run_id, "failed", f"Slurm job {s.job_id} ended without an outcome "
                          f"(its logs: {root / FOLDER}/{s.job_id}_*_log.*)", 0.0)  # fmt: skip
        out.append(got)
        bar.update(1)
    return out


def visible_gpus() -> list[str]:
    """The GPUs this process may use: ``CUDA_VISIBLE_DEVICES`` when set, else all of them."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip() and d.strip() != "-1"]
    return [str(i) for i in range(torch.cuda.device_count())]


def _pin_gpu(queue: Any) -> None:
    """Worker initializer: take one GPU id for the life of this process, before torch
    initializes CUDA (importing torch does not: CUDA reads ``CUDA_VISIBLE_DEVICES`` at its first
    use), and use one CPU thread for the host side."""
    os.environ["CUDA_VISIBLE_DEVICES"] = queue.get()
    torch.set_num_threads(1)


def execute_gpus(jobs: list[Job], workers: int, bar: Any,
                 devices: list[str] | None = None) -> list[Outcome]:  # fmt: skip
    """``workers`` (at least 1) worker processes per visible GPU (``devices``: GPU ids, default
    :func:`visible_gpus`; choose them with ``CUDA_VISIBLE_DEVICES``), each pinned to its GPU;
    runs go to whichever worker is free. Several runs per GPU suit small models, whose runs
    leave a large GPU mostly idle (kernel launches and the host side dominate)."""
    devices = visible_gpus() if devices is None else list(devices)
    if not devices:
        raise GrammarlabError("the gpus executor found no GPU (CUDA_VISIBLE_DEVICES is empty "
                              "or torch sees no CUDA device)",
                              hint="use --executor parallel on a CPU machine")  # fmt: skip
    ctx = mp.get_context("spawn")  # a fresh interpreter: CUDA is not initialized before the pin
    queue = ctx.Queue()
    slots = [d for d in devices for _ in range(max(1, workers))]
    for d in slots:
        queue.put(d)
    with ProcessPoolExecutor(len(slots), mp_context=ctx, initializer=_pin_gpu,
                             initargs=(queue,)) as pool:  # fmt: skip
        return run_in_pool(jobs, pool, bar)
