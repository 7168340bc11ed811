"""Phase and memorization figures: the phase diagram (epoch x grammar entropy), phase epochs
against entropy and n, memorized bits (memU, excess test bits) against epoch, and memorized bits
per training string against its surprisal. Bits per string unless a label says otherwise; each
function draws one figure and returns its stem (see :mod:`grammarlab.plot.registry`).
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

from grammarlab.analysis.phases import forgetting_share, is_stopped, summarize_event
from grammarlab.plot.common import (
    SCORE,
    TWO_COLUMN_IN,
    Skip,
    curves_long,
    families,
    grammar_palette,
    legend_outside,
    marker_handles,
    mean_phases,
    save_figure,
    sorted_grammars,
)


def phase_diagram(t: Any, out: Path) -> list[str]:
    """Epoch x grammar entropy, colour = memorization score clipped to [0, 1] (mean over
    seeds); one row per grammar family (name up to its first '_'), one column per n; onset (x)
    and end of generalization (triangles) on top, joined within a family, and the
    floor-corrected onset (+, dotted) where the runs have it (phases.json with the grammar's
    own losses: :func:`grammarlab.analysis.phases.floor_corrected_onset`); cells whose runs all
    stopped early get their onset as a hollow grey circle: provisional."""
    c = curves_long(t)
    if c.entropy_bits.isna().all():
        raise Skip("phase diagram needs the grammars' entropies (grammarlab.grammar.entropy)")
    keys = ["grammar", "entropy_bits", "n_train", "epoch"]
    w = c.pivot_table(index=keys, columns="dataset", values="loss").reset_index()
    w["score"] = np.clip(1 - w["train"] / w["test"], 0, 1)
    w["family"] = families(t, w)
    ph = mean_phases(t)
    fc = _floor_onsets(t.phases)
    if fc is not None:
        ph = ph.merge(fc, on=["grammar", "n_train"], how="left")
    prov = _provisional(t.phases)
    if prov is not None:
        ph = ph.merge(prov, on=["grammar", "n_train"], how="left")
    fams, ns = sorted(w.family.unique()), sorted(w.n_train.unique())
    fig, axes = plt.subplots(len(fams), len(ns), figsize=(TWO_COLUMN_IN, 2.2 * len(fams)),
                             squeeze=False, sharex=True)  # fmt: skip
    for i, fam in enumerate(fams):
        for j, n in enumerate(ns):
            ax = axes[i, j]
            d = w[(w.n_train == n) & (w.family == fam)]
            m = d.pivot_table(index="entropy_bits", columns="epoch", values="score")
            hs, es = m.index.to_numpy(float), m.columns.to_numpy(float)
            mesh = ax.pcolormesh(_edges(es), _edges(hs), m.to_numpy(), cmap="magma", vmin=0,
                                 vmax=1)  # fmt: skip
            p = ph[(ph.n_train == n) & ph.grammar.isin(d.grammar.unique())]
            p = p.sort_values("entropy_bits")
            for ev, marker, color, ls in (("memorization_onset", "x", "cyan", "-"),
                                          ("generalization_end", "^", "lime", "--")):  # fmt: skip
                e, h = p[f"{ev}_epoch"].to_numpy(float), p.entropy_bits.to_numpy(float)
                cens = p[f"{ev}_censored"].to_numpy(bool)
                ax.plot(e[~cens], h[~cens], marker=marker, ls=ls, color=color, ms=7, mew=2,
                        label=ev.replace("_", " ").replace("generalization end",
                                                           "end of generalization"))  # fmt: skip
                ax.plot(e[cens], h[cens], marker=">", ls="none", color=color, ms=7, mfc="none",
                        label=f"{ev.split('_')[0]}: censored")  # fmt: skip
            if "provisional_onset_epoch" in p:
                e, h = p["provisional_onset_epoch"].to_numpy(float), p.entropy_bits.to_numpy(float)
                ax.plot(e, h, marker="o", ls="none", color="0.7", mfc="none", ms=7,
                        label="onset, provisional (runs stopped early)")  # fmt: skip
            if "floor_corrected_onset_epoch" in p:
                e, h = (
                    p["floor_corrected_onset_epoch"].to_numpy(float),
                    p.entropy_bits.to_numpy(float),
                )
                ax.plot(e, h, marker="+", ls=":", color="white", ms=8, mew=2,
                        label="floor-corrected onset")  # fmt: skip
            ax.set_yticks(p.entropy_bits, [f"{h:.0f}" for h in p.entropy_bits])
            ax.set(xlabel="epoch" if i == len(fams) - 1 else None, title=f"{fam}, n = {n}",
                   ylabel="grammar entropy\n(bits/string)" if j == 0 else None)  # fmt: skip
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.tight_layout()
    fig.colorbar(mesh, ax=axes.ravel().tolist(), label=SCORE)
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.45, 0.0), ncols=2,
               frameon=False)  # fmt: skip
    data = w.merge(ph, on=["grammar", "entropy_bits", "n_train"], how="left")
    return [save_figure(fig, data, out, "phase_diagram")]


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


def phases_vs(t: Any, out: Path) -> list[str]:
    """Onset (x) and end of generalization (triangle) against the grammar entropy (colour = n;
    lines join grammars of one family only, never across families) and against n (colour =
    grammar, family palettes). Epochs are means over the seeds that observed the event; a cell
    where most seeds are censored is drawn open at the last epoch (the event comes later)."""
    ph = mean_phases(t)
    ph["family"] = families(t, ph)
    events = {"memorization_onset": ("x", "memorization onset"),
              "generalization_end": ("^", "end of generalization")}  # fmt: skip
    fig, axes = plt.subplots(1, 2, figsize=(TWO_COLUMN_IN, 2.6))
    ns = sorted(ph.n_train.unique())
    npal = dict(zip(ns, sns.color_palette("tab10", len(ns)), strict=True))
    gpal = grammar_palette(ph)
    rows = []
    for ev, (marker, name) in events.items():
        for (_fam, n), d in ph.groupby(["family", "n_train"]):
            d = d.sort_values("entropy_bits")
            ls = "-" if ev[0] == "m" else "--"
            _line(axes[0], d.entropy_bits, d, ev, marker, npal[n], ls=ls)
        for g, d in ph.groupby("grammar"):
            d = d.sort_values("n_train")
            ls = "-" if ev[0] == "m" else "--"
            _line(axes[1], d.n_train, d, ev, marker, gpal[g], ls=ls)
        rows.append(ph.assign(phase=name, epoch=ph[f"{ev}_epoch"],
                              censored=ph[f"{ev}_censored"]))  # fmt: skip
    axes[0].set(xlabel="grammar entropy (bits/string)", ylabel="epoch")
    axes[1].set(xlabel="n (training strings, log scale)", ylabel="epoch", xscale="log")
    axes[1].set_xticks(ns, [str(n) for n in ns])
    axes[1].minorticks_off()
    from matplotlib.lines import Line2D

    h = [Line2D([], [], color=npal[n]) for n in ns] + [Line2D([], [], color=gpal[g])
                                                       for g in sorted_grammars(ph)]  # fmt: skip
    lab = [f"n = {n}" for n in ns] + list(sorted_grammars(ph))
    mh, ml = marker_handles()
    fig.tight_layout()
    fig.legend(h + mh, lab + ml, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    return [save_figure(fig, pd.concat(rows), out, "phases_vs_entropy_and_n")]


def _line(ax: Any, x: Any, d: pd.DataFrame, ev: str, marker: str, color: Any, ls: str) -> None:
    """One line through a group's observed event epochs; censored ones open, pointing right."""
    y = d[f"{ev}_epoch"].to_numpy(float)
    cens = d[f"{ev}_censored"].to_numpy(bool)
    x = np.asarray(x, float)
    # the line joins observed events only: a censored one is a bound, not a point on a curve
    ax.plot(x[~cens], y[~cens], ls=ls, color=color, lw=1, marker=marker, ms=6, mew=1.5)
    ax.plot(x[cens], y[cens], marker=">", ls="none", color=color, ms=6, mfc="none")


