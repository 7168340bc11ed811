"""Seconds per epoch: our runner (grammarlab.train.loop.train) against the Hugging Face Trainer.

Run by hand: ``.venv/bin/python bench/bench_train.py [--quick] [--threads 2,1]`` (writes
bench/results/train.md and train.json; about 8 minutes, --quick about 2).

Paired epochs: the two loops run in one process, our runner in a thread and the Trainer
(bench/hf_trainer.py) in the main thread, handing a baton back and forth at every epoch boundary,
so exactly one computes at a time and epoch k of ours runs right before epoch k of the Trainer.
The shared 2-core machine's load swings by 2-3x within a minute; a slow phase then hits both
members of a pair, and the median of the per-pair ratios cancels most of it. Peak memory comes
from separate solo runs, one fresh process per (side, model).

Two grammars of "Rethinking memorization in LLMs" (App. A.2), with its test-set sizes: the random
grammar over 26 letters (every string 64 tokens; n_train = 64, n_test = 10, n_random = 10) and the
hierarchical grammar with p = 0.5 (every string 72 tokens; n_train = 64, n_test = 100,
n_random = 10); float32, CPU. The work of one epoch is listed in METHOD below.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from grammarlab.io import write_json_atomic, write_text_atomic

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GRAMMARS = {  # name -> grammar file; the paper's test sets: 10 strings (random), 100 (hierarchical)
    "random": "grammars/random_26.cfg",
    "hierarchical": "grammars/hierarchical_p050.cfg",
}
N_TRAIN = 64
SIZES = {  # name -> [model] table
    "0.1M": {"preset": "pythia-tiny"},
    "3M": {"preset": "pythia-tiny", "hidden_size": 256, "num_layers": 4,
           "intermediate_size": 1024},
}  # fmt: skip
FINAL = ("epoch", "train_loss", "test_loss", "random_loss")
# timed epochs per model: paired at each thread count; solo runs (memory) at 1 thread
FULL = {"paired": {2: {"0.1M": 25, "3M": 16}, 1: {"0.1M": 25, "3M": 16}}, "solo": 2}
QUICK = {"paired": {2: {"0.1M": 4, "3M": 1}, 1: {"0.1M": 4, "3M": 1}}, "solo": 1}


def _config(grammar: str, size: str, timed: int):
    """The run: ``timed`` epochs plus a warm-up epoch and our last one (no update)."""
    from grammarlab.train.config import TrainConfig

    return TrainConfig(grammar=str(ROOT / GRAMMARS[grammar]), model=SIZES[size], n_train=N_TRAIN,
                       epochs=timed + 2, generate_epochs=(), checkpoint_every=10**6,
                       device="cpu", dtype="float32")  # fmt: skip


# ----------------------------------------------------------------------------- the two sides


def _ours(grammar: str, size: str, timed: int, on_epoch=None) -> dict:
    """grammarlab.train.loop.train with timers around its parts; epoch k = from the end of epoch
    k-1's metrics line (after ``on_epoch``) to the end of epoch k's."""
    import grammarlab.train.loop as T
    from grammarlab.runs.folder import RunDir

    ends, starts, parts = [], [], [{}]

    def timed_fn(name, fn):
        def wrapper(*a, **kw):
            t0 = time.perf_counter()
            out = fn(*a, **kw)
            parts[-1][name] = parts[-1].get(name, 0.0) + time.perf_counter() - t0
            return out

        return wrapper

    append = RunDir.append_metrics

    def stamp(run, record):
        append(run, record)
        ends.append((time.perf_counter(), time.process_time()))
        if on_epoch is not None:
            on_epoch(record["epoch"])
        starts.append((time.perf_counter(), time.process_time()))
        parts.append({})

    extraction = "greedy_matches_from_correct"  # since 10efcb9; greedy_matches (decoding) before
    extraction = extraction if hasattr(T, extraction) else "greedy_matches"
    names = ("forward_backward", "evaluate_plan", extraction, "_write_surprisals")
    saved = [(T, n, getattr(T, n)) for n in names]
    saved += [(RunDir, n, getattr(RunDir, n)) for n in ("write_status", "append_metrics")]
    try:
        T.forward_backward = timed_fn("train_fwd_bwd", T.forward_backward)
        T.evaluate_plan = timed_fn("eval_fwd", T.evaluate_plan)
        setattr(T, extraction, timed_fn("extraction", getattr(T, extraction)))
        T._write_surprisals = timed_fn("files", T._write_surprisals)
        RunDir.write_status = timed_fn("files", RunDir.write_status)
        RunDir.append_metrics = stamp
        # loop.train trains only (the analysis is runs.launch's job, not timed here)
        with tempfile.TemporaryDirectory(prefix="bench_train_") as d:
            T.train(_config(grammar, size, timed), d, quiet=True)
            final = RunDir(Path(d)).read_metrics()[-1]
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)
    keep = range(2, len(ends) - 1)  # epochs 2..T-1: no warm-up, no last epoch (no update)
    return {"wall_s": [ends[k][0] - starts[k - 1][0] for k in keep],
            "cpu_s": [ends[k][1] - starts[k - 1][1] for k in keep],
            "parts_s": [parts[k] for k in keep], "extraction": extraction,
            "final": {k: final[k] for k in FINAL}}  # fmt: skip


def _hf(grammar: str, size: str, timed: int, on_epoch=None) -> dict:
    sys.path.insert(0, str(HERE))
    from hf_trainer import hf_train

    run = hf_train(_config(grammar, size, timed), extraction="teacher_forced", on_epoch=on_epoch)
    recs = run.records[2:-1]  # the same epochs 2..T-1
    return {"wall_s": [r["time_s"] for r in recs], "cpu_s": [r["cpu_s"] for r in recs],
            "parts_s": [{"callback_eval": r["eval_s"]} for r in recs],
            "final": {k: run.records[-1][k] for k in FINAL}}  # fmt: skip


class Baton:
    """Whose turn it is; a side that has finished never blocks the other."""

    def __init__(self) -> None:
        self.turn, self.done, self.cv = "ours", set(), threading.Condition()

    def wait(self, side: str) -> None:
        with self.cv:
            self.cv.wait_for(lambda: self.turn == side or (self.done - {side}))

    def hand_over(self, side: str, finished: bool = False) -> None:
        with self.cv:
            self.turn = "hf" if side == "ours" else "ours"
            if finished:
                self.done.add(side)
            self.cv.notify_all()

    def epoch_hook(self, side: str):
        def hook(epoch: int) -> None:
            self.hand_over(side)
            self.wait(side)

        return hook


def _paired(grammar: str, size: str, timed: int) -> dict:
    """Both loops in lockstep: ours epoch k, then the Trainer's epoch k, then ours k+1, ..."""
    baton, box = Baton(), {}

    def ours_thread() -> None:
        try:
            box["ours"] = _ours(grammar, size, timed, baton.epoch_hook("ours"))
        except BaseException as e:  # noqa: BLE001 - re-raised in the main thread
            box["error"] = e
        finally:
            baton.hand_over("ours", finished=True)

    t = threading.Thread(target=ours_thread)
    t.start()
    baton.wait("hf")
    try:
        box["hf"] = _hf(grammar, size, timed, baton.epoch_hook("hf"))
    finally:
        baton.hand_over("hf", finished=True)
        t.join()
    if "error" in box:
        raise box["error"]
    return {"ours": box["ours"], "hf": box["hf"]}


