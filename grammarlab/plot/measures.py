"""Figures of the memorization measures with their noise: the membership-inference AUC over
epochs with its null band, the excess surprisal by token position (heatmap), and the share of
valid generations over epochs. Each function draws one figure and returns its stem (see
:mod:`grammarlab.plot.registry`); bits per string unless a label says otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402

from grammarlab.plot.common import (  # noqa: E402
    TWO_COLUMN_IN,
    Skip,
    grammar_palette,
    grid,
    legend_outside,
    save_figure,
    sorted_grammars,
)


def mia_auc(t: Any, out: Path) -> list[str]:
    """Membership-inference AUC (members = the training strings, score -bits/token) against
    epoch, mean +- std over seeds, one panel per n; grey: the AUCs the one-sided test at 5% does
    not flag when nothing is memorized (exact Mann-Whitney null for the set sizes at hand,
    :func:`grammarlab.analysis.measures.mia_null`; the band's top is the flag's threshold, its
    bottom the mirror); dots: the epochs flagged (``mia_memorized``). An AUC above the band is a
    memorization signal that does not depend on the 5% loss rule. Measures computed before the
    band became one-sided (its top the central band's 97.5% point) are redrawn from the same
    null: ``grammarlab measures RUN`` rewrites them."""
    m = t.measures
    need = {"mia_auc", "mia_null_lo", "mia_null_hi"}
    if m.empty or not need <= set(m.columns):
        raise Skip("the AUC's null band needs measures.jsonl with mia_null_lo/hi "
                   "(grammarlab measures RUN)")  # fmt: skip
    ns = sorted(m.n_train.unique())
    fig, axes = grid(len(ns), h=2.2, ncols=min(len(ns), 2), sharey=True)
    pal, order = grammar_palette(m), sorted_grammars(m)
    for ax, n in zip(axes, ns, strict=False):
        d = m[m.n_train == n]
        band = d.groupby("epoch")[["mia_null_lo", "mia_null_hi"]].mean()
        ax.fill_between(band.index, band.mia_null_lo, band.mia_null_hi, color="0.85",
                        label="not flagged (one-sided 5%)", lw=0)  # fmt: skip
        if "mia_memorized" in d:
            f = d[d["mia_memorized"].map(lambda v: str(v).lower() in ("true", "1"))]
            ax.scatter(f["epoch"], f["mia_auc"], s=4, color="k", zorder=3, label="flagged")
        ax.axhline(0.5, color="0.5", lw=0.8)
        sns.lineplot(d, x="epoch", y="mia_auc", hue="grammar", hue_order=order, palette=pal,
                     errorbar="sd", ax=ax)  # fmt: skip
        ax.set(title=f"n = {n}", ylabel="membership-inference AUC", ylim=(0, 1.02))
    fig.tight_layout()
    legend_outside(fig, *axes, title="grammar")
    cols = ["run", "grammar", "entropy_bits", "n_train", "seed", "epoch", "mia_auc",
            "mia_null_lo", "mia_null_hi", "mia_pvalue", "mia_memorized"]  # fmt: skip
    return [save_figure(fig, m[[c for c in cols if c in m]], out, "mia_auc_null_band")]


def position_heatmap(t: Any, out: Path) -> list[str]:
    """Excess surprisal (model - grammar bits of the next token) by token position and epoch on
    the test strings, mean over seeds; one panel per (grammar, n). Diverging colours centred on
    0 (red: the model needs more bits than the grammar; blue: fewer, which on unseen strings is
    chance). Shows where in a string the excess sits; the last position is the end token."""
    pp = getattr(t, "per_position", None)
    if pp is None or len(pp) == 0:
        raise Skip("the position heatmap needs per_position rows in the sweep tables")
    pp = pp[pp.dataset == "test"]
    if pp.empty:
        raise Skip("no test rows in per_position")
    keys = sorted({(g, n) for g, n in zip(pp.grammar, pp.n_train, strict=True)},
                  key=lambda k: (sorted_grammars(pp).index(k[0]), k[1]))  # fmt: skip
    fig, axes = grid(len(keys), h=1.9, ncols=2)
    vmax = float(np.nanpercentile(np.abs(pp.excess_bits), 99)) or 1.0
    for ax, (g, n) in zip(axes, keys, strict=False):
        d = pp[(pp.grammar == g) & (pp.n_train == n)]
        m = d.pivot_table(index="position", columns="epoch", values="excess_bits", aggfunc="mean")
        mesh = ax.pcolormesh(m.columns, m.index, m.to_numpy(), cmap="RdBu_r", vmin=-vmax,
                             vmax=vmax, shading="nearest")  # fmt: skip
        ax.set(title=f"{g}, n = {n}", xlabel="epoch", ylabel="token position")
    fig.tight_layout()
    fig.colorbar(mesh, ax=axes, label="excess bits of the next token\n(model - grammar)")
    return [save_figure(fig, pp, out, "excess_by_position")]


def generations_valid(t: Any, out: Path) -> list[str]:
    """Shares of sampled strings over epochs, mean +- std over seeds: grammatical (a string of
    the grammar), a copy of a training string, and novel (grammatical, not a training string);
    one row per n, colour = grammar."""
    m = t.measures
    cols = [c for c in ("gen_grammatical_share", "gen_copy_share", "gen_novel_share")
            if c in m.columns]  # fmt: skip
    if m.empty or not cols:
        raise Skip("no generations in measures.jsonl (n_generate = 0, or no measures)")
    m = m.dropna(subset=cols, how="all")
    if m.empty:
        raise Skip("no epoch with generations")
    ns = sorted(m.n_train.unique())
    fig, axes = plt.subplots(len(ns), len(cols), figsize=(TWO_COLUMN_IN, 1.9 * len(ns)),
                             squeeze=False, sharey=True)  # fmt: skip
    pal, order = grammar_palette(m), sorted_grammars(m)
    names = {"gen_grammatical_share": "grammatical", "gen_copy_share": "copy of a training string",
             "gen_novel_share": "novel grammatical"}  # fmt: skip
    for i, n in enumerate(ns):
        for j, c in enumerate(cols):
            ax = axes[i, j]
            sns.lineplot(m[m.n_train == n], x="epoch", y=c, hue="grammar", hue_order=order,
                         palette=pal, errorbar="sd", marker="o", ms=3, ax=ax)  # fmt: skip
            ax.set(ylim=(-0.02, 1.02), ylabel=f"share, n = {n}" if j == 0 else None,
                   title=names[c] if i == 0 else None)  # fmt: skip
    fig.tight_layout()
    legend_outside(fig, *axes.flat, title="grammar")
    keep = ["run", "grammar", "entropy_bits", "n_train", "seed", "epoch", *cols]
    return [save_figure(fig, m[[c for c in keep if c in m]], out, "generations_valid_share")]


__all__ = ["generations_valid", "mia_auc", "position_heatmap"]
