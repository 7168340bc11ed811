"""Measure figures: excess surprisal by position, the AUC null band, valid generations."""

from __future__ import annotations

import pandas as pd

from tests.plot.synthetic import files_ok


def test_position_heatmap_from_per_position_rows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from types import SimpleNamespace

    from grammarlab.plot.measures import position_heatmap

    rows = [{"grammar": "g", "n_train": 8, "epoch": e, "dataset": ds, "position": p,
             "excess_bits": float(p - e), "run": "r"}
            for e in range(3) for p in range(4) for ds in ("train", "test")]  # fmt: skip
    t = SimpleNamespace(per_position=pd.DataFrame(rows))
    fig = position_heatmap(t)
    d = fig.grammarlab_data
    assert set(d.dataset) == {"test"} and len(d) == 12
    # the heatmap holds the mean excess of each (position, epoch): p - e
    mesh = fig.axes[0].collections[0]
    assert mesh.get_array().reshape(4, 3).tolist() == [[p - e for e in range(3)] for p in range(4)]
    assert not list(tmp_path.iterdir())  # a figure function writes nothing


def test_auc_band_and_generations_of_a_sweep(all_figures):
    mia = files_ok(all_figures.out, "mia_auc_null_band")
    assert set(mia.mia_null_hi) == {0.7} and len(mia) == 8 * 21
    gen = files_ok(all_figures.out, "generations_valid_share")
    assert sorted(gen.epoch.unique()) == [0, 20]  # only the epochs that sampled