def _matmul(size: int = 2048, repeats: int = 10) -> dict:
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.matmul(a, b)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - t0)
    return {"gflops": 2 * size**3 / best / 1e9, "seconds": best, "size": size}


def _tokens(grammar: str, size: str) -> dict:
    """Model positions per epoch and the parameter count. ``<set>``: the positions a plain
    forward computes (bos + the string's tokens: the end token is never an input); ``<set>_nodes``:
    the distinct prefixes among them, what our runner computes (prefix_trie, micro-batches as
    the runner forms them)."""
    import torch

    import grammarlab.train.loop as T
    from grammarlab.grammar.load import load
    from grammarlab.train.config import resolve
    from grammarlab.train.data import make_datasets
    from grammarlab.train.evaluate import encode_set, plan
    from grammarlab.train.models import count_parameters

    g = load(ROOT / GRAMMARS[grammar])
    cfg = resolve(_config(grammar, size, 1), g)
    model, tmap = T.build_model(cfg, g.terminals, "cpu", torch.float32)
    sets = make_datasets(cfg, g).sets
    out = {k: sum(len(s) + 1 for s in v) for k, v in sets.items()}
    share, workers = T.share_prefixes(cfg, model), T.cpu_workers(cfg, model)
    for name, group in (("train", ["train"]), ("eval", ["test", "random"])):
        encs = [encode_set(k, sets[k], tmap, "cpu") for k in group]
        p = plan(encs, cfg.micro_batch_size, share, workers)  # as the runner plans them
        out[f"{name}_nodes"] = sum(int(b.mask[:, 1:].sum()) if b.trie is None else b.trie.size
                                   for b in p.batches)  # fmt: skip
    out["n_params"] = count_parameters(model)
    out["cpu_workers"] = workers
    return out


