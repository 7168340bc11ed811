"""Memorization onset against the training set's load on the model's capacity, ``n H / C``
(bits of the training set over the model's capacity in bits, :mod:`grammarlab.analysis.load`),
across every run: do the onsets of all grammars, sizes and models fall on one curve?"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.ticker
import seaborn as sns
from matplotlib.figure import Figure

from grammarlab.analysis.load import BITS_PER_PARAM, collapse, load_table
from grammarlab.plot.common import (
    COLUMN_IN,
    Palette,
    Skip,
    attach,
    figure_function,
    grammar_palette,
    one_axes,
    resolve_palette,
    sorted_grammars,
    table_labels,
)


@figure_function
def onset_vs_load(
    t: Any,
    *,
    bits_per_param: float = BITS_PER_PARAM,
    ax: Any = None,
    labels: Mapping[str, str] | None = None,
    palette: Palette = None,
    size: tuple[float, float] | None = None,
) -> Figure:
    """Onset epoch (the paper's rule) of each finished run against ``n H / C`` with
    ``C = bits_per_param * n_params`` (default: the measured 0.38 bits/param of docs/capacity.md;
    the CSV's ``bits_per_param`` column says which), log x; open triangles at the last epoch:
    onsets censored (not reached). The title states whether the onsets collapse onto one curve
    (:func:`grammarlab.analysis.load.collapse`).

    ax: an axes of yours to draw into (one panel); labels: grammar -> displayed name; palette:
    grammar -> colour (a mapping, a list or a palette name in entropy order); size: (width,
    height) in inches of a new figure."""
    tab = load_table(t.phases, bits_per_param)
    if tab.empty:
        raise Skip("onset vs load needs runs with an entropy and a parameter count (measures)")
    own = ax is None
    fig, ax = one_axes(ax, size, (COLUMN_IN * 1.4, 2.8))
    order = sorted_grammars(tab)
    pal = resolve_palette(palette, order, grammar_palette(tab))
    names = table_labels(t, labels)
    tab = tab.assign(grammar_name=tab.grammar.map(names), n=tab.n_train.astype("Int64"))
    obs, cens = tab[~tab.onset_censored], tab[tab.onset_censored]
    sns.scatterplot(obs, x="load", y="onset_epoch", hue="grammar_name", style="n",
                    hue_order=[names[g] for g in order if g in set(obs.grammar)],
                    palette={names[g]: pal[g] for g in order}, ax=ax, s=28)  # fmt: skip
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
    handles, labs = ax.get_legend_handles_labels()
    labs = ["grammar" if lab == "grammar_name" else lab for lab in labs]
    ax.legend(handles, labs, fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              frameon=False)  # fmt: skip
    if own:
        fig.tight_layout()
    return attach(fig, tab.drop(columns=["grammar_name", "n"]))
