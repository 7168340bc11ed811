"""The figure registry: every kind writes PNG, PDF and the CSV it drew; missing inputs skip a figure
with a note; an unknown kind is a user error. What each figure drew is checked next to the module
that draws it (test_curves, test_phases, test_measures)."""

from __future__ import annotations

import pytest

from grammarlab.errors import GrammarlabError
from grammarlab.plot.registry import PLOTS, plot_all
from tests.plot.synthetic import files_ok


def test_all_figures_of_a_sweep(all_figures):
    out, written, notes = all_figures.out, all_figures.written, all_figures.notes
    assert "fig4_sequential_forgetting" not in written
    assert any(n.startswith("fig4 skipped") for n in notes)
    # no sequential runs, no per_position rows in the sweep tables
    assert any(n.startswith("position_heatmap skipped") for n in notes)
    # no measures, so no parameter counts: the onset-vs-load figure is skipped (test_load.py)
    assert any(n.startswith("onset_vs_load skipped") for n in notes)
    assert any(n.startswith("forgetting skipped") for n in notes)  # no sequential runs
    assert len(written) == len(PLOTS) - 4
    for stem in written:
        files_ok(out, stem)


def test_unknown_kind_is_a_user_error(sweep, tmp_path):
    with pytest.raises(GrammarlabError, match="unknown plot kind"):
        plot_all(sweep, tmp_path / "f", kinds=["nope"])


def test_the_plot_command_notes_a_skipped_figure_only_when_it_was_asked_for(
    sweep, tmp_path, capsys
):
    from grammarlab.cli import main

    assert main(["plot", str(sweep), "--out", str(tmp_path / "f")]) == 0
    err = capsys.readouterr().err
    assert "fig4 skipped" not in err and "kind(s) not drawn from these tables" in err
    assert main(["plot", str(sweep), "--out", str(tmp_path / "g"), "--kinds", "fig4"]) == 0
    assert "note: fig4 skipped" in capsys.readouterr().err
