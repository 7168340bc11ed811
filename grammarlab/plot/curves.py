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

from grammarlab.analysis.phases import (
    memorization_score,
    memorization_score_acc,
    summarize_event,
)
from grammarlab.plot.common import (
    DASHES,
    LOSS,
    TWO_COLUMN_IN,
    Skip,
    curves_long,
    families,
    grammar_palette,
    grid,
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
    # one row per grammar, two paper columns wide: readable whatever the number of grammars
    fig, axes = plt.subplots(len(grammars), 3, figsize=(TWO_COLUMN_IN, 1.9 * len(grammars)),
                             squeeze=False)  # fmt: skip
    ph = t.phases.set_index("run")
    rows = []
    for j, g in enumerate(grammars):
        d = c[c.grammar == g]
        for i, what in enumerate(("loss", "acc")):
            ax = axes[j, i]
            sns.lineplot(d, x="epoch", y=what, hue="dataset", ax=ax, legend=i == j == 0,
                         hue_order=["train", "test", "random"])  # fmt: skip
            ax.set_ylabel(LOSS if what == "loss" else "next-token accuracy")
        mark_phases(axes[j, 0], d, ph.loc[d.run.iloc[0]], "k")
        wide = d.pivot_table(index="epoch", columns="dataset", values=["loss", "acc"])
        # the scores of analysis.phases (one definition), the loss form clipped for the plot
        score = pd.Series(np.clip(memorization_score(wide["loss"]["train"], wide["loss"]["test"]),
                                  0, 1), index=wide.index)  # fmt: skip
        acc_gap = pd.Series(memorization_score_acc(wide["acc"]["train"], wide["acc"]["test"]),
                            index=wide.index)  # fmt: skip
        ax = axes[j, 2]
        ax.plot(score.index, score.values, color="C3", label="1 - L_train/L_test (clipped [0, 1])")
        ax.plot(acc_gap.index, acc_gap.values, "--", color="C4", label="train_acc - test_acc")
        ax.set(xlabel="epoch", ylabel="memorization", ylim=(-0.05, 1.05))
        row = d[["run", "grammar", "entropy_bits", "n_train"]].iloc[0]
        axes[j, 0].set_title(f"{g}: H = {row.entropy_bits:.1f} bits/string, n = {row.n_train}",
                             loc="left")  # fmt: skip
        rows.append(pd.DataFrame({"grammar": g, "epoch": score.index, "memorization_loss_clipped":
                                  score.values, "memorization_acc": acc_gap.values}))  # fmt: skip
    fig.tight_layout()
    legend_outside(fig, axes[0, 0], axes[0, 2], markers=True)
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
        if len(p) >= 2 and not p.memorization_onset_censored.iloc[-1]:
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
    fig, axes = plt.subplots(1, 2, figsize=(TWO_COLUMN_IN, 2.6), sharey=True)
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
        # an open circle: the x is reserved for the memorization onset
        axes[0].plot([cross], [level], "o", ms=8, mfc="none", mew=1.5, color="k")
        axes[0].annotate(f"same train loss, test {te:.2f}", (cross, te), fontsize=8,
                         xytext=(5, 10), textcoords="offset points")  # fmt: skip
    fig.suptitle(f"horizontal line: {note} ({level:.2f} nats/token); x: its onset; "
                 "o: the smaller n at the same train loss")  # fmt: skip
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
        s2 = dd[dd.stage >= 2].epoch.min()
        if pd.notna(s2):
            ax.axvline(s2, color="gray", lw=0.8, ls=":")
        summary = summarize_event(ph.loc[dd.run.unique()].reset_index().to_dict("records"),
                                  "forgetting")  # fmt: skip
        if summary.n_observed * 2 > summary.n_runs:  # a mean of the seeds that observed it
            ax.axvline(summary.mean, color="k", lw=1)
        # the seed counts go on their own line: on one line they ran into the next panel's title
        label = summary.label().replace(" (", "\n(", 1)
        ax.set_title(f"{g}\nforgetting: {label}", fontsize="small")
        ax.set(ylabel=LOSS)
    fig.tight_layout()
    return [save_figure(fig, d, out, "fig4_sequential_forgetting")]


def fig5(t: Any, out: Path) -> list[str]:
    """Entropy sweep: rows = grammar family, columns = n; train solid, test dashed, mean +- std
    over seeds; one colour per grammar (its family's palette, darker = higher entropy; the
    legend gives names and exact entropies in bits/string). Dotted horizontal lines: each
    grammar's entropy floor in nats/token, estimated on its test strings (grammar bits per
    string x ln 2 / predicted tokens per string), where measures.jsonl has it: the loss of
    different alphabets is only comparable against its own floor."""
    c = curves_long(t)
    c["family"] = families(t, c)
    fams, ns = sorted(c.family.unique()), sorted(c.n_train.unique())
    pal = grammar_palette(c)
    floors = entropy_floors(t)
    fig, axes = plt.subplots(len(fams), len(ns), figsize=(TWO_COLUMN_IN, 2.2 * len(fams)),
                             squeeze=False, sharex=True)  # fmt: skip
    for i, fam in enumerate(fams):
        for j, n in enumerate(ns):
            d = c[(c.family == fam) & (c.n_train == n)]
            ax = axes[i, j]
            if d.empty:
                ax.set_visible(False)
                continue
            order = [g for g in sorted_grammars(c) if g in set(d.grammar)]
            sns.lineplot(d, x="epoch", y="loss", hue="grammar", hue_order=order, palette=pal,
                         style="dataset", dashes=DASHES, errorbar="sd", ax=ax,
                         legend=False)  # fmt: skip
            for g in order:
                if g in floors:
                    ax.axhline(floors[g], color=pal[g], lw=0.8, ls=":")
            ax.set(ylabel=LOSS if j == 0 else None, title=f"{fam}, n = {n}")
    fig.tight_layout()
    _entropy_legend(fig, c, pal, bool(floors))
    data = c.assign(entropy_floor_nats_per_token=c.grammar.map(floors))
    return [save_figure(fig, data, out, "fig5_entropy_sweep")]


def entropy_floors(t: Any) -> dict[str, float]:
    """Per grammar: its entropy floor in nats/token, estimated on the test strings from
    measures.jsonl (``grammar_test_bits_mean`` x ln 2 / predicted tokens per string, the latter
    ``excess_test_bits / excess_test_bits_per_token``); {} without measures. Exact for grammars of
    one length (every string has the same number of predicted tokens)."""
    m = t.measures
    need = {"grammar_test_bits_mean", "excess_test_bits", "excess_test_bits_per_token"}
    if m.empty or not need <= set(m.columns):
        return {}
    m = m.dropna(subset=list(need))
    m = m[m.excess_test_bits_per_token != 0]
    ntok = m.excess_test_bits / m.excess_test_bits_per_token
    floor = m.grammar_test_bits_mean * np.log(2) / ntok
    return floor.groupby(m.grammar).mean().to_dict()


def _entropy_legend(fig: Any, c: pd.DataFrame, pal: dict, floors: bool) -> None:
    """Figure legend: one entry per grammar (name and exact entropy, by family), then train
    solid / test dashed (and the floor)."""
    from matplotlib.lines import Line2D

    g = c.groupby(["family", "grammar"]).entropy_bits.first().reset_index()
    g = g.sort_values(["family", "entropy_bits"], na_position="last")
    handles = [Line2D([], [], color=pal[name]) for name in g.grammar]
    shown = c.dropna(subset=["label"]).groupby("grammar").label.first().to_dict() if (
        "label" in c.columns) else {}  # fmt: skip
    labels = [f"{shown.get(name, name)}: {h:.1f} bits"
              for name, h in zip(g.grammar, g.entropy_bits, strict=True)]  # fmt: skip
    handles += [Line2D([], [], color="k"), Line2D([], [], color="k", ls="--")]
    labels += ["train", "test"]
    if floors:
        handles.append(Line2D([], [], color="k", ls=":", lw=0.8))
        labels.append("entropy floor (nats/token)")
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5),
               title="grammar: H (bits/string)", frameon=False)  # fmt: skip
