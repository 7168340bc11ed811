"""``grammarlab sweep | plot | demo``: thin shells over grammarlab.sweep (spec, execute, tables,
demo) and grammarlab.plot.registry.

The library modules are imported inside the commands: they import torch, pandas or matplotlib,
and ``grammarlab --help`` (which builds every subcommand's parser) must not.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from grammarlab.cli.console import figure_backend, show_progress


def add_parser(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("sweep", help="run a grid of fine-tunes from a sweep file; write tables")
    s.add_argument("file", metavar="SWEEP.toml")
    s.add_argument("--executor", default="local",
                   help="local (one after another, default), parallel (local processes), slurm "
                   "(one Slurm array job with the file's [resources]) or gpus (--workers processes "
                   "per visible GPU, default 1)")  # fmt: skip
    s.add_argument("--cluster", help="with --executor slurm: override resources.cluster (slurm, "
                   "or local: submitit's local processes, no Slurm)")  # fmt: skip
    s.add_argument("--workers", type=int, help="parallel processes (default: CPU count)")
    s.add_argument("--out", help="sweep folder (default: the file's out, else runs/<name>)")
    s.add_argument("--dry-run", action="store_true", help="list the runs and their states only")
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
    d.add_argument("--workers", type=int, help="parallel processes (default: CPU count)")
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
    return 1 if failed else 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from grammarlab.sweep.execute import run_sweep
    from grammarlab.sweep.jobs import run_state
    from grammarlab.sweep.spec import load_sweep
    from grammarlab.sweep.tables import aggregate, summary_table

    sweep = load_sweep(args.file, out=args.out)
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
    tables = aggregate(sweep.root)
    print(summary_table(tables.phases))
    for note in tables.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"tables: {sweep.root}/curves.csv, phases.csv, measures.csv", file=sys.stderr)
    return _report(outcomes)


def cmd_plot(args: argparse.Namespace) -> int:
    figure_backend()
    from grammarlab.plot.registry import plot_all

    written, notes = plot_all(args.path, args.out, kinds=args.kinds)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"{len(written)} figure(s) in {args.out}", file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    figure_backend()
    from grammarlab.sweep.demo import run_demo

    return run_demo(out=args.out, figures=args.figures, seeds=args.seeds, workers=args.workers,
                    fast=args.fast, progress=show_progress(args))  # fmt: skip
