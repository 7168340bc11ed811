"""What every figure shares: the Skip signal, the house style (applied inside each figure
function, never globally), new figures or the caller's axes, labels and palettes, saving
(PNG + PDF + CSV), panel grids, legends and small selections of the tidy tables
(:class:`grammarlab.sweep.tables.SweepTables`).

Every figure function returns a :class:`matplotlib.figure.Figure` that carries the table it was
drawn from as ``fig.grammarlab_data`` (a DataFrame: what the registry writes as the CSV). A new
figure is a plain ``Figure``, not registered with pyplot: importing or calling the figure
functions changes no global matplotlib or seaborn state (no backend, no rcParams, no theme), and
in a notebook the returned figure is shown once. Pass your own ``ax=`` / ``axes=`` (from
``plt.subplots``) to draw into a figure of yours.

Units: losses nats/token (Eq. 1), entropies bits per string.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib import cycler
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from grammarlab.analysis.phases import summarize_event
from grammarlab.errors import GrammarlabError
from grammarlab.grammar.header import family_from_name
from grammarlab.io import write_atomic

LOSS = "loss (nats/token)"
DASHES = {"train": "", "test": (4, 2), "random": (1, 2), "d1": "", "d2": (6, 2)}
SCORE = "memorization 1 - L_train/L_test\n(clipped to [0, 1])"


class Skip(Exception):
    """A figure that cannot be drawn from these tables (the message says why)."""


Palette = Mapping[Any, Any] | Sequence[Any] | str | None
"""A palette option: a mapping (grammar or n -> colour), a list of colours, or the name of a
seaborn/matplotlib palette; None: the figure's default."""


def house_style() -> dict[str, Any]:
    """The rcParams of the house style: seaborn's whitegrid axes, its paper context with the
    sizes of :data:`RC`, and seaborn's "deep" colour cycle."""
    import seaborn as sns

    rc = {**sns.axes_style("whitegrid"), **sns.plotting_context("paper", rc=RC)}
    rc["axes.prop_cycle"] = cycler(color=sns.color_palette("deep"))
    return rc


@contextmanager
def styled() -> Iterator[None]:
    """The house style for the figures drawn inside the block (``matplotlib.rc_context``: the
    rcParams are restored on exit)."""
    with mpl.rc_context(house_style()):
        yield


def figure_function(fn: Callable[..., Figure]) -> Callable[..., Figure]:
    """Draw ``fn``'s figure in the house style (:func:`styled`), never touching global state."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        with styled():
            return fn(*args, **kwargs)

    return wrapper


def attach(fig: Figure, data: pd.DataFrame) -> Figure:
    """Attach the table a figure was drawn from (``fig.grammarlab_data``); returns ``fig``."""
    fig.grammarlab_data = data
    return fig


def new_figure(size: tuple[float, float] | None, default: tuple[float, float]) -> Figure:
    """A plain Figure (not registered with pyplot) of ``size`` inches (width, height), on an Agg
    canvas of its own (the layout measures text with it; the global backend is untouched)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    w, h = size if size is not None else default
    fig = Figure(figsize=(w, h))
    FigureCanvasAgg(fig)
    return fig


def one_axes(ax: Any, size: tuple[float, float] | None, default: tuple[float, float]) -> tuple:
    """(figure, axes): the caller's ``ax`` and its figure, or a new figure with one axes."""
    if ax is not None:
        return ax.figure, ax
    fig = new_figure(size, default)
    return fig, fig.add_subplot()


def panel_grid(
    nrows: int,
    ncols: int,
    axes: Any = None,
    size: tuple[float, float] | None = None,
    panel: tuple[float, float] = (2.33, 2.0),
    **kw: Any,
) -> tuple:
    """(figure, 2-D array of axes) of ``nrows`` x ``ncols`` panels: the caller's ``axes`` (any
    array-like of exactly that many axes, reshaped row by row) or a new figure of ``size``
    inches (default: ``panel`` inches per panel). ``kw``: sharex/sharey for a new figure."""
    if axes is not None:
        arr = np.asarray(axes, dtype=object).reshape(-1)
        if arr.size != nrows * ncols:
            raise GrammarlabError(f"axes: this figure draws {nrows} x {ncols} panels, "
                                  f"got {arr.size} axes")  # fmt: skip
        return arr[0].figure, arr.reshape(nrows, ncols)
    default = (panel[0] * ncols, panel[1] * nrows)
    fig = new_figure(size, default)
    return fig, fig.subplots(nrows, ncols, squeeze=False, **kw)


