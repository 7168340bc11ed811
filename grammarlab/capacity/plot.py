"""Figures of a capacity grid, from the tables of :func:`grammarlab.capacity.analysis.analyse`,
in the house style of :mod:`grammarlab.plot` (applied inside each function, never globally).
One column per dtype, float32 and bfloat16 side by side, on shared axes. Each function returns a
:class:`matplotlib.figure.Figure` carrying the table it drew (``fig.grammarlab_data``) and takes
``axes=`` (one axes per dtype), ``labels=`` (model id -> legend label), ``palette=`` and
``size=``; :func:`plot_all` saves them (PNG + PDF + the CSV each is drawn from).

* ``capacity_memorized``: total memorized bits [bits] vs dataset bits per model size; the
  diagonal is "everything memorized", a flat tail is the capacity plateau.
* ``capacity_vs_params``: capacity [bits] vs parameters with the fitted bits per parameter and
  its 95% interval.
* ``capacity_test_loss``: test excess surprisal [bits per string] vs dataset bits / capacity.
* ``capacity_mia``: membership AUC vs the same ratio, chance level 0.5 and its +-2 sd band.

Models are named by their shape (``pythia-tiny-h12-l1-a2-i48``: "Pythia, hidden 12, 1 layer,
2 heads, MLP 48") and listed by parameter count, smallest first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from grammarlab.plot.common import (
    Palette,
    attach,
    cycle_color,
    figure_function,
    grid,
    legend_outside,
    resolve_palette,
    save_figure,
)

_SHAPE = re.compile(
    r"^(?P<arch>[a-z0-9]+)(?:-tiny)?-h(?P<h>\d+)-l(?P<l>\d+)-a(?P<a>\d+)-i(?P<i>\d+)$"
)


FAMILY_NAMES = {"gpt_neox": "GPT-NeoX (Pythia)", "llama": "Llama", "all": "all families"}


def model_label(model_id: str, n_params: int | None = None) -> str:
    """A readable name of a model id: ``pythia-tiny-h12-l1-a2-i48`` -> "Pythia, hidden 12,
    1 layer, 2 heads, MLP 48" (with ``n_params``, "(2,220 params)" appended); an id of another
    form is kept as it is."""
    m = _SHAPE.match(str(model_id))
    if m is None:
        name = str(model_id)
    else:
        n_l, n_a = int(m["l"]), int(m["a"])
        name = (f"{m['arch'].capitalize()}, hidden {m['h']}, {n_l} layer{'s' * (n_l != 1)}, "
                f"{n_a} head{'s' * (n_a != 1)}, MLP {m['i']}")  # fmt: skip
    return name if n_params is None else f"{name} ({int(n_params):,} params)"


def _models(df: pd.DataFrame) -> list[str]:
    """Model ids by parameter count, then by their shape's numbers (h8 before h12), then id."""

    def key(m: str) -> tuple:
        p = df.loc[df["model_id"] == m, "n_params"].iloc[0]
        nums = tuple(int(x) for x in re.findall(r"\d+", str(m)))
        return (float(p), nums, str(m))

    return sorted(df["model_id"].drop_duplicates(), key=key)


def _colors(models: list[str], palette: Palette) -> dict[str, Any]:
    import matplotlib as mpl

    cmap = mpl.colormaps["viridis"]
    n = max(len(models) - 1, 1)
    return resolve_palette(palette, models, {m: cmap(0.9 * i / n) for i, m in enumerate(models)})


def _names(df: pd.DataFrame, labels: Mapping[str, str] | None, params: bool) -> dict[str, str]:
    g = df.groupby("model_id")["n_params"].first()
    out = {m: model_label(m, g[m] if params else None) for m in g.index}
    return {**out, **(labels or {})}


def _panels(dtypes: list[str], axes: Any, size: Any, **kw: Any) -> tuple:
    fig, axs = grid(len(dtypes), ncols=len(dtypes), axes=axes, size=size, h=2.6, **kw)
    return fig, dict(zip(dtypes, axs, strict=True))


@figure_function
def plot_memorized(
    runs: pd.DataFrame,
    caps: pd.DataFrame,
    *,
    axes: Any = None,
    labels: Mapping[str, str] | None = None,
    palette: Palette = None,
    size: tuple[float, float] | None = None,
) -> Figure:
    """Total memorized bits (clipped) against dataset bits, log-log, one line per model (mean
    over seeds, band: min-max over seeds), dotted: each model's capacity; dashed: all memorized.
    axes: one per dtype; labels: model id -> label; palette: model id -> colour (default
    viridis by size); size: (width, height) in inches."""
    dtypes = sorted(runs["dtype"].unique())
    fig, ax_of = _panels(dtypes, axes, size, sharex=True, sharey=True)
    models = _models(runs)
    colors, names = _colors(models, palette), _names(runs, labels, params=True)
    for dtype, ax in ax_of.items():
        d = runs[runs["dtype"] == dtype]
        for m in models:
            g = d[d["model_id"] == m]
            if g.empty:
                continue
            mean = g.groupby("dataset_bits")["mem_bits"].agg(["mean", "min", "max"])
            ax.plot(mean.index, mean["mean"], "o-", ms=3, color=colors[m], label=names[m])
            ax.fill_between(mean.index, mean["min"], mean["max"], color=colors[m], alpha=0.2)
            c = caps[(caps["model_id"] == m) & (caps["dtype"] == dtype)]
            if len(c):
                ax.axhline(float(c["capacity_bits"].iloc[0]), color=colors[m], ls=":", lw=1)
        lim = d["dataset_bits"].agg(["min", "max"])
        ax.plot(lim, lim, color="grey", ls="--", lw=1, label="all data memorized")
        ax.set(xscale="log", yscale="log", title=dtype, xlabel="dataset bits",
               ylabel="memorized bits (clipped, total)")  # fmt: skip
    if axes is None:
        fig.tight_layout()
    legend_outside(fig, *ax_of.values(),
                   title="model (band: min-max over seeds, dotted: capacity)")  # fmt: skip
    return attach(fig, runs)


