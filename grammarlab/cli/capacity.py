"""``grammarlab capacity CONFIG.toml``: run a capacity grid (resumable), write tables and figures.

A thin shell over :mod:`grammarlab.capacity`: the grid folder keeps one result file per run, so
running the command again skips the finished runs and only redraws the tables and figures.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from grammarlab.cli.console import figure_backend
from grammarlab.cli.outputs import output_folder
from grammarlab.errors import ConfigError


def add_parser(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser(
        "capacity",
        help="memorization capacity in bits per parameter: train a grid of tiny models on "
        "uniform random-grammar strings (resumable)",
    )
    c.add_argument("config", metavar="CONFIG.toml")
    c.add_argument("--out", help="grid folder (default: runs/capacity/<name>)")
    c.add_argument(
        "--workers",
        type=int,
        default=1,
        help="local processes, one torch thread each (default: 1, in this process)",
    )
    c.add_argument("--quiet", action="store_true", help="no progress lines")
    c.set_defaults(func=cmd_capacity)


def cmd_capacity(args: argparse.Namespace) -> int:
    import torch

    from grammarlab.capacity.config import load_config
    from grammarlab.capacity.grid import expand, run_grid
    from grammarlab.capacity.report import write_report

    figure_backend()
    if args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}", file="--workers")
    cfg = load_config(args.config)
    out = Path(args.out) if args.out else Path("runs") / "capacity" / cfg.name
    output_folder(out, "--out" if args.out else f"{args.config}: name")
    torch.set_num_threads(1)  # tiny models: one thread per process scales best
    total = len(expand(cfg))
    done = [0]
    t0 = time.perf_counter()

    def progress(run_id: str, rec: dict | None) -> None:
        done[0] += 1
        if args.quiet:
            return
        if rec is None:
            print(f"[{done[0]}/{total}] {run_id}: done before, skipped", file=sys.stderr)
            return
        if rec.get("diverged"):
            print(f"[{done[0]}/{total}] {run_id}: DIVERGED ({rec['error']}), recorded; going on",
                  file=sys.stderr, flush=True)  # fmt: skip
            return
        f = rec["final"]
        sat = f"saturated at {rec['saturated_at_step']}" if rec["saturated"] else "NOT saturated"
        print(f"[{done[0]}/{total}] {run_id}: {f['mem_bits']:.0f} of {rec['dataset_bits']:.0f} "
              f"bits memorized, AUC {f['auc']:.3f}, {rec['steps']} steps, {sat}, "
              f"{rec['seconds']:.1f} s, {rec['cpu_seconds']:.1f} s CPU "
            f"({time.perf_counter() - t0:.0f} s total)",
              file=sys.stderr, flush=True)  # fmt: skip

    records = run_grid(cfg, out, workers=args.workers, progress=progress)
    text, stems = write_report(records, out)
    print(text)
    if not args.quiet:
        print(f"tables and {len(stems)} figure(s) in {out}", file=sys.stderr)
    return 0
