"""grammarlab report: verdicts printed and written as Markdown, the tables it read written on
request, rows named by their RUNS argument, a notes file appended verbatim; one-line errors for
folders without runs and for notes files that cannot be read."""

from __future__ import annotations

import pandas as pd

from grammarlab.analysis.report import notes_marker
from grammarlab.cli import main
from tests.analysis.run_folders import write_run


def test_report_on_two_seeds_writes_markdown_and_tables(tmp_path, capsys):
    runs = tmp_path / "runs"
    write_run(runs / "a")
    write_run(runs / "b", seed=1)
    out, tables = tmp_path / "docs" / "findings.md", tmp_path / "t"
    assert main(["report", str(runs), "-o", str(out), "--tables", str(tables)]) == 0
    printed = capsys.readouterr().out
    # onset at epoch 2 comes after the end of generalization at epoch 1 (run_folders.TRAIN/TEST),
    # but two seeds are too few for a verdict (a cell needs 3, and 5 all one way for p <= 0.05)
    assert printed.splitlines()[0].startswith("not established")
    assert printed.count("note: ") == 2 and printed.endswith(f"wrote {out}\n")  # no measures
    text = out.read_text()
    assert text.startswith("# Findings") and "2 rows: 2 distinct runs" in text
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


def test_notes_file_is_appended_verbatim_after_the_generated_report(tmp_path, capsys):
    write_run(tmp_path / "runs" / "a")
    plain, both = tmp_path / "plain.md", tmp_path / "both.md"
    notes = tmp_path / "notes.md"
    notes.write_text(
        "## Notes written by hand\n\n- caf\u00e9, `x`\n\n<!-- kept -->\n", encoding="utf-8"
    )
    runs = str(tmp_path / "runs")
    assert main(["report", runs, "-o", str(plain)]) == 0
    assert main(["report", runs, "-o", str(both), "--notes", str(notes)]) == 0
    capsys.readouterr()
    generated, text = plain.read_text(encoding="utf-8"), both.read_text(encoding="utf-8")
    marker = notes_marker(str(notes))
    assert text == generated + "\n---\n\n" + marker + "\n\n" + notes.read_text(encoding="utf-8")
    assert "--notes" not in generated and text.count(marker) == 1


def test_unreadable_notes_files_are_one_line_errors_and_nothing_is_written(tmp_path, capsys):
    write_run(tmp_path / "runs" / "a")
    out = tmp_path / "r.md"
    (tmp_path / "folder").mkdir()
    (tmp_path / "latin1.md").write_bytes("caf\u00e9\n".encode("latin-1"))
    cases = [
        ("missing.md", "no such file"),
        ("folder", "a folder, not a file"),
        ("latin1.md", "not UTF-8 text"),
        ("r.md", "it is also the output file (-o)"),
    ]
    for name, words in cases:
        notes = tmp_path / name
        assert main(["report", str(tmp_path / "runs"), "-o", str(out), "--notes", str(notes)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"{notes}: error: --notes: {words}") and err.count("\n") == 1
        assert not out.exists()
