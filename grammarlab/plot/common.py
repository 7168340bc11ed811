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

from grammarlab.analysis.phases import summarize_event  # noqa: E402
from grammarlab.grammar.header import family_from_name  # noqa: E402
from grammarlab.io import write_atomic  # noqa: E402

LOSS = "loss (nats/token)"
DASHES = {"train": "", "test": (4, 2), "random": (1, 2), "d1": "", "d2": (6, 2)}
SCORE = "memorization 1 - L_train/L_test\n(clipped to [0, 1])"


class Skip(Exception):
    """A figure that cannot be drawn from these tables (the message says why)."""


def save_figure(fig: Any, data: pd.DataFrame, out: Path, stem: str) -> str:
    out.mkdir(parents=True, exist_ok=True)
    # atomically, as every output (grammarlab.io): the format named, as the temporary file's
    # name does not end in .png
    write_atomic(out / f"{stem}.png", lambda p: fig.savefig(p, format="png", dpi=130,
                                                            bbox_inches="tight"))  # fmt: skip
    write_atomic(out / f"{stem}.pdf", lambda p: fig.savefig(p, format="pdf", bbox_inches="tight"))
    write_atomic(out / f"{stem}.csv", lambda p: data.to_csv(p, index=False))
    plt.close(fig)
    return stem


def grid(n: int, w: float | None = None, h: float = 2.0, ncols: int = 3, **kw: Any) -> tuple:
    """n panels in rows of ``ncols``, two paper columns wide unless ``w`` (inches per panel)."""
    ncols = max(1, min(ncols, n))
    w = TWO_COLUMN_IN / ncols if w is None else w
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols, h * nrows), squeeze=False, **kw)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def legend_outside(fig: Any, *axes: Any, markers: bool = False, title: str | None = None) -> None:
    """One legend for the figure, right of the panels (never over data), from the entries of
    ``axes``; with ``markers``, entries for the onset (x) and end of generalization (triangle)."""
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
        if ax.get_legend():
            ax.get_legend().remove()
    if markers:
        h, lab = marker_handles()
        handles += h
        labels += lab
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), title=title,
               frameon=False)  # fmt: skip


def curves_long(t: Any, datasets: tuple[str, ...] = ("train", "test")) -> pd.DataFrame:
    c = t.curves
    if c.empty:
        raise Skip("no curves")
    return c[c.dataset.isin(datasets)].copy()


def mean_phases(t: Any) -> pd.DataFrame:
    """Phases per (grammar, entropy_bits, n_train) over seeds. Event epochs are the mean over
    the seeds that observed them (``*_n_observed``, ``*_n_runs`` say how many), and
    ``*_censored`` is True when at most half the seeds observed the event: then the epoch column
    holds the last epoch (where a censored marker is drawn), never a mean of censored values.
    Other columns are plain means over seeds."""
    ph = t.phases
    if ph.empty:
        raise Skip("no phases")
    cols = [c for c in ("min_test_loss", "test_loss_at_onset", "min_excess_test_bits",
                        "final_memU_train_bits_total") if c in ph.columns]  # fmt: skip
    keys = ["grammar", "entropy_bits", "n_train"]
    rows = []
    for k, d in ph.groupby(keys, dropna=False):
        row = dict(zip(keys, k, strict=True))
        recs = d.to_dict("records")
        for event in ("memorization_onset", "generalization_end"):
            s = summarize_event(recs, event)
            cens = s.n_observed * 2 <= s.n_runs
            last = max(s.censored_at, default=np.nan)
            row[f"{event}_epoch"] = last if cens else s.mean
            row[f"{event}_censored"] = bool(cens)
            row[f"{event}_n_observed"], row[f"{event}_n_runs"] = s.n_observed, s.n_runs
        row.update({c: d[c].mean() for c in cols})
        rows.append(row)
    return pd.DataFrame(rows)


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
    """Grammar names by exact entropy (by name when the entropy is unknown)."""
    if "entropy_bits" not in df:
        return sorted(df.grammar.astype(str).unique())
    g = df.groupby("grammar", dropna=False)["entropy_bits"].first()
    return list(g.sort_values(na_position="last").index)


