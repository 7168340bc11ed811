"""The paper's figures 1-5: the data each draws (CSV next to the PNG and PDF)."""

from __future__ import annotations

import numpy as np
import pytest

import grammarlab.analysis.tables as sweep_tables_mod
from grammarlab.plot.registry import plot_all
from tests.plot.synthetic import files_ok, write_run


def test_sequential_and_single_run(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep_tables_mod, "_entropy_of_text", lambda text, src, notes: 10.0)
    write_run(tmp_path / "seq", "low", 8, 0, sequential=True)
    out = tmp_path / "fig"
    written, notes = plot_all(tmp_path / "seq", out, kinds=["fig4", "fig1", "fig3"])
    assert written == ["fig4_sequential_forgetting", "fig1_losses_accuracy_memorization"]
    f4 = files_ok(out, "fig4_sequential_forgetting")
    assert set(f4.dataset) == {"d1", "d2", "test"}
    f1 = files_ok(out, "fig1_losses_accuracy_memorization")
    assert f1.memorization_loss_clipped.between(0, 1).all()
    assert np.isclose(f1.memorization_acc.dropna(), 0.1).all()
    assert any("fig3 skipped" in n for n in notes)


def test_figures_2_3_5_of_a_sweep(all_figures):
    out = all_figures.out
    fig2 = files_ok(out, "fig2_train_test_by_n")
    # 8 runs x 21 epochs x (train, test)
    assert len(fig2) == 8 * 21 * 2 and set(fig2.dataset) == {"train", "test"}
    f5 = files_ok(out, "fig5_entropy_sweep")
    # floor: 8 bits x ln 2 / 4 predicted tokens = 1.386 nats/token (exact: one length)
    assert np.allclose(f5.entropy_floor_nats_per_token, 8 * np.log(2) / 4)
    f3 = files_ok(out, "fig3_same_loss_rote_vs_understanding")
    # level = train loss of n = 8 at its onset (epoch 5): 2 / (1 + 0.2 * 5) + mean(0, 0.01)
    assert f3.level_nats_per_token.iloc[0] == pytest.approx(1.0 + 0.005)
