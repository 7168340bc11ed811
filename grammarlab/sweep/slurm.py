"""Sweeps on a Slurm cluster (through submitit) and on the GPUs of one machine.

Two executors with the signature of :data:`grammarlab.sweep.execute.EXECUTORS`
(``jobs, workers, bar -> outcomes``):

* ``slurm``: the sweep's unfinished runs as ONE Slurm array job, one run per array task, with
  the resources of the sweep file's ``[resources]`` table (:class:`Resources`). A task that is
  preempted or reaches its time limit is requeued (submitit's checkpoint protocol,
  :class:`RunTask`) and the relaunched training resumes from the run folder's last checkpoint,
  as any resumed run does. submitit's logs and pickles go to ``<sweep>/slurm/``.
* ``gpus``: one worker process per visible GPU, each pinned to its GPU through
  ``CUDA_VISIBLE_DEVICES`` before torch starts, taking the next run when it finishes one.

The ``[resources]`` table of a sweep file (all keys optional)::

    [resources]
    gpus_per_run = 1        # 0: CPU-only runs; > 1: accelerate launch (accelerate_config)
    cpus_per_run = 4
    mem_gb = 64             # host memory per run
    time_min = 120          # per task; past it the task is requeued and resumes
    partition = "gpu"
    account = "my-lab"
    qos = "normal"
    constraint = "h100"
    max_parallel = 16       # array tasks running at once
    max_requeues = 5        # preemptions/timeouts before a run is given up
    setup = ["module load cuda/12.4"]   # shell lines before each task
    accelerate_config = "configs/accelerate/fsdp_llama3_8b_1x8.yaml"
    wait = true             # false: submit and return (rerun the sweep to collect tables)
    cluster = "slurm"       # or "local" (submitit's local processes); unset: slurm if present

:func:`load_sweep` reads it next to the sweep (the sweep loader does not know the table) and
:func:`run_sweep_file` runs a sweep file with one of these executors
(``python -m grammarlab.sweep.slurm SWEEP.toml``, :func:`main`). The executors read the
resources that :func:`run_sweep_file` saved to ``<sweep>/slurm/resources.json``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grammarlab.errors import ConfigError, GrammarlabError
from grammarlab.io import write_json_atomic

if TYPE_CHECKING:
    from grammarlab.sweep.execute import Job, Outcome
    from grammarlab.sweep.spec import Sweep

TABLE = "resources"
CLUSTERS = ("slurm", "local", "debug")  # submitit's executors (local: processes, no Slurm)
FOLDER = "slurm"  # under the sweep root: submitit's files and resources.json


@dataclass(frozen=True)
class Resources:
    """The ``[resources]`` table of a sweep file: what each run of the sweep gets."""

    gpus_per_run: int = 1
    cpus_per_run: int = 4
    mem_gb: float | None = None
    time_min: int = 120
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    max_parallel: int | None = None
    max_requeues: int = 5
    setup: tuple[str, ...] = ()
    accelerate_config: str | None = None
    wait: bool = True
    cluster: str | None = None  # submitit's: slurm | local | debug; None: slurm if it exists

    def __post_init__(self) -> None:
        object.__setattr__(self, "setup", tuple(self.setup))
        checks = {
            "gpus_per_run": (int, lambda v: v >= 0, "an integer >= 0"),
            "cpus_per_run": (int, lambda v: v >= 1, "an integer >= 1"),
            "time_min": (int, lambda v: v >= 1, "an integer >= 1 (minutes)"),
            "max_requeues": (int, lambda v: v >= 0, "an integer >= 0"),
            "max_parallel": (int, lambda v: v >= 1, "an integer >= 1, or unset"),
            "mem_gb": ((int, float), lambda v: v > 0, "a number > 0 (GB), or unset"),
            "wait": (bool, lambda v: True, "true or false"),
        }
        for name, (tp, ok, valid) in checks.items():
            v = getattr(self, name)
            if v is None and name in ("max_parallel", "mem_gb"):
                continue
            if isinstance(v, bool) != (tp is bool) or not isinstance(v, tp) or not ok(v):
                raise ConfigError(f"resources.{name} must be {valid}, got {v!r}")
        for name in ("partition", "account", "qos", "constraint", "accelerate_config"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, str) or not v.strip()):
                raise ConfigError(f"resources.{name} must be a non-empty string, got {v!r}")
        if self.cluster not in (None, *CLUSTERS):
            raise ConfigError(f"resources.cluster must be one of {', '.join(CLUSTERS)} or unset, "
                              f"got {self.cluster!r}")  # fmt: skip
        if not all(isinstance(s, str) for s in self.setup):
            raise ConfigError("resources.setup must be a list of shell lines (strings)")
        if self.gpus_per_run > 1 and self.accelerate_config is None:
            raise ConfigError(
                f"resources.gpus_per_run = {self.gpus_per_run} needs an accelerate config",
                hint='set resources.accelerate_config = "configs/accelerate/...yaml"',
            )


def resources_from_dict(data: dict[str, Any], source: str = "<sweep>") -> Resources:
    """A :class:`Resources` from a ``[resources]`` table; unknown keys are errors."""
    names = [f.name for f in dataclasses.fields(Resources)]
    for key in data:
        if key not in names:
            raise ConfigError(f"unknown key resources.{key}", file=source,
                              hint=f"valid keys in [resources]: {', '.join(names)}")  # fmt: skip
    try:
        return Resources(**data)
    except ConfigError as e:
        d = e.diagnostics[0]
        raise ConfigError(d.message, file=source, hint=d.hint) from None


def load_sweep(path: Path | str, out: Path | str | None = None) -> tuple[Sweep, Resources]:
    """The sweep of a sweep file and its ``[resources]`` (defaults when absent). The table is
    taken out before the sweep is expanded, so it never changes a run id."""
    from grammarlab.sweep.spec import expand

    path = Path(path)
    try:
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GrammarlabError("no such sweep file", file=str(path)) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"invalid TOML: {e}", file=str(path)) from None
    table = spec.pop(TABLE, {})
    if not isinstance(table, dict):
        raise ConfigError("[resources] must be a table", file=str(path))
    res = resources_from_dict(table, str(path))
    name = str(spec.get("name", path.stem))
    root = Path(out or spec.get("out") or Path("runs") / name)
    return expand(spec, root, base_dir=path.parent, source=str(path), name=name), res


def save_resources(root: Path, res: Resources) -> None:
    """``<root>/slurm/resources.json``: what the executors of this sweep read."""
    write_json_atomic(Path(root) / FOLDER / "resources.json", dataclasses.asdict(res))


def read_resources(root: Path) -> Resources:
    """The resources saved for the sweep in ``root`` (defaults when none were saved)."""
    path = Path(root) / FOLDER / "resources.json"
    if not path.is_file():
        return Resources()
    return resources_from_dict(json.loads(path.read_text(encoding="utf-8")), str(path))


def run_sweep_file(path: Path | str, executor: str = "slurm", out: Path | str | None = None,
                   cluster: str | None = None) -> list[Outcome]:  # fmt: skip
    """Run a sweep file with its ``[resources]``: save them, then
    :func:`grammarlab.sweep.execute.run_sweep` with ``executor`` (``slurm`` or ``gpus``).
    ``cluster`` overrides ``resources.cluster``."""
    from grammarlab.sweep.execute import run_sweep

    sweep, res = load_sweep(path, out)
    if cluster is not None:
        res = dataclasses.replace(res, cluster=cluster)
    sweep.root.mkdir(parents=True, exist_ok=True)
    save_resources(sweep.root, res)
    return run_sweep(sweep, executor=executor, progress=False)


# ----------------------------------------------------------------------------- the task


class RunTask:
    """What one array task runs: train (or resume) one run; submitit pickles it.

    It has submitit's ``checkpoint`` method: on preemption or timeout submitit calls it and
    requeues the task with the same job, and the training resumes from the run folder's last
    checkpoint (the run folder is the state; nothing else needs saving)."""

    def __init__(self, gpus: int = 1, accelerate_config: str | None = None) -> None:
        self.gpus = gpus
        self.accelerate_config = accelerate_config

    def __call__(self, job: Job) -> Outcome:
        from grammarlab.sweep.execute import Outcome, run_job

        if self.gpus <= 1:
            return run_job(job)
        # several GPUs per run: one process per GPU under accelerate (untested here: no GPU)
        cmd = [sys.executable, "-m", "accelerate.commands.launch",
               "--config_file", str(self.accelerate_config), "--num_processes", str(self.gpus),
               "-m", "grammarlab", "train", job.config_path, "--out", job.run_dir,
               "--quiet"]  # fmt: skip
        rc = subprocess.run(cmd, check=False).returncode
        from grammarlab.sweep.execute import run_state

        state = run_state(Path(job.run_dir)) if rc == 0 else "failed"
        return Outcome(job.run_id, state, None if rc == 0 else f"accelerate exit code {rc}", 0.0)

    def checkpoint(self, job: Job) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(self, job)


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
    from grammarlab.sweep.execute import Outcome

    if not jobs:
        return []
    root = Path(jobs[0].config_path).parent.parent  # <sweep>/configs/<run_id>.toml
    res = read_resources(root)
    ex = make_executor(root / FOLDER, res)
    task = RunTask(res.gpus_per_run, res.accelerate_config)
    submitted = ex.map_array(task, jobs)  # one array job, task i = jobs[i]
    if not res.wait:
        bar.update(len(jobs))
        return [Outcome(j.run_id, "submitted", f"job {s.job_id}", 0.0)
                for j, s in zip(jobs, submitted, strict=True)]  # fmt: skip
    out = []
    for j, s in zip(jobs, submitted, strict=True):
        try:
            out.append(s.result())
        except Exception as e:  # noqa: BLE001 - the task died (killed, out of memory, requeues)
            out.append(Outcome(j.run_id, "failed", f"{type(e).__name__}: {e}", 0.0))
        bar.update(1)
    return out


def visible_gpus() -> list[str]:
    """The GPUs this process may use: ``CUDA_VISIBLE_DEVICES`` when set, else all of them."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip() and d.strip() != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def _pin_gpu(queue: Any) -> None:
    """Worker initializer: take one GPU id for the life of this process, before torch starts
    CUDA, and use one CPU thread for the host side."""
    os.environ["CUDA_VISIBLE_DEVICES"] = queue.get()
    import torch

    torch.set_num_threads(1)


