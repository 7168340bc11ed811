"""Share of an epoch spent writing files, for SmolLM2-135M on the CPU (full and LoRA fine-tunes),
with a checkpoint every epoch (the old default) and under the default checkpoint policy.

Run by hand: ``nice .venv/bin/python bench/bench_checkpoint.py`` (writes
bench/results/checkpoint.md and checkpoint.json; about 5 minutes of one CPU core, most of it
loading the model twice and the measured LoRA run; ``--no-loop`` skips that run,
``--from-json`` only rewrites the table).

Part 1, one epoch timed piece by piece with the loop's own functions (one torch thread,
float32): the training step (forward + backward on the training set, AdamW step), the evaluation
of the test and random sets, the per-epoch files (surprisals .npz, a metrics line, status.json)
and a checkpoint (RunDir.save_checkpoint: a Hugging Face directory with the weights as
safetensors, the tokenizer, the AdamW state and the random states, fsynced; LoRA: the adapter
only). Each write is timed twice (the first checkpoint creates the folder) and the smaller time
is kept. The share under the default policy is then *computed*: loop.checkpoint_due, the loop's
own rule, is replayed over a run of the config's length with these measured times.

Part 2, *measured*: the real loop (loop.train) runs the LoRA fine-tune for ``LOOP_EPOCHS``
updates under the default policy, and its metrics.jsonl gives each epoch's time_s and
checkpoint_s.

The paper's random grammar (64 letters, alphabet 26), n_train = 8 (the paper's smallest n; its
largest, 64, makes the step 8 times longer and the files' share smaller), n_test = n_random =
10.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from grammarlab.io import write_json_atomic, write_text_atomic

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GRAMMAR = ROOT / "grammars" / "random_26.cfg"
LOOP_EPOCHS = 8  # updates of the measured LoRA run (9 evaluated epochs, ~20 s each)


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _time(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def measure(model, tmap, cfg, sets, run_dir: Path, label: str) -> dict:
    """Seconds of each part of one epoch of ``model`` and the checkpoint's size."""
    from grammarlab.runs.folder import RunDir, Status
    from grammarlab.train.evaluate import evaluate_plan, plan
    from grammarlab.train.loop import _add_greedy_matches, _record, _write_surprisals
    from grammarlab.train.step import forward_backward, make_optimizer

    run = RunDir(run_dir)
    run.prepare()
    opt, sched = make_optimizer(model, cfg, 0)
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
        _write_surprisals(run, 1, res)
        run.append_metrics(_record(1, 1, cfg.lr, res, "train", 0.0, 0.0))
        run.write_status(Status("running", 1))

    def checkpoint():
        run.save_checkpoint(1, model, opt, sched, tmap)

    out = {"label": label, "step_s": _time(step), "eval_s": _time(evaluate)}
    _add_greedy_matches(res, sets, cfg.extraction_prefix)  # what the loop adds before the files
    out["files_s"] = _time(files, 2)
    out["checkpoint_s"] = _time(checkpoint, 2)
    out["checkpoint_bytes"] = _folder_bytes(run.checkpoint_path)
    out["trainable"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    epoch = out["step_s"] + out["eval_s"] + out["files_s"]
    out["epoch_without_checkpoint_s"] = epoch
    out["files_share"] = out["files_s"] / epoch
    out["checkpoint_share"] = out["checkpoint_s"] / (epoch + out["checkpoint_s"])
    out.update(policy_share(cfg, epoch, out["checkpoint_s"]))
    print(json.dumps(out), flush=True)
    return out


def policy_share(cfg, epoch_s: float, write_s: float) -> dict:
    """Computed, not measured: the checkpoints of a ``cfg.total_epochs``-epoch run under the
    default policy (loop.checkpoint_due replayed with epochs of ``epoch_s`` and writes of
    ``write_s`` seconds) and the share of the run's time they take."""
    from grammarlab.train.loop import checkpoint_due

    cfg = dataclasses.replace(cfg, checkpoint_every=None)
    t, last_save, last_write, n = 0.0, 0.0, 0.0, 0
    for k in range(cfg.total_epochs):  # the update after epoch k, then maybe a checkpoint
        t += epoch_s
        if checkpoint_due(cfg, k + 1, t - last_save, last_write):
            t, last_write, n = t + write_s, write_s, n + 1
            last_save = t
    t += epoch_s  # the last epoch is evaluated, not trained
    return {"policy_epochs": cfg.total_epochs, "policy_checkpoints": n,
            "policy_share": n * write_s / t}  # fmt: skip


def measure_loop(cfg, tmp: Path) -> dict:
    """Measured: the real loop, LoRA rank 8, ``LOOP_EPOCHS`` updates, default policy."""
    from grammarlab.runs.folder import RunDir
    from grammarlab.train.loop import train

    cfg = dataclasses.replace(cfg, epochs=LOOP_EPOCHS, checkpoint_every=None, n_generate=0,
                              lora=dataclasses.replace(cfg.lora, rank=8, alpha=16.0))  # fmt: skip
    run = RunDir(tmp / "loop")
    t0 = time.perf_counter()
    train(cfg, run, quiet=True)
    wall = time.perf_counter() - t0
    rows = run.read_metrics()
    epochs_s = sum(r["time_s"] for r in rows)
    ckpt = [r["checkpoint_s"] for r in rows]
    out = {"label": "LoRA rank 8, loop.train", "updates": LOOP_EPOCHS, "wall_s": wall,
           "time_s": [r["time_s"] for r in rows], "checkpoint_s": ckpt,
           "checkpoints": sum(c > 0 for c in ckpt),
           "checkpoint_share": sum(ckpt) / (epochs_s + sum(ckpt))}  # fmt: skip
    print(json.dumps(out), flush=True)
    return out


def write_markdown(meta: dict, results: list[dict], loop: dict | None) -> None:
    from grammarlab.train.config import TrainConfig

    rows = []
    for r in results:
        rows.append(
            f"| {r['label']} | {r['trainable'] / 1e6:.2f}M | {r['step_s']:.2f} | "
            f"{r['eval_s']:.2f} | {r['files_s'] * 1e3:.1f} ms | {r['checkpoint_s']:.2f} | "
            f"{r['checkpoint_bytes'] / 1e6:.1f} MB | {r['files_share']:.2%} | "
            f"{r['checkpoint_share']:.1%} | {r['policy_checkpoints']} in "
            f"{r['policy_epochs']} epochs: {r['policy_share']:.1%} |"
        )
    lines = [
        "# Files per epoch: SmolLM2-135M on the CPU", "",
        f"{meta['date']}, {meta['platform']}, torch {meta['torch']}, 1 thread, float32, load "
        f"average {meta['load_average']} (1, 5, 15 min; a shared machine) at the start; "
        f"bench/bench_checkpoint.py (model load {meta['model_load_s']:.0f} s, not counted); "
        "the paper's random grammar (64 letters), n_train = 8, n_test = n_random = 10.", "",
        "| fine-tune | trainable | step s | eval s | per-epoch files | checkpoint s | "
        "checkpoint size | files share | before: checkpoint every epoch | after: default "
        "policy (computed) |",
        "|---|---|---|---|---|---|---|---|---|---|", *rows, "",
        "Measured, one epoch piece by piece. per-epoch files: surprisals .npz + a "
        "metrics.jsonl line + status.json; files share: their time / (step + eval + files). "
        "before: checkpoint / (the whole epoch with a checkpoint), the share of a run with "
        "`checkpoint_every = 1` (the old default). after: computed, not measured: the default "
        "policy (`checkpoint_every` unset, `checkpoint_minutes = 30`, `checkpoint_overhead = "
        "0.02`; loop.checkpoint_due) replayed over a run of the default 100 epochs with the "
        "measured times: the checkpoints it writes (always one after the first update, whose "
        "cost sets the pace, and one at the end) and their share of the run's time.", "",
    ]  # fmt: skip
    if loop is not None:
        ck = ", ".join(f"{c * 1e3:.0f}" for c in loop["checkpoint_s"])
        ep = ", ".join(f"{t:.1f}" for t in loop["time_s"])
        after = ", ".join(str(k) for k, c in enumerate(loop["checkpoint_s"]) if c > 0)
        # the waits the policy set (the last checkpoint, the end of the run, sets none)
        overhead = TrainConfig.__dataclass_fields__["checkpoint_overhead"].default
        waits = [c / overhead for c in loop["checkpoint_s"][:-1] if c > 0]
        lines += [
            f"## Measured: the loop, {loop['label'].split(',')[0]}, default policy", "",
            f"loop.train for {loop['updates']} updates ({len(loop['time_s'])} evaluated "
            f"epochs, n_generate = 0), {loop['wall_s']:.0f} s wall with the model load: "
            f"checkpoints after updates {after} ({loop['checkpoints']} of {loop['updates']}), "
            f"{loop['checkpoint_share']:.1%} of the epochs' time (sum of checkpoint_s / (sum of "
            "time_s + sum of checkpoint_s), from metrics.jsonl; the per-epoch files are not in "
            "time_s: ~0.1% more, table above). After each write the policy waits "
            f"checkpoint_s / {overhead:g} = {min(waits):.0f}-{max(waits):.0f} s; with epochs of "
            f"{min(loop['time_s']):.0f}-{max(loop['time_s']):.0f} s on the shared machine some "
            "updates came before that wait was over, where the computed replay above (steady "
            "epochs, one write time) checkpoints after every update.", "",
            f"- time_s per epoch: {ep}",
            f"- checkpoint_s per epoch, ms (0: none): {ck}", "",
        ]  # fmt: skip
    summary = "; ".join(f"{r['label']} {r['checkpoint_share']:.1%} -> {r['policy_share']:.1%} "
                        "(computed)" for r in results)  # fmt: skip
    if loop is not None:
        summary += f", {loop['checkpoint_share']:.1%} (measured, {loop['updates']} updates)"
    lines[2:2] = [f"Share of the time spent writing checkpoints, before -> after: {summary}.", ""]
    write_text_atomic(HERE / "results" / "checkpoint.md", "\n".join(lines))


def main() -> None:
    if "--from-json" in sys.argv:  # rewrite the table from the saved measurement
        saved = json.loads((HERE / "results" / "checkpoint.json").read_text())
        write_markdown(saved["meta"], saved["results"], saved.get("loop"))
        return
    from grammarlab.grammar.load import load
    from grammarlab.train.config import TrainConfig, resolve
    from grammarlab.train.data import make_datasets
    from grammarlab.train.evaluate import encode_set
    from grammarlab.train.loop import build_model
    from grammarlab.train.models import apply_lora

    torch.set_num_threads(1)
    load_average = " ".join(f"{x:.2f}" for x in os.getloadavg())
    grammar = load(GRAMMAR)
    cfg = resolve(TrainConfig(grammar=str(GRAMMAR), model="smollm2-135m-instruct", n_train=8,
                              n_test=10, n_random=10, cpu_workers=1), grammar)  # fmt: skip
    t0 = time.perf_counter()
    model, tmap = build_model(cfg, grammar.terminals, "cpu", torch.float32)
    load_s = time.perf_counter() - t0
    data = make_datasets(cfg, grammar)
    sets = {k: encode_set(k, v, tmap, "cpu") for k, v in data.sets.items()}
    results, loop = [], None
    with tempfile.TemporaryDirectory(dir=ROOT.parent) as name:
        tmp = Path(name)
        results.append(measure(model, tmap, cfg, sets, tmp / "full", "full fine-tune"))
        lora = apply_lora(model, rank=8, alpha=16.0, seed=0)
        results.append(measure(lora, tmap, cfg, sets, tmp / "lora", "LoRA rank 8"))
        del model, lora
        if "--no-loop" not in sys.argv:
            loop = measure_loop(cfg, tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    meta = {"date": dt.date.today().isoformat(), "platform": platform.platform(),
            "torch": torch.__version__, "threads": 1, "model_load_s": load_s,
            "load_average": load_average, "n_train": 8,
            "strings": "random_26 (64 letters)"}  # fmt: skip
    write_json_atomic(HERE / "results" / "checkpoint.json",
                      {"meta": meta, "results": results, "loop": loop})  # fmt: skip
    write_markdown(meta, results, loop)


if __name__ == "__main__":
    main()
