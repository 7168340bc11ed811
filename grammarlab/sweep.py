"""Sweeps: a base run config times a grid of values, run ids, executors, tidy tables.

A sweep file (TOML) has a ``[base]`` table (the keys of a train config), a ``[grid]`` table
mapping dotted config keys to lists of values (``n_train = [8, 64]``, ``"lora.rank" = [4, 8]``,
``model = [{preset = "pythia-tiny"}, ...]``; a table value is merged into the config), and any
number of ``[[derive]]`` tables that write grammars into ``<out>/grammars/`` and add them to the
grammar axis:

* ``grammar = "g.cfg"`` + ``entropy_bits = [...]`` (+ ``method = "temper"|"skew"``, ``toward``):
  :func:`grammarlab.tune.tune` of the base grammar to each target entropy (bits per string);
* ``family = "hierarchical"`` + ``p = [...]``, or ``family = "random"`` + ``alphabet_size``
  (+ ``length``, ``oversample``, ``oversample_prob`` / ``target_bits``; any may be a list):
  the paper's families (:mod:`grammarlab.families`).

Every point of the Cartesian product is one run in ``<out>/<run_id>/``; ``run_id`` is the readable
values of the axes plus 8 hex digits of a SHA-256 over the config *and the grammar file's text*,
so editing a grammar gives a new run instead of reusing one trained on the old text.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grammarlab.config import TrainConfig, config_from_dict, dumps_config, resolve
from grammarlab.errors import ConfigError, GrammarlabError
from grammarlab.io import write_text_atomic

SWEEP_KEYS = {"name", "out", "base", "grid", "derive"}
FINISHED = ("done", "diverged")  # terminal states: a relaunch skips these runs
_SAFE = re.compile(r"[^A-Za-z0-9_.=+-]+")


@dataclass(frozen=True)
class SweepRun:
    """One point of a sweep: its id, folder and resolved config."""

    run_id: str
    run_dir: Path
    config: TrainConfig
    point: tuple[tuple[str, Any], ...]  # (dotted key, value) of the grid axes


@dataclass(frozen=True)
class Sweep:
    """An expanded sweep: its name, output folder and runs (in grid order)."""

    name: str
    root: Path
    runs: tuple[SweepRun, ...]


# ----------------------------------------------------------------------------- dotted keys


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested tables -> {dotted key: leaf}; lists (and scalars) are leaves."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def set_dotted(cfg: dict[str, Any], key: str, value: Any) -> None:
    """Set ``a.b.c`` in a nested dict; a dict value is merged into the table already there."""
    *parents, leaf = key.split(".")
    d = cfg
    for p in parents:
        d = d.setdefault(p, {})
        if not isinstance(d, dict):
            raise ConfigError(f"grid key {key!r}: {p!r} is a value, not a table")
    if isinstance(value, dict) and isinstance(d.get(leaf), dict):
        d[leaf] = {**d[leaf], **copy.deepcopy(value)}
    else:
        d[leaf] = copy.deepcopy(value)


# ----------------------------------------------------------------------------- expansion


def load_sweep(path: Path | str, out: Path | str | None = None, runs_dir: str = "runs") -> Sweep:
    """Read and expand a sweep file; derived grammars are written under ``<out>/grammars``.

    ``out`` defaults to the file's ``out`` key, else ``runs/<name>`` (name: the ``name`` key,
    else the file stem). Relative grammar paths are relative to the sweep file's folder."""
    path = Path(path)
    try:
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GrammarlabError("no such sweep file", file=str(path)) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"invalid TOML: {e}", file=str(path)) from None
    name = str(spec.get("name", path.stem))
    root = Path(out or spec.get("out") or Path(runs_dir) / name)
    return expand(spec, root, base_dir=path.parent, source=str(path), name=name)