def save_figure(fig: Figure, data: pd.DataFrame, out: Path, stem: str) -> str:
    """Write ``out/STEM.png``, ``.pdf`` and the ``.csv`` of ``data`` (the registry's job; figure
    functions write nothing)."""
    out.mkdir(parents=True, exist_ok=True)
    # atomically, as every output (grammarlab.io): the format named, as the temporary file's
    # name does not end in .png
    write_atomic(out / f"{stem}.png", lambda p: fig.savefig(p, format="png", dpi=130,
                                                            bbox_inches="tight"))  # fmt: skip
    write_atomic(out / f"{stem}.pdf", lambda p: fig.savefig(p, format="pdf", bbox_inches="tight"))
    write_atomic(out / f"{stem}.csv", lambda p: data.to_csv(p, index=False))
    return stem


def grid(
    n: int,
    w: float | None = None,
    h: float = 2.0,
    ncols: int = 3,
    axes: Any = None,
    size: tuple[float, float] | None = None,
    **kw: Any,
) -> tuple:
    """n panels in rows of ``ncols``, two paper columns wide unless ``w`` (inches per panel) or
    ``size`` (inches, the whole figure); or the caller's ``axes`` (at least n, the first n
    used). Returns (figure, list of n axes)."""
    if axes is not None:
        flat = list(np.asarray(axes, dtype=object).reshape(-1))
        if len(flat) < n:
            raise GrammarlabError(f"axes: this figure draws {n} panel(s), got {len(flat)} axes")
        return flat[0].figure, flat[:n]
    ncols = max(1, min(ncols, n))
    w = TWO_COLUMN_IN / ncols if w is None else w
    nrows = -(-n // ncols)
    fig = new_figure(size, (w * ncols, h * nrows))
    arr = fig.subplots(nrows, ncols, squeeze=False, **kw)
    for ax in arr.flat[n:]:
        ax.set_visible(False)
    return fig, list(arr.flat)[:n]


LEGEND_TITLES = {"n_train": "n (training strings)", "dataset_name": "dataset",
                 "grammar_name": "grammar"}  # fmt: skip


def legend_outside(
    fig: Any, *axes: Any, markers: bool = False, title: str | None = None, band: bool = False
) -> None:
    """One legend for the figure, right of the panels (never over data), from the entries of
    ``axes``; with ``markers``, entries for the onset (x) and end of generalization (triangle);
    with ``band``, an entry saying what the shaded bands are (+-1 SD over seeds)."""
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            lab = LEGEND_TITLES.get(lab, lab)  # seaborn's section titles are column names
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
        if ax.get_legend():
            ax.get_legend().remove()
    if markers:
        h, lab = marker_handles()
        handles += h
        labels += lab
    if band:
        handles.append(band_handle())
        labels.append(BAND)
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), title=title,
               frameon=False)  # fmt: skip


def curves_long(t: Any, datasets: tuple[str, ...] = ("train", "test")) -> pd.DataFrame:
    c = t.curves
    if c.empty:
        raise Skip("no curves")
    return c[c.dataset.isin(datasets)].copy()


def mean_phases(t: Any) -> pd.DataFrame:
    """Phases per (grammar, entropy_bits, n_train) over seeds. Event epochs are the mean over
    the seeds that observed them (``*_n_observed``, ``*_n_runs`` say how many), and
    ``*_censored`` is True when at most half the seeds observed the event: then the epoch column
    holds the last epoch (where a censored marker is drawn), never a mean of censored values.
    Other columns are plain means over seeds."""
    ph = t.phases
    if ph.empty:
        raise Skip("no phases")
    cols = [c for c in ("min_test_loss", "test_loss_at_onset", "min_excess_test_bits",
                        "final_memU_train_bits_total") if c in ph.columns]  # fmt: skip
    keys = ["grammar", "entropy_bits", "n_train"]
    rows = []
    for k, d in ph.groupby(keys, dropna=False):
        row = dict(zip(keys, k, strict=True))
        recs = d.to_dict("records")
        for event in ("memorization_onset", "generalization_end"):
            s = summarize_event(recs, event)
            cens = s.n_observed * 2 <= s.n_runs
            last = max(s.censored_at, default=np.nan)
            row[f"{event}_epoch"] = last if cens else s.mean
            row[f"{event}_censored"] = bool(cens)
            row[f"{event}_n_observed"], row[f"{event}_n_runs"] = s.n_observed, s.n_runs
        row.update({c: d[c].mean() for c in cols})
        rows.append(row)
    return pd.DataFrame(rows)