# ----------------------------------------------------------------------------- worker processes


def do_job(job: dict) -> dict:
    import torch

    torch.set_num_threads(job["threads"])
    kind = job["kind"]
    if kind == "matmul":
        out = _matmul()
    elif kind == "tokens":
        out = _tokens(job["grammar"], job["size"])
    elif kind == "paired":
        out = _paired(job["grammar"], job["size"], job["timed"])
    else:  # solo ours / solo hf
        out = (_ours if kind == "ours" else _hf)(job["grammar"], job["size"], job["timed"])
    out["maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["threads"] = torch.get_num_threads()
    return out


def serve() -> None:
    """Worker loop: one JSON job per stdin line, one ``RESULT {json}`` line back per job."""
    for line in sys.stdin:
        sys.stdout.write("RESULT " + json.dumps(do_job(json.loads(line))) + "\n")
        sys.stdout.flush()


class Worker:
    """A worker process (imports torch/transformers once for all its jobs)."""

    def __init__(self, threads: int) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "0"}
        self.threads, self.log = threads, tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve"], cwd=ROOT, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True)  # fmt: skip

    def run(self, **job) -> dict:
        job.update(threads=self.threads)
        load = os.getloadavg()
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line.startswith("RESULT "):
            self.log.seek(0)
            raise RuntimeError(f"worker failed on {job}:\n{self.log.read()[-3000:]}")
        return {**json.loads(line[7:]), "load_before": load, "load_after": os.getloadavg()}

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()
        self.log.close()


def measure(plan: dict, log=print) -> dict:
    """Paired runs per thread count (matmul peak before and after), then the solo runs."""
    out: dict = {"paired": {}, "solo": {}, "tokens": {}}
    for threads, sizes in plan["paired"].items():
        w = Worker(threads)
        try:
            sec = {"matmul": [w.run(kind="matmul")], "cells": {}}
            for grammar, size in ((g, s) for g in GRAMMARS for s in sizes):
                key, timed = f"{grammar}/{size}", sizes[size]
                out["tokens"][f"{threads}/{key}"] = w.run(kind="tokens", grammar=grammar, size=size)
                sec["cells"][key] = res = w.run(kind="paired", grammar=grammar, size=size,
                                                timed=timed)  # fmt: skip
                log(f"threads {threads} {key}: ours {np.median(res['ours']['wall_s']):.3f} "
                    f"s/epoch, hf {np.median(res['hf']['wall_s']):.3f} "
                    f"(load {res['load_before'][0]:.1f})")  # fmt: skip
            sec["matmul"].append(w.run(kind="matmul"))
        finally:
            w.close()
        out["paired"][str(threads)] = sec
    for grammar, size, side in ((g, s, d) for g in GRAMMARS for s in SIZES for d in ("ours", "hf")):
        key = f"{grammar}/{size}/{side}"
        w = Worker(1)  # a fresh process each: its own peak RSS
        try:
            out["solo"][key] = w.run(kind=side, grammar=grammar, size=size, timed=plan["solo"])
        finally:
            w.close()
        log(f"solo {key}: {out['solo'][key]['maxrss_mib']:.0f} MiB")
    return out


# ----------------------------------------------------------------------------- summary and report


def _q(xs, q=50) -> float:
    return float(np.percentile(xs, q))


