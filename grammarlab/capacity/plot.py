"""Figures of a capacity grid (PNG + PDF + the CSV each is drawn from), from the tables of
:func:`grammarlab.capacity.analysis.analyse`. One column per dtype, float32 and bfloat16 side
by side, on shared axes.

* ``capacity_memorized``: total memorized bits [bits] vs dataset bits per model size; the
  diagonal is "everything memorized", a flat tail is the capacity plateau.
* ``capacity_vs_params``: capacity [bits] vs parameters with the fitted bits per parameter and
  its 95% interval.
* ``capacity_test_loss``: test excess surprisal [bits per string] vs dataset bits / capacity.
* ``capacity_mia``: membership AUC vs the same ratio, chance level 0.5 and its +-2 sd band.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from grammarlab.plot.common import grid, legend_outside, plt, save_figure


def _panels(dtypes: list[str], **kw) -> tuple:
    fig, axes = grid(len(dtypes), ncols=len(dtypes), **kw)
    return fig, dict(zip(dtypes, axes, strict=True))


def _colors(models: list[str]) -> dict[str, object]:
    cmap = plt.get_cmap("viridis")
    n = max(len(models) - 1, 1)
    return {m: cmap(0.9 * i / n) for i, m in enumerate(models)}


def _models(df: pd.DataFrame) -> list[str]:
    return list(df.sort_values("n_params")["model_id"].drop_duplicates())


def plot_memorized(runs: pd.DataFrame, caps: pd.DataFrame, out: Path) -> str:
    dtypes = sorted(runs["dtype"].unique())
    fig, ax_of = _panels(dtypes, sharex=True, sharey=True)
    colors = _colors(_models(runs))
    for dtype, ax in ax_of.items():
        d = runs[runs["dtype"] == dtype]
        for m, g in d.groupby("model_id"):
            mean = g.groupby("dataset_bits")["mem_bits"].agg(["mean", "min", "max"])
            params = int(g["n_params"].iloc[0])
            ax.plot(mean.index, mean["mean"], "o-", color=colors[m], label=f"{m} ({params:,} p)")
            ax.fill_between(mean.index, mean["min"], mean["max"], color=colors[m], alpha=0.2)
            c = caps[(caps["model_id"] == m) & (caps["dtype"] == dtype)]
            if len(c):
                ax.axhline(float(c["capacity_bits"].iloc[0]), color=colors[m], ls=":", lw=1)
        lim = d["dataset_bits"].agg(["min", "max"])
        ax.plot(lim, lim, color="grey", ls="--", lw=1, label="all data memorized")
        ax.set(xscale="log", yscale="log", title=dtype, xlabel="dataset bits",
               ylabel="memorized bits (clipped, total)")  # fmt: skip
    legend_outside(fig, *ax_of.values(), title="model (band: seeds, dotted: capacity)")
    return save_figure(fig, runs, out, "capacity_memorized")


def plot_vs_params(seeds: pd.DataFrame, fits: pd.DataFrame, out: Path) -> str:
    dtypes = sorted(seeds["dtype"].unique())
    fig, ax_of = _panels(dtypes, sharex=True, sharey=True)
    x = np.linspace(0, seeds["n_params"].max() * 1.05, 50)
    for dtype, ax in ax_of.items():
        d = seeds[seeds["dtype"] == dtype]
        f = fits[fits["dtype"] == dtype]
        # one fit line per family when there are several (their bits/param may differ), else all
        f = f[f["family"] != "all"] if (f["family"] != "all").any() else f
        for i, (fam, g) in enumerate(d.groupby("family")):
            ax.plot(g["n_params"], g["capacity_bits"], "o", color=f"C{i}", alpha=0.8, label=fam)
        for r in f.itertuples():
            i = sorted(d["family"].unique()).index(r.family) if r.family != "all" else 0
            ax.plot(x, r.bits_per_param * x, "-", color=f"C{i}",
                    label=f"fit {r.family}: {r.bits_per_param:.2f} bits/param")  # fmt: skip
            if np.isfinite(r.ci95_low):
                ax.fill_between(x, r.ci95_low * x, r.ci95_high * x, color=f"C{i}", alpha=0.1)
        ax.plot(x, 3.6 * x, color="tab:red", ls="--", lw=1, label="3.6 bits/param (Morris)")
        ax.set(title=dtype, xlabel="parameters", ylabel="capacity (bits)")
        ax.legend(fontsize=8)
    return save_figure(fig, seeds, out, "capacity_vs_params")


def _vs_ratio(ratio: pd.DataFrame, col: str, ylabel: str, out: Path, stem: str,
              chance: bool = False) -> str:  # fmt: skip
    dtypes = sorted(ratio["dtype"].unique())
    fig, ax_of = _panels(dtypes, sharex=True, sharey=True)
    colors = _colors(_models(ratio))
    for dtype, ax in ax_of.items():
        d = ratio[ratio["dtype"] == dtype]
        for m, g in d.groupby("model_id"):
            mean = g.groupby("ratio")[col].mean()
            ax.plot(mean.index, mean.values, "o-", color=colors[m], label=m)
        ax.axvline(1.0, color="grey", ls=":", lw=1)
        if chance:
            sd = float(d["auc_chance_sd"].max())
            ax.axhline(0.5, color="k", lw=1, label="chance")
            ax.axhspan(0.5 - 2 * sd, 0.5 + 2 * sd, color="k", alpha=0.08)
        ax.set(xscale="log", title=dtype, xlabel="dataset bits / capacity", ylabel=ylabel)
    legend_outside(fig, *ax_of.values(), title="model")
    return save_figure(fig, ratio, out, stem)


def plot_all(tables: dict[str, pd.DataFrame], out: Path | str) -> list[str]:
    """Every figure that the tables allow; returns their stems (files ``out/STEM.png|pdf|csv``)."""
    out = Path(out)
    if not len(tables["runs"]):
        return []
    written = [plot_memorized(tables["runs"], tables["capacity"], out),
               plot_vs_params(tables["seed_capacity"], tables["fit"], out)]  # fmt: skip
    r = tables["ratio"]
    written.append(_vs_ratio(r, "test_excess_bits", "test surprisal - exact (bits/string)",
                             out, "capacity_test_loss"))  # fmt: skip
    written.append(_vs_ratio(r, "auc", "membership AUC (train vs fresh)", out, "capacity_mia",
                             chance=True))  # fmt: skip
    return written