@figure_function
def plot_vs_params(
    seeds: pd.DataFrame,
    fits: pd.DataFrame,
    *,
    axes: Any = None,
    labels: Mapping[str, str] | None = None,
    palette: Palette = None,
    size: tuple[float, float] | None = None,
) -> Figure:
    """Capacity (bits) of each model and seed against its parameter count, with the fitted
    bits per parameter per family (line, shading: its 95% interval) and Morris et al.'s 3.6
    bits/parameter (dashed). labels: family -> label; palette: family -> colour."""
    dtypes = sorted(seeds["dtype"].unique())
    fig, ax_of = _panels(dtypes, axes, size, sharex=True, sharey=True)
    x = np.linspace(0, seeds["n_params"].max() * 1.05, 50)
    fams = sorted(seeds["family"].unique())
    colors = resolve_palette(palette, fams, {f: cycle_color(i) for i, f in enumerate(fams)})
    colors.setdefault("all", cycle_color(0))
    names = {f: FAMILY_NAMES.get(f, f) for f in [*fams, "all"]} | dict(labels or {})
    for dtype, ax in ax_of.items():
        d = seeds[seeds["dtype"] == dtype]
        f = fits[fits["dtype"] == dtype]
        # one fit line per family when there are several (their bits/param may differ), else all
        f = f[f["family"] != "all"] if (f["family"] != "all").any() else f
        for fam, g in d.groupby("family"):
            ax.plot(g["n_params"], g["capacity_bits"], "o", ms=4, color=colors[fam], alpha=0.8,
                    label=names[fam])  # fmt: skip
        for r in f.itertuples():
            fit = f"fit, {names[r.family]}, {dtype}: {r.bits_per_param:.2f} bits/param"
            ax.plot(x, r.bits_per_param * x, "-", color=colors[r.family], label=fit)
            if np.isfinite(r.ci95_low):
                ax.fill_between(x, r.ci95_low * x, r.ci95_high * x, color=colors[r.family],
                                alpha=0.1)  # fmt: skip
        ax.plot(x, 3.6 * x, color="tab:red", ls="--", lw=1, label="3.6 bits/param (Morris)")
        ax.set(title=dtype, xlabel="parameters", ylabel="capacity (bits)")
    if axes is None:
        fig.tight_layout()
    legend_outside(fig, *ax_of.values(), title="family (shading: 95% interval of the fit)")
    return attach(fig, seeds)


@figure_function
def plot_vs_ratio(
    ratio: pd.DataFrame,
    col: str,
    ylabel: str,
    *,
    chance: bool = False,
    axes: Any = None,
    labels: Mapping[str, str] | None = None,
    palette: Palette = None,
    size: tuple[float, float] | None = None,
) -> Figure:
    """``col`` (mean over seeds) against dataset bits / capacity, log x, one line per model;
    dotted: ratio 1; with ``chance``, the AUC's chance level 0.5 and its +-2 sd band."""
    dtypes = sorted(ratio["dtype"].unique())
    fig, ax_of = _panels(dtypes, axes, size, sharex=True, sharey=True)
    models = _models(ratio)
    colors, names = _colors(models, palette), _names(ratio, labels, params=True)
    for dtype, ax in ax_of.items():
        d = ratio[ratio["dtype"] == dtype]
        for m in models:
            g = d[d["model_id"] == m]
            if g.empty:
                continue
            mean = g.groupby("ratio")[col].mean()
            ax.plot(mean.index, mean.values, "o-", ms=3, color=colors[m], label=names[m])
        ax.axvline(1.0, color="grey", ls=":", lw=1)
        if chance:
            sd = float(d["auc_chance_sd"].max())
            ax.axhline(0.5, color="k", lw=1, label="chance")
            ax.axhspan(0.5 - 2 * sd, 0.5 + 2 * sd, color="k", alpha=0.08,
                       label="chance +- 2 sd")  # fmt: skip
        ax.set(xscale="log", title=dtype, xlabel="dataset bits / capacity", ylabel=ylabel)
    if axes is None:
        fig.tight_layout()
    legend_outside(fig, *ax_of.values(), title="model (mean over seeds)")
    return attach(fig, ratio)


def plot_all(tables: dict[str, pd.DataFrame], out: Path | str) -> list[str]:
    """Every figure that the tables allow, saved as ``out/STEM.png|pdf|csv``; returns the
    stems."""
    out = Path(out)
    if not len(tables["runs"]):
        return []
    r = tables["ratio"]
    figures = {
        "capacity_memorized": plot_memorized(tables["runs"], tables["capacity"]),
        "capacity_vs_params": plot_vs_params(tables["seed_capacity"], tables["fit"]),
        "capacity_test_loss": plot_vs_ratio(r, "test_excess_bits",
                                            "test surprisal - exact (bits/string)"),
        "capacity_mia": plot_vs_ratio(r, "auc", "membership AUC (train vs fresh)", chance=True),
    }  # fmt: skip
    return [save_figure(fig, fig.grammarlab_data, out, stem) for stem, fig in figures.items()]