def execute_gpus(jobs: list[Job], workers: int, bar: Any,
                 devices: list[str] | None = None) -> list[Outcome]:  # fmt: skip
    """One worker process per visible GPU (``devices``: GPU ids, default
    :func:`visible_gpus`), each pinned to its GPU; runs go to whichever worker is free.
    ``workers`` is unused (choose GPUs with ``CUDA_VISIBLE_DEVICES``)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from grammarlab.sweep.execute import Outcome, run_job

    devices = visible_gpus() if devices is None else list(devices)
    if not devices:
        raise GrammarlabError("the gpus executor found no GPU (CUDA_VISIBLE_DEVICES is empty "
                              "or torch sees no CUDA device)",
                              hint="use --executor parallel on a CPU machine")  # fmt: skip
    ctx = mp.get_context("spawn")  # a fresh interpreter: CUDA is not initialized before the pin
    queue = ctx.Queue()
    for d in devices:
        queue.put(d)
    out = []
    with ProcessPoolExecutor(len(devices), mp_context=ctx, initializer=_pin_gpu,
                             initargs=(queue,)) as pool:  # fmt: skip
        futures = {pool.submit(run_job, j): j for j in jobs}
        for f in as_completed(futures):
            try:
                out.append(f.result())
            except Exception as e:  # noqa: BLE001 - a worker died: its run is reported failed
                out.append(Outcome(futures[f].run_id, "failed", f"{type(e).__name__}: {e}", 0.0))
            bar.update(1)
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m grammarlab.sweep.slurm SWEEP.toml``: run a sweep file with its
    ``[resources]`` on Slurm (or the local GPUs), then write the sweep's tables. Stands in for
    ``grammarlab sweep --executor slurm|gpus`` until the sweep loader knows ``[resources]``."""
    import argparse

    from grammarlab.sweep.tables import aggregate, summary_table

    p = argparse.ArgumentParser(prog="python -m grammarlab.sweep.slurm", description=main.__doc__)
    p.add_argument("file", metavar="SWEEP.toml")
    p.add_argument("--executor", default="slurm", choices=("slurm", "gpus"))
    p.add_argument("--out", help="sweep folder (default: the file's out, else runs/<name>)")
    p.add_argument("--cluster", choices=CLUSTERS, help="override resources.cluster")
    args = p.parse_args(argv)
    try:
        outcomes = run_sweep_file(args.file, args.executor, args.out, args.cluster)
        root = load_sweep(args.file, args.out)[0].root
    except GrammarlabError as e:
        print(str(e), file=sys.stderr)
        return 2
    states: dict[str, int] = {}
    for o in outcomes:
        states[str(o.state)] = states.get(str(o.state), 0) + 1
        if o.state == "failed":
            print(f"{o.run_id}: failed: {o.error}", file=sys.stderr)
    print("runs: " + ", ".join(f"{n} {s}" for s, n in sorted(states.items())), file=sys.stderr)
    if all(o.state in ("done", "diverged") for o in outcomes):
        print(summary_table(aggregate(root).phases))
    return 1 if "failed" in states else 0


if __name__ == "__main__":
    sys.exit(main())