def mark_phases(ax: Any, c: pd.DataFrame, ph: pd.Series, color: Any) -> None:
    """x at the memorization onset (on the test curve), triangle at the end of generalization;
    a censored end of generalization (test loss still falling at the last epoch) is an open
    triangle pointing right at the last epoch, a censored onset (never reached) is not drawn: a
    censored event is never shown as a value."""
    for col, marker in (("memorization_onset_epoch", "x"), ("generalization_end_epoch", "^")):
        e = ph.get(col, np.nan)
        censored = bool(ph.get(col.replace("_epoch", "_censored"), False))
        if pd.isna(e) or (censored and marker == "x"):
            continue
        y = loss_at(c, e, "test")
        if censored:
            ax.plot([e], [y], marker=">", ms=8, mew=1.5, mfc="none", color=color, ls="none",
                    zorder=5)  # fmt: skip
        else:
            ax.plot([e], [y], marker=marker, ms=8, mew=2, color=color, ls="none", zorder=5)


def marker_handles() -> tuple[list, list[str]]:
    """Legend entries of the phase markers (shared by every figure that draws them)."""
    from matplotlib.lines import Line2D

    return (
        [Line2D([], [], marker="x", ls="none", color="k", mew=2),
         Line2D([], [], marker="^", ls="none", color="k"),
         Line2D([], [], marker=">", ls="none", color="k", mfc="none")],
        ["memorization onset", "end of generalization",
         "still falling at the last epoch (censored)"],
    )  # fmt: skip


def grammar_palette(df: pd.DataFrame) -> dict[str, Any]:
    """One colour per grammar, one palette per family (blues for the first family, oranges for
    the next, ...), shades ordered by the grammar's entropy within its family."""
    import seaborn as sns

    fams = FAMILY_PALETTES
    g = df.groupby("grammar", dropna=False)["entropy_bits"].first().reset_index()
    g["family"] = families(df, g)
    out: dict[str, Any] = {}
    for i, (_, d) in enumerate(sorted(g.groupby("family"), key=lambda x: str(x[0]))):
        d = d.sort_values("entropy_bits", na_position="last")
        colors = sns.color_palette(fams[i % len(fams)], len(d) + 1)[1:]
        out.update(dict(zip(d.grammar, colors, strict=True)))
    return out


FAMILY_PALETTES = ("Blues", "Oranges", "Greens", "Purples", "Reds", "Greys")
COLUMN_IN = 3.35  # one paper column, inches
TWO_COLUMN_IN = 7.0  # two paper columns, inches
RC = {"font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7,
      "ytick.labelsize": 7, "legend.fontsize": 7, "legend.title_fontsize": 7}  # fmt: skip


def family_of(g: str, known: dict[str, str] | None = None) -> str:
    """A grammar's family: as the tables give it (``known``: grammar -> family, from their
    ``family`` column, which the sweep file or the grammar's header sets), else from its name
    (:func:`grammarlab.grammar.header.family_from_name`)."""
    fam = (known or {}).get(str(g))
    return str(fam) if isinstance(fam, str) and fam else family_from_name(g)


def families(t: Any, df: pd.DataFrame) -> pd.Series:
    """The family of each row of ``df`` (by its grammar), from the ``family`` column of ``t``
    (a frame, or tables with curves and phases) where there is one."""
    frames = [t] if isinstance(t, pd.DataFrame) else [getattr(t, "phases", None),
                                                       getattr(t, "curves", None)]  # fmt: skip
    known: dict[str, str] = {}
    for f in frames:
        if f is not None and {"grammar", "family"} <= set(f.columns):
            known.update(f.dropna(subset=["family"]).groupby("grammar").family.first().to_dict())
    return df.grammar.map(lambda g: family_of(g, known))
