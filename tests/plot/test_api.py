"""The figure functions as a notebook uses them: each returns a Figure and writes nothing, the
one-panel figure draws into a given ``ax`` (the others into given ``axes``), labels, palette and
size options take effect, and importing and drawing changes no global matplotlib state."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from grammarlab.errors import GrammarlabError
from grammarlab.plot.common import Skip, display_labels
from grammarlab.plot.registry import PLOTS, draw
from grammarlab.sweep.tables import collect
from tests.plot.synthetic import write_never_reached_sweep, write_run
from tests.plot.test_load import row

ROOT = Path(__file__).resolve().parents[2]


def _onset_phases() -> pd.DataFrame:
    return pd.DataFrame([row(g, n, s, 40 // n + s, H=H) for g, H in (("g", 100.0), ("h", 30.0))
                         for n in (2, 8) for s in (0, 1, 2)])  # fmt: skip


def _per_position() -> pd.DataFrame:
    return pd.DataFrame([{"grammar": "g", "n_train": 8, "epoch": e, "dataset": "test",
                          "position": p, "excess_bits": float(p - e), "run": "r"}
                         for e in range(3) for p in range(4)])  # fmt: skip


@pytest.fixture
def seq_tables(tmp_path, monkeypatch):
    import grammarlab.analysis.tables as sweep_tables_mod

    monkeypatch.setattr(sweep_tables_mod, "_entropy_of_text", lambda text, src, notes: 10.0)
    for s in (0, 1):
        write_run(tmp_path / "seq" / f"r{s}", "low", 8, s, sequential=True)
    return collect(tmp_path / "seq")


def test_every_kind_returns_a_figure_and_writes_nothing(sweep, seq_tables, tmp_path,
                                                        monkeypatch):  # fmt: skip
    tables = collect(sweep)
    fake = SimpleNamespace(phases=_onset_phases(), per_position=_per_position())
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)

    def no_saving(*args, **kwargs):
        raise AssertionError("a figure function saved a figure")

    monkeypatch.setattr(Figure, "savefig", no_saving)
    drawn = set()
    for kind in PLOTS:
        for t in (tables, seq_tables, fake):
            try:
                fig = draw(kind, t)
            except (Skip, AttributeError):  # the fake tables hold two tables only
                continue
            assert isinstance(fig, Figure), kind
            assert isinstance(fig.grammarlab_data, pd.DataFrame) and len(fig.grammarlab_data)
            drawn.add(kind)
            break
    assert drawn == set(PLOTS)
    assert not list(cwd.iterdir())


def test_one_panel_figure_draws_into_the_given_ax():
    import matplotlib.pyplot as plt

    from grammarlab.plot.load import onset_vs_load

    fig, (left, right) = plt.subplots(1, 2)
    try:
        out = onset_vs_load(SimpleNamespace(phases=_onset_phases()), ax=right)
        assert out is fig and len(fig.axes) == 2
        # 12 onsets, all observed, on the given axes; the other axes untouched
        assert sum(len(c.get_offsets()) for c in right.collections) == 12
        assert not left.collections and not left.lines
    finally:
        plt.close(fig)


def test_panels_draw_into_the_given_axes(sweep):
    t = collect(sweep)
    fig = Figure()
    axes = fig.subplots(1, 2)
    assert draw("fig2", t, axes=axes) is fig  # two grammars: one panel each
    assert all(ax.lines for ax in axes)
    with pytest.raises(GrammarlabError, match="2 x 2 panels, got 3 axes"):
        draw("fig5", t, axes=Figure().subplots(1, 3))
    with pytest.raises(GrammarlabError, match="2 panel"):
        draw("fig2", t, axes=[Figure().add_subplot()])


def test_labels_palette_and_size(sweep):
    t = collect(sweep)
    fig = draw("fig2", t, labels={"low": "the low grammar"}, palette={4: "red"}, size=(5, 3))
    assert tuple(fig.get_size_inches()) == (5, 3)
    titles = [ax.get_title() for ax in fig.axes]
    assert any(s.startswith("the low grammar (H = 10.0 bits)") for s in titles)
    assert any(to_rgb(ln.get_color()) == (1.0, 0.0, 0.0) for ln in fig.axes[0].lines)
    texts = [x.get_text() for leg in fig.legends for x in leg.get_texts()]
    assert "line: mean over seeds, shading: +- 1 SD" in texts  # the band is explained


def test_fig1_says_which_run_it_draws(sweep):
    t = collect(sweep)
    assert (
        "n = 4, seed 0 (the smallest n and the first seed)" in draw("fig1", t)._suptitle.get_text()
    )
    fig = draw("fig1", t, n_train=8, seed=1, grammars=["high"])
    assert len(fig.axes) == 3 and set(fig.grammarlab_data.run) == {"high-n8-s1"}
    assert "n = 8, seed 1" in fig._suptitle.get_text()
    with pytest.raises(GrammarlabError, match="not in the tables"):
        draw("fig1", t, grammars=["nope"])


def test_label_column_names_the_grammars():
    df = pd.DataFrame({"grammar": ["a_1", "b_2", "c"], "label": ["A one", None, ""]})
    assert display_labels(df) == {"a_1": "A one", "b_2": "b_2", "c": "c"}
    assert display_labels(df, {"c": "C"})["c"] == "C"
    assert display_labels(df.drop(columns="label")) == {"a_1": "a_1", "b_2": "b_2", "c": "c"}


NO_GLOBAL_STATE = r"""
import json, sys
from types import SimpleNamespace
import matplotlib as mpl
from matplotlib.colors import to_rgb

