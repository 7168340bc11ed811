"""A sweep's tidy tables: curves.csv, phases.csv, measures.csv, per_string.csv and
per_position.csv.

:func:`collect` reads every run folder below a path
(:func:`grammarlab.analysis.results.load_runs`, runs/folder.py), or a folder of saved tables when
it holds no runs (:func:`load_saved`: the small tables committed in experiments/results/), adds
each grammar's exact entropy (bits/string, cached by the grammar's text) and per-run summaries
of the memorization measures to the phases; :func:`aggregate` writes the tables into the sweep
folder; :func:`summary_table` prints the phases as plain text, censored events as censored
(:func:`grammarlab.analysis.phases.format_event`).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grammarlab.analysis.phases import format_event
from grammarlab.analysis.results import load_runs
from grammarlab.errors import GrammarlabError
from grammarlab.grammar.entropy import analyze
from grammarlab.grammar.load import loads
from grammarlab.io import write_atomic
from grammarlab.runs.folder import RunDir, find_runs, has_runs, run_id


@dataclass(frozen=True, eq=False)
class SweepTables:
    """Tidy tables of a sweep (or one run). curves: one row per (run, epoch, dataset) with loss
    (nats/token) and acc; phases: one row per run with exact ``entropy_bits`` (bits/string) and
    the phase and memorization summaries; measures: one row per (run, epoch); per_string: the
    runs' per_string.csv rows (bits per string); per_position: the runs' per_position.csv rows
    (excess bits of the next token by position). notes: what was missing."""

    curves: Any
    phases: Any
    measures: Any
    per_string: Any
    notes: tuple[str, ...]
    per_position: Any = None


_ID_COLS = ["run", "grammar", "entropy_bits", "n_train", "seed", "model"]


def collect(path: Path | str) -> SweepTables:
    """The tables of the run folder ``path`` or of every run below it (nothing is written); a
    folder without runs that holds a saved phases.csv gives its saved tables."""
    import pandas as pd

    root = Path(path)
    if (root / "phases.csv").is_file() and not has_runs(root):
        return load_saved(root)
    t = load_runs(root)
    notes = list(t.notes)
    entropy, per_string, per_position = {}, [], []
    for run in find_runs(root):
        rid = run_id(run, root)
        entropy[rid] = _entropy_bits(run, notes)
        ps = run.read_per_string()
        if ps is not None:
            per_string.append(ps.assign(run=rid))
        pp = run.read_per_position()
        if pp is not None:
            per_position.append(pp.assign(run=rid))
    # repr, not astype(str): a key set in some runs and unset (NaN) in others varies too
    varying = [c for c in t.metrics.columns if c.startswith("config.")
               and t.metrics[c].map(repr).nunique() > 1]  # fmt: skip
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
    pp_df = pd.concat(per_position, ignore_index=True) if per_position else pd.DataFrame()
    if not phases.empty:
        phases = _add_measure_summaries(phases, measures)
        front = [c for c in _ID_COLS if c in phases.columns]
        phases = phases[front + [c for c in phases.columns if c not in front]]
        ids = phases[[c for c in _ID_COLS if c in phases.columns]]
        ps_df = ps_df.merge(ids, on="run") if not ps_df.empty else ps_df
        pp_df = pp_df.merge(ids, on="run") if not pp_df.empty else pp_df
    return SweepTables(curves, phases, measures, ps_df, tuple(notes), pp_df)


# the tables of a sweep, each a SweepTables field and the stem of its file
SAVED = ("curves", "phases", "measures", "per_string", "per_position")


def load_saved(root: Path | str) -> SweepTables:
    """The tables saved in ``root`` (``NAME.csv`` or ``NAME.csv.gz`` for each of :data:`SAVED`,
    as :func:`aggregate` writes them or as experiments/results/ keeps them gzipped); a missing
    table is empty, and named in the notes if it is the curves or the phases."""
    import pandas as pd

    root, frames, notes = Path(root), [], []
    for name in SAVED:
        found = [p for p in (root / f"{name}.csv", root / f"{name}.csv.gz") if p.is_file()]
        if not found and name in ("curves", "phases"):
            notes.append(f"{root}: no saved {name}.csv")
        frames.append(pd.read_csv(found[0]) if found else pd.DataFrame())
    return SweepTables(**dict(zip(SAVED, frames, strict=True)), notes=tuple(notes))


def _entropy_bits(run: RunDir, notes: list[str]) -> float:
    """Exact entropy (bits/string) of a run's grammar, cached by content; NaN with a note when
    the grammar or the entropy engine is missing."""
    text = run.grammar_text()
    if text is None:
        notes.append(f"{run.grammar_path}: missing; entropy_bits left empty")
        return math.nan
    return _entropy_of_text(text, str(run.grammar_path), notes)


_ENTROPY_CACHE: dict[str, float] = {}


def _entropy_of_text(text: str, source: str, notes: list[str]) -> float:
    key = hashlib.sha256(text.encode()).hexdigest()
    if key not in _ENTROPY_CACHE:
        try:
            rep = analyze(loads(text))
            bits = getattr(rep, "entropy_bits", None)
            _ENTROPY_CACHE[key] = float(rep.to_dict()["entropy_bits"] if bits is None else bits)
        except (GrammarlabError, KeyError) as e:
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
    "memU_train_bits_signed_total": [("final_memU_train_bits_signed_total", "last")],
    "memU_test_bits_signed_total": [("final_memU_test_bits_signed_total", "last")],
    "excess_test_bits_vs_untrained": [("min_excess_test_bits_vs_untrained", "min")],
    "excess_test_bits_vs_uniform": [("min_excess_test_bits_vs_uniform", "min")],
    # the baselines' own excess over the grammar: one value per run (the same every epoch)
    "untrained_excess_test_bits": [("untrained_excess_test_bits", "last")],
    "uniform_excess_test_bits": [("uniform_excess_test_bits", "last")],
    "mia_auc": [("final_mia_auc", "last"), ("max_mia_auc", "max")],
    "mia_pvalue": [("final_mia_pvalue", "last")],
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
    """Write ``curves.csv``, ``phases.csv``, ``measures.csv`` (and ``per_string.csv``,
    ``per_position.csv``) into the sweep folder ``root`` (atomically) and return the tables."""
    root = Path(root)
    t = collect(root)
    for name in SAVED:
        df = getattr(t, name)
        write_atomic(root / f"{name}.csv", lambda p, df=df: df.to_csv(p, index=False))
    return t


SUMMARY_COLUMNS = {
    "grammar": "grammar", "entropy_bits": "H bits", "n_train": "n",
    "memorization_onset_epoch": "onset", "generalization_end_epoch": "gen end",
    "min_test_loss": "min test nats/tok", "min_excess_test_bits": "min excess bits",
    "final_memU_train_bits_total": "memU train bits",
}  # fmt: skip


# summary column -> the event it shows (printed with format_event: censored as >=E or >E)
_EVENT_COLUMNS = {
    "memorization_onset_epoch": "memorization_onset",
    "generalization_end_epoch": "generalization_end",
}


def summary_table(phases: Any) -> str:
    """A plain-text table of the phases, one line per run, sorted by grammar entropy and n.
    Event epochs print as :func:`grammarlab.analysis.phases.format_event` does: ``12`` when
    observed, ``>=100`` / ``>100`` when censored at the last epoch 100, never as a value."""
    if phases.empty:
        return "(no runs)"
    cols = [c for c in SUMMARY_COLUMNS if c in phases.columns]
    df = phases.sort_values([c for c in ("entropy_bits", "n_train", "seed") if c in phases])
    rows = df.to_dict("records")
    df = df[cols].copy()
    for col, event in _EVENT_COLUMNS.items():
        if col in df.columns:
            df[col] = [format_event(r, event) for r in rows]
    df = df.rename(columns=SUMMARY_COLUMNS)
    return df.to_string(index=False, float_format=lambda x: f"{x:.3g}", na_rep="-")