def expand(
    spec: dict[str, Any],
    root: Path | str,
    base_dir: Path | str = ".",
    source: str = "<sweep>",
    name: str | None = None,
) -> Sweep:
    """The runs of a parsed sweep spec (see the module docstring)."""
    root, base_dir = Path(root), Path(base_dir)
    unknown = set(spec) - SWEEP_KEYS
    if unknown:
        raise ConfigError(f"unknown sweep key(s) {sorted(unknown)}", file=source,
                          hint=f"a sweep file has {sorted(SWEEP_KEYS)}")  # fmt: skip
    base = copy.deepcopy(spec.get("base", {}))
    if not isinstance(base, dict):
        raise ConfigError("[base] must be a table", file=source)
    axes = flatten(spec.get("grid", {}))
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"grid.{key} must be a non-empty list of values", file=source,
                              hint=f'e.g. {key} = [1, 2] (or "{key}" = [...])')  # fmt: skip
    derived = [p for d in _as_list(spec.get("derive", []), source) for p in
               derive_grammars(d, root / "grammars", base_dir, source)]  # fmt: skip
    if "grammar" in axes:
        axes["grammar"] = [_abs(g, base_dir) for g in axes["grammar"]] + derived
    elif derived:
        axes = {"grammar": derived, **axes}
    if "grammar" in base:
        base["grammar"] = _abs(base["grammar"], base_dir)
    runs, seen = [], {}
    keys = list(axes)
    for values in itertools.product(*(axes[k] for k in keys)):
        cfg = copy.deepcopy(base)
        for k, v in zip(keys, values, strict=True):
            set_dotted(cfg, k, v)
        if "grammar" not in cfg:
            raise ConfigError("no grammar: set base.grammar, grid.grammar or a [[derive]]",
                              file=source)  # fmt: skip
        point = tuple((k, v) for k, v in zip(keys, values, strict=True) if len(axes[k]) > 1)
        config = resolve_config(cfg, source)
        rid = run_id(config, point)
        if rid in seen:
            raise ConfigError(f"two grid points give the same run {rid}", file=source,
                              hint="a grid axis lists the same value twice")  # fmt: skip
        seen[rid] = True
        runs.append(SweepRun(rid, root / rid, config, point))
    return Sweep(name or root.name, root, tuple(runs))


def _as_list(v: Any, source: str) -> list[dict[str, Any]]:
    items = v if isinstance(v, list) else [v]
    if not all(isinstance(x, dict) for x in items):
        raise ConfigError("derive must be [[derive]] tables", file=source)
    return items


def _abs(p: Any, base_dir: Path) -> str:
    if not isinstance(p, str):
        raise ConfigError(f"a grammar must be a file path, got {p!r}")
    q = Path(p).expanduser()
    if not q.is_absolute():
        q = base_dir / q if (base_dir / q).exists() or not q.exists() else q
    return str(q.resolve())


def derive_grammars(d: dict[str, Any], folder: Path, base_dir: Path, source: str) -> list[str]:
    """Write the grammars of one ``[[derive]]`` table into ``folder``; their paths, in order.

    A file is rewritten only when its text changes, so its run ids stay stable."""
    d = dict(d)
    prefix = d.pop("name", None)
    if "family" in d:
        from grammarlab.families import hierarchical_grammar, random_grammar

        fam = d.pop("family")
        makers = {"hierarchical": hierarchical_grammar, "random": random_grammar}
        if fam not in makers:
            raise ConfigError(f"unknown family {fam!r}", file=source, hint="hierarchical | random")
        keys = list(d)
        lists = [d[k] if isinstance(d[k], list) else [d[k]] for k in keys]
        out = []
        for values in itertools.product(*lists):
            kw = dict(zip(keys, values, strict=True))
            # name by the values that vary (the list-valued keys)
            tag = "_".join(f"{_short(k)}{_fmt(kw[k])}" for k in keys if isinstance(d[k], list))
            try:
                g = makers[fam](**kw)
            except TypeError as e:
                raise ConfigError(f"derive {fam}: {e}", file=source) from None
            stem = "_".join(x for x in (prefix or fam, tag) if x)
            out.append(_write_grammar(folder / f"{stem}.cfg", g.to_text()))
        return out
    if "grammar" not in d or "entropy_bits" not in d:
        raise ConfigError("a [[derive]] table needs family = ..., or grammar and entropy_bits",
                          file=source)  # fmt: skip
    from grammarlab.grammar import load
    from grammarlab.tune import tune

    src = Path(_abs(d["grammar"], base_dir))
    g = load(src)
    method, toward = d.get("method", "temper"), d.get("toward")
    targets = d["entropy_bits"] if isinstance(d["entropy_bits"], list) else [d["entropy_bits"]]
    out = []
    for t in targets:
        tuned = tune(g, float(t), method=method, toward=toward)
        stem = f"{prefix or src.stem}_{method}_H{_fmt(t)}"
        out.append(_write_grammar(folder / f"{stem}.cfg", tuned.to_text()))
    return out


