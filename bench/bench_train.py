"""Seconds per epoch: our runner (grammarlab.train.train) against the Hugging Face Trainer.

Run by hand: ``.venv/bin/python bench/bench_train.py [--quick]`` (writes bench/results/train.md
and train.json). Each measurement is a fresh subprocess (``--worker``), so its peak RSS
(``ru_maxrss``) is its own; the variants of one (model, threads) cell are run in rotating order
within each repeat, so slow phases of the shared machine hit all of them alike. Reported: the
median over repeats of each run's median epoch.

The work of one epoch (hierarchical grammar p = 0.5: every string 72 tokens, 74 positions with
bos/eos; n_train = 64, n_test = 100, n_random = 10; float32, CPU):

* ``ours``: grammarlab.train.train as shipped, with generate_epochs = [] and checkpoints only at
  the end (checkpoint_every > epochs). Per epoch: forward + backward on the 64 training strings
  (which is also the train-set evaluation: no dropout), evaluation forwards on test and random,
  the greedy extraction test on all three sets (read off the teacher-forced argmax since 10efcb9;
  before that, KV-cache decoding), surprisals npz + metrics line + status file, AdamW step,
  LambdaLR step.
* ``hf``: bench/hf_trainer.py: the Trainer (whole set as one batch, Eq.-1 loss, AdamW, linear
  decay, no clipping) + a callback evaluating train, test and random (loss, accuracy, per-token
  surprisals, the extraction test read off the argmax hits; kept in memory, no files) after every
  epoch.

An interval between two consecutive epochs' records is one epoch; the first (warm-up) and, for
ours, the last (no update, an extra forward instead) are dropped.
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
import time
from pathlib import Path

import numpy as np

from grammarlab.io import write_json_atomic, write_text_atomic

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GRAMMAR = "grammars/hierarchical_p050.cfg"
N_TRAIN = 64
SIZES = {  # name -> [model] table
    "0.1M": {"preset": "pythia-tiny"},
    "3M": {"preset": "pythia-tiny", "hidden_size": 256, "num_layers": 4,
           "intermediate_size": 1024},
}  # fmt: skip
VARIANTS = ("ours", "hf")
FINAL = ("epoch", "train_loss", "test_loss", "random_loss")


# ----------------------------------------------------------------------------- workers


def _config(size: str, epochs: int):
    from grammarlab.config import TrainConfig

    return TrainConfig(grammar=str(ROOT / GRAMMAR), model=SIZES[size], n_train=N_TRAIN,
                       epochs=epochs, generate_epochs=(), checkpoint_every=10**6,
                       device="cpu", dtype="float32")  # fmt: skip


def _tokens(size: str) -> dict[str, int]:
    """Forward positions per set (ids incl. bos and eos) and the parameter count."""
    import grammarlab.train as T
    from grammarlab.config import resolve
    from grammarlab.data import make_datasets
    from grammarlab.grammar import load
    from grammarlab.models import count_parameters

    g = load(ROOT / GRAMMAR)
    cfg = resolve(_config(size, 1), g)
    data = make_datasets(cfg, g)
    out = {k: sum(len(s) + 2 for s in v) for k, v in data.sets.items()}
    model, _ = T.build_model(cfg, g.terminals, "cpu", __import__("torch").float32)
    out["n_params"] = count_parameters(model)
    return out


def _work_ours(size: str, epochs: int) -> dict:
    import grammarlab.train as T
    from grammarlab import runs

    stamps: list[float] = []
    cpu_stamps: list[float] = []
    parts: list[dict[str, float]] = [{}]  # per interval: seconds in each timed function

    def timed(name, fn):
        def wrapper(*a, **kw):
            t0 = time.perf_counter()
            out = fn(*a, **kw)
            parts[-1][name] = parts[-1].get(name, 0.0) + time.perf_counter() - t0
            return out

        return wrapper

    append = runs.append_metrics

    def stamp(run_dir, record):
        append(run_dir, record)
        stamps.append(time.perf_counter())
        cpu_stamps.append(time.process_time())
        parts.append({})

    # the extraction test: KV-cache decoding before 10efcb9, read off the argmax hits since
    extraction = "greedy_matches" if hasattr(T, "greedy_matches") else "greedy_matches_from_correct"
    names = ("forward_backward", "evaluate_set", extraction, "_write_surprisals", "_write_analysis")
    saved = [(T, n, getattr(T, n)) for n in names]
    saved += [(runs, n, getattr(runs, n)) for n in ("write_status", "append_metrics")]
    try:
        T.forward_backward = timed("train_fwd_bwd", T.forward_backward)
        T.evaluate_set = timed("eval_fwd", T.evaluate_set)
        setattr(T, extraction, timed("extraction", getattr(T, extraction)))
        T._write_surprisals = timed("files", T._write_surprisals)
        runs.write_status = timed("files", runs.write_status)
        runs.append_metrics = stamp
        T._write_analysis = lambda run_dir: None  # phases/measures: after the loop, untimed
        with tempfile.TemporaryDirectory(prefix="bench_train_") as d:
            state = T.train(_config(size, epochs), d, quiet=True)
            final = runs.read_metrics(Path(d))[-1]
    finally:
        for mod, name, fn in saved:
            setattr(mod, name, fn)
    epoch_s = np.diff(stamps)  # interval i = epoch i + 1 (with the update after epoch i)
    keep = slice(1, len(epoch_s) - 1)  # drop the warm-up epoch and the last (no update)
    comp = {k: float(np.median([p.get(k, 0.0) for p in parts[1:-1][keep]]))
            for k in ("train_fwd_bwd", "eval_fwd", "extraction", "files")}  # fmt: skip
    cpu_s = np.diff(cpu_stamps)[keep].tolist()
    return {"state": state, "runner_extraction": extraction, "epoch_s": epoch_s[keep].tolist(),
            "epoch_cpu_s": cpu_s,
            "components_s": comp, "final": {k: final[k] for k in FINAL}}  # fmt: skip


def _work_hf(size: str, epochs: int) -> dict:
    sys.path.insert(0, str(HERE))
    from hf_trainer import hf_train

    run = hf_train(_config(size, epochs), extraction="teacher_forced")
    recs = run.records[2:-1]  # drop epoch 0 (no step), the warm-up epoch and the last
    return {"epoch_s": [r["time_s"] for r in recs], "epoch_cpu_s": [r["cpu_s"] for r in recs],
            "components_s": {"callback_eval": float(np.median([r["eval_s"] for r in recs]))},
            "final": {k: run.records[-1][k] for k in FINAL}}  # fmt: skip


def _work_matmul(size: int = 2048, repeats: int = 10) -> dict:
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.matmul(a, b)
    best = min(_timeit(lambda: torch.matmul(a, b)) for _ in range(repeats))
    return {"gflops": 2 * size**3 / best / 1e9, "seconds": best, "size": size}


def _timeit(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def do_job(job: dict) -> dict:
    """One measurement in this process; ``maxrss_mib`` is this process's peak so far."""
    import torch

    torch.set_num_threads(job["threads"])
    kind = job["kind"]
    if kind == "matmul":
        out = _work_matmul()
    elif kind == "tokens":
        out = _tokens(job["size"])
    elif kind == "ours":
        out = _work_ours(job["size"], job["epochs"])
    else:
        out = _work_hf(job["size"], job["epochs"])
    out["maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["threads"] = torch.get_num_threads()
    return out


def serve() -> None:
    """Worker loop: one JSON job per stdin line, one ``RESULT {json}`` line back per job."""
    for line in sys.stdin:
        out = do_job(json.loads(line))
        sys.stdout.write("RESULT " + json.dumps(out) + "\n")
        sys.stdout.flush()


class Worker:
    """A long-lived worker process (imports once; alternating two of them interleaves the
    sides without paying the ~5-15 s import per measurement)."""

    def __init__(self, threads: int) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "0"}
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve"], cwd=ROOT, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True)  # fmt: skip

    def run(self, job: dict) -> dict:
        job = {**job, "load_before": os.getloadavg()[0]}
        t0 = time.perf_counter()
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line.startswith("RESULT "):
            self.log.seek(0)
            raise RuntimeError(f"worker failed on {job}:\n{self.log.read()[-3000:]}")
        out = json.loads(line[7:])
        out.update(wall_s=time.perf_counter() - t0, load_before=job["load_before"], job=job)
        return out

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()
        self.log.close()