def summarize(out: dict) -> dict:
    """Per (threads, model): medians per side, per-pair speed ratios (HF s / ours s: > 1 means
    ours is faster), model FLOPs and MFU against the matmul peak; per (model, side) solo peak
    RSS."""
    summary: dict = {"paired": {}, "solo": {}}
    for threads, sec in out["paired"].items():
        peak = max(m["gflops"] for m in sec["matmul"])
        for key, cell in sec["cells"].items():
            tok = out["tokens"][f"{threads}/{key}"]  # as the runner plans at these threads
            n = tok["n_params"]
            grammar, size = key.split("/")
            work = {
                "ours": (tok["train_nodes"], tok["eval_nodes"]),  # (trained, evaluated)
                "hf": (tok["train"], tok["train"] + tok["test"] + tok["random"]),
            }
            row: dict = {
                "threads": int(threads),
                "workers": tok.get("cpu_workers", 1),
                "grammar": grammar,
                "model": size,
                "n_params": n,
                "pairs": len(cell["ours"]["wall_s"]),
                "matmul_peak_gflops": peak,
                "load_before": cell["load_before"],
                "load_after": cell["load_after"],
            }
            for side in ("ours", "hf"):
                c = cell[side]
                gflop = (6 * n * work[side][0] + 2 * n * work[side][1]) / 1e9
                wall = _q(c["wall_s"])
                parts = {k: _q([p.get(k, 0.0) for p in c["parts_s"]]) for k in c["parts_s"][0]}
                parts["rest"] = _q([w - sum(p.values()) for w, p in zip(c["wall_s"], c["parts_s"],
                                                                      strict=True)])  # fmt: skip
                row[side] = {"epoch_s": wall, "epoch_s_iqr": [_q(c["wall_s"], 25),
                             _q(c["wall_s"], 75)], "epoch_cpu_s": _q(c["cpu_s"]),
                             "parts_s": parts, "model_gflop_per_epoch": gflop,
                             "gflops": gflop / wall, "mfu": gflop / wall / peak,
                             "final": c["final"]}  # fmt: skip
            for stat, unit in (("speed", "wall_s"), ("cpu_speed", "cpu_s")):
                r = np.array(cell["hf"][unit]) / np.array(cell["ours"][unit])
                row[stat] = {"median": _q(r), "q25": _q(r, 25), "q75": _q(r, 75)}
            row["flop_ceiling"] = (
                row["hf"]["model_gflop_per_epoch"] / (row["ours"]["model_gflop_per_epoch"])
            )
            row["max_final_loss_diff"] = max(abs(row["ours"]["final"][k] - row["hf"]["final"][k])
                                             for k in FINAL[1:])  # fmt: skip
            summary["paired"][f"{threads}/{key}"] = row
    for key, r in out["solo"].items():
        summary["solo"][key] = {"maxrss_mib": r["maxrss_mib"], "epoch_s": _q(r["wall_s"]),
                                "epoch_cpu_s": _q(r["cpu_s"])}  # fmt: skip
    return summary


def machine() -> dict:
    import torch
    import transformers

    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                if ln.startswith("model name")), platform.processor())  # fmt: skip
    return {"date": dt.datetime.now().isoformat(timespec="seconds"), "cpu": cpu,
            "cores": os.cpu_count(), "torch": torch.__version__,
            "transformers": transformers.__version__, "python": platform.python_version(),
            "platform": platform.platform()}  # fmt: skip


def _loads(v) -> str:
    return "/".join(f"{x:.1f}" for x in v)


def _parts(p: dict) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in p.items())