def loss_at(c: pd.DataFrame, epoch: float, dataset: str) -> float:
    """Mean loss over seeds of ``dataset`` at the epoch nearest to ``epoch``."""
    d = c[c.dataset == dataset]
    if d.empty or not np.isfinite(epoch):
        return np.nan
    e = d.epoch.iloc[(d.epoch - epoch).abs().argmin()]
    return float(d[d.epoch == e].loss.mean())


def hue_column(df: pd.DataFrame) -> str:
    """Colour by the exact entropy when known, else by grammar name."""
    return "entropy_bits" if df["entropy_bits"].notna().any() else "grammar"


def sorted_grammars(df: pd.DataFrame) -> list[str]:
    """Grammar names by exact entropy (by name when the entropy is unknown)."""
    if "entropy_bits" not in df:
        return sorted(df.grammar.astype(str).unique())
    g = df.groupby("grammar", dropna=False)["entropy_bits"].first()
    return list(g.sort_values(na_position="last").index)


def band_handle() -> Any:
    """The legend entry of a line with its shaded +-1 SD band (a line over a patch)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    return (Patch(color="0.45", alpha=0.3, lw=0), Line2D([], [], color="0.2", lw=1.2))


BAND = "line: mean over seeds, shading: +- 1 SD"


def several_seeds(df: pd.DataFrame) -> bool:
    """Whether some (grammar, n) has more than one seed in ``df``: only then is there a band to
    explain."""
    keys = [k for k in ("grammar", "n_train") if k in df.columns]
    if "seed" not in df.columns or not keys:
        return "run" in df.columns and df["run"].nunique() > 1
    return bool((df.groupby(keys)["seed"].nunique() > 1).any())


def display_labels(df: pd.DataFrame, labels: Mapping[str, str] | None = None) -> dict[str, str]:
    """grammar -> the name shown in legends and titles: ``labels`` where given, else the
    tables' ``label`` column where present (readable names of the grammar families), else the
    grammar's name."""
    names = [str(g) for g in df["grammar"].dropna().unique()]
    out = {g: g for g in names}
    if "label" in df.columns:
        lab = df.dropna(subset=["label"]).groupby("grammar")["label"].first()
        out.update({str(g): str(v) for g, v in lab.items() if str(v).strip()})
    if labels:
        out.update({str(k): str(v) for k, v in labels.items()})
    return out


def table_labels(t: Any, labels: Mapping[str, str] | None = None) -> dict[str, str]:
    """:func:`display_labels` over every table of ``t`` that has grammars (phases, curves,
    measures, per_string, per_position): a ``label`` column in any of them names the grammar."""
    frames = []
    for name in ("phases", "curves", "measures", "per_string", "per_position"):
        df = getattr(t, name, None)
        if isinstance(df, pd.DataFrame) and "grammar" in df.columns:
            cols = ["grammar", "label"] if "label" in df.columns else ["grammar"]
            frames.append(df[cols].drop_duplicates())
    if not frames:
        return dict(labels or {})
    return display_labels(pd.concat(frames, ignore_index=True), labels)


def resolve_palette(palette: Palette, keys: Sequence[Any], default: Mapping[Any, Any]) -> dict:
    """One colour per key: ``default`` when ``palette`` is None; a mapping overrides the default
    for its keys; a list or a palette name gives the keys' colours in order."""
    import seaborn as sns

    if palette is None:
        out = dict(default)
    elif isinstance(palette, Mapping):
        out = {**default, **palette}
    else:
        out = dict(zip(keys, sns.color_palette(palette, len(keys)), strict=True))
    # resolved now: a "C1" is the house style's colour cycle, which is gone when the figure is
    # saved outside the style's context
    return {k: to_rgb(v) for k, v in out.items()}