# ----------------------------------------------------------------------------- the plan

# threads -> model -> (repeats, timed epochs), the same for both sides.
FULL = {2: {"0.1M": (5, 8), "3M": (3, 4)}, 1: {"0.1M": (3, 6), "3M": (2, 3)}}
QUICK = {2: {"0.1M": (1, 2), "3M": (1, 1)}, 1: {"0.1M": (1, 2), "3M": (1, 1)}}


def measure(threads: int, plan: dict[str, tuple[int, int]], log=print) -> dict:
    """Run ``plan`` (model -> (repeats, timed epochs)) with ``threads`` torch threads, the sides
    alternating (ABAB..., the first side swapped every repeat); per model/variant the runs."""
    workers = {v: Worker(threads) for v in (*VARIANTS, "misc")}
    out: dict = {"runs": {}, "tokens": {}, "load_before": os.getloadavg()}
    try:
        matmul = [workers["misc"].run({"kind": "matmul", "threads": threads})]
        for size, (repeats, epochs) in plan.items():
            out["tokens"][size] = workers["misc"].run({"kind": "tokens", "size": size,
                                                       "threads": threads})  # fmt: skip
            for r in range(repeats):
                for v in VARIANTS[r % 2 :] + VARIANTS[: r % 2]:
                    job = {"kind": v, "size": size, "epochs": epochs + 2, "threads": threads}
                    res = workers[v].run(job)
                    out["runs"].setdefault(f"{size}/{v}", []).append(res)
                    log(f"threads {threads} {size} {v:4s} rep {r}: median "
                        f"{np.median(res['epoch_s']):.3f} s/epoch {res['components_s']} "
                        f"(load {res['load_before']:.1f}, {res['wall_s']:.0f} s)")  # fmt: skip
        matmul.append(workers["misc"].run({"kind": "matmul", "threads": threads}))
        out["matmul"] = max(matmul, key=lambda m: m["gflops"])  # the peak: least disturbed
        out["matmul"]["all_gflops"] = [m["gflops"] for m in matmul]
    finally:
        for w in workers.values():
            w.close()
    out["load_after"] = os.getloadavg()
    return out


