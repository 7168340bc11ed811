"""What every figure shares: the Skip signal, labels, saving (PNG + PDF + CSV), panel grids,
legends and small selections of the tidy tables (:class:`grammarlab.sweep.tables.SweepTables`).

Units: losses nats/token (Eq. 1), entropies bits per string.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

LOSS = "loss (nats/token)"
DASHES = {"train": "", "test": (4, 2), "random": (1, 2), "d1": "", "d2": (6, 2)}
SCORE = "memorization 1 - L_train/L_test\n(clipped to [0, 1])"


class Skip(Exception):
    """A figure that cannot be drawn from these tables (the message says why)."""


def save_figure(fig: Any, data: pd.DataFrame, out: Path, stem: str) -> str:
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / f"{stem}.png", dpi=130, bbox_inches="tight")
    fig.savefig(out / f"{stem}.pdf", bbox_inches="tight")
    data.to_csv(out / f"{stem}.csv", index=False)
    plt.close(fig)
    return stem


def grid(n: int, w: float = 4.2, h: float = 3.2, ncols: int = 3, **kw: Any) -> tuple:
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols, h * nrows), squeeze=False, **kw)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def legend_outside(fig: Any, *axes: Any, markers: bool = False, title: str | None = None) -> None:
    """One legend for the figure, right of the panels (never over data), from the entries of
    ``axes``; with ``markers``, entries for the onset (x) and end of generalization (triangle)."""
    from matplotlib.lines import Line2D

    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
        if ax.get_legend():
            ax.get_legend().remove()
    if markers:
        handles += [Line2D([], [], marker="x", ls="none", color="k", mew=2),
                    Line2D([], [], marker="^", ls="none", color="k")]  # fmt: skip
        labels += ["memorization onset", "end of generalization"]
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8,
               title=title, title_fontsize=8, frameon=False)  # fmt: skip


def curves_long(t: Any, datasets: tuple[str, ...] = ("train", "test")) -> pd.DataFrame:
    c = t.curves
    if c.empty:
        raise Skip("no curves")
    return c[c.dataset.isin(datasets)].copy()


def mean_phases(t: Any) -> pd.DataFrame:
    """Phases averaged over seeds per (grammar, entropy_bits, n_train)."""
    ph = t.phases
    if ph.empty:
        raise Skip("no phases")
    cols = [
        "memorization_onset_epoch",
        "generalization_end_epoch",
        "min_test_loss",
        "test_loss_at_onset",
        "min_excess_test_bits",
        "final_memU_train_bits_total",
    ]
    cols = [c for c in cols if c in ph.columns]
    keys = ["grammar", "entropy_bits", "n_train"]
    return ph.groupby(keys, dropna=False)[cols].mean().reset_index()


def loss_at(c: pd.DataFrame, epoch: float, dataset: str) -> float:
    """Mean loss over seeds of ``dataset`` at the epoch nearest to ``epoch``."""
    d = c[c.dataset == dataset]
    if d.empty or not np.isfinite(epoch):
        return np.nan
    e = d.epoch.iloc[(d.epoch - epoch).abs().argmin()]
    return float(d[d.epoch == e].loss.mean())


def hue_column(df: pd.DataFrame) -> str:
    """Colour by the exact entropy when known, else by grammar name."""
    return "entropy_bits" if df["entropy_bits"].notna().any() else "grammar"


def sorted_grammars(df: pd.DataFrame) -> list[str]:
    g = df.groupby("grammar", dropna=False)["entropy_bits"].first()
    return list(g.sort_values(na_position="last").index) if "entropy_bits" in df else list(g.index)


def mark_phases(ax: Any, c: pd.DataFrame, ph: pd.Series, color: Any) -> None:
    """x at the memorization onset (on the test curve), triangle at the end of generalization."""
    for col, marker in (("memorization_onset_epoch", "x"), ("generalization_end_epoch", "^")):
        e = ph.get(col, np.nan)
        if pd.notna(e):
            ax.plot([e], [loss_at(c, e, "test")], marker=marker, ms=9, mew=2, color=color,
                    ls="none", zorder=5)  # fmt: skip


def family_of(g: str) -> str:
    return str(g).split("_")[0]