def points(ax: Any, x: Any, y: Any, **kw: Any) -> Any:
    """``ax.plot`` of the finite (x, y) pairs, not clipped by the frame (a marker at the first
    or last epoch shows whole); with none, an empty line (for the legend) that the layout
    ignores (an empty unclipped line would count as an artist at the figure's origin)."""
    x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return ax.plot([], [], **kw)
    return ax.plot(x[ok], y[ok], clip_on=False, **kw)


def cycle_color(i: int) -> tuple[float, float, float]:
    """The i-th colour of the current colour cycle as RGB (``"C{i}"`` resolved now, inside the
    house style, not when the figure is saved)."""
    return to_rgb(f"C{i}")


def mark_phases(ax: Any, c: pd.DataFrame, ph: pd.Series, color: Any) -> None:
    """x at the memorization onset (on the test curve), triangle at the end of generalization;
    a censored end of generalization (test loss still falling at the last epoch) is an open
    triangle pointing right at the last epoch, a censored onset (never reached) is not drawn: a
    censored event is never shown as a value."""
    for col, marker in (("memorization_onset_epoch", "x"), ("generalization_end_epoch", "^")):
        e = ph.get(col, np.nan)
        censored = bool(ph.get(col.replace("_epoch", "_censored"), False))
        if pd.isna(e) or (censored and marker == "x"):
            continue
        y = loss_at(c, e, "test")
        if censored:
            points(ax, [e], [y], marker=">", ms=8, mew=1.5, mfc="none", color=color, ls="none",
                   zorder=5)  # fmt: skip
        else:
            points(ax, [e], [y], marker=marker, ms=8, mew=2, color=color, ls="none", zorder=5)


def marker_handles() -> tuple[list, list[str]]:
    """Legend entries of the phase markers (shared by every figure that draws them)."""
    from matplotlib.lines import Line2D

    return (
        [Line2D([], [], marker="x", ls="none", color="k", mew=2),
         Line2D([], [], marker="^", ls="none", color="k"),
         Line2D([], [], marker=">", ls="none", color="k", mfc="none")],
        ["memorization onset", "end of generalization",
         "not reached by the last epoch (censored, drawn there)"],
    )  # fmt: skip


def grammar_palette(df: pd.DataFrame) -> dict[str, Any]:
    """One colour per grammar, one palette per family (blues for the first family, oranges for
    the next, ...), shades ordered by the grammar's entropy within its family."""
    import seaborn as sns

    fams = FAMILY_PALETTES
    g = df.assign(family=families(df)).groupby("grammar", dropna=False)
    g = g[["entropy_bits", "family"]].first().reset_index()
    out: dict[str, Any] = {}
    for i, (_, d) in enumerate(sorted(g.groupby("family"), key=lambda x: str(x[0]))):
        d = d.sort_values("entropy_bits", na_position="last")
        colors = sns.color_palette(fams[i % len(fams)], len(d) + 1)[1:]
        out.update(dict(zip(d.grammar, colors, strict=True)))
    return out


FAMILY_PALETTES = ("Blues", "Oranges", "Greens", "Purples", "Reds", "Greys")
COLUMN_IN = 3.35  # one paper column, inches
TWO_COLUMN_IN = 7.0  # two paper columns, inches
RC = {"font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7,
      "ytick.labelsize": 7, "legend.fontsize": 7, "legend.title_fontsize": 7}  # fmt: skip


def family_of(g: str) -> str:
    """A grammar's family from its name alone (:func:`grammarlab.grammar.header.family_from_name`,
    the fallback when the tables have no ``family`` column: the sweep file or the grammar's
    header sets it)."""
    return family_from_name(g)


def families(df: pd.DataFrame) -> pd.Series:
    """Per row: the tables' ``family`` column where present, else :func:`family_of` the
    grammar's name."""
    fam = df["grammar"].map(family_of)
    if "family" in df.columns:
        fam = df["family"].where(df["family"].notna() & (df["family"].astype(str) != ""), fam)
    return fam.astype(str)
