"""``grammarlab sweep | plot | demo``: thin shells over grammarlab.sweep (spec, execute, tables,
demo) and grammarlab.plot.registry.

The library modules are imported inside the commands: they import torch, pandas or matplotlib,
and ``grammarlab --help`` (which builds every subcommand's parser) must not.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from grammarlab.cli.console import figure_backend, show_progress
from grammarlab.cli.outputs import output_folder, write_error
from grammarlab.progress import elapsed, step

# `grammarlab sweep` exit status (docs/runs.md): 0 every run finished (done or diverged),
# 1 some run failed, 2 a user error, LOCKED some run is held by another process (not run)
LOCKED = 4
EXIT_CODES = f"""exit status:
  0    every run finished (done or diverged); the tables are written
  1    some run failed (each named on stderr); the other runs and the tables are done
  2    a user error: bad sweep file, key or flag (one `error:` line and a hint)
  {LOCKED}    some run is held by another process (locked) and was not run: rerun the sweep
       when that process has finished (no run failed)
  130  interrupted"""


def _positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (argparse turns the error into one line, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("sweep", help="run a grid of fine-tunes from a sweep file; write tables",
                       epilog=EXIT_CODES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    s.add_argument("file", metavar="SWEEP.toml")
    s.add_argument("--executor", default="local",
                   help="local (one after another, default), parallel (local processes), slurm "
                   "(one Slurm array job with the file's [resources]) or gpus (--workers processes "
                   "per visible GPU, default 1)")  # fmt: skip
    s.add_argument("--cluster", help="with --executor slurm: override resources.cluster (slurm, "
                   "or local: submitit's local processes, no Slurm)")  # fmt: skip
    s.add_argument("--workers", type=_positive_int,
                   help="parallel processes (default: CPU count)")  # fmt: skip
    s.add_argument("--out", help="sweep folder (default: the file's out, else runs/<name>)")
    s.add_argument("--dry-run", action="store_true",
                   help="list the runs and their states only; writes nothing")  # fmt: skip
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_sweep)

    p = sub.add_parser("plot", help="figures (PNG, PDF and the CSV drawn) of a run or a sweep")
    p.add_argument("path", metavar="RUN_OR_SWEEP")
    p.add_argument("-o", "--out", required=True, help="folder for the figures")
    p.add_argument("--kinds", nargs="+", metavar="KIND", help="only these figures")
    p.set_defaults(func=cmd_plot)

    d = sub.add_parser("demo", help="the embedded entropy sweep on the CPU, with figures")
    d.add_argument("--out", default="runs/demo", help="sweep folder (default: runs/demo)")
    d.add_argument("--figures", default="figures/demo", help="figures (default: figures/demo)")
    d.add_argument("--seeds", type=int, default=1, help="seeds per grid point (default: 1)")
    d.add_argument("--workers", type=_positive_int,
                   help="parallel processes (default: CPU count)")  # fmt: skip
    d.add_argument("--fast", action="store_true", help="a reduced variant (2 grammars, tiny)")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=cmd_demo)


def _report(outcomes: list) -> int:
    failed = [o for o in outcomes if o.state == "failed"]
    for o in failed:
        print(f"{o.run_id}: failed: {o.error}", file=sys.stderr)
    states: dict[str, int] = {}
    for o in outcomes:
        states[str(o.state)] = states.get(str(o.state), 0) + 1
    print("runs: " + ", ".join(f"{n} {s}" for s, n in sorted(states.items())), file=sys.stderr)
    locked = [o for o in outcomes if o.state == "locked"]
    for o in locked:
        print(f"{o.run_id}: locked: {o.error}", file=sys.stderr)
    if locked and not failed:
        print(f"{len(locked)} run(s) held by another process were not run: rerun the sweep when "
              f"it has finished (exit status {LOCKED})", file=sys.stderr)  # fmt: skip
        return LOCKED
    return 1 if failed else 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from grammarlab.runs.folder import has_runs
    from grammarlab.sweep.execute import run_sweep
    from grammarlab.sweep.jobs import run_state
    from grammarlab.sweep.spec import load_sweep
    from grammarlab.sweep.tables import aggregate, summary_table

    if args.out:
        output_folder(args.out, "--out")
    sweep = load_sweep(args.file, out=args.out, write=not args.dry_run)
    output_folder(sweep.root, "--out" if args.out else f"{args.file}: out")
    if args.cluster is not None:
        res = dataclasses.replace(sweep.resources, cluster=args.cluster)
        sweep = dataclasses.replace(sweep, resources=res)
    if args.dry_run:
        for r in sweep.runs:
            print(f"{r.run_id}\t{run_state(r.run_dir) or 'new'}")
        print(f"{len(sweep.runs)} run(s) in {sweep.root}")
        return 0
    outcomes = run_sweep(
        sweep, executor=args.executor, workers=args.workers, progress=show_progress(args)
    )
    if not has_runs(sweep.root):  # e.g. every run is locked by another process, or failed
        print(f"note: no run in {sweep.root} has metrics yet: no tables written", file=sys.stderr)
        return _report(outcomes)
    t0 = time.perf_counter()
    step(f"tables: reading {len(sweep.runs)} runs (phases, measures, exact entropies)",
         show=show_progress(args))  # fmt: skip
    tables = aggregate(sweep.root)
    step(f"tables: done in {elapsed(time.perf_counter() - t0)}", show=show_progress(args))
    print(summary_table(tables.phases))
    for note in tables.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"tables: {sweep.root}/curves.csv, phases.csv, measures.csv", file=sys.stderr)
    return _report(outcomes)


def cmd_plot(args: argparse.Namespace) -> int:
    figure_backend()
    from grammarlab.plot.registry import PLOTS, plot_all

    output_folder(args.out, "--out")
    try:
        written, notes = plot_all(args.path, args.out, kinds=args.kinds)
    except OSError as e:
        raise write_error(args.out, "--out", e) from None
    asked = set(args.kinds or ())
    skipped = [n for n in notes if n.split(" ", 1)[0] in PLOTS and " skipped: " in n]
    for note in notes:  # a figure these tables cannot give is news only if it was asked for
        if note not in skipped or note.split(" ", 1)[0] in asked:
            print(f"note: {note}", file=sys.stderr)
    if skipped and not asked:
        print(f"{len(skipped)} kind(s) not drawn from these tables (name one with --kinds to see "
              "why)", file=sys.stderr)  # fmt: skip
    print(f"{len(written)} figure(s) in {args.out}", file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    figure_backend()
    from grammarlab.sweep.demo import run_demo

    return run_demo(out=args.out, figures=args.figures, seeds=args.seeds, workers=args.workers,
                    fast=args.fast, progress=show_progress(args))  # fmt: skip
