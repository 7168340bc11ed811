"""Runs per minute: our sweep runner (both executors) against the Hugging Face Trainer on the
same runs, one after another, measured in the same session.

The runs are a representative subset of the demo sweep (grammarlab/data/demo_sweep.toml): the
hierarchical grammar (p = 0.5) and the 7-letter random grammar at n = 8 and 64, with the demo's
model, data, lr and epochs. The Trainer baseline is bench/hf_trainer.py (the driver that
bench_train.py uses too): the same strings (grammarlab.data), the same initial weights, the
Eq.-1 loss, AdamW with linear decay, the whole training set as one step via gradient
accumulation, and a callback that evaluates the train, test and random sets every epoch. Our
runner does more per epoch (files, checkpoints, generations, the measures at the end).

    .venv/bin/python bench/bench_sweep.py [--epochs 100] [--out bench/results/sweep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from grammarlab.io import write_json_atomic, write_text_atomic

SUBSET = ("hierarchical_p0.5", "random_l7")


def subset_runs(root: Path, epochs: int):
    import dataclasses

    from grammarlab.demo import demo_spec
    from grammarlab.sweep import Sweep, expand

    spec = demo_spec()
    spec["base"]["epochs"] = epochs
    sw = expand(spec, root, name="bench")
    runs = tuple(r for r in sw.runs if Path(r.config.grammar).stem in SUBSET)
    return dataclasses.replace(sw, runs=runs) if isinstance(sw, Sweep) else sw


def time_ours(epochs: int, executor: str, workers: int) -> tuple[float, int, float]:
    from grammarlab.sweep import run_sweep

    root = Path(tempfile.mkdtemp(prefix=f"bench_{executor}_"))
    try:
        sw = subset_runs(root, epochs)
        t0 = time.perf_counter()
        out = run_sweep(sw, executor=executor, workers=workers, progress=False)
        dt = time.perf_counter() - t0
        bad = [o for o in out if o.state != "done"]
        if bad:
            raise SystemExit(f"our runner: {bad}")
        return dt, len(out), sum(o.cpu_seconds for o in out)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def time_hf(epochs: int) -> tuple[float, int, list, float]:
    """The same runs, one after another, with the Trainer driver of bench/hf_trainer.py."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from hf_trainer import hf_train

    root = Path(tempfile.mkdtemp(prefix="bench_hf_"))
    try:
        sw = subset_runs(root, epochs)
        t0, c0 = time.perf_counter(), time.process_time()
        last = []
        for r in sw.runs:
            rec = hf_train(r.config).records[-1]
            last.append((r.run_id, {k: rec[k] for k in ("epoch", "train_loss", "test_loss",
                                                         "random_loss")}))  # fmt: skip
        return time.perf_counter() - t0, len(sw.runs), last, time.process_time() - c0
    finally:
        shutil.rmtree(root, ignore_errors=True)


def machine() -> dict:
    import torch
    import transformers

    return {"platform": platform.platform(), "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "transformers": transformers.__version__,
            "loadavg_1_5_15": os.getloadavg()}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", default="bench/results/sweep", help="path stem for .json/.md")
    args = ap.parse_args(argv)
    res: dict = {"subset": SUBSET, "n_train": [8, 64], "epochs": args.epochs,
                 "machine_before": machine()}  # fmt: skip
    for ex in ("parallel", "local"):
        dt, n, cpu = time_ours(args.epochs, ex, args.workers)
        res[f"ours_{ex}"] = {"seconds": dt, "runs": n, "runs_per_min": 60 * n / dt,
                             "cpu_seconds_in_runs": cpu}  # fmt: skip
        print(f"ours ({ex}): {n} runs in {dt:.1f} s", file=sys.stderr)
    dt, n, last, cpu = time_hf(args.epochs)
    res["hf_trainer"] = {"seconds": dt, "runs": n, "runs_per_min": 60 * n / dt, "last": last,
                         "cpu_seconds": cpu}  # fmt: skip
    print(f"HF Trainer: {n} runs in {dt:.1f} s", file=sys.stderr)
    res["machine_after"] = machine()
    best = max(("ours_parallel", "ours_local"), key=lambda k: res[k]["runs_per_min"])
    res["best"] = best
    res["speedup"] = res[best]["runs_per_min"] / res["hf_trainer"]["runs_per_min"]
    out = Path(args.out)
    write_json_atomic(out.with_suffix(".json"), res)
    write_text_atomic(out.with_suffix(".md"), render(res, args.workers))
    print(json.dumps({k: res[k] for k in ("ours_parallel", "ours_local", "speedup")}, indent=1))
    return 0


def render(res: dict, workers: int) -> str:
    """sweep.md from the results of :func:`main`."""
    m0, m1 = res["machine_before"], res["machine_after"]
    rows = [(f"ours, `--executor parallel` ({workers} processes, 1 thread each)", "ours_parallel"),
            (f"ours, `--executor local` (1 process, {m0['torch_threads']} threads)",
             "ours_local"),
            (f"HF Trainer, one run after another ({m0['torch_threads']} threads)", "hf_trainer")]  # fmt: skip
    cpu = {k: res[k].get("cpu_seconds_in_runs", res[k].get("cpu_seconds")) for _, k in rows}
    lines = ["# Sweep throughput: our runner vs the Hugging Face Trainer", "",
             f"`.venv/bin/python bench/bench_sweep.py --epochs {res['epochs']}`, one session; raw "
             "numbers in `sweep.json`.", "",
             f"**Runs:** a subset of the demo sweep (grammars {', '.join(res['subset'])}; "
             f"n = {' and '.join(map(str, res['n_train']))}; seed 0; the demo's model and lr), "
             f"{res['epochs']} epochs each. The Trainer side is `bench/hf_trainer.py` (the same "
             "strings, initial weights, Eq.-1 loss, AdamW with linear decay, whole-set steps, a "
             "callback evaluating train/test/random every epoch). Our runner does more per epoch "
             "(files, checkpoints, generations, the measures at the end).", "",
             "| runner | wall s | runs/min | CPU s |", "|---|---:|---:|---:|"]  # fmt: skip
    for label, key in rows:
        r = res[key]
        lines.append(f"| {label} | {r['seconds']:.1f} | {r['runs_per_min']:.2f} | "
                     f"{cpu[key]:.1f} |")  # fmt: skip
    best = res["best"]
    lines += ["", f"**Speed-up of the best executor ({best.removeprefix('ours_')}) over the "
              f"Trainer: {res['speedup']:.1f}x in runs/min** (target >= 1.5x); "
              f"{cpu['hf_trainer'] / cpu[best]:.1f}x in CPU seconds.", "",
              f"Load average (1/5/15 min) before: {_loads(m0)}, after: {_loads(m1)}. "
              f"Machine: {m0['platform']}, {m0['cpu_count']} CPUs, "
              f"Python {m0['python']}, torch {m0['torch']}, transformers "
              f"{m0['transformers']}.", ""]  # fmt: skip
    return "\n".join(lines)


def _loads(m: dict) -> str:
    return "/".join(f"{x:.1f}" for x in m["loadavg_1_5_15"])


if __name__ == "__main__":
    sys.exit(main())
