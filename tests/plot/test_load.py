"""The onset-vs-load figure on a fake phases table with known loads."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from grammarlab.analysis.load import collapse, load_table, n_params_of
from grammarlab.plot.common import Skip, save_figure
from grammarlab.plot.load import onset_vs_load
from tests.plot.synthetic import files_ok


def row(grammar, n, seed, onset, H=100.0, params=1000, **kw):
    """A phases row whose memU summaries give the parameter count (total / per param)."""
    return {"run": f"{grammar}-n{n}-s{seed}", "model": "m", "grammar": grammar, "n_train": n,
            "seed": seed, "entropy_bits": H, "last_epoch": 100, "stage1_last_epoch": 100,
            "memorization_onset_epoch": onset, "memorization_onset_censored": onset is None,
            "final_memU_train_bits_total": 50.0, "final_memU_bits_per_param": 50.0 / params,
            "status": "done", **kw}  # fmt: skip


def test_load_is_n_H_over_C():
    t = load_table(pd.DataFrame([row("g", 8, 0, 10)]), bits_per_param=0.5)
    # n H = 800 bits; C = 0.5 * 1000 = 500 bits
    assert t.loc[0, "load"] == pytest.approx(1.6) and t.loc[0, "bits_per_param"] == 0.5
    assert n_params_of({"n_params": 7}) == 7.0 and n_params_of({}) is None
    # stopped runs are not on the figure
    assert load_table(pd.DataFrame([row("g", 8, 0, 10, status="running")])).empty


def test_collapse_criterion():
    # onsets fall with the load in every run: one curve
    one = pd.DataFrame([row("g", n, s, 100 // n + s) for n in (1, 2, 4, 8) for s in (0, 1)])
    assert collapse(load_table(one)).collapses
    # the same load, onsets all over the place: not one curve
    scattered = pd.DataFrame([row("g", 8, s, o) for s, o in enumerate((5, 50, 9, 70, 2, 30))])
    assert not collapse(load_table(scattered)).collapses
    # two loads only: two clusters always lie on some curve, so no claim of one
    two = pd.DataFrame([row("g", n, s, 100 // n + s) for n in (1, 8) for s in (0, 1, 2)])
    c = collapse(load_table(two))
    assert abs(c.corr.rho) >= 0.8 and not c.collapses


def test_onset_vs_load_figure(tmp_path):
    ph = pd.DataFrame([row(g, n, s, None if (g, n) == ("h", 8) else 40 // n + s, H=H)
                       for g, H in (("g", 100.0), ("h", 30.0)) for n in (2, 8)
                       for s in (0, 1, 2)])  # fmt: skip
    fig = onset_vs_load(SimpleNamespace(phases=ph), bits_per_param=0.38)
    csv = fig.grammarlab_data
    assert set(csv.bits_per_param) == {0.38} and csv.onset_censored.sum() == 3
    # one panel: 9 observed onsets as points, the 3 censored ones as open triangles
    (ax,) = fig.axes
    assert sum(len(c.get_offsets()) for c in ax.collections) == 12
    stem = save_figure(fig, csv, tmp_path, "onset_vs_load")
    files_ok(tmp_path, stem)
    with pytest.raises(Skip):
        onset_vs_load(SimpleNamespace(phases=pd.DataFrame()))
