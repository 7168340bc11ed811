"""Figures from the tidy tables of a run or a sweep (:func:`grammarlab.sweep.collect`).

``PLOTS`` maps a kind to a function ``(tables, out_dir) -> [written stems]``; each figure is saved
as PNG and PDF together with the CSV it was drawn from (same stem). A kind whose inputs are
missing (no sequential runs, no measures, one n only) raises :class:`Skip` with a note instead of
failing. Units: losses nats/token (Eq. 1), entropies and memorization bits (per string unless the
label says otherwise). The memorization score ``1 - L_train/L_test`` is clipped to [0, 1] in plots
(it can be negative when the test loss is below the train loss) and the labels say so.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

LOSS = "loss (nats/token)"
DASHES = {"train": "", "test": (4, 2), "random": (1, 2), "d1": "", "d2": (6, 2)}
SCORE = "memorization 1 - L_train/L_test\n(clipped to [0, 1])"


class Skip(Exception):
    """A figure that cannot be drawn from these tables (the message says why)."""


def _save(fig: Any, data: pd.DataFrame, out: Path, stem: str) -> str:
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / f"{stem}.png", dpi=130, bbox_inches="tight")
    fig.savefig(out / f"{stem}.pdf", bbox_inches="tight")
    data.to_csv(out / f"{stem}.csv", index=False)
    plt.close(fig)
    return stem


def _grid(n: int, w: float = 4.2, h: float = 3.2, ncols: int = 3, **kw: Any) -> tuple:
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols, h * nrows), squeeze=False, **kw)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def _legend_outside(fig: Any, *axes: Any, markers: bool = False, title: str | None = None) -> None:
    """One legend for the figure, right of the panels (never over data), from the entries of
    ``axes``; with ``markers``, entries for the onset (x) and end of generalization (triangle)."""
    from matplotlib.lines import Line2D

    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
        if ax.get_legend():
            ax.get_legend().remove()
    if markers:
        handles += [Line2D([], [], marker="x", ls="none", color="k", mew=2),
                    Line2D([], [], marker="^", ls="none", color="k")]  # fmt: skip
        labels += ["memorization onset", "end of generalization"]
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8,
               title=title, title_fontsize=8, frameon=False)  # fmt: skip


def _curves(t: Any, datasets: tuple[str, ...] = ("train", "test")) -> pd.DataFrame:
    c = t.curves
    if c.empty:
        raise Skip("no curves")
    return c[c.dataset.isin(datasets)].copy()


def _mean_phases(t: Any) -> pd.DataFrame:
    """Phases averaged over seeds per (grammar, entropy_bits, n_train)."""
    ph = t.phases
    if ph.empty:
        raise Skip("no phases")
    cols = ["memorization_onset_epoch", "generalization_end_epoch", "min_test_loss",
            "test_loss_at_onset", "min_excess_test_bits", "final_memU_train_bits_total"]  # fmt: skip
    cols = [c for c in cols if c in ph.columns]
    keys = ["grammar", "entropy_bits", "n_train"]
    return ph.groupby(keys, dropna=False)[cols].mean().reset_index()


def _loss_at(c: pd.DataFrame, epoch: float, dataset: str) -> float:
    """Mean loss over seeds of ``dataset`` at the epoch nearest to ``epoch``."""
    d = c[c.dataset == dataset]
    if d.empty or not np.isfinite(epoch):
        return np.nan
    e = d.epoch.iloc[(d.epoch - epoch).abs().argmin()]
    return float(d[d.epoch == e].loss.mean())


def _hue(df: pd.DataFrame) -> str:
    """Colour by the exact entropy when known, else by grammar name."""
    return "entropy_bits" if df["entropy_bits"].notna().any() else "grammar"


def _sorted_grammars(df: pd.DataFrame) -> list[str]:
    g = df.groupby("grammar", dropna=False)["entropy_bits"].first()
    return list(g.sort_values(na_position="last").index) if "entropy_bits" in df else list(g.index)


# ----------------------------------------------------------------------------- figures


def fig1(t: Any, out: Path) -> list[str]:
    """Per grammar (smallest n, first seed): losses on train/test/random with the onset (x) and
    end of generalization (triangle), accuracies, and the memorization estimates (loss form
    clipped to [0, 1]; accuracy form train_acc - test_acc)."""
    c = _curves(t, ("train", "test", "random"))
    first = c.sort_values(["n_train", "seed", "run"]).groupby("grammar").run.first()
    c = c[c.run.isin(first.values)]
    grammars = _sorted_grammars(c)
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
        _mark_phases(axes[0, j], d, ph.loc[d.run.iloc[0]], "k")
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
    _legend_outside(fig, axes[0, 0], axes[2, 0], markers=True)
    data = c.merge(pd.concat(rows), on=["grammar", "epoch"], how="left")
    return [_save(fig, data, out, "fig1_losses_accuracy_memorization")]


def _mark_phases(ax: Any, c: pd.DataFrame, ph: pd.Series, color: Any) -> None:
    """x at the memorization onset (on the test curve), triangle at the end of generalization."""
    for col, marker in (("memorization_onset_epoch", "x"), ("generalization_end_epoch", "^")):
        e = ph.get(col, np.nan)
        if pd.notna(e):
            ax.plot([e], [_loss_at(c, e, "test")], marker=marker, ms=9, mew=2, color=color,
                    ls="none", zorder=5)  # fmt: skip


def fig2(t: Any, out: Path) -> list[str]:
    """Train (solid) / test (dashed) loss per grammar, colour = n, mean +- std over seeds;
    x = memorization onset, triangle = end of generalization (means over seeds)."""
    c = _curves(t)
    ph = _mean_phases(t)
    grammars = _sorted_grammars(c)
    fig, axes = _grid(len(grammars))
    ns = sorted(c.n_train.unique())
    pal = dict(zip(ns, sns.color_palette("tab10", len(ns)), strict=True))
    for ax, g in zip(axes, grammars, strict=False):
        d = c[c.grammar == g]
        sns.lineplot(d, x="epoch", y="loss", hue="n_train", style="dataset", dashes=DASHES,
                     palette=pal, errorbar="sd", ax=ax, legend=ax is axes[0])  # fmt: skip
        for n in ns:
            p = ph[(ph.grammar == g) & (ph.n_train == n)]
            if not p.empty:
                _mark_phases(ax, d[d.n_train == n], p.iloc[0], pal[n])
        ax.set(ylabel=LOSS, title=f"{g} (H = {d.entropy_bits.iloc[0]:.1f} bits)")
    fig.tight_layout()
    _legend_outside(fig, axes[0], markers=True)
    return [_save(fig, c, out, "fig2_train_test_by_n")]


def fig3(t: Any, out: Path) -> list[str]:
    """Same training loss by rote (small n) or with understanding (large n): the horizontal
    line is the training loss at which the larger n starts memorizing."""
    c = _curves(t)
    ph = _mean_phases(t)
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
    level = _loss_at(dl, large.memorization_onset_epoch, "train")
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
    return [_save(fig, data, out, "fig3_same_loss_rote_vs_understanding")]


def fig4(t: Any, out: Path) -> list[str]:
    """Sequential runs: D1, D2 and test loss over both stages; forgetting epoch marked."""
    c = t.curves
    seq = c[c.dataset.isin(["d1", "d2"])].run.unique() if not c.empty else []
    if len(seq) == 0:
        raise Skip("fig4 needs sequential runs (d1/d2 losses); none found")
    d = c[c.run.isin(seq) & c.dataset.isin(["d1", "d2", "test"])]
    grammars = _sorted_grammars(d)
    fig, axes = _grid(len(grammars))
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
    return [_save(fig, d, out, "fig4_sequential_forgetting")]


def _family(g: str) -> str:
    return str(g).split("_")[0]


def fig5(t: Any, out: Path) -> list[str]:
    """Entropy sweep: rows = grammar family, columns = n; train solid, test dashed; colour =
    the grammar's exact entropy (bits/string)."""
    c = _curves(t)
    c["family"] = c.grammar.map(_family)
    c["entropy_bits"] = c.entropy_bits.round(1)
    fams, ns = sorted(c.family.unique()), sorted(c.n_train.unique())
    fig, axes = plt.subplots(len(fams), len(ns), figsize=(4.4 * len(ns), 3.3 * len(fams)),
                             squeeze=False)  # fmt: skip
    hue = _hue(c)
    numeric = hue == "entropy_bits"
    norm = (c.entropy_bits.min(), c.entropy_bits.max()) if numeric else None
    for i, fam in enumerate(fams):
        for j, n in enumerate(ns):
            d = c[(c.family == fam) & (c.n_train == n)]
            ax = axes[i, j]
            if d.empty:
                ax.set_visible(False)
                continue
            sns.lineplot(d, x="epoch", y="loss", hue=hue, style="dataset", dashes=DASHES,
                         palette="viridis" if numeric else None, hue_norm=norm, errorbar="sd",
                         ax=ax)  # fmt: skip
            ax.set(ylabel=LOSS, title=f"{fam}, n = {n}")
            if ax.get_legend():
                ax.get_legend().remove()
    fig.tight_layout()
    _entropy_legend(fig, c, numeric, norm)
    return [_save(fig, c, out, "fig5_entropy_sweep")]


