"""Runs per minute: our sweep runner (both executors) against the Hugging Face Trainer on the
same runs, one after another, measured in the same session.

The runs are the demo sweep's 12 (grammarlab/data/demo_sweep.toml; ``--subset``: the 4 of the
hierarchical grammar with p = 0.5 and the 7-letter random grammar), with the demo's model, data,
lr and epochs. Two Trainer baselines, both bench/hf_trainer.py (the driver that
bench_train.py uses too: the same strings, initial weights, Eq.-1 loss, AdamW with linear decay,
the whole training set as one step via gradient accumulation) evaluating train, test and random
every epoch: with the Trainer's own ``evaluate()`` (the stock way), and with grammarlab's
evaluation in a callback. Our runner does more per run (files, checkpoints, generations, the
measures at the end). Imports are warmed up first, so no side pays them.

    .venv/bin/python bench/bench_sweep.py [--epochs 100] [--subset] [--out bench/results/sweep]
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

SUBSET = ("hierarchical_p0.5", "random_l7")  # --subset: 4 of the demo's 12 runs


def subset_runs(root: Path, epochs: int, subset: bool = True):
    import dataclasses

    from grammarlab.sweep.demo import demo_spec
    from grammarlab.sweep.spec import Sweep, expand

    spec = demo_spec()
    spec["base"]["epochs"] = epochs
    sw = expand(spec, root, name="bench")
    runs = tuple(r for r in sw.runs if not subset or Path(r.config.grammar).stem in SUBSET)
    return dataclasses.replace(sw, runs=runs) if isinstance(sw, Sweep) else sw


def time_ours(epochs: int, executor: str, workers: int, subset: bool) -> tuple[float, int, float]:
    from grammarlab.sweep.execute import run_sweep

    root = Path(tempfile.mkdtemp(prefix=f"bench_{executor}_"))
    try:
        sw = subset_runs(root, epochs, subset)
        t0 = time.perf_counter()
        out = run_sweep(sw, executor=executor, workers=workers, progress=False)
        dt = time.perf_counter() - t0
        bad = [o for o in out if o.state != "done"]
        if bad:
            raise SystemExit(f"our runner: {bad}")
        return dt, len(out), sum(o.cpu_seconds for o in out)
    finally:
        shutil.rmtree(root, ignore_errors=True)


HF_SIDES = {  # result key -> (evaluation mode of hf_trainer.hf_train, label)
    "hf_trainer_eval": ("trainer", "HF Trainer, its own `evaluate()` on each set every epoch"),
    "hf_grammarlab_eval": ("grammarlab", "HF Trainer + a callback with grammarlab's evaluation"),
}


def _hf_train():
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from hf_trainer import hf_train

    return hf_train


def warm_up() -> None:
    """Import everything both sides use (torch, transformers, the Trainer, grammarlab's runner
    and its end-of-run analysis) and run each once, so neither timed side pays the imports."""
    from grammarlab.analysis.run_analysis import write_run_analysis  # noqa: F401 - pandas, scipy
    from grammarlab.train.loop import train

    root = Path(tempfile.mkdtemp(prefix="bench_warm_"))
    try:
        r = subset_runs(root, 1).runs[0]
        train(r.config, root / "ours", quiet=True)
        for mode, _ in HF_SIDES.values():
            _hf_train()(r.config, evaluation=mode)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def time_hf(epochs: int, evaluation: str, subset: bool) -> tuple[float, int, list, float]:
    """The same runs, one after another, with the Trainer driver of bench/hf_trainer.py."""
    hf_train = _hf_train()
    root = Path(tempfile.mkdtemp(prefix="bench_hf_"))
    try:
        sw = subset_runs(root, epochs, subset)
        t0, c0 = time.perf_counter(), time.process_time()
        last = []
        for r in sw.runs:
            rec = hf_train(r.config, evaluation=evaluation).records[-1]
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
    ap.add_argument("--subset", action="store_true", help=f"only the runs of {', '.join(SUBSET)}")
    ap.add_argument("--out", default="bench/results/sweep", help="path stem for .json/.md")
    args = ap.parse_args(argv)
    warm_up()
    res: dict = {
        "subset": SUBSET if args.subset else None,
        "n_train": [8, 64],
        "epochs": args.epochs,
        "workers": args.workers,
        "machine_before": machine(),
    }
    for ex in ("parallel", "local"):
        dt, n, cpu = time_ours(args.epochs, ex, args.workers, args.subset)
        res[f"ours_{ex}"] = {"seconds": dt, "runs": n, "runs_per_min": 60 * n / dt,
                             "cpu_seconds": cpu}  # fmt: skip
        print(f"ours ({ex}): {n} runs in {dt:.1f} s", file=sys.stderr)
    for key, (mode, _) in HF_SIDES.items():
        dt, n, last, cpu = time_hf(args.epochs, mode, args.subset)
        res[key] = {"seconds": dt, "runs": n, "runs_per_min": 60 * n / dt, "last": last,
                    "cpu_seconds": cpu}  # fmt: skip
        print(f"{key}: {n} runs in {dt:.1f} s", file=sys.stderr)
    res["machine_after"] = machine()
    best = max(("ours_parallel", "ours_local"), key=lambda k: res[k]["runs_per_min"])
    res["best"] = best
    res["speedup"] = {k: res[best]["runs_per_min"] / res[k]["runs_per_min"] for k in HF_SIDES}
    out = Path(args.out)
    write_json_atomic(out.with_suffix(".json"), res)
    write_text_atomic(out.with_suffix(".md"), render(res))
    print(json.dumps({k: res[k] for k in ("best", "speedup")}, indent=1))
    return 0


def render(res: dict) -> str:
    """sweep.md from the results of :func:`main`."""
    m0, m1, w = res["machine_before"], res["machine_after"], res["workers"]
    rows = [(f"ours, `--executor parallel` ({w} processes, 1 thread each)", "ours_parallel"),
            (f"ours, `--executor local` (1 process, {m0['torch_threads']} threads)",
             "ours_local")]  # fmt: skip
    rows += [(f"{label} ({m0['torch_threads']} threads)", k) for k, (_, label) in HF_SIDES.items()]
    lines = ["# Sweep throughput: our runner vs the Hugging Face Trainer", "",
             f"`.venv/bin/python bench/bench_sweep.py --epochs {res['epochs']}`, one session; raw "
             "numbers in `sweep.json`.", "",
             f"**Runs:** {_which(res)}; n = {' and '.join(map(str, res['n_train']))}; seed 0; "
             "the demo's model and lr; "
             f"{res['epochs']} epochs each, one after another on each side (ours: the sweep "
             "executors). Both Trainer sides are `bench/hf_trainer.py` (the same strings, "
             "initial weights, Eq.-1 loss, AdamW with linear decay, whole-set steps) and "
             "evaluate train, test and random every epoch, either with the Trainer's own "
             "`evaluate()` (loss only) or with grammarlab's `evaluate_set` in a callback (loss, "
             "accuracy, surprisals). Our runner also writes its run folder (surprisals, "
             "checkpoints, generations) and the phases and measures at the end of each run. "
             "Everything is imported and run once before timing, so no side pays the imports; "
             "the parallel executor's worker processes pay their own.", "",
             "| runner | wall s | runs/min | CPU s |", "|---|---:|---:|---:|"]  # fmt: skip
    for label, key in rows:
        r = res[key]
        lines.append(f"| {label} | {r['seconds']:.1f} | {r['runs_per_min']:.2f} | "
                     f"{r['cpu_seconds']:.1f} |")  # fmt: skip
    best = res["best"]
    lines += [""] + [f"- **Speed-up of the best executor ({best.removeprefix('ours_')}) over "
                     f"\"{label}\": {res['speedup'][k]:.2f}x in runs/min** (target >= 1.5x)."
                     for k, (_, label) in HF_SIDES.items()]  # fmt: skip
    lines += ["", "CPU s: ours, the CPU seconds inside the runs (all processes); the Trainer, the "
              "process's CPU seconds over its runs.", "",
              f"Load average (1/5/15 min) before: {_loads(m0)}, after: {_loads(m1)}. "
              f"Machine: {m0['platform']}, {m0['cpu_count']} CPUs, "
              f"Python {m0['python']}, torch {m0['torch']}, transformers "
              f"{m0['transformers']}.", ""]  # fmt: skip
    return "\n".join(lines)


def _which(res: dict) -> str:
    if res["subset"]:
        grammars = ", ".join(res["subset"])
        return f"{res['ours_local']['runs']} runs of the demo sweep, grammars {grammars}"
    return f"the demo sweep's {res['ours_local']['runs']} runs, six grammars"


def _loads(m: dict) -> str:
    return "/".join(f"{x:.1f}" for x in m["loadavg_1_5_15"])


if __name__ == "__main__":
    sys.exit(main())
