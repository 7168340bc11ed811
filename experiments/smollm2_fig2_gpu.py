"""Fig. 2 with SmolLM2-135M-Instruct on one GPU, within one device window.

    python experiments/smollm2_fig2_gpu.py                      # on the GPU machine
    python experiments/smollm2_fig2_gpu.py --reduced --out DIR  # CPU check: tiny model, 3 epochs

The grid: both Fig. 2 grammars (random, 26 letters, L = 64; hierarchical, p = 0.5) x n = 8 and
64 x seeds 0, 1, 2 = 12 runs of 100 epochs each, full fine-tune at lr 1e-4 (the lr of
``fig2_smollm2.toml``, from the measured sweep), bfloat16, 16 test and 10 random strings, 16
generations at the first and last epoch, surprisals of every epoch kept and the measures
computed at the end of each run (``grammarlab train`` does both). Runs go seed by seed, so a
window that ends early leaves whole seeds of all four cells.

Budget (``--budget-s``, default 540 s of a 10-minute window, the rest for start-up): a run is
only started when the time left covers the estimate of one run, taken from the runs done so far
(at first ``--run-estimate-s``). Planned from bench/results/gpu.md (H200, SmolLM2-135M full
fine-tune): 0.26-0.32 s per bfloat16 epoch (n = 64 / 8), so 100 epochs ~30 s, plus loading the
GGUF checkpoint (~35 s on one core of the CPU here, dequantized on the CPU; planned at 15 s on
the device's 16 cores), two generation epochs and two checkpoints (~5 s): ~50 s a run, ~600 s
for all 12. So one window holds about 10 runs: seeds 0 and 1 of the four cells (8 runs, ~400 s)
and part of seed 2; the script prints what it left and its estimated cost. Runs are resumable:
the same command in a second window finishes a run that the first window's end cut off and
runs the rest.

At the end the sweep's tables (curves, phases, measures, per-string and per-position; the
large ones gzipped) are written to ``--results`` (default
``experiments/results/fig2_smollm2_gpu``), with ``budget.json`` saying which runs are done,
their measured seconds and the estimated cost of the runs left.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from grammarlab.errors import GrammarlabError  # noqa: E402
from grammarlab.io import write_atomic, write_json_atomic  # noqa: E402

NAME = "fig2_smollm2_gpu"
SEEDS = (0, 1, 2)
N_TRAIN = (8, 64)
EPOCHS = 100
GZIPPED = ("curves", "measures", "per_string", "per_position")  # the large tables


def spec(reduced: bool, seeds: tuple[int, ...] = SEEDS) -> dict[str, Any]:
    """The sweep: the full grid on the GPU, or (``reduced``) the same grid shape with a tiny
    model, 3 epochs and shorter strings on the CPU."""
    base: dict[str, Any] = {
        "epochs": EPOCHS, "lr": 1e-4, "n_test": 16, "n_random": 10, "n_generate": 16,
        "checkpoint_every": 50, "dtype": "bfloat16", "device": "cuda",
        "model": {"preset": "smollm2-135m-instruct"},
    }  # fmt: skip
    length = 64
    if reduced:
        base.update(epochs=3, lr=3e-3, n_test=4, n_random=2, n_generate=2, checkpoint_every=2,
                    dtype="float32", device="cpu", cpu_workers=1,
                    model={"preset": "pythia-tiny", "hidden_size": 16, "num_layers": 1,
                           "num_heads": 2, "intermediate_size": 32})  # fmt: skip
        length = 8
    return {
        "name": NAME,
        "base": base,
        "grid": {"n_train": list(N_TRAIN), "seed": list(seeds)},
        "derive": [
            {"name": "random", "family": "random", "alphabet_size": [26], "length": length},
            {"name": "hierarchical", "family": "hierarchical", "p": [0.5]},
        ],
    }


def seed_major(runs: tuple) -> list:
    """The runs seed by seed (then grammar, then n): a stopped window keeps whole seeds."""
    return sorted(runs, key=lambda r: (r.config.seed, dict(r.point).get("grammar", ""),
                                       r.config.n_train))  # fmt: skip


def run_within_budget(sweep: Any, budget_s: float, first_estimate_s: float,
                      clock=time.perf_counter) -> dict[str, Any]:  # fmt: skip
    """Run the sweep's unfinished runs one at a time in seed order while the time left covers
    one run's estimate (the mean of the runs timed so far, else ``first_estimate_s``). Returns
    the plan: runs done (with seconds), runs left and their estimated cost [s]."""
    from grammarlab.runs.launch import FINISHED
    from grammarlab.sweep.execute import run_sweep
    from grammarlab.sweep.jobs import run_state

    t0 = clock()
    timed: list[float] = []
    done, left, failed = [], [], []
    for r in seed_major(sweep.runs):
        if run_state(r.run_dir) in FINISHED:
            done.append({"run_id": r.run_id, "seconds": None, "state": run_state(r.run_dir)})
            continue
        estimate = sum(timed) / len(timed) if timed else first_estimate_s
        if budget_s - (clock() - t0) < estimate:
            left.append(r.run_id)
            continue
        t = clock()
        [outcome] = run_sweep(dataclasses.replace(sweep, runs=(r,)), executor="local",
                              workers=1, progress=False)  # fmt: skip
        seconds = clock() - t
        timed.append(seconds)
        row = {"run_id": r.run_id, "seconds": round(seconds, 2), "state": str(outcome.state)}
        (failed if outcome.state == "failed" else done).append(
            {**row, "error": outcome.error} if outcome.state == "failed" else row
        )
    per_run = sum(timed) / len(timed) if timed else first_estimate_s
    return {"budget_s": budget_s, "elapsed_s": round(clock() - t0, 2), "done": done,
            "failed": failed, "left": left, "seconds_per_run": round(per_run, 2),
            "left_cost_s": round(per_run * len(left), 1)}  # fmt: skip


def save_tables(root: Path, results: Path) -> list[str]:
    """The sweep's tables from ``root`` into ``results`` (atomically; large ones gzipped)."""
    from grammarlab.sweep.tables import SAVED, aggregate

    tables = aggregate(root)
    written = []
    for name in SAVED:
        df = getattr(tables, name)
        if df is None or not len(df):
            continue
        if name in GZIPPED:
            path = results / f"{name}.csv.gz"
            text = df.to_csv(index=False).encode("utf-8")
            write_atomic(path, lambda p, b=text: p.write_bytes(gzip.compress(b, mtime=0)))
        else:
            path = results / f"{name}.csv"
            write_atomic(path, lambda p, df=df: df.to_csv(p, index=False))
        written.append(path.name)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--reduced",
        action="store_true",
        help="CPU check: a tiny model, 3 epochs, strings of 8 letters",
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    ap.add_argument(
        "--budget-s",
        type=float,
        default=540.0,
        help="seconds of runs to start within (default 540 of a 10-minute window)",
    )
    ap.add_argument(
        "--run-estimate-s",
        type=float,
        default=50.0,
        help="planned seconds of one run before one is timed (default 50)",
    )
    ap.add_argument("--out", help=f"sweep folder (default runs/{NAME})")
    ap.add_argument("--results", help=f"tables (default experiments/results/{NAME})")
    args = ap.parse_args(argv)
    try:
        from grammarlab.sweep.spec import expand

        if args.budget_s < 0 or args.run_estimate_s <= 0:
            raise GrammarlabError("--budget-s must be >= 0 and --run-estimate-s > 0")
        root = Path(args.out or ROOT / "runs" / NAME)
        results = Path(args.results or ROOT / "experiments" / "results" / NAME)
        sweep = expand(spec(args.reduced, tuple(args.seeds)), root, base_dir=ROOT / "experiments",
                       source=f"experiments/{Path(__file__).name}", name=NAME)  # fmt: skip
        plan = run_within_budget(sweep, args.budget_s, args.run_estimate_s)
        plan["tables"] = save_tables(root, results) if plan["done"] else []
        plan["reduced"] = args.reduced
        write_json_atomic(results / "budget.json", plan)
    except GrammarlabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{len(plan['done'])} run(s) done, {len(plan['failed'])} failed, "
          f"{len(plan['left'])} left (estimated {plan['left_cost_s']:.0f} s more at "
          f"{plan['seconds_per_run']:.0f} s a run); tables in {results}")  # fmt: skip
    for f in plan["failed"]:
        print(f"{f['run_id']}: failed: {f['error']}", file=sys.stderr)
    return 1 if plan["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
