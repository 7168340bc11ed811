"""Runs per hour of a small capacity grid: all runs in one process vs one process per run.

Many small runs dominate the capacity experiment, so what a run costs besides its training
(starting Python, importing torch and transformers, compiling the grammar) matters. Both sides
run the same runs (the same config, one torch thread, one after another):

* one process: :func:`grammarlab.capacity.grid.run_grid` with ``workers = 1`` (imports paid once,
  the grammar compiled once, each run builds its model from the preset);
* one process per run: ``python -c`` that imports grammarlab and runs one run
  (:func:`grammarlab.capacity.grid.run_one`), as a job array would.

Timed: wall seconds, and CPU seconds (this process's for the first side; the children's for the
second), which stay meaningful on a shared machine where the wall clock does not.

    .venv/bin/python bench/bench_capacity.py [--steps 300] [--out bench/results/capacity]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from grammarlab.capacity.config import CapacityConfig, SaturationSpec, TrainSpec
from grammarlab.capacity.grid import expand, run_grid
from grammarlab.io import write_json_atomic, write_text_atomic
from grammarlab.train.models import ModelSpec

ROOT = Path(__file__).resolve().parent.parent


def bench_config(steps: int) -> CapacityConfig:
    """2 model sizes x 2 dataset sizes x 2 seeds, float32, the CPU grid's V, L and batch."""
    return CapacityConfig(
        name="bench",
        models=(
            ModelSpec("pythia-tiny", hidden_size=16, num_layers=1, num_heads=2,
                      intermediate_size=64),
            ModelSpec("llama-tiny", hidden_size=16, num_layers=1, num_heads=2,
                      intermediate_size=44),
        ),
        dataset_sizes=(16, 64),
        seeds=(0, 1),
        dtypes=("float32",),
        alphabet_size=16,
        length=32,
        n_test=64,
        train=TrainSpec(max_steps=steps, eval_every=100, lr=1e-2),
        saturation=SaturationSpec(min_steps=10**9),  # never stop early: equal work per run
    )  # fmt: skip


def one_process(cfg: CapacityConfig) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix="bench_cap_one_"))
    w0, c0 = time.perf_counter(), time.process_time()
    run_grid(cfg, root)
    return {"wall_s": time.perf_counter() - w0, "cpu_s": time.process_time() - c0}


_CHILD = """
import sys, json, torch
torch.set_num_threads(1)
from grammarlab.capacity.config import config_from_dict
from grammarlab.capacity.grid import expand, run_one
cfg = config_from_dict(json.loads(sys.argv[1]))
run = [r for r in expand(cfg) if r.run_id(cfg) == sys.argv[2]][0]
run_one(cfg, run, sys.argv[3])
"""


def process_per_run(cfg: CapacityConfig) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix="bench_cap_each_"))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = time.perf_counter()
    for run in expand(cfg):
        subprocess.run([sys.executable, "-c", _CHILD, json.dumps(cfg.to_dict()), run.run_id(cfg),
                        str(root)], check=True, cwd=ROOT)  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": time.perf_counter() - w0, "cpu_s": cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300, help="steps per run (default 300)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "capacity"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = bench_config(args.steps)
    n = len(expand(cfg))
    load0 = os.getloadavg()
    # warm the page cache for both sides alike (the first import from disk is slower)
    subprocess.run([sys.executable, "-c", "import grammarlab.capacity.grid"], check=True,
                   cwd=ROOT)  # fmt: skip
    sides = {"one process": one_process(cfg), "one process per run": process_per_run(cfg)}
    load1 = os.getloadavg()
    rows = []
    for name, r in sides.items():
        rows.append({"side": name, "runs": n, **r,
                     "runs_per_hour_wall": 3600 * n / r["wall_s"],
                     "runs_per_hour_cpu": 3600 * n / r["cpu_s"]})  # fmt: skip
    import transformers

    meta = {"steps": args.steps, "runs": n, "load_before": load0, "load_after": load1,
            "machine": platform.platform(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__}  # fmt: skip
    write_json_atomic(args.out + ".json", {"meta": meta, "rows": rows})
    lines = [
        "# Capacity grid: one process vs one process per run",
        "",
        f"`python bench/bench_capacity.py --steps {args.steps}`; raw numbers in "
        f"`{Path(args.out).name}.json`.",
        "",
        f"**Runs:** {n} (2 model sizes: GPT-NeoX and Llama-style tiny, hidden 16, 1 layer; "
        f"16 and 64 strings of V = 16, L = 32; 2 seeds; float32; {args.steps} steps of batch "
        "64 each, measured every 100 steps; one torch thread; one run after another).",
        "",
        "| side | wall s | CPU s | runs/hour (wall) | runs/hour (CPU) |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['side']} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
                     f"{r['runs_per_hour_wall']:.0f} | {r['runs_per_hour_cpu']:.0f} |")  # fmt: skip
    a, b = rows
    lines += [
        "",
        f"One process over one process per run: {b['cpu_s'] / a['cpu_s']:.2f}x fewer CPU "
        f"seconds, {b['wall_s'] / a['wall_s']:.2f}x less wall time; the difference per run "
        f"({(b['cpu_s'] - a['cpu_s']) / n:.1f} CPU s) is starting Python and importing torch "
        "and transformers.",
        "",
        f"Load average (1/5/15 min) before: {'/'.join(f'{x:.1f}' for x in load0)}, after: "
        f"{'/'.join(f'{x:.1f}' for x in load1)} (a shared machine: compare CPU seconds). "
        f"Machine: {meta['machine']}, {meta['cpus']} CPUs, Python {meta['python']}, "
        f"torch {meta['torch']}, transformers {meta['transformers']}.",
    ]
    write_text_atomic(args.out + ".md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
