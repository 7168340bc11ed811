"""grammarlab report: verdicts printed and written as Markdown, the tables it read written on
request, rows named by their RUNS argument; one-line errors for folders without runs."""

from __future__ import annotations

import pandas as pd

from grammarlab.cli import main
from tests.analysis.run_folders import write_run


def test_report_on_two_seeds_writes_markdown_and_tables(tmp_path, capsys):
    runs = tmp_path / "runs"
    write_run(runs / "a")
    write_run(runs / "b", seed=1)
    out, tables = tmp_path / "docs" / "findings.md", tmp_path / "t"
    assert main(["report", str(runs), "-o", str(out), "--tables", str(tables)]) == 0
    printed = capsys.readouterr().out
    # onset at epoch 2 comes after the end of generalization at epoch 1 (run_folders.TRAIN/TEST)
    assert printed.splitlines()[0].startswith("does not hold at this scale")
    assert printed.count("note: ") == 2 and printed.endswith(f"wrote {out}\n")  # no measures
    text = out.read_text()
    assert text.startswith("# Findings") and "2 runs" in text
    ph = pd.read_csv(tables / "report_phases.csv")
    assert sorted(ph.run) == ["runs/a", "runs/b"] and set(ph.memorization_onset_epoch) == {2}
    assert len(pd.read_csv(tables / "report_curves.csv")) == 2 * 4 * 3  # runs x epochs x sets


def test_folders_without_runs_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for folder, words in [("empty", "no run found"), ("missing", "no such folder")]:
        assert main(["report", str(tmp_path / folder), "-o", str(tmp_path / "r.md")]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"{tmp_path / folder}: error: {words}") and "Traceback" not in err
    assert not (tmp_path / "r.md").exists()