def _write_grammar(path: Path, text: str) -> str:
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        write_text_atomic(path, text)
    return str(path.resolve())


def _short(key: str) -> str:
    leaf = key.rsplit(".", 1)[-1]
    return {"n_train": "n", "seed": "s", "alphabet_size": "l", "entropy_bits": "H",
            "target_bits": "H", "oversample_prob": "q", "grammar": ""}.get(leaf, leaf)  # fmt: skip


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, dict):
        return "_".join(_fmt(x) for x in v.values())
    return str(v)


def resolve_config(cfg: dict[str, Any], source: str = "<sweep>") -> TrainConfig:
    """The run config of a grid point with every default filled (:func:`grammarlab.config.resolve`,
    which needs the grammar), so that equal runs get equal ids however they were written."""
    from grammarlab.grammar import load

    try:
        c = config_from_dict(cfg)
    except ConfigError as e:
        raise ConfigError(f"{e.diagnostics[0].message} (in a grid point of the sweep)",
                          file=source, hint=e.diagnostics[0].hint) from None  # fmt: skip
    return resolve(c, load(c.grammar))


def run_id(cfg: TrainConfig, point: tuple[tuple[str, Any], ...] = ()) -> str:
    """Readable axis values plus 8 hex digits of :func:`config_hash`."""
    parts = []
    for k, v in point:
        if k == "grammar":
            parts.append(Path(v).stem)
        else:
            parts.append(f"{_short(k)}{_fmt(v)}")
    label = _SAFE.sub("_", "-".join(parts))[:80].strip("_-")
    h = config_hash(cfg)
    return f"{label}-{h}" if label else h


def config_hash(cfg: TrainConfig) -> str:
    """8 hex digits of SHA-256 over the canonical JSON of the config, in which the grammar path
    is replaced by the SHA-256 of the grammar file's text (same text anywhere = same hash)."""
    c = cfg.to_dict()
    g = Path(c["grammar"])
    try:
        c["grammar"] = "sha256:" + hashlib.sha256(g.read_bytes()).hexdigest()
    except FileNotFoundError:
        raise GrammarlabError("grammar file not found", file=str(g)) from None
    blob = json.dumps(c, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


# ----------------------------------------------------------------------------- state


def run_state(run_dir: Path) -> str | None:
    """``status.json``'s state of a run folder (None when it has not started)."""
    from grammarlab.results import read_json_obj

    return (read_json_obj(Path(run_dir) / "status.json") or {}).get("state")


# ----------------------------------------------------------------------------- executors


@dataclass(frozen=True)
class Job:
    """What a worker needs: the run id, its folder and the TOML file of its config."""

    run_id: str
    run_dir: str
    config_path: str
    target: str = "grammarlab.sweep:train_from_file"


@dataclass(frozen=True)
class Outcome:
    """How a job ended: the run's state (``failed`` with the error when it raised)."""

    run_id: str
    state: str | None
    error: str | None
    seconds: float  # wall-clock
    cpu_seconds: float = 0.0  # CPU time of the process that ran it (all its threads)


def train_from_file(config_path: str, run_dir: str) -> str | None:
    """Load a run config (TOML) and train or resume its run folder; the final state."""
    from grammarlab.config import load_config
    from grammarlab.train import train

    status = train(load_config(config_path), Path(run_dir), quiet=True)
    state = status.get("state") if isinstance(status, dict) else getattr(status, "state", None)
    return state or run_state(Path(run_dir))


def run_job(job: Job) -> Outcome:
    """Run one job; any exception becomes a ``failed`` outcome (the sweep goes on)."""
    import importlib
    import time

    t0, c0 = time.perf_counter(), time.process_time()
    module, func = job.target.split(":")
    try:
        state = getattr(importlib.import_module(module), func)(job.config_path, job.run_dir)
        error = None
    except Exception as e:  # noqa: BLE001 - reported per run, the other runs go on
        state, error = "failed", f"{type(e).__name__}: {e}"
    return Outcome(job.run_id, state, error, time.perf_counter() - t0, time.process_time() - c0)


def _init_worker() -> None:
    # Tiny models gain nothing from intra-op threads; one thread per process scales best.
    import torch

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
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

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
    sweep: Sweep,
    executor: str = "local",
    workers: int | None = None,
    progress: bool = True,
    target: str = "grammarlab.sweep:train_from_file",
) -> list[Outcome]:
    """Run every unfinished run of ``sweep`` (finished ones are skipped, unfinished ones resume)
    and write the sweep's tables (:func:`aggregate`). Returns one outcome per run, skipped runs
    included with their state."""
    import os

    from tqdm.auto import tqdm

    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}", hint=f"one of {sorted(EXECUTORS)}")
    sweep.root.mkdir(parents=True, exist_ok=True)
    outcomes, jobs = [], []
    for r in sweep.runs:
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


