"""Runs per minute: our sweep runner (both executors) against the Hugging Face Trainer on the
same runs, one after another, measured in the same session.

The runs are a representative subset of the demo sweep (grammarlab/data/demo_sweep.toml): the
hierarchical grammar (p = 0.5) and the 7-letter random grammar at n = 8 and 64, with the demo's
model, data, lr and epochs. The Trainer baseline gets the same strings (grammarlab.data), the same
initial weights (grammarlab.models), AdamW with linear decay, the whole training set as one
batch via gradient accumulation (micro-batches of 8), and a callback that evaluates the train,
test and random sets every epoch. Our runner does strictly more per epoch (per-token surprisals,
accuracies, the greedy extraction test, checkpoints, generations, the measures at the end).

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


def hf_run(cfg, out_dir: Path) -> list[dict]:
    """One run with transformers.Trainer; returns the per-epoch eval losses (nats/token)."""
    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from grammarlab.config import resolve
    from grammarlab.data import make_datasets
    from grammarlab.grammar import load
    from grammarlab.models import load_model

    g = load(cfg.grammar)
    cfg = resolve(cfg, g)
    sets = make_datasets(cfg, g).sets
    model, tmap = load_model(cfg.model, g.terminals, seed=cfg.model_seed)

    def ds(strings):
        ids, mask = tmap.encode(list(strings))
        labels = ids.masked_fill(~mask.bool(), -100)
        return [{"input_ids": i, "attention_mask": m.long(), "labels": lab}
                for i, m, lab in zip(ids, mask, labels, strict=True)]  # fmt: skip

    data = {k: ds(v) for k, v in sets.items()}
    micro = min(8, cfg.n_train)
    args = TrainingArguments(
        output_dir=str(out_dir), num_train_epochs=cfg.epochs, learning_rate=cfg.lr,
        per_device_train_batch_size=micro, gradient_accumulation_steps=cfg.n_train // micro,
        per_device_eval_batch_size=max(len(v) for v in data.values()),
        lr_scheduler_type="linear", warmup_steps=0, weight_decay=cfg.weight_decay,
        optim="adamw_torch", save_strategy="no", logging_strategy="no", report_to=[],
        eval_strategy="no", use_cpu=True, dataloader_num_workers=0, seed=cfg.seed,
        disable_tqdm=True,
    )  # fmt: skip
    history: list[dict] = []

    class EvalEveryEpoch(TrainerCallback):
        def on_epoch_end(self, args, state, control, **kw):  # noqa: ANN001, ANN201
            row = {"epoch": int(round(state.epoch))}
            for name in ("train", "test", "random"):
                row[f"{name}_loss"] = trainer.evaluate(data[name], metric_key_prefix=name)[
                    f"{name}_loss"
                ]
            history.append(row)

    trainer = Trainer(model=model, args=args, train_dataset=data["train"],
                      callbacks=[EvalEveryEpoch()])  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        trainer.train()
    return history


def time_hf(epochs: int) -> tuple[float, int, list, float]:
    root = Path(tempfile.mkdtemp(prefix="bench_hf_"))
    try:
        sw = subset_runs(root, epochs)
        t0, c0 = time.perf_counter(), time.process_time()
        last = []
        for r in sw.runs:
            h = hf_run(r.config, root / r.run_id)
            last.append((r.run_id, h[-1]))
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
    ap.add_argument("--out", default="bench/results/sweep")
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
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps({k: res[k] for k in ("ours_parallel", "ours_local", "speedup")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