# ----------------------------------------------------------------------------- summary


def summarize(section: dict) -> dict:
    """Per (model, variant): median over repeats of each run's median epoch, the spread, the
    components, peak RSS; speed ratios against hf; model FLOPs and MFU."""
    peak = section["matmul"]["gflops"]
    rows = {}
    for key, runs in section["runs"].items():
        size, variant = key.split("/")
        meds = [float(np.median(r["epoch_s"])) for r in runs]
        cpu = float(np.median([np.median(r["epoch_cpu_s"]) for r in runs]))
        comps = {k: float(np.median([r["components_s"][k] for r in runs]))
                 for k in runs[0]["components_s"]}  # fmt: skip
        tok = section["tokens"][size]
        n = tok["n_params"]
        evaluated = tok["test"] + tok["random"] + (tok["train"] if variant.startswith("hf") else 0)
        gflop = (6 * n * tok["train"] + 2 * n * evaluated) / 1e9
        med = float(np.median(meds))
        rows[key] = {"model": size, "variant": variant, "n_params": n, "repeats": len(runs),
                     "epochs_timed": len(runs[0]["epoch_s"]), "epoch_s": med, "epoch_cpu_s": cpu,
                     "epoch_s_min": min(meds), "epoch_s_max": max(meds), "components_s": comps,
                     "maxrss_mib": max(r["maxrss_mib"] for r in runs),
                     "model_gflop_per_epoch": gflop, "gflops": gflop / med,
                     "mfu": gflop / med / peak, "final": runs[-1]["final"],
                     "load": [r["load_before"] for r in runs]}  # fmt: skip
    for row in rows.values():
        hf = rows.get(f"{row['model']}/hf")
        row["speed_vs_hf"] = hf["epoch_s"] / row["epoch_s"] if hf else None
        row["cpu_speed_vs_hf"] = hf["epoch_cpu_s"] / row["epoch_cpu_s"] if hf else None
    return rows


