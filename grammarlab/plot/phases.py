"""Phase and memorization figures: the phase diagram (epoch x grammar entropy), phase epochs
against entropy and n, memorized bits (memU, excess test bits) against epoch, and memorized bits
per training string against its surprisal. Bits per string unless a label says otherwise; each
function returns a :class:`matplotlib.figure.Figure` (with the table it drew as
``fig.grammarlab_data``) and writes nothing: :mod:`grammarlab.plot.registry` saves them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from grammarlab.analysis.phases import forgetting_share, is_stopped, summarize_event
from grammarlab.plot.common import (
    SCORE,
    TWO_COLUMN_IN,
    Palette,
    Skip,
    attach,
    curves_long,
    families,
    figure_function,
    grammar_palette,
    grid,
    legend_outside,
    marker_handles,
    mean_phases,
    panel_grid,
    points,
    resolve_palette,
    several_seeds,
    sorted_grammars,
    table_labels,
)


@figure_function
def phase_diagram(
    t: Any,
    *,
    axes: Any = None,
    labels: Mapping[str, str] | None = None,
    palette: Palette = None,
    size: tuple[float, float] | None = None,
    cmap: str = "magma",
) -> Figure:
    """Epoch x grammar entropy, colour = memorization score clipped to [0, 1] (mean over
    seeds); one row per grammar family (the tables' ``family`` column, else the name up to its
    first '_'), one column per n; one band of equal height per grammar, ordered by entropy (the
    grammars are discrete: no entropy axis between them, markers only, no line joining them).
    On top: the onset (x) and end of generalization (triangle), the
    floor-corrected onset (+) where the runs have it (phases.json with the grammar's own losses:
    :func:`grammarlab.analysis.phases.floor_corrected_onset`); an event most seeds did not reach
    is an open right-pointing triangle at the last epoch (when both are, the onset's in the
    upper half of the grammar's band and the end's in the lower half, so that both show);
    cells whose runs all stopped early get their onset as a hollow grey circle: provisional.

    axes: families x n axes (row by row); labels: grammar -> name on the y ticks (default:
    the entropy in bits/string); palette: the marker colours, a mapping with keys ``onset``,
    ``end``, ``floor`` (defaults cyan, lime, white); cmap: the score's colour map; size:
    (width, height) in inches."""
    c = curves_long(t)
    if c.entropy_bits.isna().all():
        raise Skip("phase diagram needs the grammars' entropies (grammarlab.grammar.entropy)")
    keys = ["grammar", "entropy_bits", "n_train", "epoch"]
    w = c.pivot_table(index=keys, columns="dataset", values="loss").reset_index()
    w["score"] = np.clip(1 - w["train"] / w["test"], 0, 1)
    fam_of = dict(zip(c.grammar, families(c), strict=True))
    w["family"] = w.grammar.map(fam_of)
    ph = mean_phases(t)
    fc = _floor_onsets(t.phases)
    if fc is not None:
        ph = ph.merge(fc, on=["grammar", "n_train"], how="left")
    prov = _provisional(t.phases)
    if prov is not None:
        ph = ph.merge(prov, on=["grammar", "n_train"], how="left")
    colors = {"onset": "cyan", "end": "lime", "floor": "white"}
    if isinstance(palette, Mapping):
        colors.update(palette)
    names = table_labels(t, labels)
    if all(k == v for k, v in names.items()):
        names = None  # no label but the name: the ticks give the entropy only
    fams, ns = sorted(w.family.unique()), sorted(w.n_train.unique())
    own = axes is None
    fig, axs = panel_grid(len(fams), len(ns), axes, size, panel=(TWO_COLUMN_IN / len(ns), 2.2),
                          sharex=True)  # fmt: skip
    mesh = None
    for i, fam in enumerate(fams):
        for j, n in enumerate(ns):
            ax = axs[i, j]
            d = w[(w.n_train == n) & (w.family == fam)]
            if d.empty:
                ax.set_visible(False)
                continue
            # one band of equal height per grammar, by entropy: the grammars are distinct
            # points, not a continuum of entropies (the ticks give each one's entropy)
            m = d.pivot_table(index="grammar", columns="epoch", values="score")
            ent = d.groupby("grammar").entropy_bits.first()
            rows = sorted(m.index, key=lambda g: (ent[g], str(g)))
            m = m.loc[rows]
            es, row_of = m.columns.to_numpy(float), {g: k for k, g in enumerate(rows)}
            he = np.arange(len(rows) + 1) - 0.5
            mesh = ax.pcolormesh(_edges(es), he, m.to_numpy(), cmap=cmap, vmin=0, vmax=1)
            for y in he[1:-1]:
                ax.axhline(y, color="white", lw=1.5)
            p = ph[(ph.n_train == n) & ph.grammar.isin(rows)]
            p = p.assign(row=p.grammar.map(row_of)).sort_values("row")
            h = p.row.to_numpy(float)
            # both events censored: both at the last epoch, so the onset goes up and the end
            # down within the grammar's band, and both show
            both = p.memorization_onset_censored.to_numpy(
                bool
            ) & p.generalization_end_censored.to_numpy(bool)
            dh = 0.25 * both
            evs = (("memorization_onset", "x", colors["onset"], +1),
                   ("generalization_end", "^", colors["end"], -1))  # fmt: skip
            for ev, marker, color, shift in evs:
                e = p[f"{ev}_epoch"].to_numpy(float)
                cens = p[f"{ev}_censored"].to_numpy(bool)
                name = "memorization onset" if ev[0] == "m" else "end of generalization"
                points(ax, e[~cens], h[~cens], marker=marker, ls="none", color=color, ms=7,
                       mew=2, label=name)  # fmt: skip
                points(ax, e[cens], (h + shift * dh)[cens], marker=">", ls="none", color=color,
                       ms=7, mfc="none", mew=1.5,
                       label=f"{name}: not reached by the last epoch (censored)")  # fmt: skip
            if "provisional_onset_epoch" in p:
                e = p["provisional_onset_epoch"].to_numpy(float)
                points(ax, e, h, marker="o", ls="none", color="0.7", mfc="none", ms=7,
                       label="onset, provisional (runs stopped early)")  # fmt: skip
            if "floor_corrected_onset_epoch" in p:
                e = p["floor_corrected_onset_epoch"].to_numpy(float)
                points(ax, e, h, marker="+", ls="none", color=colors["floor"], ms=8, mew=2,
                       label="floor-corrected onset")  # fmt: skip
            ticks = [f"{v:.0f}" for v in p.entropy_bits]
            if names is not None:
                ticks = [f"{names.get(str(g), g)}\n{v:.0f} bits"
                         for g, v in zip(p.grammar, p.entropy_bits, strict=True)]  # fmt: skip
            ax.set_yticks(h, ticks)
            ax.set_ylim(he[0], he[-1])
            ax.grid(False)
            ax.set(xlabel="epoch" if i == len(fams) - 1 else None, title=f"{fam}, n = {n}",
                   ylabel="grammar (entropy,\nbits/string)" if j == 0 else None)  # fmt: skip
    handles, labels_ = [], []
    for ax in axs.flat:
        for hd, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels_:
                handles.append(hd)
                labels_.append(lab)
    if own:
        fig.tight_layout()
    if mesh is not None:
        fig.colorbar(mesh, ax=axs.ravel().tolist(), label=SCORE)
    # markers on a dark map: the legend on a grey patch so that cyan, lime and white read
    leg = fig.legend(handles, labels_, loc="upper center", bbox_to_anchor=(0.45, 0.0), ncols=2,
                     frameon=True)  # fmt: skip
    leg.get_frame().set_facecolor("0.35")
    leg.get_frame().set_edgecolor("none")
    for text in leg.get_texts():
        text.set_color("white")
    data = w.merge(ph, on=["grammar", "entropy_bits", "n_train"], how="left")
    return attach(fig, data)


def _provisional(phases: pd.DataFrame) -> pd.DataFrame | None:
    """Per (grammar, n) whose runs all stopped early (status not done): the mean provisional
    onset epoch, drawn apart from the finished cells' (whose markers skip these cells); None
    when no cell is of stopped runs only."""
    if phases is None or phases.empty or "memorization_onset_epoch" not in phases.columns:
        return None
    rows = []
    for (g, n), d in phases.groupby(["grammar", "n_train"]):
        recs = d.to_dict("records")
        if all(is_stopped(r) for r in recs):
            rows.append(
                {
                    "grammar": g,
                    "n_train": n,
                    "provisional_onset_epoch": d["memorization_onset_epoch"].mean(),
                }
            )
    return pd.DataFrame(rows) if rows else None


def _floor_onsets(phases: pd.DataFrame) -> pd.DataFrame | None:
    """Per (grammar, n): the mean floor-corrected onset over the seeds that observed it, when at
    most half are censored (else NaN: not drawn); None when the runs lack it."""
    if phases is None or phases.empty or "floor_corrected_onset_epoch" not in phases.columns:
        return None
    rows = []
    for (g, n), d in phases.groupby(["grammar", "n_train"]):
        s = summarize_event(d.to_dict("records"), "floor_corrected_onset")
        rows.append({"grammar": g, "n_train": n, "floor_corrected_onset_epoch":
                     s.mean if s.n_observed * 2 > s.n_runs else np.nan})  # fmt: skip
    return pd.DataFrame(rows)


def _edges(v: np.ndarray) -> np.ndarray:
    """Cell edges around sorted centres (midpoints; the outer cells mirror their neighbour)."""
    if v.size == 1:
        return np.array([v[0] - 0.5, v[0] + 0.5])
    mid = (v[1:] + v[:-1]) / 2
    lo = max(v[0] - (mid[0] - v[0]), min(0.0, v[0]))  # entropies are >= 0
    return np.concatenate([[lo], mid, [v[-1] + (v[-1] - mid[-1])]])


@figure_function
def phases_vs(
    t: Any,
    *,
    axes: Any = None,
    labels: Mapping[str, str] | None = None,
    palette: Palette = None,
    size: tuple[float, float] | None = None,
) -> Figure:
    """Onset (x) and end of generalization (triangle) against the grammar entropy (colour = n;
    markers only: the grammars are discrete, a line between them would suggest values between)
    and against n (colour = grammar, family palettes; lines join one grammar's n). Epochs are
    means over the seeds that observed the event; a cell where most seeds are censored is drawn
    open at the last epoch (the event comes later).

    axes: two axes (against entropy, against n); labels: grammar -> displayed name; palette:
    grammar -> colour (a mapping, a list or a palette name in entropy order); size: (width,
    height) in inches."""
    ph = mean_phases(t)
    events = {"memorization_onset": ("x", "memorization onset"),
              "generalization_end": ("^", "end of generalization")}  # fmt: skip
    own = axes is None
    fig, axs = panel_grid(1, 2, axes, size, panel=(TWO_COLUMN_IN / 2, 2.6))
    axs = axs[0]
    ns = sorted(ph.n_train.unique())
    npal = dict(zip(ns, sns.color_palette("tab10", len(ns)), strict=True))
    order = sorted_grammars(ph)
    gpal = resolve_palette(palette, order, grammar_palette(ph))
    names = table_labels(t, labels)
    rows = []
    for ev, (marker, name) in events.items():
        for n, d in ph.groupby("n_train"):
            _line(axs[0], d.entropy_bits, d, ev, marker, npal[n], ls="none")
        for g, d in ph.groupby("grammar"):
            d = d.sort_values("n_train")
            ls = "-" if ev[0] == "m" else "--"
            _line(axs[1], d.n_train, d, ev, marker, gpal[g], ls=ls)
        rows.append(ph.assign(phase=name, epoch=ph[f"{ev}_epoch"],
                              censored=ph[f"{ev}_censored"]))  # fmt: skip
    axs[0].set(xlabel="grammar entropy (bits/string)", ylabel="epoch")
    axs[1].set(xlabel="n (training strings, log scale)", ylabel="epoch", xscale="log")
    axs[1].set_xticks(ns, [str(n) for n in ns])
    axs[1].minorticks_off()
    from matplotlib.lines import Line2D

    h = [Line2D([], [], color=npal[n], marker="o", ls="none") for n in ns]
    h += [Line2D([], [], color=gpal[g]) for g in order]
    lab = [f"n = {n} (left)" for n in ns] + [f"{names.get(str(g), g)} (right)" for g in order]
    h += [Line2D([], [], color="k"), Line2D([], [], color="k", ls="--")]
    lab += ["onset (right: solid)", "end of generalization (right: dashed)"]
    mh, ml = marker_handles()
    if own:
        fig.tight_layout()
    fig.legend(h + mh, lab + ml, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    return attach(fig, pd.concat(rows))


def _line(ax: Any, x: Any, d: pd.DataFrame, ev: str, marker: str, color: Any, ls: str) -> None:
    """One line through a group's observed event epochs; censored ones open, pointing right,
    3.5 points above (onset) or below (end of generalization) the last epoch, so that an onset
    and an end both censored at one spot show as two markers."""
    from matplotlib.transforms import offset_copy

    y = d[f"{ev}_epoch"].to_numpy(float)
    cens = d[f"{ev}_censored"].to_numpy(bool)
    x = np.asarray(x, float)
    # the line joins observed events only: a censored one is a bound, not a point on a curve
    points(ax, x[~cens], y[~cens], ls=ls, color=color, lw=1, marker=marker, ms=6, mew=1.5)
    shifted = offset_copy(ax.transData, fig=ax.figure, y=3.5 if ev[0] == "m" else -3.5,
                          units="points")  # fmt: skip
    points(ax, x[cens], y[cens], marker=">", ls="none", color=color, ms=6, mfc="none",
           transform=shifted)  # fmt: skip
    ok = cens & np.isfinite(x) & np.isfinite(y)
    if ok.any():  # an offset transform does not count for the limits: the data do
        ax.update_datalim(np.column_stack([x[ok], y[ok]]))
        ax.autoscale_view()


@figure_function
def memorized_bits(
    t: Any,
    *,
    axes: Any = None,
    labels: Mapping[str, str] | None = None,
    palette: Palette = None,
    size: tuple[float, float] | None = None,
) -> Figure:
    """memU on the training set (total bits) and excess test bits per string against epoch,
    mean +- 1 SD over seeds (shaded); colour = grammar (family palettes), one column per n.

    axes: 2 x n axes (row by row); labels: grammar -> displayed name; palette: grammar ->
    colour (a mapping, a list or a palette name in entropy order); size: (width, height)."""
    m = t.measures
    need = {"memU_train_bits_total", "excess_test_bits"}
    if m.empty or not need <= set(m.columns):
        raise Skip("memorized bits need measures.jsonl (grammarlab measures RUN)")
    ns = sorted(m.n_train.unique())
    own = axes is None
    fig, axs = panel_grid(2, len(ns), axes, size, panel=(TWO_COLUMN_IN / len(ns), 2.1),
                          sharex=True)  # fmt: skip
    cols = {"memU_train_bits_total": "memU on train, total (bits)",
            "excess_test_bits": "excess test bits/string\n(model - grammar)"}  # fmt: skip
    order = sorted_grammars(m)
    pal = resolve_palette(palette, order, grammar_palette(m))
    names = table_labels(t, labels)
    for j, n in enumerate(ns):
        for i, col in enumerate(cols):
            d = m[m.n_train == n].assign(grammar_name=lambda x: x.grammar.map(names))
            sns.lineplot(d, x="epoch", y=col, hue="grammar_name",
                         hue_order=[names[g] for g in order if g in set(d.grammar)],
                         palette={names[g]: pal[g] for g in order}, ax=axs[i, j],
                         errorbar="sd")  # fmt: skip
            axs[i, j].set(ylabel=cols[col] if j == 0 else None,
                          title=f"n = {n}" if i == 0 else None)  # fmt: skip
    if own:
        fig.tight_layout()
    legend_outside(fig, *axs.flat, title="grammar", band=several_seeds(m))
    keep = ["run", "grammar", "entropy_bits", "n_train", "seed", "epoch", *cols]
    return attach(fig, m[[c for c in keep if c in m]])


@figure_function
def per_string(
    t: Any,
    *,
    axes: Any = None,
    ncols: int = 4,
    labels: Mapping[str, str] | None = None,
    palette: Palette = None,
    size: tuple[float, float] | None = None,
) -> Figure:
    """Memorized bits (memU) per training string against its surprisal under the grammar, at
    the memorization onset and at the last epoch, one panel per (n, grammar), wrapped into rows
    of ``ncols`` panels; the title gives Spearman's rho at the last epoch: are atypical
    (high-surprisal) strings memorized more?

    axes: one axes per (n, grammar), n first; labels: grammar -> displayed name; palette: the
    colours of the two epochs (a list or a palette name); size: (width, height) in inches."""
    from scipy.stats import spearmanr

    ps = t.per_string
    if ps.empty or "memU_bits" not in ps:
        raise Skip("per-string memorization needs per_string.csv (grammarlab measures RUN)")
    ps = ps[ps.dataset == "train"]
    onset = t.phases.set_index("run").memorization_onset_epoch
    rows = []
    for run, d in ps.groupby("run"):
        eps = np.sort(d.epoch.unique())
        o = onset.get(run, np.nan)
        at_onset = eps[eps >= o][0] if pd.notna(o) and (eps >= o).any() else None
        for when, e in (("at memorization onset", at_onset), ("last epoch", eps[-1])):
            if e is not None:
                rows.append(d[d.epoch == e].assign(when=when))
    if not rows:
        raise Skip("no training strings in per_string.csv")
    data = pd.concat(rows, ignore_index=True)
    grammars, ns = sorted_grammars(data), sorted(data.n_train.unique())
    names = table_labels(t, labels)
    present = set(zip(data.n_train, data.grammar, strict=True))
    keys = [(n, g) for n in ns for g in grammars if (n, g) in present]
    own = axes is None
    # one row per n when the grammars fit in a row, else rows of ncols panels
    k = max(1, min(ncols, len(grammars) if len(grammars) <= ncols else ncols, len(keys)))
    fig, axs = grid(len(keys), w=TWO_COLUMN_IN / k, h=2.0, ncols=k, axes=axes, size=size)
    whens = ["at memorization onset", "last epoch"]
    pal = resolve_palette(palette, whens, dict(zip(whens, ("C0", "C1"), strict=True)))
    for i, (ax, (n, g)) in enumerate(zip(axs, keys, strict=True)):
        d = data[(data.n_train == n) & (data.grammar == g)]
        sns.scatterplot(d, x="grammar_bits", y="memU_bits", hue="when", s=10, ax=ax,
                        hue_order=whens, palette=pal, legend=ax is axs[0])  # fmt: skip
        last = d[d.when == "last epoch"]
        if last.grammar_bits.nunique() <= 1:
            note = "all strings equally likely"
        elif last.memU_bits.nunique() <= 1:
            note = "memU constant"
        else:
            note = f"Spearman rho = {spearmanr(last.grammar_bits, last.memU_bits)[0]:.2f}"
        ax.set_title(f"{names[g]}, n = {n}\n({note})", fontsize=7)
        # axis labels on the outer panels only (of a figure of ours)
        ax.set(xlabel="surprisal (bits)" if not own or i + k >= len(keys) else None,
               ylabel="memU (bits/string)" if not own or i % k == 0 else None)  # fmt: skip
    if own:
        fig.suptitle("memorized bits (memU) of each training string against its surprisal "
                     "under the grammar")  # fmt: skip
        fig.tight_layout()
    legend_outside(fig, *axs)
    return attach(fig, data)


@figure_function
def forgetting(
    t: Any,
    *,
    axes: Any = None,
    labels: Mapping[str, str] | None = None,
    palette: Palette = None,
    size: tuple[float, float] | None = None,
) -> Figure:
    """Sequential runs: the share of D1's advantage over the test loss lost at each stage-2
    epoch, ``1 - (test - d1) / (test - d1 at the end of stage 1)``
    (:func:`grammarlab.analysis.phases.forgetting_share`), one line per seed, one panel per
    grammar; dotted: one half, the report's forgetting threshold. 0: D1 as well known as at the
    switch, 1: no better than the test set.

    axes: one axes per grammar; labels: grammar -> displayed name; palette: grammar -> line
    colour (a mapping, a list or a palette name; default one blue); size: (width, height)."""
    c = t.curves
    if c is None or c.empty or "stage" not in c or not c.dataset.isin(["d1"]).any():
        raise Skip("forgetting needs sequential runs (d1 losses by stage); none found")
    rows = []
    for run, d in c[c.dataset.isin(["d1", "test", "train"])].groupby("run"):
        w = d.pivot_table(index="epoch", columns="dataset", values="loss", aggfunc="first")
        st = d.groupby("epoch")["stage"].first().reindex(w.index)
        if "d1" not in w or "test" not in w or not (st >= 2).any() or not (st <= 1).any():
            continue
        s1, s2 = w[st <= 1], w[st >= 2]
        d1_end = s1["d1"].iloc[-1] if np.isfinite(s1["d1"].iloc[-1]) else s1["train"].iloc[-1]
        share = forgetting_share(s2["d1"].to_numpy(), s2["test"].to_numpy(), d1_end,
                                 s1["test"].iloc[-1])  # fmt: skip
        meta = d.iloc[0]
        rows += [{"run": run, "grammar": meta.get("grammar"), "seed": meta.get("seed"),
                  "n_train": meta.get("n_train"), "epoch": int(e), "share_lost": float(v)}
                 for e, v in zip(s2.index, share, strict=True)]  # fmt: skip
    if not rows:
        raise Skip("forgetting needs sequential runs with both stages recorded")
    df = pd.DataFrame(rows)
    gs = sorted_grammars(df)
    names = table_labels(t, labels)
    pal = resolve_palette(palette, gs, dict.fromkeys(gs, "C0"))
    own = axes is None
    fig, axs = grid(len(gs), ncols=len(gs), h=2.3, axes=axes, size=size, sharey=True)
    for ax, g in zip(axs, gs, strict=True):
        sns.lineplot(df[df.grammar == g], x="epoch", y="share_lost", units="run", estimator=None,
                     lw=0.8, color=pal[g], ax=ax)  # fmt: skip
        ax.axhline(0.5, color="0.4", ls=":", lw=0.8)
        ax.set(title=names.get(str(g), str(g)),
               ylabel="share of D1's advantage\nover the test loss lost")  # fmt: skip
    if own:
        fig.tight_layout()
    return attach(fig, df)
