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

from grammarlab.plot.common import (
    SCORE,
    Skip,
    curves_long,
    family_of,
    hue_column,
    legend_outside,
    mean_phases,
    save_figure,
    sorted_grammars,
)


def phase_diagram(t: Any, out: Path) -> list[str]:
    """Epoch x grammar entropy, colour = memorization score clipped to [0, 1] (mean over
    seeds); one row per grammar family (name up to its first '_'), one column per n; onset (x)
    and end of generalization (triangles) on top, joined within a family."""
    c = curves_long(t)
    if c.entropy_bits.isna().all():
        raise Skip("phase diagram needs the grammars' entropies (grammarlab.grammar.entropy)")
    keys = ["grammar", "entropy_bits", "n_train", "epoch"]
    w = c.pivot_table(index=keys, columns="dataset", values="loss").reset_index()
    w["score"] = np.clip(1 - w["train"] / w["test"], 0, 1)
    w["family"] = w.grammar.map(family_of)
    ph = mean_phases(t)
    fams, ns = sorted(w.family.unique()), sorted(w.n_train.unique())
    fig, axes = plt.subplots(len(fams), len(ns), figsize=(5 * len(ns), 2.9 * len(fams)),
                             squeeze=False)  # fmt: skip
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
            ax.plot(p.memorization_onset_epoch, p.entropy_bits, "x-", color="cyan", ms=8, mew=2,
                    label="memorization onset")  # fmt: skip
            ax.plot(p.generalization_end_epoch, p.entropy_bits, "^--", color="lime", ms=7,
                    label="end of generalization")  # fmt: skip
            ax.set_yticks(
                p.entropy_bits,
                [f"{h:.1f}\n{g}" for g, h in zip(p.grammar, p.entropy_bits, strict=True)],
            )
            ax.tick_params(axis="y", labelsize=7)
            ax.set(xlabel="epoch" if i == len(fams) - 1 else None, title=f"{fam}, n = {n}",
                   ylabel="grammar entropy\n(bits/string)" if j == 0 else None)  # fmt: skip
    axes[-1, 0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(0, -0.3), ncols=2,
                       frameon=False)  # fmt: skip
    fig.tight_layout()
    fig.colorbar(mesh, ax=axes.ravel().tolist(), label=SCORE)
    data = w.merge(ph, on=["grammar", "entropy_bits", "n_train"], how="left")
    return [save_figure(fig, data, out, "phase_diagram")]


def _edges(v: np.ndarray) -> np.ndarray:
    """Cell edges around sorted centres (midpoints; the outer cells mirror their neighbour)."""
    if v.size == 1:
        return np.array([v[0] - 0.5, v[0] + 0.5])
    mid = (v[1:] + v[:-1]) / 2
    lo = max(v[0] - (mid[0] - v[0]), min(0.0, v[0]))  # entropies are >= 0
    return np.concatenate([[lo], mid, [v[-1] + (v[-1] - mid[-1])]])


def phases_vs(t: Any, out: Path) -> list[str]:
    """Onset and end of generalization (epochs, mean over seeds) against the grammar entropy
    (colour = n) and against n (colour = grammar)."""
    ph = mean_phases(t)
    long = ph.melt(id_vars=["grammar", "entropy_bits", "n_train"], var_name="phase",
                   value_vars=["memorization_onset_epoch", "generalization_end_epoch"],
                   value_name="epoch")  # fmt: skip
    long["phase"] = long.phase.map(
        {
            "memorization_onset_epoch": "memorization onset",
            "generalization_end_epoch": "end of generalization",
        }
    )
    marks = {"memorization onset": "X", "end of generalization": "^"}
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    sns.lineplot(long, x="entropy_bits", y="epoch", hue="n_train", style="phase", markers=marks,
                 ax=axes[0], palette="tab10", ms=8)  # fmt: skip
    axes[0].set(xlabel="grammar entropy (bits/string)", ylabel="epoch")
    sns.lineplot(long, x="n_train", y="epoch", hue="grammar", style="phase", markers=marks,
                 ax=axes[1], ms=8)  # fmt: skip
    ns = sorted(long.n_train.unique())
    axes[1].set(xlabel="n (training strings, log scale)", ylabel="epoch", xscale="log")
    axes[1].set_xticks(ns, [str(n) for n in ns])
    axes[1].minorticks_off()
    for ax in axes:
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5), frameon=False)
    fig.tight_layout()
    return [save_figure(fig, long, out, "phases_vs_entropy_and_n")]


def memorized_bits(t: Any, out: Path) -> list[str]:
    """memU on the training set (total bits) and excess test bits per string against epoch;
    colour = entropy, one column per n."""
    m = t.measures
    need = {"memU_train_bits_total", "excess_test_bits"}
    if m.empty or not need <= set(m.columns):
        raise Skip("memorized bits need measures.jsonl (grammarlab measures RUN)")
    ns = sorted(m.n_train.unique())
    fig, axes = plt.subplots(2, len(ns), figsize=(4.6 * len(ns), 6.4), squeeze=False)
    labels = {"memU_train_bits_total": "memU on train, total (bits)",
              "excess_test_bits": "excess test bits/string\n(model - grammar)"}  # fmt: skip
    hue = hue_column(m)
    for j, n in enumerate(ns):
        for i, col in enumerate(labels):
            sns.lineplot(
                m[m.n_train == n],
                x="epoch",
                y=col,
                hue=hue,
                ax=axes[i, j],
                palette="viridis" if hue == "entropy_bits" else None,
                errorbar="sd",
            )
            axes[i, j].set(ylabel=labels[col], title=f"n = {n}" if i == 0 else None)
    fig.tight_layout()
    legend_outside(fig, *axes.flat, title="H (bits/string)" if hue == "entropy_bits" else None)
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