def memorized_bits(t: Any, out: Path) -> list[str]:
    """memU on the training set (total bits) and excess test bits per string against epoch,
    mean +- std over seeds; colour = grammar (family palettes), one column per n."""
    m = t.measures
    need = {"memU_train_bits_total", "excess_test_bits"}
    if m.empty or not need <= set(m.columns):
        raise Skip("memorized bits need measures.jsonl (grammarlab measures RUN)")
    ns = sorted(m.n_train.unique())
    fig, axes = plt.subplots(2, len(ns), figsize=(TWO_COLUMN_IN, 4.2), squeeze=False,
                             sharex=True)  # fmt: skip
    labels = {"memU_train_bits_total": "memU on train, total (bits)",
              "excess_test_bits": "excess test bits/string\n(model - grammar)"}  # fmt: skip
    pal = grammar_palette(m)
    order = sorted_grammars(m)
    for j, n in enumerate(ns):
        for i, col in enumerate(labels):
            sns.lineplot(m[m.n_train == n], x="epoch", y=col, hue="grammar", hue_order=order,
                         palette=pal, ax=axes[i, j], errorbar="sd")  # fmt: skip
            axes[i, j].set(ylabel=labels[col] if j == 0 else None,
                           title=f"n = {n}" if i == 0 else None)  # fmt: skip
    fig.tight_layout()
    legend_outside(fig, *axes.flat, title="grammar")
    cols = ["run", "grammar", "entropy_bits", "n_train", "seed", "epoch", *labels]
    return [save_figure(fig, m[[c for c in cols if c in m]], out, "memorized_bits_vs_epoch")]