# ----------------------------------------------------------------------------- tables


@dataclass(frozen=True, eq=False)
class SweepTables:
    """Tidy tables of a sweep (or one run). curves: one row per (run, epoch, dataset) with loss
    (nats/token) and acc; phases: one row per run with exact ``entropy_bits`` (bits/string) and
    the phase and memorization summaries; measures: one row per (run, epoch); per_string: the
    runs' per_string.csv rows (bits per string). notes: what was missing."""

    curves: Any
    phases: Any
    measures: Any
    per_string: Any
    notes: tuple[str, ...]


_ID_COLS = ["run", "grammar", "entropy_bits", "n_train", "seed", "model"]


def collect(path: Path | str) -> SweepTables:
    """The tables of the run folder ``path`` or of every run below it (nothing is written)."""
    import pandas as pd

    from grammarlab.results import find_run_dirs, load_runs
    from grammarlab.results import run_id as rel_id

    root = Path(path)
    t = load_runs(root)
    notes = list(t.notes)
    entropy, per_string = {}, []
    for run in find_run_dirs(root):
        rid = rel_id(run, root)
        entropy[rid] = _entropy_bits(run / "grammar.cfg", notes)
        ps = run / "per_string.csv"
        if ps.is_file():
            per_string.append(pd.read_csv(ps).assign(run=rid))
    varying = [c for c in t.metrics.columns if c.startswith("config.")
               and t.metrics[c].astype(str).nunique() > 1]  # fmt: skip
    tables = []
    for df in (t.metrics, t.phases, t.measures):
        if df.empty:
            tables.append(df)
            continue
        df = df.copy()
        df["entropy_bits"] = df["run"].map(entropy)
        keep = [c for c in df.columns if not c.startswith("config.") or c in varying]
        tables.append(df[keep])
    curves, phases, measures = tables
    ps_df = pd.concat(per_string, ignore_index=True) if per_string else pd.DataFrame()
    if not phases.empty:
        phases = _add_measure_summaries(phases, measures)
        front = [c for c in _ID_COLS if c in phases.columns]
        phases = phases[front + [c for c in phases.columns if c not in front]]
    if not ps_df.empty and not phases.empty:
        ps_df = ps_df.merge(phases[[c for c in _ID_COLS if c in phases.columns]], on="run")
    return SweepTables(curves, phases, measures, ps_df, tuple(notes))


