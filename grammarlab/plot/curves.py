"""The paper's loss-curve figures 1-5: losses, accuracies and memorization per grammar (fig1),
train/test by n (fig2), the same training loss by rote or with understanding (fig3), forgetting
in sequential runs (fig4) and the entropy sweep (fig5). Losses in nats/token, entropies in bits
per string; each function draws one figure and returns its stem (see
:mod:`grammarlab.plot.registry`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from grammarlab.plot.common import (
    DASHES,
    LOSS,
    Skip,
    curves_long,
    family_of,
    grid,
    hue_column,
    legend_outside,
    loss_at,
    mark_phases,
    mean_phases,
    save_figure,
    sorted_grammars,
)


def fig1(t: Any, out: Path) -> list[str]:
    """Per grammar (smallest n, first seed): losses on train/test/random with the onset (x) and
    end of generalization (triangle), accuracies, and the memorization estimates (loss form
    clipped to [0, 1]; accuracy form train_acc - test_acc)."""
    c = curves_long(t, ("train", "test", "random"))
    first = c.sort_values(["n_train", "seed", "run"]).groupby("grammar").run.first()
    c = c[c.run.isin(first.values)]
    grammars = sorted_grammars(c)
    fig, axes = plt.subplots(3, len(grammars), figsize=(3.4 * len(grammars), 8.4), squeeze=False)
    ph = t.phases.set_index("run")
    rows = []
    for j, g in enumerate(grammars):
        d = c[c.grammar == g]
        for i, what in enumerate(("loss", "acc")):
            ax = axes[i, j]
            sns.lineplot(d, x="epoch", y=what, hue="dataset", ax=ax, legend=i == j == 0,
                         hue_order=["train", "test", "random"])  # fmt: skip
            ax.set_ylabel(LOSS if what == "loss" else "next-token accuracy")
        mark_phases(axes[0, j], d, ph.loc[d.run.iloc[0]], "k")
        wide = d.pivot_table(index="epoch", columns="dataset", values=["loss", "acc"])
        score = np.clip(1 - wide["loss"]["train"] / wide["loss"]["test"], 0, 1)
        acc_gap = wide["acc"]["train"] - wide["acc"]["test"]
        ax = axes[2, j]
        ax.plot(score.index, score.values, color="C3", label="1 - L_train/L_test (clipped [0, 1])")
        ax.plot(acc_gap.index, acc_gap.values, "--", color="C4", label="train_acc - test_acc")
        ax.set(xlabel="epoch", ylabel="memorization estimate", ylim=(-0.05, 1.05))
        row = d[["run", "grammar", "entropy_bits", "n_train"]].iloc[0]
        axes[0, j].set_title(f"{g}\nH = {row.entropy_bits:.1f} bits/string, n = {row.n_train}",
                             fontsize=9)  # fmt: skip
        rows.append(pd.DataFrame({"grammar": g, "epoch": score.index, "memorization_loss_clipped":
                                  score.values, "memorization_acc": acc_gap.values}))  # fmt: skip
    fig.tight_layout()
    legend_outside(fig, axes[0, 0], axes[2, 0], markers=True)
    data = c.merge(pd.concat(rows), on=["grammar", "epoch"], how="left")
    return [save_figure(fig, data, out, "fig1_losses_accuracy_memorization")]


def fig2(t: Any, out: Path) -> list[str]:
    """Train (solid) / test (dashed) loss per grammar, colour = n, mean +- std over seeds;
    x = memorization onset, triangle = end of generalization (means over seeds)."""
    c = curves_long(t)
    ph = mean_phases(t)
    grammars = sorted_grammars(c)
    fig, axes = grid(len(grammars))
    ns = sorted(c.n_train.unique())
    pal = dict(zip(ns, sns.color_palette("tab10", len(ns)), strict=True))
    for ax, g in zip(axes, grammars, strict=False):
        d = c[c.grammar == g]
        sns.lineplot(d, x="epoch", y="loss", hue="n_train", style="dataset", dashes=DASHES,
                     palette=pal, errorbar="sd", ax=ax, legend=ax is axes[0])  # fmt: skip
        for n in ns:
            p = ph[(ph.grammar == g) & (ph.n_train == n)]
            if not p.empty:
                mark_phases(ax, d[d.n_train == n], p.iloc[0], pal[n])
        ax.set(ylabel=LOSS, title=f"{g} (H = {d.entropy_bits.iloc[0]:.1f} bits)")
    fig.tight_layout()
    legend_outside(fig, axes[0], markers=True)
    return [save_figure(fig, c, out, "fig2_train_test_by_n")]


def fig3(t: Any, out: Path) -> list[str]:
    """Same training loss by rote (small n) or with understanding (large n): the horizontal
    line is the training loss at which the larger n starts memorizing."""
    c = curves_long(t)
    ph = mean_phases(t)
    cand = []
    for g, p in ph.groupby("grammar"):
        p = p.sort_values("n_train")
        if len(p) >= 2 and pd.notna(p.memorization_onset_epoch.iloc[-1]):
            cand.append((0 if "hier" in str(g) else 1, str(g)))
    if not cand:
        raise Skip("fig3 needs a grammar with two n and a memorization onset for the larger n")
    g = sorted(cand)[0][1]
    p = ph[ph.grammar == g].sort_values("n_train")
    small, large = p.iloc[0], p.iloc[-1]
    d = c[c.grammar == g]
    dl = d[d.n_train == large.n_train]
    level = loss_at(dl, large.memorization_onset_epoch, "train")
    ds = d[(d.n_train == small.n_train)].groupby(["dataset", "epoch"]).loss.mean().unstack(0)
    cross = (
        ds.index[np.argmax(ds["train"].to_numpy() <= level)] if (ds.train <= level).any() else None
    )
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for ax, row in zip(axes, (small, large), strict=True):
        dd = d[d.n_train == row.n_train]
        sns.lineplot(dd, x="epoch", y="loss", style="dataset", dashes=DASHES, errorbar="sd",
                     ax=ax, color="C0" if row is small else "C1")  # fmt: skip
        ax.axhline(level, color="gray", lw=1)
        ax.set(title=f"{g}, n = {row.n_train}", ylabel=LOSS)
    axes[1].plot([large.memorization_onset_epoch], [level], "x", ms=10, mew=2, color="k")
    note = "train loss where the larger n starts memorizing"
    if cross is not None:
        te = ds.loc[cross, "test"]
        axes[0].plot([cross], [level], "x", ms=10, mew=2, color="k")
        axes[0].annotate(f"same train loss, test {te:.2f}", (cross, te), fontsize=8,
                         xytext=(5, 10), textcoords="offset points")  # fmt: skip
    fig.suptitle(f"horizontal line: {note} ({level:.2f} nats/token)", fontsize=9)
    fig.tight_layout()
    data = d.assign(level_nats_per_token=level, small_n_cross_epoch=cross)
    return [save_figure(fig, data, out, "fig3_same_loss_rote_vs_understanding")]


def fig4(t: Any, out: Path) -> list[str]:
    """Sequential runs: D1, D2 and test loss over both stages; forgetting epoch marked."""
    c = t.curves
    seq = c[c.dataset.isin(["d1", "d2"])].run.unique() if not c.empty else []
    if len(seq) == 0:
        raise Skip("fig4 needs sequential runs (d1/d2 losses); none found")
    d = c[c.run.isin(seq) & c.dataset.isin(["d1", "d2", "test"])]
    grammars = sorted_grammars(d)
    fig, axes = grid(len(grammars))
    ph = t.phases.set_index("run")
    for ax, g in zip(axes, grammars, strict=False):
        dd = d[d.grammar == g]
        sns.lineplot(dd, x="epoch", y="loss", hue="dataset", errorbar="sd", ax=ax,
                     legend=ax is axes[0])  # fmt: skip
        f = ph.loc[dd.run.unique(), "forgetting_epoch"].mean() if "forgetting_epoch" in ph else None
        s2 = dd[dd.stage >= 2].epoch.min()
        if pd.notna(s2):
            ax.axvline(s2, color="gray", lw=0.8, ls=":")
        if f is not None and pd.notna(f):
            ax.axvline(f, color="k", lw=1)
            ax.text(f, ax.get_ylim()[1], " forgetting", va="top", fontsize=8)
        ax.set(ylabel=LOSS, title=str(g))
    fig.tight_layout()
    return [save_figure(fig, d, out, "fig4_sequential_forgetting")]


def fig5(t: Any, out: Path) -> list[str]:
    """Entropy sweep: rows = grammar family, columns = n; train solid, test dashed; colour =
    the grammar's exact entropy (bits/string) on each family's own scale (the families' ranges
    differ several-fold, one scale would blur the narrower one)."""
    c = curves_long(t)
    c["family"] = c.grammar.map(family_of)
    c["entropy_bits"] = c.entropy_bits.round(1)
    fams, ns = sorted(c.family.unique()), sorted(c.n_train.unique())
    fig, axes = plt.subplots(len(fams), len(ns), figsize=(4.4 * len(ns), 3.3 * len(fams)),
                             squeeze=False)  # fmt: skip
    hue = hue_column(c)
    numeric = hue == "entropy_bits"
    norms = {f: (d.entropy_bits.min(), d.entropy_bits.max()) for f, d in c.groupby("family")}
    for i, fam in enumerate(fams):
        for j, n in enumerate(ns):
            d = c[(c.family == fam) & (c.n_train == n)]
            ax = axes[i, j]
            if d.empty:
                ax.set_visible(False)
                continue
            sns.lineplot(d, x="epoch", y="loss", hue=hue, style="dataset", dashes=DASHES,
                         palette="viridis" if numeric else None,
                         hue_norm=norms[fam] if numeric else None, errorbar="sd",
                         ax=ax)  # fmt: skip
            ax.set(ylabel=LOSS, title=f"{fam}, n = {n}")
            if ax.get_legend():
                ax.get_legend().remove()
    fig.tight_layout()
    _entropy_legend(fig, c, numeric, norms)
    return [save_figure(fig, c, out, "fig5_entropy_sweep")]


def _entropy_legend(fig: Any, c: pd.DataFrame, numeric: bool, norms: dict) -> None:
    """Figure legend: one colour per grammar (its entropy on its family's scale), then train
    solid / test dashed."""
    from matplotlib.lines import Line2D

    g = c.groupby(["family", "grammar"]).entropy_bits.first().reset_index()
    g = g.sort_values(["family", "entropy_bits"], na_position="last")
    cmap = plt.get_cmap("viridis")
    handles, labels = [], []
    for k, (fam, name, h) in enumerate(g[["family", "grammar", "entropy_bits"]].itertuples(
            index=False)):  # fmt: skip
        lo, hi = norms[fam] if numeric else (0, 1)
        x = (h - lo) / (hi - lo) if numeric and hi > lo else 0.0
        handles.append(Line2D([], [], color=cmap(x) if numeric else f"C{k}"))
        labels.append(f"{name}: {h:.1f} bits" if numeric else str(name))
    handles += [Line2D([], [], color="k"), Line2D([], [], color="k", ls="--")]
    labels += ["train", "test"]
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8,
               title="grammar: H (bits/string)", title_fontsize=8, frameon=False)  # fmt: skip
