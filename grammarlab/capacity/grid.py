"""The capacity grid: its runs, their result files, and running them (resumable).

A grid folder holds ``grid.json`` (the resolved config), ``lock`` and ``runs/<run_id>.json``,
one file per finished run (its settings, measurement curve and final measurement), written
atomically. A run id ends in a digest of every setting that determines the run's result
(:meth:`RunSpec.settings`), so two grids with the same name but another lr, step budget or
saturation rule in one folder never share a file, and a grid reports only its own runs. One
grid process at a time holds the folder's lock (``fcntl.flock``; a second one is refused). A run
whose file exists and records the same settings is skipped on relaunch; a killed grid therefore
loses at most the runs in flight. A run whose loss becomes NaN or infinite is recorded as
``diverged`` (its curve up to then) and the grid goes on; the analysis leaves it out and counts
it. A result file that is not a run record of this grid is an error naming it, not redone.

Runs go one after another in this process (``workers = 1``: transformers imported once, the
grammar compiled once) or over ``workers`` local processes, each with one torch thread.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import multiprocessing as mp
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from grammarlab.capacity.config import CapacityConfig, config_from_dict
from grammarlab.capacity.data import make_data
from grammarlab.capacity.train import train_run
from grammarlab.errors import GrammarlabError
from grammarlab.io import write_json_atomic
from grammarlab.train.models import ModelSpec, resolve_preset

GRID_FILE = "grid.json"
RUNS_DIR = "runs"
LOCK_FILE = "lock"
#: the keys every finished run's record has (what the analysis reads)
RECORD_KEYS = ("run_id", "settings", "n_params", "dataset_bits", "final", "curve")


@dataclass(frozen=True)
class RunSpec:
    """The coordinates of one run in the grid."""

    model: ModelSpec
    n_train: int
    seed: int
    dtype: str

    @property
    def model_id(self) -> str:
        """Short name of the model size, e.g. ``pythia-tiny-h32-l1-a4-i128``."""
        p = resolve_preset(self.model)
        m = self.model
        return (f"{p.name}-h{m.hidden_size or p.hidden_size}-l{m.num_layers or p.num_layers}"
                f"-a{m.num_heads or p.num_heads}"
                f"-i{m.intermediate_size or p.intermediate_size}")  # fmt: skip

    def run_id(self, cfg: CapacityConfig) -> str:
        """``<model>_n<N>_<dtype>_s<seed>_<digest>``: the digest (12 hex digits of SHA-256) is
        of :meth:`settings`, so runs of other settings never share a name."""
        text = json.dumps(self.settings(cfg), sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
        return f"{self.model_id}_n{self.n_train}_{self.dtype}_s{self.seed}_{digest}"

    def settings(self, cfg: CapacityConfig) -> dict[str, Any]:
        """Everything that determines this run's result (what a relaunch must match).
        ``family`` is the preset's name (pythia-tiny and pythia-tiny-seq are both GPT-NeoX but
        differ in the residual: the fits keep them apart)."""
        d = cfg.to_dict()
        return {
            "model_id": self.model_id,
            "family": resolve_preset(self.model).name,
            "n_train": self.n_train,
            "seed": self.seed,
            "dtype": self.dtype,
            "alphabet_size": cfg.alphabet_size,
            "length": cfg.length,
            "n_test": min(cfg.n_test, self.n_train),
            "train": d["train"],
            "saturation": d["saturation"],
        }


def expand(cfg: CapacityConfig) -> list[RunSpec]:
    """All runs of the grid: seed by seed, within a seed dtype by dtype, then model by model
    with the largest datasets first (a parallel pool starts its longest runs early). A grid
    stopped part-way thus has every model size and dtype of its first seeds, which is what a
    bits-per-parameter fit per dtype needs."""
    return [
        RunSpec(m, n, s, d)
        for s in cfg.seeds
        for d in cfg.dtypes
        for m in cfg.models
        for n in sorted(cfg.dataset_sizes, reverse=True)
    ]


def run_path(root: Path, run: RunSpec, cfg: CapacityConfig) -> Path:
    return Path(root) / RUNS_DIR / f"{run.run_id(cfg)}.json"


def _bad_file(path: Path, what: str) -> GrammarlabError:
    return GrammarlabError(f"{what}: not a capacity run record", file=str(path),
                           hint="delete the file to redo the run")  # fmt: skip


def read_json_file(path: Path) -> Any:
    """The JSON content of ``path``, None when it does not exist; a file that is no JSON text
    (binary, truncated, a directory) is a GrammarlabError naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise _bad_file(path, f"cannot read it ({type(e).__name__}: {e})") from None


def read_result(path: Path) -> dict[str, Any] | None:
    """A run's result record, or None when the file is missing (a run to do). A file that is
    not a record (unreadable, not a JSON object, missing keys, a non-numeric final
    measurement) is a GrammarlabError naming it: a run file is only ever written whole, so a
    bad one was edited or made by something else, and redoing it silently would hide that."""
    rec = read_json_file(path)
    if rec is None:
        return None
    if not isinstance(rec, dict):
        raise _bad_file(Path(path), f"a JSON {type(rec).__name__}, not an object")
    if rec.get("diverged") is True:
        keys: tuple[str, ...] = ("run_id", "settings")
    else:
        keys = RECORD_KEYS
    missing = [k for k in keys if k not in rec]
    if missing:
        raise _bad_file(Path(path), f"it lacks {', '.join(missing)}")
    if not isinstance(rec["settings"], dict):
        raise _bad_file(Path(path), "its settings are not an object")
    if rec.get("diverged") is not True:
        final = rec["final"]
        num = (int, float)
        ok = (isinstance(final, dict) and isinstance(rec["curve"], list)
              and all(isinstance(final.get(k), num) and not isinstance(final.get(k), bool)
                      for k in ("mem_bits", "mem_bits_signed", "auc"))
              and all(isinstance(p, dict) and isinstance(p.get("mem_bits"), num)
                      for p in rec["curve"])
              and isinstance(rec["n_params"], int)
              and isinstance(rec["dataset_bits"], num))  # fmt: skip
        if not ok:
            raise _bad_file(Path(path), "its final measurement, curve or sizes are malformed")
    return rec


