"""Figures from the tidy tables of a run or a sweep (:func:`grammarlab.sweep.tables.collect`).

``PLOTS`` maps a kind to ``(stem, function)``: the function takes the tables (and keyword
options: ``ax=``/``axes=``, ``labels=``, ``palette=``, ``size=``, see each function) and returns
a :class:`matplotlib.figure.Figure` carrying the table it drew (``fig.grammarlab_data``); it
writes nothing. :func:`plot_all` saves each figure as ``STEM.png`` and ``STEM.pdf`` with the CSV
it was drawn from (``STEM.csv``). A kind whose inputs are missing (no sequential runs, no
measures, one n only) raises :class:`Skip` with a note instead of failing. Units: losses
nats/token (Eq. 1), entropies and memorization bits (per string unless the label says
otherwise). The memorization score ``1 - L_train/L_test`` is clipped to [0, 1] in plots (it can
be negative when the test loss is below the train loss) and the labels say so.

No module of :mod:`grammarlab.plot` changes global matplotlib or seaborn state: the house style
is applied inside each figure function (:func:`grammarlab.plot.common.styled`), and the backend
is the caller's (the CLI chooses Agg itself).

The figures are in :mod:`grammarlab.plot.curves` (the paper's figures 1-5) and
:mod:`grammarlab.plot.phases` (phases, memorized bits, forgetting), :mod:`grammarlab.plot.measures`
(the AUC with its null band, excess by position, valid generations), :mod:`grammarlab.plot.load`
(the onset against the training set's bits over the model's capacity); what they share is in
:mod:`grammarlab.plot.common`. This module holds the registry and :func:`plot_all`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from grammarlab.errors import GrammarlabError
from grammarlab.plot.common import Skip, save_figure
from grammarlab.plot.curves import fig1, fig2, fig3, fig4, fig5
from grammarlab.plot.load import onset_vs_load
from grammarlab.plot.measures import generations_valid, mia_auc, position_heatmap
from grammarlab.plot.phases import (
    forgetting,
    memorized_bits,
    per_string,
    phase_diagram,
    phases_vs,
)
from grammarlab.sweep.tables import collect

__all__ = ["PLOTS", "Skip", "draw", "plot_all"]


PLOTS: dict[str, tuple[str, Callable[..., Any]]] = {
    "fig1": ("fig1_losses_accuracy_memorization", fig1),
    "fig2": ("fig2_train_test_by_n", fig2),
    "fig3": ("fig3_same_loss_rote_vs_understanding", fig3),
    "fig4": ("fig4_sequential_forgetting", fig4),
    "fig5": ("fig5_entropy_sweep", fig5),
    "phase_diagram": ("phase_diagram", phase_diagram),
    "phases_vs": ("phases_vs_entropy_and_n", phases_vs),
    "memorized_bits": ("memorized_bits_vs_epoch", memorized_bits),
    "per_string": ("memorized_bits_per_string", per_string),
    "mia_auc": ("mia_auc_null_band", mia_auc),
    "position_heatmap": ("excess_by_position", position_heatmap),
    "generations_valid": ("generations_valid_share", generations_valid),
    "onset_vs_load": ("onset_vs_load", onset_vs_load),
    "forgetting": ("forgetting_share", forgetting),
}


def draw(kind: str, tables: Any, **options: Any) -> Any:
    """The Figure of ``kind`` for ``tables`` (a :class:`grammarlab.sweep.tables.SweepTables`,
    or a run or sweep folder); ``options`` go to the figure function. Raises :class:`Skip`
    when the tables lack its inputs."""
    if kind not in PLOTS:
        raise GrammarlabError(f"unknown plot kind {kind!r}", hint=f"kinds: {', '.join(PLOTS)}")
    if isinstance(tables, str | Path):
        tables = collect(tables)
    return PLOTS[kind][1](tables, **options)


def plot_all(
    path: Path | str, out: Path | str, kinds: list[str] | None = None
) -> tuple[list[str], list[str]]:
    """Draw every kind (or ``kinds``) for the run or sweep folder ``path`` and save each into
    ``out`` (PNG, PDF and the CSV drawn). Returns (written stems, notes on figures skipped and
    inputs missing)."""
    unknown = set(kinds or []) - set(PLOTS)
    if unknown:
        raise GrammarlabError(f"unknown plot kind(s) {sorted(unknown)}",
                              hint=f"kinds: {', '.join(PLOTS)}")  # fmt: skip
    tables = collect(path)
    written, notes = [], list(tables.notes)
    for kind in kinds or PLOTS:
        stem, fn = PLOTS[kind]
        try:
            fig = fn(tables)
        except Skip as e:
            notes.append(f"{kind} skipped: {e}")
            continue
        written.append(save_figure(fig, fig.grammarlab_data, Path(out), stem))
    return written, notes
