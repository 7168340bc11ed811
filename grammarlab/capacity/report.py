"""A grid's outputs: the tidy tables (CSV), a plain-text summary and the figures.

Files in the output folder: ``runs.csv`` (one row per run), ``seed_capacity.csv`` (per model
size, dtype and seed), ``capacity.csv`` (per model size and dtype, spread over seeds),
``fit.csv`` (bits per parameter), ``ratio.csv`` (runs with dataset bits / capacity),
``steps.csv`` (each run's best memorized bits up to 500, 1000, ... steps),
``diverged.csv`` (runs whose loss stopped being finite, left out of the others),
``summary.txt`` and the figures of :mod:`grammarlab.capacity.plot`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from grammarlab.capacity.analysis import analyse, summary
from grammarlab.io import write_text_atomic


def write_report(records: list[dict[str, Any]], out: Path | str, figures: bool = True):
    """Write the tables, the summary and (with ``figures``) the figures of ``records`` into
    ``out``; return (summary text, figure stems)."""
    out = Path(out)
    tables = analyse(records)
    for name, df in tables.items():
        write_text_atomic(out / f"{name}.csv", df.to_csv(index=False))
    text = summary(tables["capacity"], tables["fit"], tables["diverged"])
    write_text_atomic(out / "summary.txt", text + "\n")
    stems: list[str] = []
    if figures:
        from grammarlab.capacity.plot import plot_all

        stems = plot_all(tables, out)
    return text, stems
