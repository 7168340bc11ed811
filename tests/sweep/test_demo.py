"""``grammarlab demo``: the fast variant end to end (default tests), the full one as slow."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from grammarlab.cli import main
from grammarlab.sweep.demo import demo_spec
from grammarlab.sweep.spec import expand


def test_demo_spec_grid(tmp_path):
    full = expand(demo_spec(seeds=2), tmp_path / "full")
    # 6 grammars (random 2/7/26, hierarchical 0.5/0.75/0.9) x n in {8, 64} x 2 seeds
    assert len(full.runs) == 6 * 2 * 2
    names = {p.name for p in (tmp_path / "full" / "grammars").iterdir()}
    assert names == {
        "random_l2.cfg",
        "random_l7.cfg",
        "random_l26.cfg",
        "hierarchical_p0.5.cfg",
        "hierarchical_p0.75.cfg",
        "hierarchical_p0.9.cfg",
    }
    r = full.runs[0].config
    assert (r.model.preset, r.model.hidden_size, r.model.num_layers, r.epochs) == (
        "pythia-tiny", 64, 2, 100)  # fmt: skip
    fast = expand(demo_spec(fast=True), tmp_path / "fast")
    assert len(fast.runs) == 2 and fast.runs[0].config.epochs < r.epochs
    with pytest.raises(Exception, match="seeds"):
        demo_spec(seeds=0)


def test_demo_fast_end_to_end(tmp_path, capsys):
    out, fig = tmp_path / "runs", tmp_path / "fig"
    rc = main(["demo", "--fast", "--out", str(out), "--figures", str(fig), "--workers", "2",
               "--quiet"])  # fmt: skip
    assert rc == 0
    ph = pd.read_csv(out / "phases.csv")
    assert len(ph) == 2 and set(ph.n_train) == {8}
    assert {"memorization_onset_epoch", "generalization_end_epoch", "min_test_loss",
            "min_excess_test_bits", "entropy_bits"} <= set(ph.columns)  # fmt: skip
    curves = pd.read_csv(out / "curves.csv")
    assert len(curves) == 2 * 31 * 3  # 2 runs x epochs 0..30 x train/test/random
    for stem in ("fig1_losses_accuracy_memorization", "fig2_train_test_by_n"):
        assert (fig / f"{stem}.png").stat().st_size > 0 and (fig / f"{stem}.pdf").exists()
    captured = capsys.readouterr()
    assert "sweep demo-fast" not in captured.err  # --quiet: no progress bar
    text = captured.out
    assert "onset" in text and "hierarchical_p0.5" in text and "random_l2" in text
    assert captured.err.count("note:") == 0  # no figure asked by name: no "skipped" notes
    drawn = {p.name: p.stat().st_mtime_ns for p in fig.glob("*.png")}
    # relaunch: both runs are finished and skipped; same tables, so the figures are not redrawn
    assert main(["demo", "--fast", "--out", str(out), "--figures", str(fig)]) == 0
    err = capsys.readouterr().err  # off a terminal (capsys): progress lines with the time
    assert re.search(r"^\d\d:\d\d:\d\d tables: reading 2 runs$", err, re.M), err
    assert "figures: tables unchanged" in err and "drawing" not in err and "note:" not in err
    assert {p.name: p.stat().st_mtime_ns for p in fig.glob("*.png")} == drawn
    assert all(len((p / "metrics.jsonl").read_text().splitlines()) == 31
               for p in out.iterdir() if (p / "metrics.jsonl").exists())  # fmt: skip


@pytest.mark.slow
def test_demo_full_within_budget(tmp_path):
    """The whole demo end to end: 12 runs, tables and the phase diagram. (Its 5-minute budget on
    2 cores is a speed goal, measured by hand and reported in the README, not a timed test.)"""
    out, fig = tmp_path / "runs", tmp_path / "fig"
    assert main(["demo", "--out", str(out), "--figures", str(fig), "--workers", "2"]) == 0
    assert (fig / "phase_diagram.png").stat().st_size > 0
    assert len(pd.read_csv(out / "phases.csv")) == 12


def test_figures_are_redrawn_only_when_their_tables_change(tmp_path, monkeypatch):
    from grammarlab.sweep import demo

    drawn = []

    def fake_plot_all(out, figures):
        drawn.append(out)
        figures.mkdir(exist_ok=True)
        (figures / "f.png").write_bytes(b"png")
        return ["f"], ["fig4 skipped: one stage"]

    monkeypatch.setattr(demo, "plot_all", fake_plot_all)
    (tmp_path / "phases.csv").write_text("run\nr1\n")
    fig = tmp_path / "fig"
    assert demo.draw_figures(tmp_path, fig) == (["f"], ["fig4 skipped: one stage"])
    assert demo.draw_figures(tmp_path, fig) == (["f"], ["fig4 skipped: one stage"])
    assert len(drawn) == 1  # same tables: kept, with the notes they were drawn with
    (tmp_path / "phases.csv").write_text("run\nr2\n")
    demo.draw_figures(tmp_path, fig)
    assert len(drawn) == 2  # the tables changed
    (fig / "f.png").unlink()
    demo.draw_figures(tmp_path, fig)
    assert len(drawn) == 3  # a figure is missing
