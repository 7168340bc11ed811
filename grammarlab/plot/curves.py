"""The paper's loss-curve figures 1-5: losses, accuracies and memorization per grammar (fig1),
train/test by n (fig2), the same training loss by rote or with understanding (fig3), forgetting
in sequential runs (fig4) and the entropy sweep (fig5). Losses in nats/token, entropies in bits
per string; each function returns a :class:`matplotlib.figure.Figure` (with the table it drew
as ``fig.grammarlab_data``) and writes nothing: :mod:`grammarlab.plot.registry` saves them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from grammarlab.analysis.phases import (
    memorization_score,
    memorization_score_acc,
    summarize_event,
)
from grammarlab.errors import GrammarlabError
from grammarlab.plot.common import (
    BAND,
    DASHES,
    LOSS,
    TWO_COLUMN_IN,
    Palette,
    Skip,
    attach,
    band_handle,
    curves_long,
    cycle_color,
    families,
    figure_function,
    grammar_palette,
    grid,
    legend_outside,
    loss_at,
    mark_phases,
    mean_phases,
    panel_grid,
    points,
    resolve_palette,
    several_seeds,
    sorted_grammars,
    table_labels,
)

DATASET_NAMES = {"train": "train", "test": "test", "random": "random strings",
                 "d1": "D1 (stage-1 data)", "d2": "D2 (stage-2 data)"}  # fmt: skip


def _pick_grammars(c: pd.DataFrame, grammars: Sequence[str] | None, most: int) -> tuple:
    """(grammars to draw, a note on the choice): ``grammars`` as given, else all when at most
    ``most``, else the lowest, median and highest entropy."""
    allg = sorted_grammars(c)
    if grammars is not None:
        missing = sorted(set(grammars) - set(allg))
        if missing:
            raise GrammarlabError(f"grammars: {missing} not in the tables",
                                  hint=f"grammars: {', '.join(map(str, allg))}")  # fmt: skip
        return [g for g in allg if g in set(grammars)], ""
    if len(allg) <= most:
        return allg, ""
    picks = [allg[0], allg[len(allg) // 2], allg[-1]]
    return picks, f"{len(picks)} of {len(allg)} grammars: the lowest, median and highest entropy"


@figure_function
def fig1(
    t: Any,
    *,
    grammars: Sequence[str] | None = None,
    n_train: int | None = None,
    seed: int | None = None,
    axes: Any = None,
    labels: Mapping[str, str] | None = None,
    palette: Palette = None,
    size: tuple[float, float] | None = None,
) -> Figure:
    """Per grammar, one run: losses on train/test/random with the onset (x) and end of
    generalization (triangle), accuracies, and the memorization estimates (loss form clipped to
    [0, 1]; accuracy form train_acc - test_acc). One row of three panels per grammar.

    grammars: which to draw (default: all when at most three, else the lowest, median and
    highest entropy); n_train, seed: which run (default: the smallest n, the first seed); the
    figure's title says which were drawn. axes: 3 x len(grammars) axes of yours (row by row);
    labels: grammar -> displayed name; palette: the colours of train, test and random (a
    mapping by dataset, a list or a palette name); size: (width, height) in inches."""
    c = curves_long(t, ("train", "test", "random"))
    grammars, note = _pick_grammars(c, grammars, 3)
    chosen = (["the smallest n"] if n_train is None else []) + (
        ["the first seed"] if seed is None else []
    )
    c = c[c.grammar.isin(grammars)]
    if n_train is None:
        n_train = int(c.n_train.min())
    c = c[c.n_train == n_train]
    if c.empty:
        raise Skip(f"fig1: no runs with n = {n_train}")
    if seed is None:
        seed = int(c.seed.min()) if c.seed.notna().any() else None
    if seed is not None:
        c = c[c.seed == seed]
    first = c.sort_values(["run"]).groupby("grammar").run.first()
    c = c[c.run.isin(first.values)]
    grammars = [g for g in grammars if g in set(c.grammar)]
    if not grammars:
        raise Skip(f"fig1: no run with n = {n_train}, seed = {seed}")
    names = table_labels(t, labels)
    datasets = ["train", "test", "random"]
    pal = resolve_palette(palette, datasets, dict(zip(datasets, ("C0", "C1", "C2"), strict=True)))
    own = axes is None
    fig, axs = panel_grid(len(grammars), 3, axes, size, panel=(TWO_COLUMN_IN / 3, 1.8))
    ph = t.phases.set_index("run")
    rows = []
    for j, g in enumerate(grammars):
        d = c[c.grammar == g].assign(dataset_name=lambda x: x.dataset.map(DATASET_NAMES))
        for i, what in enumerate(("loss", "acc")):
            ax = axs[j, i]
            sns.lineplot(d, x="epoch", y=what, hue="dataset_name", ax=ax, legend=i == j == 0,
                         hue_order=[DATASET_NAMES[k] for k in datasets],
                         palette={DATASET_NAMES[k]: pal[k] for k in datasets})  # fmt: skip
            ax.set(ylabel=LOSS if what == "loss" else "next-token acc.",
                   xlabel="epoch" if j == len(grammars) - 1 else None)  # fmt: skip
        if d.run.iloc[0] in ph.index:
            mark_phases(axs[j, 0], d, ph.loc[d.run.iloc[0]], "k")
        wide = d.pivot_table(index="epoch", columns="dataset", values=["loss", "acc"])
        # the scores of analysis.phases (one definition), the loss form clipped for the plot
        score = pd.Series(np.clip(memorization_score(wide["loss"]["train"], wide["loss"]["test"]),
                                  0, 1), index=wide.index)  # fmt: skip
        acc_gap = pd.Series(memorization_score_acc(wide["acc"]["train"], wide["acc"]["test"]),
                            index=wide.index)  # fmt: skip
        ax = axs[j, 2]
        ax.plot(score.index, score.values, color=cycle_color(3),
                label="1 - L_train/L_test (clipped [0, 1])")  # fmt: skip
        ax.plot(acc_gap.index, acc_gap.values, "--", color=cycle_color(4),
                label="train_acc - test_acc")  # fmt: skip
        ax.set(xlabel="epoch" if j == len(grammars) - 1 else None, ylabel="memorization",
               ylim=(-0.05, 1.05))  # fmt: skip
        row = d[["run", "grammar", "entropy_bits", "n_train"]].iloc[0]
        axs[j, 0].set_title(f"{names[g]}\nH = {row.entropy_bits:.1f} bits/string", loc="left")
        rows.append(pd.DataFrame({"grammar": g, "epoch": score.index, "memorization_loss_clipped":
                                  score.values, "memorization_acc": acc_gap.values}))  # fmt: skip
    title = f"one run per grammar: n = {n_train}" + (f", seed {seed}" if seed is not None else "")
    title += f" ({' and '.join(chosen)})" if chosen else ""
    if note:
        title += f";\n{note}"
    fig.suptitle(title)
    if own:
        fig.tight_layout()
    legend_outside(fig, axs[0, 0], axs[0, 2], markers=True)
    data = c.merge(pd.concat(rows), on=["grammar", "epoch"], how="left")
    return attach(fig, data)


@figure_function
def fig2(
    t: Any,
    *,
    axes: Any = None,
    labels: Mapping[str, str] | None = None,
    palette: Palette = None,
    size: tuple[float, float] | None = None,
) -> Figure:
    """Train (solid) / test (dashed) loss per grammar, colour = n, mean +- 1 SD over seeds
    (shaded); x = memorization onset, triangle = end of generalization (means over seeds).

    axes: one axes per grammar (by entropy); labels: grammar -> displayed name; palette: the
    colours of the n (a mapping n -> colour, a list or a palette name; default tab10); size:
    (width, height) in inches."""
    c = curves_long(t)
    ph = mean_phases(t)
    grammars = sorted_grammars(c)
    names = table_labels(t, labels)
    own = axes is None
    fig, axs = grid(len(grammars), axes=axes, size=size)
    ns = sorted(c.n_train.unique())
    pal = resolve_palette(palette, ns, dict(zip(ns, sns.color_palette("tab10", len(ns)),
                                                strict=True)))  # fmt: skip
    for ax, g in zip(axs, grammars, strict=True):
        d = c[c.grammar == g]
        sns.lineplot(d, x="epoch", y="loss", hue="n_train", style="dataset", dashes=DASHES,
                     palette=pal, errorbar="sd", ax=ax, legend=ax is axs[0])  # fmt: skip
        for n in ns:
            p = ph[(ph.grammar == g) & (ph.n_train == n)]
            if not p.empty:
                mark_phases(ax, d[d.n_train == n], p.iloc[0], pal[n])
        ax.set(ylabel=LOSS, title=f"{names[g]} (H = {d.entropy_bits.iloc[0]:.1f} bits)")
    if own:
        fig.tight_layout()
    legend_outside(fig, axs[0], markers=True, band=several_seeds(c))
    return attach(fig, c)


@figure_function
def fig3(
    t: Any,
    *,
    grammar: str | None = None,
    axes: Any = None,
    labels: Mapping[str, str] | None = None,
    palette: Palette = None,
    size: tuple[float, float] | None = None,
) -> Figure:
    """Same training loss by rote (small n) or with understanding (large n): the horizontal
    line is the training loss at which the larger n starts memorizing. Mean +- 1 SD over seeds
    (shaded).

    grammar: which (default: a hierarchical grammar with two n and an onset for the larger,
    else the first such by name); axes: two axes (small n, large n); labels: grammar ->
    displayed name; palette: the colours of the small and the large n (list or palette name);
    size: (width, height) in inches."""
    c = curves_long(t)
    ph = mean_phases(t)
    cand = []
    for g, p in ph.groupby("grammar"):
        p = p.sort_values("n_train")
        if len(p) >= 2 and not p.memorization_onset_censored.iloc[-1]:
            cand.append((0 if "hier" in str(g) else 1, str(g)))
    if grammar is not None:
        if grammar not in {g for _, g in cand}:
            raise Skip(f"fig3: {grammar} has no two n with an onset for the larger n")
        cand = [(0, grammar)]
    if not cand:
        raise Skip("fig3 needs a grammar with two n and a memorization onset for the larger n")
    g = sorted(cand)[0][1]
    names = table_labels(t, labels)
    p = ph[ph.grammar == g].sort_values("n_train")
    small, large = p.iloc[0], p.iloc[-1]
    d = c[c.grammar == g]
    dl = d[d.n_train == large.n_train]
    level = loss_at(dl, large.memorization_onset_epoch, "train")
    ds = d[(d.n_train == small.n_train)].groupby(["dataset", "epoch"]).loss.mean().unstack(0)
    cross = (
        ds.index[np.argmax(ds["train"].to_numpy() <= level)] if (ds.train <= level).any() else None
    )
    colors = list(resolve_palette(palette, [0, 1], {0: "C0", 1: "C1"}).values())
    own = axes is None
    fig, axs = panel_grid(1, 2, axes, size, panel=(TWO_COLUMN_IN / 2, 2.6), sharey=True)
    axs = axs[0]
    for k, (ax, row) in enumerate(zip(axs, (small, large), strict=True)):
        dd = d[d.n_train == row.n_train]
        sns.lineplot(dd, x="epoch", y="loss", style="dataset", dashes=DASHES, errorbar="sd",
                     ax=ax, color=colors[k])  # fmt: skip
        ax.axhline(level, color="gray", lw=1)
        ax.set(title=f"{names[g]}, n = {row.n_train}", ylabel=LOSS)
    points(axs[1], [large.memorization_onset_epoch], [level], marker="x", ls="none", ms=10,
           mew=2, color="k")  # fmt: skip
    note = "train loss where the larger n starts memorizing"
    if cross is not None:
        te = ds.loc[cross, "test"]
        # an open circle: the x is reserved for the memorization onset
        points(axs[0], [cross], [level], marker="o", ls="none", ms=8, mfc="none", mew=1.5,
               color="k")  # fmt: skip
        axs[0].annotate(f"same train loss, test {te:.2f}", (cross, te), fontsize=8,
                        xytext=(5, 10), textcoords="offset points")  # fmt: skip
    fig.suptitle(
        f"horizontal line: {note} ({level:.2f} nats/token); x: its onset;\n"
        "o: the smaller n at the same train loss; shaded: mean +- 1 SD over seeds"
    )
    if own:
        fig.tight_layout()
    data = d.assign(level_nats_per_token=level, small_n_cross_epoch=cross)
    return attach(fig, data)


@figure_function
def fig4(
    t: Any,
    *,
    axes: Any = None,
    labels: Mapping[str, str] | None = None,
    palette: Palette = None,
    size: tuple[float, float] | None = None,
) -> Figure:
    """Sequential runs: D1, D2 and test loss over both stages, mean +- 1 SD over seeds
    (shaded); dotted: the switch to stage 2; solid black: the forgetting epoch (mean over the
    seeds that observed it, when most did). The legend sits right of the panels, off the data.

    axes: one axes per grammar; labels: grammar -> displayed name; palette: the colours of
    d1, d2 and test (a mapping by dataset, a list or a palette name); size: (width, height)."""
    c = t.curves
    seq = c[c.dataset.isin(["d1", "d2"])].run.unique() if not c.empty else []
    if len(seq) == 0:
        raise Skip("fig4 needs sequential runs (d1/d2 losses); none found")
    d = c[c.run.isin(seq) & c.dataset.isin(["d1", "d2", "test"])]
    grammars = sorted_grammars(d)
    names = table_labels(t, labels)
    keys = ["d1", "d2", "test"]
    pal = resolve_palette(palette, keys, dict(zip(keys, ("C1", "C2", "C0"), strict=True)))
    own = axes is None
    fig, axs = grid(len(grammars), axes=axes, size=size, h=2.2)
    ph = t.phases.set_index("run")
    for ax, g in zip(axs, grammars, strict=True):
        dd = d[d.grammar == g].assign(dataset_name=lambda x: x.dataset.map(DATASET_NAMES))
        sns.lineplot(dd, x="epoch", y="loss", hue="dataset_name", errorbar="sd", ax=ax,
                     hue_order=[DATASET_NAMES[k] for k in keys],
                     palette={DATASET_NAMES[k]: pal[k] for k in keys},
                     legend=ax is axs[0])  # fmt: skip
        s2 = dd[dd.stage >= 2].epoch.min()
        if pd.notna(s2):
            ax.axvline(s2, color="gray", lw=0.8, ls=":", label="switch to D2 (stage 2)")
        summary = summarize_event(ph.loc[dd.run.unique()].reset_index().to_dict("records"),
                                  "forgetting")  # fmt: skip
        if summary.n_observed * 2 > summary.n_runs:  # a mean of the seeds that observed it
            ax.axvline(summary.mean, color="k", lw=1, label="forgetting (mean epoch)")
        # the seed counts go on their own line: on one line they ran into the next panel's title
        label = summary.label().replace(" (", "\n(", 1)
        ax.set_title(f"{names[g]}\nforgetting: {label}", fontsize="small")
        ax.set(ylabel=LOSS)
    if own:
        fig.tight_layout()
    legend_outside(fig, *axs, band=several_seeds(d))
    return attach(fig, d)


@figure_function
def fig5(
    t: Any,
    *,
    axes: Any = None,
    labels: Mapping[str, str] | None = None,
    palette: Palette = None,
    size: tuple[float, float] | None = None,
) -> Figure:
    """Entropy sweep: rows = grammar family, columns = n, one y-axis per row (shared between
    the n); train solid, test dashed, mean +- 1 SD over seeds (shaded); one colour per grammar
    (its family's palette, darker = higher entropy; the legend gives the grammars' labels (the
    tables' ``label`` column where present, else their names) and exact entropies in
    bits/string). Dotted horizontal lines: each grammar's entropy floor in nats/token, estimated
    on its test strings (grammar bits per string x ln 2 / predicted tokens per string), where
    measures.jsonl has it: the loss of different alphabets is only comparable against its own
    floor.

    axes: families x n axes (row by row); labels: grammar -> displayed name; palette: grammar
    -> colour (a mapping, a list or a palette name in entropy order); size: (width, height)."""
    c = curves_long(t)
    c["family"] = families(c)
    fams, ns = sorted(c.family.unique()), sorted(c.n_train.unique())
    order_all = sorted_grammars(c)
    pal = resolve_palette(palette, order_all, grammar_palette(c))
    floors = entropy_floors(t)
    own = axes is None
    fig, axs = panel_grid(len(fams), len(ns), axes, size,
                          panel=(TWO_COLUMN_IN / len(ns), 2.2), sharex=True,
                          sharey="row")  # fmt: skip
    for i, fam in enumerate(fams):
        for j, n in enumerate(ns):
            d = c[(c.family == fam) & (c.n_train == n)]
            ax = axs[i, j]
            if d.empty:
                ax.set_visible(False)
                continue
            order = [g for g in order_all if g in set(d.grammar)]
            sns.lineplot(d, x="epoch", y="loss", hue="grammar", hue_order=order, palette=pal,
                         style="dataset", dashes=DASHES, errorbar="sd", ax=ax,
                         legend=False)  # fmt: skip
            for g in order:
                if g in floors:
                    ax.axhline(floors[g], color=pal[g], lw=0.8, ls=":")
            ax.set(ylabel=LOSS if j == 0 else None, title=f"{fam}, n = {n}")
    if not own:  # the caller's axes: share the y-axis within each row by hand
        for row in axs:
            lims = [ax.get_ylim() for ax in row if ax.get_visible()]
            if lims:
                lo, hi = min(v[0] for v in lims), max(v[1] for v in lims)
                for ax in row:
                    ax.set_ylim(lo, hi)
    else:
        fig.tight_layout()
    _entropy_legend(fig, c, pal, bool(floors), table_labels(t, labels))
    data = c.assign(entropy_floor_nats_per_token=c.grammar.map(floors))
    return attach(fig, data)


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


def _entropy_legend(
    fig: Any, c: pd.DataFrame, pal: dict, floors: bool, names: dict[str, str]
) -> None:
    """Figure legend: one entry per grammar (label and exact entropy, by family), then train
    solid / test dashed, the band (and the floor)."""
    from matplotlib.lines import Line2D

    g = c.groupby(["family", "grammar"]).entropy_bits.first().reset_index()
    g = g.sort_values(["family", "entropy_bits"], na_position="last")
    handles = [Line2D([], [], color=pal[name]) for name in g.grammar]
    labels = [f"{names.get(str(name), name)}: {h:.1f} bits"
              for name, h in zip(g.grammar, g.entropy_bits, strict=True)]  # fmt: skip
    handles += [Line2D([], [], color="k"), Line2D([], [], color="k", ls="--")]
    labels += ["train", "test"]
    if several_seeds(c):
        handles.append(band_handle())
        labels.append(BAND)
    if floors:
        handles.append(Line2D([], [], color="k", ls=":", lw=0.8))
        labels.append("entropy floor (nats/token)")
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5),
               title="grammar: H (bits/string)", frameon=False)  # fmt: skip