def _entropy_bits(grammar_file: Path, notes: list[str]) -> float:
    """Exact entropy (bits/string) of a grammar file, cached by content; NaN with a note when
    the file or the entropy engine is missing."""
    try:
        text = grammar_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        notes.append(f"{grammar_file}: missing; entropy_bits left empty")
        return math.nan
    return _entropy_of_text(text, str(grammar_file), notes)


_ENTROPY_CACHE: dict[str, float] = {}


def _entropy_of_text(text: str, source: str, notes: list[str]) -> float:
    key = hashlib.sha256(text.encode()).hexdigest()
    if key not in _ENTROPY_CACHE:
        try:
            from grammarlab.entropy import analyze
            from grammarlab.grammar import loads

            rep = analyze(loads(text))
            bits = getattr(rep, "entropy_bits", None)
            _ENTROPY_CACHE[key] = float(rep.to_dict()["entropy_bits"] if bits is None else bits)
        except (ImportError, GrammarlabError, KeyError) as e:
            notes.append(f"{source}: entropy unavailable ({e})")
            return math.nan
    return _ENTROPY_CACHE[key]


# measures.jsonl column -> (summary column, how), added to phases.csv per run
_SUMMARIES = {
    "excess_test_bits": [("min_excess_test_bits", "min"), ("final_excess_test_bits", "last")],
    "memU_train_bits_total": [("final_memU_train_bits_total", "last"),
                              ("max_memU_train_bits_total", "max")],
    "memU_test_bits_total": [("final_memU_test_bits_total", "last")],
    "memU_bits_per_param": [("final_memU_bits_per_param", "last")],
}  # fmt: skip


def _add_measure_summaries(phases: Any, measures: Any) -> Any:
    """phases + per-run summaries of measures (bits); NaN where a run has no measures."""
    import pandas as pd

    phases = phases.copy()
    for col, outs in _SUMMARIES.items():
        for name, how in outs:
            phases[name] = math.nan
            if measures.empty or col not in measures.columns:
                continue
            m = measures.dropna(subset=[col]).sort_values("epoch").groupby("run")[col]
            phases[name] = phases["run"].map(getattr(m, how)()).astype(float)
    if not measures.empty and "excess_test_bits" in measures.columns:
        m = measures.dropna(subset=["excess_test_bits"])
        idx = m.groupby("run")["excess_test_bits"].idxmin()
        phases["min_excess_test_bits_epoch"] = phases["run"].map(
            pd.Series(m.loc[idx, "epoch"].to_numpy(), index=m.loc[idx, "run"].to_numpy())
        )
    return phases


def aggregate(root: Path | str) -> SweepTables:
    """Write ``curves.csv``, ``phases.csv``, ``measures.csv`` (and ``per_string.csv``) into the
    sweep folder ``root`` (atomically) and return the tables."""
    from grammarlab.io import write_atomic

    root = Path(root)
    t = collect(root)
    for name, df in (("curves", t.curves), ("phases", t.phases), ("measures", t.measures),
                     ("per_string", t.per_string)):  # fmt: skip
        write_atomic(root / f"{name}.csv", lambda p, df=df: df.to_csv(p, index=False))
    return t


SUMMARY_COLUMNS = {
    "grammar": "grammar", "entropy_bits": "H bits", "n_train": "n",
    "memorization_onset_epoch": "onset", "generalization_end_epoch": "gen end",
    "min_test_loss": "min test nats/tok", "min_excess_test_bits": "min excess bits",
    "final_memU_train_bits_total": "memU train bits",
}  # fmt: skip


def summary_table(phases: Any) -> str:
    """A plain-text table of the phases, one line per run, sorted by grammar entropy and n."""
    if phases.empty:
        return "(no runs)"
    cols = [c for c in SUMMARY_COLUMNS if c in phases.columns]
    df = phases.sort_values([c for c in ("entropy_bits", "n_train", "seed") if c in phases])
    df = df[cols].rename(columns=SUMMARY_COLUMNS)
    return df.to_string(index=False, float_format=lambda x: f"{x:.3g}", na_rep="-")
