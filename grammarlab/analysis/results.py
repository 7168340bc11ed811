"""The records of run folders as raw per-run tables: :func:`read_runs`, the first step of
:func:`grammarlab.load_runs` (:mod:`grammarlab.analysis.tables`, which adds the grammar columns
and the measure summaries: use that one).

A run folder is any folder holding metrics (runs/folder.py reads it). Tables load runs that are
still being written: an incomplete last metrics line is left out with a warning naming it,
missing optional files give empty results and a note.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from grammarlab.analysis.phases import Curves, detect_phases
from grammarlab.errors import GrammarlabError
from grammarlab.runs.folder import PHASES, RunDir, find_runs, run_id

# standard config columns -> config keys (leaf names) that may hold them, first found wins
CONFIG_COLUMNS = {
    "grammar": ("grammar", "grammar_path", "grammar_file", "grammar_name"),
    "n_train": ("n_train", "train_size", "n_train_strings"),
    "seed": ("seed", "data_seed"),
    "model": ("model", "model_name", "preset"),
}
_SERIES = re.compile(r"^(?P<dataset>.+)_(?P<kind>loss|acc)$")


def config_columns(flat: dict[str, Any]) -> dict[str, Any]:
    """Standard columns (grammar, n_train, seed, model; None when unknown) plus every config
    value as ``config.<dotted key>``. The grammar's entropy is not a config value: the tables
    compute it from the run's grammar (:mod:`grammarlab.analysis.tables`)."""
    out: dict[str, Any] = {}
    for col, leaves in CONFIG_COLUMNS.items():
        out[col] = next(
            (flat[k] for leaf in leaves for k in flat if k.rsplit(".", 1)[-1] == leaf), None
        )
    if isinstance(out["grammar"], str) and "/" in out["grammar"]:
        out["grammar"] = Path(out["grammar"]).stem
    out.update({f"config.{k}": v for k, v in flat.items()})
    return out


@dataclass(frozen=True, eq=False)
class RunTables:
    """Raw per-run tables of one or more runs (:func:`read_runs`).

    metrics: one row per (run, epoch, dataset) with loss (nats/token) and acc, plus stage, lr and
    config columns. phases: one row per run (``phases_source`` says file or computed). measures:
    one row per (run, epoch) from measures.jsonl. notes: what is missing and why."""

    metrics: pd.DataFrame
    phases: pd.DataFrame
    measures: pd.DataFrame
    notes: tuple[str, ...] = ()


def _metric_rows(rid: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for r in records:
        series: dict[str, dict[str, Any]] = {}
        for k, v in r.items():
            m = _SERIES.match(k)
            if m:
                series.setdefault(m["dataset"], {})[m["kind"]] = v
        for ds, vals in series.items():
            rows.append({
                "run": rid, "epoch": int(r["epoch"]), "stage": r.get("stage", 1),
                "lr": r.get("lr"), "dataset": ds,
                "loss": _float(vals.get("loss")), "acc": _float(vals.get("acc")),
            })  # fmt: skip
    return rows


def _float(v: Any) -> float:
    return math.nan if v is None else float(v)


def read_records(run: RunDir, notes: list[str]) -> list[dict[str, Any]]:
    """A run's metrics for tables: an incomplete last line (a run being written) is left out
    with a warning and a note."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = run.read_metrics(partial_ok=True)
    for w in caught:
        notes.append(str(w.message))
        warnings.warn(w.message, stacklevel=2)
    return records


def read_runs(path: Path | str) -> RunTables:
    """Metrics, phases and measures of the run folder ``path``, or of every run below it.

    Phases come from phases.json, else are computed from the metrics (pure and cheap); measures
    come from measures.jsonl, else are left out with a note (``grammarlab measures RUN``
    computes them). Unfinished runs load with the epochs they have."""
    root = Path(path)
    metrics, phases, measures, notes = [], [], [], []
    for run in find_runs(root):
        rid = run_id(run, root)
        cfg = config_columns(run.config_values())
        status = run.read_status()
        records = read_records(run, notes)
        if not records:
            notes.append(f"{rid}: no epochs recorded yet")
            continue
        metrics += [{**row, **cfg} for row in _metric_rows(rid, records)]
        ph, source = run.read_phases(), PHASES  # the column says where phases came from
        if ph is None:
            try:
                ph, source = detect_phases(Curves.from_records(records)).to_dict(), "computed"
            except GrammarlabError as e:
                ph, source = {}, "unavailable"
                notes.append(f"{rid}: phases unavailable: {e}")
        phases.append({"run": rid, "status": status.state if status else None,
                       "phases_source": source, **ph, **cfg})  # fmt: skip
        rows = run.read_measures()
        if not rows:
            notes.append(f"{rid}: no measures.jsonl (run `grammarlab measures {run}`)")
        measures += [{"run": rid, **r, **cfg} for r in rows]
    return RunTables(
        pd.DataFrame(metrics), pd.DataFrame(phases), pd.DataFrame(measures), tuple(notes)
    )