def machine() -> dict:
    import torch
    import transformers

    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                if ln.startswith("model name")), platform.processor())  # fmt: skip
    return {"date": dt.datetime.now().isoformat(timespec="seconds"), "cpu": cpu,
            "cores": os.cpu_count(), "torch": torch.__version__,
            "transformers": transformers.__version__, "python": platform.python_version(),
            "platform": platform.platform()}  # fmt: skip


LABELS = {"ours": "ours (grammarlab.train.train)", "hf": "HF Trainer + eval callback"}


def _fmt_comp(c: dict) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in c.items())


def render(data: dict) -> str:
    """bench/results/train.md from train.json."""
    m = data["machine"]
    lines = ["# Training loop: seconds per epoch, our runner vs the Hugging Face Trainer", "",
             f"`.venv/bin/python bench/bench_train.py{' --quick' if data['quick'] else ''}`"
             f" ({m['date']}). Hierarchical grammar p = 0.5 ({data['grammar']}, every string "
             f"72 tokens), n_train = {data['n_train']}, n_test = 100, n_random = 10, float32 "
             "on the CPU, pythia-tiny (GPT-NeoX) models.", ""]  # fmt: skip
    for t, sec in sorted(data["threads"].items(), reverse=True):
        rows = sec["summary"]
        peak = sec["matmul"]["gflops"]
        lines += [f"## torch threads = {t}", "",
                  f"Load average (1, 5, 15 min) before: {_loads(sec['load_before'])}, after: "
                  f"{_loads(sec['load_after'])}. Matmul peak (float32 2048^3, best of 10 at the start "
                  f"and at the end: {_loads(sec['matmul']['all_gflops'])}): {peak:.1f} GFLOP/s.",
                  "",
                  "| model | variant | s/epoch (median) | range over repeats | repeats x epochs "
                  "| speed vs HF | CPU s/epoch | CPU-time speed vs HF | model GFLOP/epoch "
                  "| GFLOP/s | MFU | peak RSS MiB |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
        for r in rows.values():
            ratio = f"{r['speed_vs_hf']:.2f}x" if r["speed_vs_hf"] else ""
            lines.append(
                f"| {r['model']} ({r['n_params']:,}) | {LABELS[r['variant']]} | "
                f"{r['epoch_s']:.3f} | {r['epoch_s_min']:.3f}-{r['epoch_s_max']:.3f} | "
                f"{r['repeats']} x {r['epochs_timed']} | {ratio} | {r['epoch_cpu_s']:.3f} | "
                f"{r['cpu_speed_vs_hf']:.2f}x | "
                f"{r['model_gflop_per_epoch']:.1f} | {r['gflops']:.1f} | {r['mfu']:.0%} | "
                f"{r['maxrss_mib']:.0f} |"
            )
        lines += ["", "Median seconds per epoch by part (ours: timers around the runner's "
                  "functions; other = AdamW + LambdaLR steps and loop overhead; HF: "
                  "callback = evaluation, the rest is the Trainer's step):", ""]  # fmt: skip
        for r in rows.values():
            comp = dict(r["components_s"])
            comp["other"] = r["epoch_s"] - sum(comp.values())
            lines.append(f"- {r['model']} {r['variant']}: {_fmt_comp(comp)}")
        lines.append("")
        for size in sec["tokens"]:
            ours, hf = rows.get(f"{size}/ours"), rows.get(f"{size}/hf")
            if ours and hf:
                ceiling = hf["model_gflop_per_epoch"] / ours["model_gflop_per_epoch"]
                lines.append(
                    f"- {size}: ours is {ours['speed_vs_hf']:.2f}x the Trainer's speed (target "
                    f">= 1.25x: {'met' if ours['speed_vs_hf'] >= 1.25 else 'missed'}); the "
                    f"saved forward bounds it at {ceiling:.2f}x (model FLOPs HF / ours)."
                )
        lines.append("")
    lines += [METHOD, "", "Machine: " + json.dumps(m), ""]
    return "\n".join(lines)


def _loads(v) -> str:
    return ", ".join(f"{x:.2f}" for x in v)


METHOD = """## Method

Each (model, variant) runs in a long-lived worker process per side (one for our runner, one for
the Trainer; each imports once), and the parent alternates the variants in rotating order every
repeat, so a slow phase of the shared machine hits every variant. One epoch = the interval
between two consecutive epochs' records (ours: metrics.jsonl appends; HF: the callback's ends);
the warm-up epoch and our last epoch (no update) are dropped. Per run the median epoch; reported
the median over repeats.

What each side computes per epoch (same model and weights, same data, float32, same threads):

- **ours**: `grammarlab.train.train` with `generate_epochs = []`, `checkpoint_every` > epochs
  (checkpoints only after the loop; the default writes one every epoch). Forward + backward of
  the 64 training strings (Eq. 1 loss; this forward is also the train-set evaluation, the models
  have no dropout), evaluation forwards of test (100) and random (10), the greedy extraction test
  on all three sets (read off the teacher-forced argmax hits since commit 10efcb9; no switch
  disables it), surprisals .npz + metrics line + status file (fsynced), AdamW + LambdaLR steps.
  Files are work the Trainer side does not do: they count against us ("files" below).
- **HF**: `bench/hf_trainer.py`: `Trainer` with per_device_train_batch_size 64 x
  gradient_accumulation_steps 1 = n, the same Eq.-1 loss code (`compute_loss` override), AdamW
  (adamw_torch) with the same lr (3e-3) and weight decay (0), linear decay to 0, no warm-up, no
  clipping (`max_grad_norm = 0`), no logging/saving; a `TrainerCallback` evaluates train, test and
  random after every epoch with `grammarlab.evaluate.evaluate_set` (loss Eq. 1, token accuracy,
  per-token surprisals) and reads the extraction test off the argmax hits (as our runner does);
  results stay in memory (no files). Its shuffling only permutes the one batch.

Both sides reach the same losses (train.json `final`: equal to ~1e-8 nats/token).
Model FLOPs per epoch: 6 N T_train + 2 N T_eval, N = all parameters (the two embedding
matrices are 0.2% of the 3M model), T = forward positions (74 per string incl. bos/eos: train
4,736, test 7,400, random 740); T_eval = test + random for ours (its train evaluation is the
training forward) and train + test + random for HF. Attention score FLOPs and the extraction
test are not counted. MFU = model FLOPs / epoch seconds / matmul peak.
Peak RSS = ru_maxrss of the side's worker after the run (the 3M rows include the earlier 0.1M
runs of the same worker, which are smaller)."""


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one short repeat of the cheap runs")
    ap.add_argument("--threads", default="2", help="comma-separated torch thread counts")
    ap.add_argument("--out", default=str(HERE / "results"), help="folder of train.md/.json")
    args = ap.parse_args(argv)
    plan = QUICK if args.quick else FULL
    out = Path(args.out)
    path = out / "train.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    data = data if data.get("quick") == args.quick else {}
    data.update(quick=args.quick, grammar=GRAMMAR, n_train=N_TRAIN, machine=machine())
    t0 = time.perf_counter()
    for t in (int(x) for x in args.threads.split(",")):
        section = measure(t, plan[t] if t in plan else plan[2])
        section["summary"] = summarize(section)
        section["seconds"] = time.perf_counter() - t0
        data.setdefault("threads", {})[str(t)] = section
    write_json_atomic(path, data)
    write_text_atomic(out / "train.md", render(data))
    print(f"wrote {out / 'train.md'} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__" and sys.argv[1:] == ["--serve"]:
    serve()
elif __name__ == "__main__":
    main()
