"""What the figures share: phases averaged over seeds with censored events flagged, one palette per
grammar family."""

from __future__ import annotations

import pandas as pd

import grammarlab.analysis.tables as sweep_tables_mod
from grammarlab.plot.registry import plot_all
from tests.plot.synthetic import write_never_reached_sweep


def test_censored_events_are_flagged_not_averaged(tmp_path, monkeypatch):
    from grammarlab.plot.common import mean_phases
    from grammarlab.sweep.tables import collect

    monkeypatch.setattr(sweep_tables_mod, "_entropy_of_text", lambda text, src, notes: 10.0)
    write_never_reached_sweep(tmp_path / "sw")
    ph = mean_phases(collect(tmp_path / "sw"))
    row = ph.iloc[0]
    assert row.memorization_onset_censored and row.generalization_end_censored
    assert row.memorization_onset_n_observed == 0 and row.memorization_onset_n_runs == 2
    assert row.generalization_end_epoch == 20  # drawn at the last epoch, as censored
    written, _ = plot_all(tmp_path / "sw", tmp_path / "fig", kinds=["phases_vs", "fig2"])
    assert "phases_vs_entropy_and_n" in written


def test_grammar_palette_one_palette_per_family():
    import seaborn as sns

    from grammarlab.plot.common import grammar_palette

    df = pd.DataFrame({"grammar": ["random_l2", "random_l26", "hierarchical_p0.5"],
                       "entropy_bits": [64.0, 300.0, 36.0]})  # fmt: skip
    pal = grammar_palette(df)
    # families sorted by name: hierarchical -> Blues, random -> Oranges; shades by entropy
    assert pal["hierarchical_p0.5"] == sns.color_palette("Blues", 2)[1]
    assert pal["random_l2"] == sns.color_palette("Oranges", 3)[1]
    assert pal["random_l26"] == sns.color_palette("Oranges", 3)[2]
