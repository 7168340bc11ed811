"""``grammarlab report RUNS... -o docs/findings.md``: the paper's claims judged on runs.

A thin shell over :mod:`grammarlab.analysis.report`: reads the tidy tables of every run folder
below each RUNS path (:func:`grammarlab.sweep.tables.collect`), judges the claims and writes the
Markdown report (atomically); ``--notes FILE`` appends a hand-written Markdown file after the
generated part, verbatim (docs/findings.md's notes live in docs/findings_notes.md); ``--tables
DIR`` also writes the small tables it read (``report_phases.csv``, ``report_curves.csv``) so the
report can be checked without the runs.

pandas and the sweep tables (which read run folders, hence torch) are imported inside the
command: ``grammarlab --help`` must not import them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from grammarlab.cli.outputs import output_file, output_folder, write_error
from grammarlab.errors import GrammarlabError
from grammarlab.io import write_atomic, write_text_atomic


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="judge the paper's claims on run folders (Markdown)")
    p.add_argument("runs", nargs="+", metavar="RUNS", help="run folders or folders of runs")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="the Markdown file to write, e.g. docs/findings.md")  # fmt: skip
    p.add_argument("--notes", metavar="FILE",
                   help="a Markdown file appended verbatim after the generated report, e.g. "
                   "docs/findings_notes.md")  # fmt: skip
    p.add_argument("--tables", metavar="DIR", help="also write the tables the report read")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    import pandas as pd

    from grammarlab.analysis.report import (  # scipy: kept off the CLI's start-up path
        context_line,
        floor_lines,
        judge_all,
        load_lines,
        render_markdown,
        with_notes,
    )
    from grammarlab.sweep.tables import collect

    out = Path(args.output)
    output_file(out, "--output")  # before the work: a folder, read-only, a run's own file
    if args.tables:
        output_folder(args.tables, "--tables")
    hand = read_notes(args.notes, out) if args.notes else None  # a bad file fails before the work
    phases, curves, notes = [], [], []
    for src in args.runs:
        t = collect(src)
        tag = Path(src).name or str(src)
        for df, into in ((with_floors(t.phases, t.curves, Path(src)), phases),
                         (t.curves, curves)):  # fmt: skip
            if not df.empty:
                df = df.copy()
                df["run"] = tag + "/" + df["run"].astype(str)  # unique across RUNS
                df["source"] = str(src)
                into.append(df)
        notes += list(t.notes)
    ph = pd.concat(phases, ignore_index=True) if phases else pd.DataFrame()
    cu = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
    findings = judge_all(ph, cu)
    text = render_markdown(findings, [str(s) for s in args.runs], context_line(ph, cu),
                           floor_lines(ph, cu), load_lines(ph, cu))  # fmt: skip
    if hand is not None:
        text = with_notes(text, hand, args.notes)
    try:
        write_text_atomic(out, text, follow_symlinks=True)
    except OSError as e:
        raise write_error(out, "--output", e) from None
    if args.tables:
        folder = Path(args.tables)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for name, df in (("report_phases", ph), ("report_curves", cu)):
                write_atomic(folder / f"{name}.csv", lambda p, df=df: df.to_csv(p, index=False))
        except OSError as e:
            raise write_error(folder, "--tables", e) from None
    for f in findings:
        print(f"{f.verdict:<32}  {f.claim}")
    for n in notes:
        print(f"note: {n}")
    print(f"wrote {out}")
    return 0


def with_floors(phases, curves, folder: Path):  # type: ignore[no-untyped-def]
    """phases + the grammar's own losses of ``folder/floors.csv`` (written by ``python -m
    grammarlab.analysis.floors`` beside saved tables) merged by run id where the phases lack
    them (run folders have them in phases.json), and the floor-corrected onset computed from the
    curves where it is missing (:func:`grammarlab.analysis.report.add_floor_onsets`)."""
    import pandas as pd

    from grammarlab.analysis.floors import FLOOR_COLUMNS  # torch (the data sets)
    from grammarlab.analysis.report import add_floor_onsets  # scipy

    path = folder / "floors.csv"
    if phases.empty:
        return phases
    if path.is_file() and "floor_ratio" not in phases.columns:
        fl = pd.read_csv(path)
        if "run" not in fl.columns or any(c not in fl.columns for c in FLOOR_COLUMNS):
            raise GrammarlabError(f"needs the columns run, {', '.join(FLOOR_COLUMNS)}",
                                  file=str(path))  # fmt: skip
        phases = phases.merge(fl[["run", *FLOOR_COLUMNS]], on="run", how="left")
    return add_floor_onsets(phases, curves)


def read_notes(path: str, output: Path) -> str:
    """The text of the ``--notes`` file; a missing, unreadable or non-UTF-8 file, or the output
    file itself (the report would swallow its own notes), is a one-line error naming it."""
    p = Path(path)
    if p.resolve() == output.resolve():
        raise _notes_error(p, "it is also the output file (-o)")
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        why = "no such file"
    except IsADirectoryError:
        why = "a folder, not a file"
    except UnicodeDecodeError as e:
        why = f"not UTF-8 text ({e.reason} at byte {e.start})"
    except OSError as e:
        why = f"cannot read it ({e.strerror})"
    raise _notes_error(p, why)


def _notes_error(p: Path, why: str) -> GrammarlabError:
    return GrammarlabError(f"--notes: {why}; give the Markdown file to append after the report "
                           "(e.g. docs/findings_notes.md)", file=str(p))  # fmt: skip
