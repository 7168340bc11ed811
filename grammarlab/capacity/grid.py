"""The capacity grid: its runs, their result files, and running them (resumable).

A grid folder holds ``grid.json`` (the resolved config) and ``runs/<run_id>.json``, one file
per finished run (its settings, measurement curve and final measurement), written atomically.
A run whose file exists and records the same run settings is skipped on relaunch; a killed
grid therefore loses at most the runs in flight. A file from different settings is an error (a
grid folder belongs to one config), not silently mixed in.

Runs go one after another in this process (``workers = 1``: transformers imported once, the
grammar compiled once) or over ``workers`` local processes, each with one torch thread.
"""

from __future__ import annotations

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

    @property
    def run_id(self) -> str:
        return f"{self.model_id}_n{self.n_train}_{self.dtype}_s{self.seed}"

    def settings(self, cfg: CapacityConfig) -> dict[str, Any]:
        """Everything that determines this run's result (what a relaunch must match)."""
        d = cfg.to_dict()
        return {
            "model_id": self.model_id,
            "family": resolve_preset(self.model).family,
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


def run_path(root: Path, run: RunSpec) -> Path:
    return Path(root) / RUNS_DIR / f"{run.run_id}.json"


def read_result(path: Path) -> dict[str, Any] | None:
    """A run's result record, or None when the file is missing or unreadable (a run to do)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def run_one(cfg: CapacityConfig, run: RunSpec, root: Path) -> dict[str, Any]:
    """Train ``run``, write its result file atomically and return the record."""
    settings = run.settings(cfg)
    data = make_data(cfg.alphabet_size, cfg.length, run.n_train, settings["n_test"], run.seed)
    result = train_run(cfg, run.model, run.n_train, run.seed, run.dtype, data)
    record = {"run_id": run.run_id, "settings": settings, **result}
    write_json_atomic(run_path(root, run), record)
    return record


def _state(cfg: CapacityConfig, run: RunSpec, root: Path) -> str:
    """ "done" (a result with the same settings exists) or "todo"; raises on a result file
    that was made with other settings."""
    old = read_result(run_path(root, run))
    if old is None:
        return "todo"
    if old.get("settings") != run.settings(cfg):
        raise GrammarlabError(
            f"{run_path(root, run)} was made with other settings than this config's",
            file=str(run_path(root, run)),
            hint="a grid folder belongs to one config: use another --out, or delete the folder",
        )
    return "done"


def _worker_init() -> None:
    torch.set_num_threads(1)  # tiny models gain nothing from intra-op threads


def _run_in_worker(cfg_dict: dict[str, Any], run: RunSpec, root: str) -> dict[str, Any]:
    return run_one(config_from_dict(cfg_dict), run, Path(root))


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
    grid_file = root / GRID_FILE
    old = read_result(grid_file)
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
            progress(r.run_id, None)
    if workers <= 1:
        for r in todo:
            rec = run_one(cfg, r, root)
            if progress is not None:
                progress(r.run_id, rec)
    else:
        _run_parallel(cfg, todo, root, workers, progress)
    return collect(root, runs)


def _run_parallel(cfg: CapacityConfig, todo: list[RunSpec], root: Path, workers: int,
                  progress: Callable | None) -> None:  # fmt: skip
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(workers, mp_context=mp.get_context(method),
                             initializer=_worker_init) as pool:  # fmt: skip
        futures = {pool.submit(_run_in_worker, cfg.to_dict(), r, str(root)): r for r in todo}
        for f in as_completed(futures):
            rec = f.result()
            if progress is not None:
                progress(futures[f].run_id, rec)


def collect(root: Path | str, runs: Iterable[RunSpec] | None = None) -> list[dict[str, Any]]:
    """The result records of a grid folder (of ``runs`` when given, in that order; else every
    file under ``runs/``, sorted by name)."""
    root = Path(root)
    if runs is not None:
        recs = [read_result(run_path(root, r)) for r in runs]
        return [r for r in recs if r is not None]
    folder = root / RUNS_DIR
    names = sorted(os.listdir(folder)) if folder.is_dir() else []
    recs = [read_result(folder / n) for n in names if n.endswith(".json")]
    return [r for r in recs if r is not None]
