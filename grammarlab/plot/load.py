"""Memorization onset against the training set's load on the model's capacity, ``n H / C``
(bits of the training set over the model's capacity in bits, :mod:`grammarlab.analysis.load`),
across every run: do the onsets of all grammars, sizes and models fall on one curve?"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from grammarlab.analysis.load import BITS_PER_PARAM, collapse, load_table  # noqa: E402
from grammarlab.plot.common import COLUMN_IN, Skip, grammar_palette, save_figure  # noqa: E402


def onset_vs_load(t: Any, out: Path, bits_per_param: float = BITS_PER_PARAM) -> list[str]:
    """Onset epoch (the paper's rule) of each finished run against ``n H / C`` with
    ``C = bits_per_param * n_params`` (default: the measured 0.38 bits/param of docs/capacity.md;
    the CSV's ``bits_per_param`` column says which), log x; open triangles at the last epoch:
    onsets censored (not reached). The title states whether the onsets collapse onto one curve
    (:func:`grammarlab.analysis.load.collapse`)."""
    tab = load_table(t.phases, bits_per_param)
    if tab.empty:
        raise Skip("onset vs load needs runs with an entropy and a parameter count (measures)")
    fig, ax = plt.subplots(figsize=(COLUMN_IN * 1.4, 2.8))
    pal = grammar_palette(tab)
    obs, cens = tab[~tab.onset_censored], tab[tab.onset_censored]
    sns.scatterplot(obs, x="load", y="onset_epoch", hue="grammar", style="n_train", palette=pal,
                    ax=ax, s=28)  # fmt: skip
    if len(cens):
        ax.scatter(cens["load"], cens["last_epoch"].astype(float), marker="^", facecolors="none",
                   edgecolors="0.3", s=28, label="onset censored (at last epoch)")  # fmt: skip
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set(xlabel=f"training set bits / capacity (n H / C, C = {bits_per_param:g} bits/param "
                  "x params)", ylabel="memorization onset (epoch)")  # fmt: skip
    c = collapse(tab)
    ax.set_title(("one curve" if c.collapses else "no single curve")
                 + f": Spearman rho {c.corr.rho:.2f}, {c.corr.n} runs", fontsize=8)  # fmt: skip
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return [save_figure(fig, tab, out, "onset_vs_load")]