def per_string(t: Any, out: Path) -> list[str]:
    """Memorized bits (memU) per training string against its surprisal under the grammar, at
    the memorization onset and at the last epoch, one panel per (n, grammar); the title gives
    Spearman's rho at the last epoch: are atypical (high-surprisal) strings memorized more?"""
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
    fig, axes = plt.subplots(len(ns), len(grammars), figsize=(2.9 * len(grammars), 2.7 * len(ns)),
                             squeeze=False)  # fmt: skip
    for i, n in enumerate(ns):
        for j, g in enumerate(grammars):
            ax, d = axes[i, j], data[(data.n_train == n) & (data.grammar == g)]
            sns.scatterplot(d, x="grammar_bits", y="memU_bits", hue="when", s=14, ax=ax,
                            hue_order=["at memorization onset", "last epoch"])  # fmt: skip
            last = d[d.when == "last epoch"]
            if last.grammar_bits.nunique() <= 1:
                note = "all strings equally likely"
            elif last.memU_bits.nunique() <= 1:
                note = "memU constant"
            else:
                note = f"Spearman rho = {spearmanr(last.grammar_bits, last.memU_bits)[0]:.2f}"
            ax.set_title(f"{g}, n = {n}\n({note})", fontsize=8)
            ax.set(xlabel="surprisal under grammar (bits)", ylabel="memU (bits/string)")
            ax.tick_params(labelsize=7)
    fig.tight_layout()
    legend_outside(fig, *axes.flat)
    return [save_figure(fig, data, out, "memorized_bits_per_string")]


def forgetting(t: Any, out: Path) -> list[str]:
    """Sequential runs: the share of D1's advantage over the test loss lost at each stage-2
    epoch, ``1 - (test - d1) / (test - d1 at the end of stage 1)``
    (:func:`grammarlab.analysis.phases.forgetting_share`), one line per seed, one panel per
    grammar; dotted: one half, the report's forgetting threshold. 0: D1 as well known as at the
    switch, 1: no better than the test set."""

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
    fig, axes = plt.subplots(1, len(gs), figsize=(TWO_COLUMN_IN, 2.3), squeeze=False,
                             sharey=True)  # fmt: skip
    for ax, g in zip(axes[0], gs, strict=True):
        sns.lineplot(df[df.grammar == g], x="epoch", y="share_lost", units="run", estimator=None,
                     lw=0.8, color="C0", ax=ax)  # fmt: skip
        ax.axhline(0.5, color="0.4", ls=":", lw=0.8)
        ax.set(title=str(g), ylabel="share of D1's advantage\nover the test loss lost")
    fig.tight_layout()
    return [save_figure(fig, df, out, "forgetting_share")]