def snapshot():
    return {k: repr(v) for k, v in mpl.rcParams.items()}, mpl.get_backend(), to_rgb("b")

before = snapshot()
import grammarlab
import grammarlab.capacity.plot
import grammarlab.plot.common, grammarlab.plot.curves, grammarlab.plot.load
import grammarlab.plot.measures, grammarlab.plot.phases, grammarlab.plot.registry
import grammarlab.analysis.tables as tables
from tests.plot.test_api import _onset_phases, _per_position
from tests.plot.conftest import _entropy_by_name, _write_sweep
from pathlib import Path
after_import = snapshot()
tables._entropy_of_text = _entropy_by_name
root = _write_sweep(Path(sys.argv[1]) / "sw")
from grammarlab.plot.registry import PLOTS, draw, plot_all
t = tables.load_runs(root)
for kind in PLOTS:
    try:
        draw(kind, t)
    except grammarlab.plot.common.Skip:
        pass
grammarlab.plot.load.onset_vs_load(SimpleNamespace(phases=_onset_phases()))
written, _ = plot_all(root, Path(sys.argv[1]) / "fig")
after = snapshot()
import matplotlib.pyplot as plt
diff = sorted(k for k in before[0] if before[0][k] != after[0].get(k))
print(json.dumps({"import": after_import == before, "draw": after == before, "diff": diff,
                  "backend": [before[1], after[1]], "figures": plt.get_fignums(),
                  "written": len(written)}))
"""


def test_importing_and_drawing_changes_no_global_state(tmp_path):
    # a fresh interpreter: the backend of the caller ("svg" here, "inline" in a notebook) stays
    env = {"MPLBACKEND": "svg", "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
           "HOME": str(tmp_path)}  # fmt: skip
    res = subprocess.run([sys.executable, "-c", NO_GLOBAL_STATE, str(tmp_path)], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["diff"] == [] and out["import"] and out["draw"], out
    assert out["backend"] == ["svg", "svg"]
    assert out["figures"] == []  # no figure left registered with pyplot
    assert out["written"] == len(PLOTS) - 4  # the registry still saves (fig4 & co. skipped)


def test_censored_onset_and_end_at_one_spot_show_two_markers(tmp_path, monkeypatch):
    import grammarlab.analysis.tables as sweep_tables_mod

    monkeypatch.setattr(sweep_tables_mod, "_entropy_of_text", lambda text, src, notes: 10.0)
    write_never_reached_sweep(tmp_path / "sw")
    t = collect(tmp_path / "sw")
    fig = draw("phase_diagram", t)
    ax = fig.axes[0]
    cens = [ln for ln in ax.lines if ln.get_marker() == ">" and len(ln.get_xdata())]
    ys = sorted(float(ln.get_ydata()[0]) for ln in cens)
    # one band (row 0, from -0.5 to 0.5): the onset a quarter up, the end a quarter down
    assert [float(ln.get_xdata()[0]) for ln in cens] == [20.0, 20.0] and ys == [-0.25, 0.25]
    # and no line joins the grammars: every line of the diagram is markers only
    assert all(ln.get_linestyle() == "None" for ln in ax.lines if ln.get_marker() != "None")
    # phases against entropy: both censored markers drawn, apart by 7 points
    fig = draw("phases_vs", t)
    lines = [ln for ln in fig.axes[0].lines if ln.get_marker() == ">" and len(ln.get_xdata())]
    pts = [ln.get_transform().transform([[10.0, 20.0]])[0] for ln in lines]
    assert len(pts) == 2
    assert abs(pts[0][1] - pts[1][1]) == pytest.approx(7 * fig.dpi / 72)
    assert np.isclose(pts[0][0], pts[1][0])
