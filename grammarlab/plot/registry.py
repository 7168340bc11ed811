"""Figures from the tidy tables of a run or a sweep (:func:`grammarlab.sweep.tables.collect`).

``PLOTS`` maps a kind to a function ``(tables, out_dir) -> [written stems]``; each figure is saved
as PNG and PDF together with the CSV it was drawn from (same stem). A kind whose inputs are
missing (no sequential runs, no measures, one n only) raises :class:`Skip` with a note instead of
failing. Units: losses nats/token (Eq. 1), entropies and memorization bits (per string unless the
label says otherwise). The memorization score ``1 - L_train/L_test`` is clipped to [0, 1] in plots
(it can be negative when the test loss is below the train loss) and the labels say so.

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

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from grammarlab.errors import GrammarlabError  # noqa: E402
from grammarlab.plot.common import RC, Skip  # noqa: E402
from grammarlab.plot.curves import fig1, fig2, fig3, fig4, fig5  # noqa: E402
from grammarlab.plot.load import onset_vs_load  # noqa: E402
from grammarlab.plot.measures import generations_valid, mia_auc, position_heatmap  # noqa: E402
from grammarlab.plot.phases import (  # noqa: E402
    forgetting,
    memorized_bits,
    per_string,
    phase_diagram,
    phases_vs,
)
from grammarlab.sweep.tables import collect  # noqa: E402

__all__ = ["PLOTS", "Skip", "plot_all"]


PLOTS: dict[str, Callable[[Any, Path], list[str]]] = {
    "fig1": fig1, "fig2": fig2, "fig3": fig3, "fig4": fig4, "fig5": fig5,
    "phase_diagram": phase_diagram, "phases_vs": phases_vs, "memorized_bits": memorized_bits,
    "per_string": per_string, "mia_auc": mia_auc, "position_heatmap": position_heatmap,
    "generations_valid": generations_valid, "onset_vs_load": onset_vs_load,
    "forgetting": forgetting,
}  # fmt: skip


def plot_all(
    path: Path | str, out: Path | str, kinds: list[str] | None = None
) -> tuple[list[str], list[str]]:
    """Draw every kind (or ``kinds``) for the run or sweep folder ``path`` into ``out``.
    Returns (written stems, notes on figures skipped and inputs missing)."""
    unknown = set(kinds or []) - set(PLOTS)
    if unknown:
        raise GrammarlabError(f"unknown plot kind(s) {sorted(unknown)}",
                              hint=f"kinds: {', '.join(PLOTS)}")  # fmt: skip
    tables = collect(path)
    sns.set_theme(style="whitegrid", context="paper", rc=RC)
    written, notes = [], list(tables.notes)
    for kind in kinds or PLOTS:
        try:
            written += PLOTS[kind](tables, Path(out))
        except Skip as e:
            notes.append(f"{kind} skipped: {e}")
        finally:
            plt.close("all")
    return written, notes
