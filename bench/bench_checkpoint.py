"""Share of an epoch spent writing files, for SmolLM2-135M on the CPU (full and LoRA fine-tunes).

Run by hand: ``nice .venv/bin/python bench/bench_checkpoint.py`` (writes
bench/results/checkpoint.md and checkpoint.json; about 4 minutes of one CPU core, most of it
loading the model and the full fine-tune's step; ``--from-json`` only rewrites the table).

One epoch of the runner, timed piece by piece with the runner's own functions (one torch thread,
float32): the training step (forward + backward on the training set, AdamW step), the evaluation
of the test and random sets, the per-epoch files (surprisals .npz, a metrics line, status.json)
and a checkpoint (weights as safetensors + AdamW state + RNG states, fsynced; LoRA: adapters
only). The paper's random grammar (64 letters, alphabet 26), n_train = 8 (the paper's smallest
n; its largest, 64, makes the step 8 times longer and the files' share smaller), n_test =
n_random = 10. Each write is timed twice (the first checkpoint creates the folder) and the
smaller time is kept.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch

from grammarlab.io import write_json_atomic, write_text_atomic

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GRAMMAR = ROOT / "grammars" / "random_26.cfg"
POLICY_MINUTES, POLICY_OVERHEAD = 30.0, 0.02  # the proposed checkpoint policy (see the table)


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _time(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def measure(model, cfg, sets, run_dir: Path, label: str) -> dict:
    """Seconds of each part of one epoch of ``model`` and the checkpoint's size."""
    from grammarlab.runs import folder as runs
    from grammarlab.train.evaluate import evaluate_plan, plan
    from grammarlab.train.loop import _optimizer, _record, _write_surprisals, forward_backward

    opt, sched = _optimizer(model, cfg, 0)
    train_plan = plan([sets["train"]], cfg.micro_batch_size, False, 1)
    rest_plan = plan([sets["test"], sets["random"]], cfg.micro_batch_size, False, 1)
    res = {}

    def step():
        model.train()
        opt.zero_grad(set_to_none=True)
        res["train"] = forward_backward(model, train_plan)
        opt.step()
        sched.step()

    def evaluate():
        model.eval()
        res["test"], res["random"] = evaluate_plan(model, rest_plan)

    def files():
        _write_surprisals(run_dir, 1, res)
        runs.append_metrics(run_dir, _record(1, 1, cfg.lr, res, "train", 0.0))
        runs.write_status(run_dir, "running", 1)

    def checkpoint():
        runs.save_checkpoint(run_dir, 1, model, opt, sched)

    out = {"label": label, "step_s": _time(step), "eval_s": _time(evaluate)}
    out["files_s"] = _time(files, 2)
    out["checkpoint_s"] = _time(checkpoint, 2)
    out["checkpoint_bytes"] = _folder_bytes(run_dir / "checkpoint")
    out["trainable"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    epoch = out["step_s"] + out["eval_s"] + out["files_s"]
    out["epoch_without_checkpoint_s"] = epoch
    out["files_share"] = out["files_s"] / epoch
    out["checkpoint_share"] = out["checkpoint_s"] / (epoch + out["checkpoint_s"])
    print(json.dumps(out))
    return out


def policy_share(r: dict, minutes: float = POLICY_MINUTES, overhead: float = POLICY_OVERHEAD):
    """(epochs between checkpoints, share of time in checkpoints) under the proposed policy: a
    checkpoint after the first update at which the time since the last one reaches
    min(``minutes``, write time / ``overhead``)."""
    import math

    wait = min(60 * minutes, r["checkpoint_s"] / overhead)
    every = max(1, math.ceil(wait / r["epoch_without_checkpoint_s"]))
    return every, r["checkpoint_s"] / (every * r["epoch_without_checkpoint_s"] + r["checkpoint_s"])


def write_markdown(meta: dict, results: list[dict]) -> None:
    rows = []
    for r in results:
        every, share = policy_share(r)
        rows.append(
            f"| {r['label']} | {r['trainable'] / 1e6:.2f}M | {r['step_s']:.2f} | "
            f"{r['eval_s']:.2f} | {r['files_s'] * 1e3:.1f} ms | {r['checkpoint_s']:.2f} | "
            f"{r['checkpoint_bytes'] / 1e6:.1f} MB | {r['files_share']:.2%} | "
            f"{r['checkpoint_share']:.1%} | every {every}: {share:.1%} |"
        )
    write_text_atomic(HERE / "results" / "checkpoint.md", "\n".join([
        "# Files per epoch: SmolLM2-135M on the CPU", "",
        f"{meta['date']}, {meta['platform']}, torch {meta['torch']}, 1 thread, float32; "
        f"bench/bench_checkpoint.py (model load {meta['model_load_s']:.0f} s, not counted); "
        "the paper's random grammar (64 letters), n_train = 8, n_test = n_random = 10.", "",
        "| fine-tune | trainable | step s | eval s | per-epoch files | checkpoint s | "
        "checkpoint size | files share | checkpoint share (every epoch) | proposed policy |",
        "|---|---|---|---|---|---|---|---|---|---|", *rows, "",
        "per-epoch files: surprisals .npz + a metrics.jsonl line + status.json; files share: "
        "their time / (step + eval + files). checkpoint share: checkpoint / (the whole epoch "
        "with a checkpoint): what today's default `checkpoint_every = 1` costs. proposed "
        f"policy: a checkpoint once min({POLICY_MINUTES:g} min, write time / "
        f"{POLICY_OVERHEAD:g}) has passed since the last one (computed from the measured "
        "times, not measured), always at the end of a stage and of the run.", "",
    ]))  # fmt: skip


def main() -> None:
    import sys

    if "--from-json" in sys.argv:  # rewrite the table from the saved measurement
        saved = json.loads((HERE / "results" / "checkpoint.json").read_text())
        write_markdown(saved["meta"], saved["results"])
        return
    from grammarlab.grammar.load import load
    from grammarlab.train.config import TrainConfig, resolve
    from grammarlab.train.data import make_datasets
    from grammarlab.train.evaluate import encode_set
    from grammarlab.train.loop import build_model
    from grammarlab.train.models import apply_lora

    torch.set_num_threads(1)
    grammar = load(GRAMMAR)
    cfg = resolve(TrainConfig(grammar=str(GRAMMAR), model="smollm2-135m-instruct", n_train=8,
                              n_test=10, n_random=10, cpu_workers=1), grammar)  # fmt: skip
    t0 = time.perf_counter()
    model, tmap = build_model(cfg, grammar.terminals, "cpu", torch.float32)
    load_s = time.perf_counter() - t0
    data = make_datasets(cfg, grammar)
    sets = {k: encode_set(k, v, tmap, "cpu") for k, v in data.sets.items()}
    results = []
    with tempfile.TemporaryDirectory(dir=ROOT.parent) as tmp:
        results.append(measure(model, cfg, sets, Path(tmp) / "full", "full fine-tune"))
        lora = apply_lora(model, rank=8, alpha=16.0, seed=0)
        results.append(measure(lora, cfg, sets, Path(tmp) / "lora", "LoRA rank 8"))
        shutil.rmtree(tmp, ignore_errors=True)
    meta = {"date": dt.date.today().isoformat(), "platform": platform.platform(),
            "torch": torch.__version__, "threads": 1, "model_load_s": load_s,
            "n_train": 8, "strings": "random_26 (64 letters)"}  # fmt: skip
    write_json_atomic(HERE / "results" / "checkpoint.json", {"meta": meta, "results": results})
    write_markdown(meta, results)


if __name__ == "__main__":
    main()
