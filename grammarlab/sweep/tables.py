"""The sweep's writer of its tidy tables and their plain-text summary.

:func:`aggregate` writes curves.csv, phases.csv, measures.csv, per_string.csv and
per_position.csv into the sweep folder, the tables :func:`grammarlab.load_runs`
(:mod:`grammarlab.analysis.tables`, which builds them) reads back from runs or saved tables alike;
:func:`summary_table` prints the phases as plain text, censored events as censored
(:func:`grammarlab.analysis.phases.format_event`). ``collect``, ``load_saved`` and
``SweepTables`` are the names the loader had here before: the same functions and class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from grammarlab.analysis.phases import format_event
from grammarlab.analysis.tables import GRAMMAR_COLS, SAVED, Tables, load_runs, load_saved
from grammarlab.io import write_atomic

__all__ = ["GRAMMAR_COLS", "SAVED", "SweepTables", "aggregate", "collect", "load_saved",
           "summary_table"]  # fmt: skip

SweepTables = Tables
collect = load_runs


def aggregate(root: Path | str) -> Tables:
    """Write ``curves.csv``, ``phases.csv``, ``measures.csv`` (and ``per_string.csv``,
    ``per_position.csv``) into the sweep folder ``root`` (atomically) and return the tables."""
    root = Path(root)
    t = load_runs(root)
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