def render(data: dict) -> str:
    """bench/results/train.md from train.json."""
    m, S = data["machine"], data["summary"]
    lines = ["# Training loop: seconds per epoch, our runner vs the Hugging Face Trainer", "",
             f"`.venv/bin/python bench/bench_train.py{' --quick' if data['quick'] else ''}` "
             f"({m['date']}, {data['seconds']:.0f} s). {m['cpu']}, {m['cores']} cores shared "
             f"with other jobs; torch {m['torch']}, transformers {m['transformers']}. "
             f"n = {data['n_train']} training strings; the paper's test sets: 10 strings for the "
             f"random grammar ({GRAMMARS['random']}, 64 tokens a string), 100 for the "
             f"hierarchical one ({GRAMMARS['hierarchical']}, 72 tokens); 10 random strings; "
             "float32; pythia-tiny (GPT-NeoX) models.", "",
             "Speed = HF seconds / our seconds for the same epoch, run back to back (median over "
             "pairs, quartiles in brackets): > 1 means ours is faster. Target: >= 1.25x. "
             "Ceiling = model FLOPs HF / ours (6N per trained position, 2N per evaluated one; ours "
             "saves the train-set forward and computes each shared prefix once). Our workers: "
             "the threads that split each pass (`cpu_workers`, auto = one per torch thread; "
             "grammarlab/cpu_parallel.py).", "",
             "| threads | our workers | grammar | model (params) | ours s/epoch | HF s/epoch | "
             "speed (wall) | speed (CPU time) | ceiling | ours GFLOP/s | MFU ours | MFU HF | "
             "matmul peak GFLOP/s | load avg before/after |",
             "|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]  # fmt: skip
    for r in S["paired"].values():
        o, h, sp, cs = r["ours"], r["hf"], r["speed"], r["cpu_speed"]
        lines.append(
            f"| {r['threads']} | {r.get('workers', 1)} | {r['grammar']} | {r['model']} "
            f"({r['n_params']:,}) | "
            f"{o['epoch_s']:.3f} | {h['epoch_s']:.3f} | **{sp['median']:.2f}x** "
            f"[{sp['q25']:.2f}-{sp['q75']:.2f}] | {cs['median']:.2f}x "
            f"[{cs['q25']:.2f}-{cs['q75']:.2f}] | {r['flop_ceiling']:.2f}x | {o['gflops']:.1f} | "
            f"{o['mfu']:.0%} | {h['mfu']:.0%} | {r['matmul_peak_gflops']:.1f} | "
            f"{_loads(r['load_before'])} -> {_loads(r['load_after'])} |"
        )
    lines += ["", "Median seconds per epoch by part (ours: timers around the runner's functions; "
              "the rest of the epoch is the AdamW + LambdaLR steps and loop overhead; HF: the "
              "callback's evaluation, the rest is the Trainer's step):", ""]  # fmt: skip
    for r in S["paired"].values():
        for side in ("ours", "hf"):
            p = r[side]["parts_s"]
            lines.append(f"- {r['threads']} thread(s), {r['grammar']}, {r['model']}, {side}: "
                         f"{_parts(p)}")  # fmt: skip
    lines += ["", "Peak memory (ru_maxrss of a fresh process running one side alone, 1 thread; "
              f"{data['plan']['solo']} timed epochs, their median in brackets):", "",
              "| grammar | model | ours MiB | HF MiB |", "|---|---|---:|---:|"]  # fmt: skip
    for grammar in GRAMMARS:
        for size in SIZES:
            o = S["solo"].get(f"{grammar}/{size}/ours")
            h = S["solo"].get(f"{grammar}/{size}/hf")
            if o and h:
                lines.append(f"| {grammar} | {size} | {o['maxrss_mib']:.0f} ({o['epoch_s']:.3f} s)"
                             f" | {h['maxrss_mib']:.0f} ({h['epoch_s']:.3f} s) |")  # fmt: skip
    diff = max(r["max_final_loss_diff"] for r in S["paired"].values())
    lines += ["", f"Both sides end at the same losses (largest difference {diff:.1e} nats/token).",
              "", NOTES, "", METHOD, "", "Machine: " + json.dumps(m), ""]  # fmt: skip
    return "\n".join(lines)


NOTES = """## Where the speed comes from, and what limits it (one-off measurements, 2026-11-24)

- The runner does less work than the Trainer in six places: (1) the training set is not
  evaluated separately: the models have no dropout, so the forward pass of update k+1 is the
  evaluation at epoch k; (2) shared prefixes are computed once (`prefix_trie.py`: each
  micro-batch, in lexicographic order, becomes a prefix trie; projections, MLPs, norms and the
  LM head run once per node, attention gathers every string's path back; used where the plan's
  tries save >= 5% of the positions): here 13% of the training positions and 14% of the test
  positions of the hierarchical grammar, 2-3% of the random grammar's (below the 5%, so not used
  there); (3) the sets not being trained on (test and random) go through the model together
  (`evaluate.plan`); (4) each group of sets is planned once per run (micro-batch order, tries, row
  maps), not every epoch; (5) AdamW runs fused, one kernel for all parameters (0.26 ms a step
  instead of 1.2 ms at 0.1M, 2.0 ms instead of 6.3 ms at 3M); (6) the surprisal files are written
  uncompressed (compression took ~4 ms an epoch).
- (1) and (2) save model FLOPs; the ceiling column is the resulting FLOP ratio (1.30x random,
  1.40x hierarchical). At 1 thread that is all the runner has, and it reaches 1.25-1.35x, near
  the ceilings for the 3M model (matmuls ~70% of the time) and for the random grammar. Before
  prefix sharing the hierarchical grammar's ceiling was 1.21x (100 test strings evaluated every
  epoch are the same work on both sides).
- At 2 threads the runner also uses them differently: **CPU workers** (`cpu_parallel.py`,
  `cpu_workers`, auto = one per torch thread). A 0.1M model's kernels are too small for two
  intra-op threads (the second thread makes it only ~1.25x faster; the 3M model ~1.75x), so each
  pass is split into one micro-batch per worker and each worker (a Python thread with one
  intra-op thread) runs its own; gradients are summed in worker order. The Trainer's CPU path is
  intra-op threads only. Paired against the Trainer at 2 threads (25 epochs, runs alternated):
  hierarchical 0.1M 1.15x / 1.20x with 1 worker, 1.44x / 1.53x with 2; random 0.1M 1.22x /
  1.30x with 1, 1.50x / 1.45x with 2. Our side alone, a prototype of the same split against
  one pass (15 interleaved repeats): 1.29-1.35x faster at 0.1M, 1.09-1.13x at 3M. At 1 thread
  the 0.1M cells have little margin: 1.25-1.29x (random) and 1.25-1.28x (hierarchical) over four
  runs, two of them earlier versions of this file and one 1-thread-only re-run. Without
  workers the 0.1M hierarchical cell measured 1.19-1.21x at 2 threads (the previous version of
  this file): attention is computed per string position on both sides (the trie shares
  everything else), and at 16-dim heads PyTorch's CPU flash kernel gains only ~1.1x from a
  second thread ([100, 4, 73, 16]: 5.4 -> 4.8 ms, while a 1024^3 matmul goes 24 -> 12 ms).
- Measured and not kept: one gather for q, k and v together (no gain); the evaluation overlapped
  with the training step in a second Python thread (0.1M: 10% faster on the hierarchical grammar,
  32% slower on the random one, whose evaluation is small: the workers split every pass evenly
  instead); attention by hand (baddbmm, softmax, bmm) inside the trie: faster alone on contiguous
  inputs at 2 threads (forward + backward 7.1 instead of 9.5 ms for [64, 4, 73, 16]) but within
  the noise in the epoch loop once the gathers are counted; one evaluation call for the 110 test
  + random strings instead of 100 + 10 (33 vs 39 ms in one measurement, 44 vs 41 in another);
  micro-batches of 16-64 strings instead of the whole set (no gain).
- Both sides share `evaluate.token_nll`, which does not feed the last column (its output is never
  used) and builds no KV cache: ~4-5% faster training steps than the plain forward for both.
- Extras the runner does that the Trainer side does not: `files` (npz + fsynced metrics and
  status: ~2-3 ms an epoch, of which fsync ~1 ms) and checkpoints, which this benchmark turns off
  (`checkpoint_every` > epochs: one checkpoint, after the loop). By default (`checkpoint_every`
  unset) the loop writes one whenever the time since the last reaches min(`checkpoint_minutes`,
  last write / `checkpoint_overhead`): every few seconds for these models. A checkpoint
  (`RunDir.save_checkpoint`, a Hugging Face directory) of the demo's 0.1M model took a median of
  55-67 ms (20-250 ms in all; bench/results/demo_checkpoint.md); the torch.save checkpoints of
  these measurements took 0.015 s (0.1M) and 0.12-0.17 s (3M).
- Before commit 10efcb9 the runner decoded greedily (KV cache, 41 steps per set) for the
  extraction test every epoch: 0.17-0.34x the Trainer's speed. Reading it off the
  teacher-forced argmax now costs ~1 ms.
- Two threads: on this shared 2-core machine the second core is often busy, and absolute times
  move by up to ~50% between runs minutes apart (both sides alike: the ratios hold). The matmul
  peak at 2 threads assumes both cores free.
- Memory: the peak-memory runs are at 1 thread (one worker). With W workers the runner holds
  each worker's gradient until it sums them (up to W extra copies of the trainable weights' size:
  0.4 MB each at 0.1M, 13 MB at 3M)."""


METHOD = """## Method

**Pairing.** One process per thread count runs both loops: our runner in a thread, the Trainer
in the main thread. They hand a baton over at every epoch boundary (inside our metrics.jsonl
append and inside the Trainer callback), so one computes at a time and the time spent waiting is
left out of each side's epoch. Epochs 2..T-1 of a run are timed (epoch 1 is the warm-up; our
last epoch has no update). Wall seconds (perf_counter) and process CPU seconds (process_time,
all threads; at 1 thread the CPU time ignores the time the shared machine keeps us off the core).

**Same work.** Same model and weights (grammarlab.train.loop.build_model, model seed 0), same
datasets (grammarlab.train.data), float32, same torch threads, same loss code (Eq. 1: per string the
mean -ln p over its L + 1 predicted tokens incl. the end token, then the mean over strings).

- **ours** = `grammarlab.train.loop.train` with `generate_epochs = []` and `checkpoint_every` >
  epochs (a checkpoint only after the loop; the default policy writes one every few seconds for
  these models, docs/runs.md). Per epoch:
  forward + backward on the 64 training strings (that forward is also the train-set evaluation:
  the models have no dropout), one evaluation pass over test and random together (each of the
  two passes split over the CPU workers: 2 at 2 threads, 1 at 1), the greedy extraction test on
  the three sets (read off the argmax hits since commit 10efcb9: ~1 ms), surprisals .npz +
  metrics line + status file (`files`, fsynced; the Trainer side writes nothing, so they count
  against us), AdamW + LambdaLR steps.
- **HF** = `bench/hf_trainer.py`: `Trainer` with per_device_train_batch_size 64 x
  gradient_accumulation_steps 1 = n, `compute_loss` overridden with the Eq.-1 loss, AdamW
  (`adamw_torch`) with the same lr (3e-3) and weight decay (0), linear decay to 0, no warm-up, no
  clipping (`max_grad_norm = 0`), no logging or saving; a `TrainerCallback` evaluates train, test
  and random after every epoch with `grammarlab.train.evaluate.evaluate_set`, one set per call as a
  callback naturally does (loss, token accuracy, per-token surprisals), and reads the extraction
  test off the argmax hits; results stay in memory.
  The Trainer's shuffling only permutes the one batch.

**FLOPs and MFU.** Model FLOPs per epoch = 6 N T_train + 2 N T_eval, N = all parameters (the
two embedding matrices are 0.2% of the 3M model), T = the positions the model computes. A plain
forward computes L + 1 positions per string (bos and the string's tokens; the end token is
never an input): 65 for the random grammar, 73 for the hierarchical one; train 64 strings, test
10 or 100, random 10. HF: T_train = train, T_eval = train + test + random. Ours: the trie nodes
of the micro-batches as the runner forms them (where the trie is used; else the positions),
T_eval = test + random only (its train-set evaluation is the training forward). Attention-score
FLOPs are not counted (~5% more at 73 positions and 3M; they are the same on both sides). MFU =
model FLOPs / median wall epoch / matmul peak, the peak being the best of 10 float32 2048^3
`torch.matmul` at the same threads, measured before and after the paired runs (the larger)."""


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few epochs of each (about 2 min)")
    ap.add_argument("--threads", default="2,1", help="comma-separated torch thread counts")
    ap.add_argument("--out", default=str(HERE / "results"), help="folder for train.md/.json")
    args = ap.parse_args(argv)
    base = QUICK if args.quick else FULL
    threads = [int(x) for x in args.threads.split(",")]
    plan = {"paired": {t: base["paired"].get(t, base["paired"][2]) for t in threads},
            "solo": base["solo"]}  # fmt: skip
    t0 = time.perf_counter()
    raw = measure(plan)
    data = {"quick": args.quick, "grammars": GRAMMARS, "n_train": N_TRAIN, "machine": machine(),
            "plan": plan, "seconds": time.perf_counter() - t0, "raw": raw}  # fmt: skip
    data["summary"] = summarize(raw)
    out = Path(args.out)
    write_json_atomic(out / "train.json", data)
    write_text_atomic(out / "train.md", render(data))
    print(f"wrote {out / 'train.md'} ({data['seconds']:.0f} s)")


if __name__ == "__main__" and sys.argv[1:] == ["--serve"]:
    serve()
elif __name__ == "__main__":
    main()
