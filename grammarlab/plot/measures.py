"""Figures of the memorization measures with their noise: the membership-inference AUC over
epochs with its null band, the excess surprisal by token position (heatmap), and the share of
valid generations over epochs. Each function returns a :class:`matplotlib.figure.Figure` (with
the table it drew as ``fig.grammarlab_data``) and writes nothing (:mod:`grammarlab.plot.registry`
saves them); bits per string unless a label says otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import seaborn as sns
from matplotlib.figure import Figure

from grammarlab.plot.common import (
    TWO_COLUMN_IN,
    Palette,
    Skip,
    attach,
    figure_function,
    grammar_palette,
    grid,
    legend_outside,
    panel_grid,
    resolve_palette,
    several_seeds,
    sorted_grammars,
    table_labels,
)


@figure_function
def mia_auc(
    t: Any,
    *,
    axes: Any = None,
    labels: Mapping[str, str] | None = None,
    palette: Palette = None,
    size: tuple[float, float] | None = None,
) -> Figure:
    """Membership-inference AUC (members = the training strings, score -bits/token) against
    epoch, mean +- 1 SD over seeds (shaded), one panel per n; grey: the AUCs the one-sided test
    at 5% does not flag when nothing is memorized (exact Mann-Whitney null for the set sizes at
    hand, :func:`grammarlab.analysis.measures.mia_null`; the band's top is the flag's threshold,
    its bottom the mirror); dots: the epochs flagged (``mia_memorized``). An AUC above the band is a
    memorization signal that does not depend on the 5% loss rule. Measures computed before the
    band became one-sided (its top the central band's 97.5% point) are redrawn from the same
    null: ``grammarlab measures RUN`` rewrites them.

    axes: one axes per n; labels: grammar -> displayed name; palette: grammar -> colour (a
    mapping, a list or a palette name in entropy order); size: (width, height) in inches."""
    m = t.measures
    need = {"mia_auc", "mia_null_lo", "mia_null_hi"}
    if m.empty or not need <= set(m.columns):
        raise Skip("the AUC's null band needs measures.jsonl with mia_null_lo/hi "
                   "(grammarlab measures RUN)")  # fmt: skip
    ns = sorted(m.n_train.unique())
    own = axes is None
    fig, axs = grid(len(ns), h=2.2, ncols=min(len(ns), 2), sharey=True, axes=axes, size=size)
    order = sorted_grammars(m)
    pal = resolve_palette(palette, order, grammar_palette(m))
    names = table_labels(t, labels)
    for ax, n in zip(axs, ns, strict=True):
        d = m[m.n_train == n].assign(grammar_name=lambda x: x.grammar.map(names))
        band = d.groupby("epoch")[["mia_null_lo", "mia_null_hi"]].mean()
        ax.fill_between(band.index, band.mia_null_lo, band.mia_null_hi, color="0.85",
                        label="not flagged (one-sided 5%)", lw=0)  # fmt: skip
        if "mia_memorized" in d:
            f = d[d["mia_memorized"].map(lambda v: str(v).lower() in ("true", "1"))]
            ax.scatter(f["epoch"], f["mia_auc"], s=4, color="k", zorder=3, label="flagged")
        ax.axhline(0.5, color="0.5", lw=0.8)
        sns.lineplot(d, x="epoch", y="mia_auc", hue="grammar_name",
                     hue_order=[names[g] for g in order if g in set(d.grammar)],
                     palette={names[g]: pal[g] for g in order}, errorbar="sd", ax=ax)  # fmt: skip
        ax.set(title=f"n = {n}", ylabel="membership-inference AUC", ylim=(0, 1.02))
    if own:
        fig.tight_layout()
    legend_outside(fig, *axs, title="grammar", band=several_seeds(m))
    cols = ["run", "grammar", "entropy_bits", "n_train", "seed", "epoch", "mia_auc",
            "mia_null_lo", "mia_null_hi", "mia_pvalue", "mia_memorized"]  # fmt: skip
    return attach(fig, m[[c for c in cols if c in m]])


@figure_function
def position_heatmap(
    t: Any,
    *,
    axes: Any = None,
    labels: Mapping[str, str] | None = None,
    cmap: str = "RdBu_r",
    size: tuple[float, float] | None = None,
) -> Figure:
    """Excess surprisal (model - grammar bits of the next token) by token position and epoch on
    the test strings, mean over seeds; one panel per (grammar, n). Diverging colours centred on
    0 (red: the model needs more bits than the grammar; blue: fewer, which on unseen strings is
    chance). Shows where in a string the excess sits; the last position is the end token.

    axes: one axes per (grammar, n); labels: grammar -> displayed name; cmap: a diverging
    colour map (the palette of a heatmap); size: (width, height) in inches."""
    pp = getattr(t, "per_position", None)
    if pp is None or len(pp) == 0:
        raise Skip("the position heatmap needs per_position rows in the sweep tables")
    pp = pp[pp.dataset == "test"]
    if pp.empty:
        raise Skip("no test rows in per_position")
    keys = sorted({(g, n) for g, n in zip(pp.grammar, pp.n_train, strict=True)},
                  key=lambda k: (sorted_grammars(pp).index(k[0]), k[1]))  # fmt: skip
    own = axes is None
    fig, axs = grid(len(keys), h=1.9, ncols=2, axes=axes, size=size)
    names = table_labels(t, labels)
    vmax = float(np.nanpercentile(np.abs(pp.excess_bits), 99)) or 1.0
    for ax, (g, n) in zip(axs, keys, strict=True):
        d = pp[(pp.grammar == g) & (pp.n_train == n)]
        m = d.pivot_table(index="position", columns="epoch", values="excess_bits", aggfunc="mean")
        mesh = ax.pcolormesh(m.columns, m.index, m.to_numpy(), cmap=cmap, vmin=-vmax,
                             vmax=vmax, shading="nearest")  # fmt: skip
        ax.grid(False)
        ax.set(title=f"{names[g]}, n = {n}", xlabel="epoch", ylabel="token position")
    if own:
        fig.tight_layout()
    fig.colorbar(mesh, ax=axs, label="excess bits of the next token\n(model - grammar)")
    return attach(fig, pp)


@figure_function
def generations_valid(
    t: Any,
    *,
    axes: Any = None,
    labels: Mapping[str, str] | None = None,
    palette: Palette = None,
    size: tuple[float, float] | None = None,
) -> Figure:
    """Shares of sampled strings at the epochs that sampled, mean +- 1 SD over seeds (error
    bars): grammatical (a string of the grammar), a copy of a training string, and novel
    (grammatical, not a training string); one row per n, colour = grammar. Markers only: the
    generations are sampled at a few epochs, and a line between two of them would claim the
    shares in between.

    axes: n x measures axes (row by row); labels: grammar -> displayed name; palette:
    grammar -> colour (a mapping, a list or a palette name in entropy order); size: (width,
    height) in inches."""
    m = t.measures
    cols = [c for c in ("gen_grammatical_share", "gen_copy_share", "gen_novel_share")
            if c in m.columns]  # fmt: skip
    if m.empty or not cols:
        raise Skip("no generations in measures.jsonl (n_generate = 0, or no measures)")
    m = m.dropna(subset=cols, how="all")
    if m.empty:
        raise Skip("no epoch with generations")
    ns = sorted(m.n_train.unique())
    own = axes is None
    fig, axs = panel_grid(len(ns), len(cols), axes, size, panel=(TWO_COLUMN_IN / len(cols), 1.9),
                          sharey=True)  # fmt: skip
    order = sorted_grammars(m)
    pal = resolve_palette(palette, order, grammar_palette(m))
    names = table_labels(t, labels)
    titles = {"gen_grammatical_share": "grammatical", "gen_copy_share": "copy of a training string",
              "gen_novel_share": "novel grammatical"}  # fmt: skip
    # a small horizontal offset per grammar, so that error bars at one epoch do not overlap
    span = float(m.epoch.max() - m.epoch.min()) or 1.0
    offset = {g: (k - (len(order) - 1) / 2) * span * 0.006 for k, g in enumerate(order)}
    for i, n in enumerate(ns):
        for j, c in enumerate(cols):
            ax = axs[i, j]
            d = m[m.n_train == n]
            for g in order:
                s = d[d.grammar == g].groupby("epoch")[c].agg(["mean", "std"]).dropna(
                    subset=["mean"])  # fmt: skip
                if s.empty:
                    continue
                ax.errorbar(s.index + offset[g], s["mean"], yerr=s["std"].fillna(0), ls="none",
                            marker="o", ms=3, capsize=2, color=pal[g], label=names[g],
                            clip_on=False)  # fmt: skip
            ax.set(ylim=(-0.02, 1.02), ylabel=f"share, n = {n}" if j == 0 else None,
                   title=titles[c] if i == 0 else None,
                   xlabel="epoch" if i == len(ns) - 1 else None)  # fmt: skip
    if own:
        fig.tight_layout()
    legend_outside(fig, *axs.flat, title="grammar (bars: +- 1 SD over seeds)")
    keep = ["run", "grammar", "entropy_bits", "n_train", "seed", "epoch", *cols]
    return attach(fig, m[[c for c in keep if c in m]])


__all__ = ["generations_valid", "mia_auc", "position_heatmap"]