def _entropy_legend(fig: Any, c: pd.DataFrame, numeric: bool, norm: Any) -> None:
    """Figure legend: one colour per grammar (its entropy), then train solid / test dashed."""
    from matplotlib.lines import Line2D

    g = c.groupby("grammar").entropy_bits.first().sort_values()
    cmap = plt.get_cmap("viridis")
    lo, hi = norm if numeric else (0, 1)
    handles, labels = [], []
    for k, (name, h) in enumerate(g.items()):
        x = (h - lo) / (hi - lo) if numeric and hi > lo else k / max(1, len(g) - 1)
        handles.append(Line2D([], [], color=cmap(x) if numeric else f"C{k}"))
        labels.append(f"{name}: {h:.1f} bits" if numeric else str(name))
    handles += [Line2D([], [], color="k"), Line2D([], [], color="k", ls="--")]
    labels += ["train", "test"]
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8,
               title="grammar: H (bits/string)", title_fontsize=8, frameon=False)  # fmt: skip


def phase_diagram(t: Any, out: Path) -> list[str]:
    """Epoch x grammar entropy, colour = memorization score clipped to [0, 1] (mean over
    seeds); one row per grammar family (name up to its first '_'), one column per n; onset (x)
    and end of generalization (triangles) on top, joined within a family."""
    c = _curves(t)
    if c.entropy_bits.isna().all():
        raise Skip("phase diagram needs the grammars' entropies (grammarlab.entropy)")
    keys = ["grammar", "entropy_bits", "n_train", "epoch"]
    w = c.pivot_table(index=keys, columns="dataset", values="loss").reset_index()
    w["score"] = np.clip(1 - w["train"] / w["test"], 0, 1)
    w["family"] = w.grammar.map(_family)
    ph = _mean_phases(t)
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
            ax.set_yticks(p.entropy_bits, [f"{h:.1f}\n{g}" for g, h in
                                           zip(p.grammar, p.entropy_bits, strict=True)])  # fmt: skip
            ax.tick_params(axis="y", labelsize=7)
            ax.set(xlabel="epoch" if i == len(fams) - 1 else None, title=f"{fam}, n = {n}",
                   ylabel="grammar entropy\n(bits/string)" if j == 0 else None)  # fmt: skip
    axes[-1, 0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(0, -0.3), ncols=2,
                       frameon=False)  # fmt: skip
    fig.tight_layout()
    fig.colorbar(mesh, ax=axes.ravel().tolist(), label=SCORE)
    data = w.merge(ph, on=["grammar", "entropy_bits", "n_train"], how="left")
    return [_save(fig, data, out, "phase_diagram")]


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
    ph = _mean_phases(t)
    long = ph.melt(id_vars=["grammar", "entropy_bits", "n_train"], var_name="phase",
                   value_vars=["memorization_onset_epoch", "generalization_end_epoch"],
                   value_name="epoch")  # fmt: skip
    long["phase"] = long.phase.map({"memorization_onset_epoch": "memorization onset",
                                    "generalization_end_epoch": "end of generalization"})  # fmt: skip
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
    return [_save(fig, long, out, "phases_vs_entropy_and_n")]


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
    hue = _hue(m)
    for j, n in enumerate(ns):
        for i, col in enumerate(labels):
            sns.lineplot(m[m.n_train == n], x="epoch", y=col, hue=hue, ax=axes[i, j],
                         palette="viridis" if hue == "entropy_bits" else None, errorbar="sd")  # fmt: skip
            axes[i, j].set(ylabel=labels[col], title=f"n = {n}" if i == 0 else None)
    fig.tight_layout()
    _legend_outside(fig, *axes.flat, title="H (bits/string)" if hue == "entropy_bits" else None)
    cols = ["run", "grammar", "entropy_bits", "n_train", "seed", "epoch", *labels]
    return [_save(fig, m[[c for c in cols if c in m]], out, "memorized_bits_vs_epoch")]


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
    grammars, ns = _sorted_grammars(data), sorted(data.n_train.unique())
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
    _legend_outside(fig, *axes.flat)
    return [_save(fig, data, out, "memorized_bits_per_string")]