def run_one(cfg: CapacityConfig, run: RunSpec, root: Path) -> dict[str, Any]:
    """Train ``run``, write its result file atomically and return the record. A run whose loss
    is no longer finite is recorded as diverged (``diverged: true``, its curve so far)."""
    settings = run.settings(cfg)
    data = make_data(cfg.alphabet_size, cfg.length, run.n_train, settings["n_test"], run.seed)
    result = train_run(cfg, run.model, run.n_train, run.seed, run.dtype, data)
    record = {"run_id": run.run_id(cfg), "settings": settings, **result}
    write_json_atomic(run_path(root, run, cfg), record)
    return record


def _state(cfg: CapacityConfig, run: RunSpec, root: Path) -> str:
    """ "done" (a result with the same settings exists) or "todo"; raises on a result file
    that was made with other settings."""
    old = read_result(run_path(root, run, cfg))
    if old is None:
        return "todo"
    if old.get("settings") != run.settings(cfg):
        raise GrammarlabError(
            f"{run_path(root, run, cfg)} was made with other settings than this config's",
            file=str(run_path(root, run, cfg)),
            hint="a grid folder belongs to one config: use another --out, or delete the folder",
        )
    return "done"


def _worker_init() -> None:
    torch.set_num_threads(1)  # tiny models gain nothing from intra-op threads


def _run_in_worker(cfg_dict: dict[str, Any], run: RunSpec, root: str) -> dict[str, Any]:
    return run_one(config_from_dict(cfg_dict), run, Path(root))


@contextlib.contextmanager
def grid_lock(root: Path):
    """Hold the grid folder's exclusive lock (``root/lock``, never followed through a symlink);
    a GrammarlabError when another process holds it."""
    path = Path(root) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    except OSError as e:
        why = "it is a symlink" if e.errno == errno.ELOOP else e.strerror
        raise GrammarlabError(f"cannot open the grid lock ({why})", file=str(path)) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise GrammarlabError(
                "another capacity process is running this grid folder", file=str(path),
                hint="wait for it, or give this grid another --out",
            ) from None  # fmt: skip
        yield
    finally:
        os.close(fd)


def run_grid(
    cfg: CapacityConfig,
    root: Path | str,
    workers: int = 1,
    progress: Callable[[str, dict[str, Any] | None], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every run of the grid that has no result yet; return all result records (old and
    new) in grid order. ``progress(run_id, record)`` is called after each run."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with grid_lock(root):
        return _run_grid_locked(cfg, root, workers, progress)


def _run_grid_locked(cfg: CapacityConfig, root: Path, workers: int,
                     progress: Callable | None) -> list[dict[str, Any]]:  # fmt: skip
    grid_file = root / GRID_FILE
    old = read_json_file(grid_file)
    if old is not None and not isinstance(old, dict):
        raise GrammarlabError("not a grid description (a JSON object)", file=str(grid_file))
    if old is not None and old.get("name") != cfg.name:
        raise GrammarlabError(
            f"{grid_file} belongs to the grid {old.get('name')!r}, not {cfg.name!r}",
            file=str(grid_file), hint="use another --out for another config",
        )  # fmt: skip
    write_json_atomic(grid_file, cfg.to_dict())
    runs = expand(cfg)
    todo = [r for r in runs if _state(cfg, r, root) == "todo"]
    for r in runs:
        if r not in todo and progress is not None:
            progress(r.run_id(cfg), None)
    if workers <= 1:
        for r in todo:
            rec = run_one(cfg, r, root)
            if progress is not None:
                progress(r.run_id(cfg), rec)
    else:
        _run_parallel(cfg, todo, root, workers, progress)
    return collect(root, runs, cfg)


def _run_parallel(cfg: CapacityConfig, todo: list[RunSpec], root: Path, workers: int,
                  progress: Callable | None) -> None:  # fmt: skip
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(workers, mp_context=mp.get_context(method),
                             initializer=_worker_init) as pool:  # fmt: skip
        futures = {pool.submit(_run_in_worker, cfg.to_dict(), r, str(root)): r for r in todo}
        for f in as_completed(futures):
            rec = f.result()
            if progress is not None:
                progress(futures[f].run_id(cfg), rec)


def collect(root: Path | str, runs: Iterable[RunSpec] | None = None,
            cfg: CapacityConfig | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """The result records of a grid folder (of ``runs`` of ``cfg`` when given, in that order;
    else every file under ``runs/``, sorted by name), diverged runs included."""
    root = Path(root)
    if runs is not None and cfg is not None:
        recs = [read_result(run_path(root, r, cfg)) for r in runs]
        return [r for r in recs if r is not None]
    folder = root / RUNS_DIR
    names = sorted(os.listdir(folder)) if folder.is_dir() else []
    recs = [read_result(folder / n) for n in names if n.endswith(".json")]
    return [r for r in recs if r is not None]