PLOTS: dict[str, Callable[[Any, Path], list[str]]] = {
    "fig1": fig1, "fig2": fig2, "fig3": fig3, "fig4": fig4, "fig5": fig5,
    "phase_diagram": phase_diagram, "phases_vs": phases_vs, "memorized_bits": memorized_bits,
    "per_string": per_string,
}  # fmt: skip


def plot_all(
    path: Path | str, out: Path | str, kinds: list[str] | None = None
) -> tuple[list[str], list[str]]:
    """Draw every kind (or ``kinds``) for the run or sweep folder ``path`` into ``out``.
    Returns (written stems, notes on figures skipped and inputs missing)."""
    from grammarlab.errors import GrammarlabError
    from grammarlab.sweep import collect

    unknown = set(kinds or []) - set(PLOTS)
    if unknown:
        raise GrammarlabError(f"unknown plot kind(s) {sorted(unknown)}",
                              hint=f"kinds: {', '.join(PLOTS)}")  # fmt: skip
    tables = collect(path)
    sns.set_theme(style="whitegrid", context="paper")
    written, notes = [], list(tables.notes)
    for kind in kinds or PLOTS:
        try:
            written += PLOTS[kind](tables, Path(out))
        except Skip as e:
            notes.append(f"{kind} skipped: {e}")
        finally:
            plt.close("all")
    return written, notes
