"""Seconds per epoch and peak GPU memory of grammarlab's own training loop on a CUDA GPU, next to
the memory that ``grammarlab plan`` estimates for the same model, batch and string length.

Commands (from the repository root; the package need not be installed)::

    PYTHONPATH=. python bench/bench_gpu.py --out DIR           # a CUDA GPU: about 1-3 minutes
    PYTHONPATH=. python bench/bench_gpu.py --device cpu --quick # a check of this script on a CPU
    PYTHONPATH=. python bench/bench_gpu.py --from-json DIR/gpu.json   # only rewrite the table

Writes ``gpu.json`` (raw) and ``gpu.md`` (the table) into ``--out`` (default on a GPU:
bench/results; on a CPU: a new temporary folder, printed), both again after every case, so a
run stopped by a time limit leaves the cases it finished. A case that fails is recorded with
its error and the next one runs. Options: ``--gguf PATH`` the real SmolLM2-135M-Instruct GGUF
file instead of random weights (needs the ``gguf`` package), ``--budget-s S`` start no case
after S seconds (default 200), ``--epochs E`` updates per case (default 8), ``--only TEXT`` the
cases whose name contains TEXT. Nothing is downloaded (HF_HUB_OFFLINE=1).

What runs: ``grammarlab.train.loop.train``, the training of ``grammarlab train`` (without the
end-of-run analysis, CPU work on the finished run folder), on a temporary run folder, on the
paper's random grammar (grammars/random_26.cfg: 64 letters, 26 letters), n_train = 8 and 64
(one full batch per epoch, the micro-batch unset = the whole set in one pass), n_test = 10,
n_random = 10, ``n_generate = 0`` (no sampling), ``checkpoint_every`` above the run's length:
the only checkpoint is the one the loop always writes at the end of the run, so the epochs
carry none and the last epoch's ``checkpoint_s`` is the cost of one checkpoint. Models:
pythia-tiny, llama-tiny (float32 and bfloat16) and a SmolLM2-135M-Instruct model (full float32,
full bfloat16, LoRA rank 8 float32). The SmolLM2 weights are random unless ``--gguf`` is given:
the checkpoint (a 98 MB GGUF) cannot travel to every machine, so a Llama model is built from
SmolLM2-135M's config (grammarlab.scale.arch, the same sizes as the GGUF's metadata: checked in
tests/bench/test_bench_gpu.py) and saved as a Hugging Face directory with the grammar's
tokenizer, which the run's ``model.preset`` then names. Same shapes, so the same compute and
memory as the real weights; its vocabulary rows beyond the grammar's 29 tokens are never inputs
(as the real tokenizer's unused tokens). Last, on a GPU only: the SmolLM2 full float32 n = 8
case again with ``compile = "default"`` and ``"reduce-overhead"`` (torch.compile; the first
epochs pay the compile, outside the median).

Measures per case:

* seconds per epoch: the wall time between two consecutive metrics.jsonl lines (a RunDir that
  notes the time of each append), which holds the whole epoch: the AdamW step of the previous
  update, forward + backward of the training set, the evaluation of the other sets, the
  per-epoch files; median over the epochs after the first update (the first allocates AdamW's
  moments, CUDA's kernels and caches) and before the last (evaluation only). Split: timers
  around the loop's forward_backward and evaluate_plan and hooks on the optimizer's step, each
  with ``torch.cuda.synchronize`` before and after (a few synchronizations per epoch; the loop
  itself synchronizes when it reads the losses), medians over the same epochs;
* peak GPU memory: ``torch.cuda.max_memory_allocated`` (the tensors) and
  ``max_memory_reserved`` (the caching allocator's segments, what nvidia-smi shows less the
  CUDA context), reset right before the run, so they cover loading the model, the epochs and
  the final checkpoint. On a CPU there is no allocator statistic: n/a;
* the plan: what ``grammarlab plan --config`` estimates for the case's run config
  (grammarlab.scale.from_config, then scale.plan.estimate: the architecture, from the model's
  config.json for the SmolLM2 directory; dtype float32 or pure bfloat16; plain or LoRA; n_train,
  micro-batch, the longest training string + bos + eos), and its ratio to the measured peak
  allocation;
* one checkpoint: the final one's seconds (metrics.jsonl) and size on disk.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported: never download
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

import grammarlab.train.loop as loop  # noqa: E402
from grammarlab.grammar.load import load  # noqa: E402
from grammarlab.io import write_json_atomic, write_text_atomic  # noqa: E402
from grammarlab.runs.folder import RunDir  # noqa: E402
from grammarlab.scale.arch import ARCHITECTURES, Architecture  # noqa: E402
from grammarlab.scale.from_config import run_facts  # noqa: E402
from grammarlab.scale.plan import estimate  # noqa: E402
from grammarlab.train.config import LoraSpec, TrainConfig, resolve  # noqa: E402
from grammarlab.train.models import ModelSpec  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GRAMMAR = ROOT / "grammars" / "random_26.cfg"
MiB = 2**20
SMOL = "smollm2-135m-instruct"
# SmolLM2-135M's config.json beyond the sizes in grammarlab.scale.arch (GGUF metadata:
# llama.rope.freq_base, llama.attention.layer_norm_rms_epsilon, llama.context_length)
SMOL_ROPE_THETA = 100000.0
SMOL_RMS_EPS = 1e-5
SMOL_POSITIONS = 8192
SMOL_LR = 1e-5  # the smollm2-135m-instruct preset's lr (a random model at 3e-3 could diverge)
# --quick: a SmolLM2 in miniature (tied embeddings, 3 query heads per key/value head, like it),
# so that the CPU check runs the same directory-model code path in seconds
SMOL_MINI = Architecture("llama", hidden=96, layers=2, heads=3, kv_heads=1, head_dim=32,
                         intermediate=256, vocab=512, tied=True)  # fmt: skip


def say(*parts: Any) -> None:
    """A progress line, flushed at once (a time limit can stop the script at any moment)."""
    print(*parts, flush=True)


@dataclass(frozen=True)
class Case:
    """One measured run: a model, its dtype, full or LoRA, n_train."""

    name: str
    model: str  # a tiny preset, or "smol" (the SmolLM2 directory built by this script)
    dtype: str = "float32"
    lora_rank: int = 0
    n_train: int = 8
    compile: str | None = None  # the run's `compile` mode (torch.compile), None: eager


def cases(quick: bool) -> list[Case]:
    """The cases in the order they run (tiny models first: they always fit the budget)."""
    out = []
    for model, dtype in (("pythia-tiny", "float32"), ("llama-tiny", "float32"),
                         ("llama-tiny", "bfloat16")):  # fmt: skip
        for n in (8, 64):
            out.append(Case(f"{model} {dtype} n={n}", model, dtype, n_train=n))
    smol = "smollm2-mini" if quick else "smollm2-135m"
    for label, dtype, rank in (("full", "float32", 0), ("full", "bfloat16", 0),
                               ("LoRA r=8", "float32", 8)):  # fmt: skip
        for n in (8, 64):
            out.append(Case(f"{smol} {label} {dtype} n={n}", "smol", dtype, rank, n))
    if not quick:  # compiling takes about a minute per case on a CPU: GPU runs only
        for mode in ("default", "reduce-overhead"):
            out.append(Case(f"{smol} full float32 n=8 compile={mode}", "smol", compile=mode))
    return out


# ------------------------------------------------------------------------------ the SmolLM2 model


def smol_directory(folder: Path, arch: Architecture, terminals: tuple[str, ...]) -> Path:
    """A Llama model of ``arch`` (SmolLM2-135M's sizes) with random weights, saved as a Hugging
    Face directory with the grammar's word-level tokenizer and tokens.json, which
    ``model.preset = "<folder>"`` loads like any local model directory."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    from grammarlab.train.export import save_hf_model
    from grammarlab.train.tokens import TokenMap

    tmap = TokenMap.for_tiny(terminals, arch.vocab)  # ids beyond the grammar's: never inputs
    config = LlamaConfig(
        vocab_size=arch.vocab, hidden_size=arch.hidden, num_hidden_layers=arch.layers,
        num_attention_heads=arch.heads, num_key_value_heads=arch.kv_heads,
        head_dim=arch.head_dim, intermediate_size=arch.intermediate,
        tie_word_embeddings=arch.tied, rope_theta=SMOL_ROPE_THETA, rms_norm_eps=SMOL_RMS_EPS,
        max_position_embeddings=SMOL_POSITIONS, bos_token_id=tmap.bos_id,
        eos_token_id=tmap.eos_id, pad_token_id=tmap.pad_id, attention_dropout=0.0,
        use_cache=False,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    save_hf_model(folder, model, tmap)
    return folder


def gguf_directory(folder: Path, gguf: Path) -> Path:
    """The real SmolLM2 GGUF checkpoint dequantized to dense float32 weights and saved, with
    its own tokenizer, as a Hugging Face directory (transformers reads GGUF with the ``gguf``
    package)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    kw = dict(gguf_file=gguf.name, local_files_only=True)
    AutoTokenizer.from_pretrained(gguf.parent, **kw).save_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, dtype=torch.float32, quantization_config=GgufConfig(dequantize=True), **kw
    )
    model.save_pretrained(folder)
    return folder


def gguf_architecture(gguf: Path) -> Architecture:
    """The sizes in a Llama GGUF file's metadata (tied: no separate ``output.weight``)."""
    from gguf import GGUFReader

    r = GGUFReader(str(gguf))

    def field(name: str) -> Any:
        return r.fields[name].contents()

    heads = int(field("llama.attention.head_count"))
    hidden = int(field("llama.embedding_length"))
    return Architecture(
        "llama", hidden=hidden, layers=int(field("llama.block_count")), heads=heads,
        kv_heads=int(field("llama.attention.head_count_kv")), head_dim=hidden // heads,
        intermediate=int(field("llama.feed_forward_length")),
        vocab=int(field("llama.vocab_size")),
        tied=not any(t.name == "output.weight" for t in r.tensors),
    )  # fmt: skip


def gguf_extras(gguf: Path) -> dict[str, float]:
    """rope theta, RMS-norm epsilon and context length from a Llama GGUF file's metadata."""
    from gguf import GGUFReader

    f = GGUFReader(str(gguf)).fields
    return {"rope_theta": float(f["llama.rope.freq_base"].contents()),
            "rms_norm_eps": float(f["llama.attention.layer_norm_rms_epsilon"].contents()),
            "positions": int(f["llama.context_length"].contents())}  # fmt: skip


# ------------------------------------------------------------------------------ timing the loop


class TimedRunDir(RunDir):
    """A run folder that notes when each metrics line is appended (one per epoch)."""

    def __init__(self, path: Path, on_epoch: Any = None) -> None:
        super().__init__(path)
        self.appended: list[float] = []
        self.on_epoch = on_epoch

    def append_metrics(self, record: dict[str, Any]) -> None:
        super().append_metrics(record)
        self.appended.append(time.perf_counter())
        if self.on_epoch is not None:
            self.on_epoch(record)


@contextlib.contextmanager
def phase_timers(sync: Any):
    """Seconds of every forward + backward pass (loop.forward_backward), evaluation pass
    (loop.evaluate_plan) and optimizer step, each between two ``sync()`` calls."""
    times: dict[str, list[float]] = {"fwd_bwd": [], "eval": [], "optimizer": []}
    saved = loop.forward_backward, loop.evaluate_plan, loop.make_optimizer

    def timed(fn: Any, key: str) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            sync()
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            sync()
            times[key].append(time.perf_counter() - t0)
            return out

        return wrapper

    def make_optimizer(*args: Any, **kwargs: Any) -> Any:
        opt, sched = saved[2](*args, **kwargs)
        start: list[float] = []

        def pre(*_: Any) -> None:
            sync()
            start[:] = [time.perf_counter()]

        def post(*_: Any) -> None:
            sync()
            times["optimizer"].append(time.perf_counter() - start[0])

        opt.register_step_pre_hook(pre)
        opt.register_step_post_hook(post)
        return opt, sched

    loop.forward_backward = timed(saved[0], "fwd_bwd")
    loop.evaluate_plan = timed(saved[1], "eval")
    loop.make_optimizer = make_optimizer
    try:
        yield times
    finally:
        loop.forward_backward, loop.evaluate_plan, loop.make_optimizer = saved


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


# ------------------------------------------------------------------------------ one case


def config_of(case: Case, model: str, device: str, epochs: int) -> TrainConfig:
    """The run config of ``case`` (``model``: a preset or the SmolLM2 directory)."""
    return TrainConfig(
        grammar=str(GRAMMAR), model=ModelSpec(preset=model), n_train=case.n_train, n_test=10,
        n_random=10, epochs=epochs, lr=SMOL_LR if case.model == "smol" else None,
        dtype=case.dtype, device=device, cpu_workers=1, n_generate=0, compile=case.compile,
        checkpoint_every=epochs + 1,  # only the checkpoint the loop always writes at the end
        lora=LoraSpec(rank=case.lora_rank),  # alpha: the default 16
    )  # fmt: skip


def plan_of(cfg: TrainConfig, grammar: Any) -> dict[str, Any]:
    """What ``grammarlab plan --config`` estimates for the case's run config
    (grammarlab.scale.from_config): its setup, parameters, MiB by kind."""
    facts = run_facts(cfg, grammar)
    est = estimate(facts.arch, facts.setup())
    return {"setup": facts.setup().describe(), "params": est.params,
            "seq_len": facts.max_len + 2, "mib": {k: v / MiB for k, v in est.rows()}}  # fmt: skip


def run_case(case: Case, env: dict[str, Any], tmp: Path, epochs: int) -> dict[str, Any]:
    """Train ``case`` in a fresh run folder under ``tmp``; its measurements."""
    device = env["device"]
    cuda = device == "cuda"
    grammar = env["grammar"]
    model = env["smol_dir"] if case.model == "smol" else case.model
    cfg = config_of(case, model, device, epochs)
    resolved = resolve(cfg, grammar)
    folder = tmp / case.name.replace(" ", "_").replace("=", "")
    shutil.rmtree(folder, ignore_errors=True)

    def on_epoch(rec: dict[str, Any]) -> None:
        say(f"    epoch {rec['epoch']}: loop time_s {rec['time_s']:.3f}, "
            f"train loss {rec['train_loss']:.4f}")  # fmt: skip

    run = TimedRunDir(folder, on_epoch)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated() if cuda else None
    t0 = time.perf_counter()
    with phase_timers(sync) as times:
        ended = loop.train(cfg, run, quiet=True)
    wall = time.perf_counter() - t0
    peak_alloc = torch.cuda.max_memory_allocated() if cuda else None
    peak_res = torch.cuda.max_memory_reserved() if cuda else None
    rows = run.read_metrics()
    env_json = run.read_env()
    seq_len = max(len(s) for s in run.read_data()["train"]) + 2  # the training pass's width
    ckpt_bytes = _folder_bytes(run.checkpoint_path)
    shutil.rmtree(folder, ignore_errors=True)

    ck = [r["checkpoint_s"] for r in rows]
    gaps = [b - a for a, b in zip(run.appended, run.appended[1:], strict=False)]
    # gap k-1 = epoch k (k = 1..T), whose wall holds the checkpoint of the state after k updates
    walls = [g - c for g, c in zip(gaps, ck[1:], strict=True)]
    # epochs 2..T-1: after the first update, before the last (evaluation only); else all
    first = 2 if walls[1:-1] else 1
    steady = walls[first - 1 : -1] if first == 2 else walls
    n_steady = len(steady)
    plan = plan_of(cfg, grammar)
    return {
        **asdict(case), "ended": ended, "epochs": epochs, "wall_s": wall,
        "params": env_json.get("n_params"), "trainable": env_json.get("n_trainable_params"),
        "plan_params": plan["params"], "seq_len": seq_len, "plan_seq_len": plan["seq_len"],
        "micro_batch": resolved.micro_batch_size,
        "s_per_epoch": _median(steady), "epochs_in_median": n_steady,
        # the same epochs' passes: one forward + backward (epochs 0..T-1) and one evaluation
        # (epochs 0..T) per epoch; the optimizer steps after the first (it allocates AdamW's state)
        "fwd_bwd_s": _median(times["fwd_bwd"][first : first + n_steady]),
        "optimizer_s": _median(times["optimizer"][1 : 1 + n_steady]),
        "eval_s": _median(times["eval"][first : first + n_steady]),
        "epoch_walls_s": walls, "loop_time_s": [r["time_s"] for r in rows],
        "fwd_bwd_all_s": times["fwd_bwd"], "eval_all_s": times["eval"],
        "optimizer_all_s": times["optimizer"],
        "checkpoint_s": ck[-1], "checkpoint_bytes": ckpt_bytes,
        "first_train_loss": rows[0]["train_loss"], "last_train_loss": rows[-1]["train_loss"],
        "allocated_before_mib": None if before is None else before / MiB,
        "peak_allocated_mib": None if peak_alloc is None else peak_alloc / MiB,
        "peak_reserved_mib": None if peak_res is None else peak_res / MiB,
        "plan_setup": plan["setup"], "plan_mib": plan["mib"],
        "plan_ratio": None if peak_alloc is None else plan["mib"]["total"] * MiB / peak_alloc,
        "error": None,
    }  # fmt: skip


# ------------------------------------------------------------------------------ output


def machine(device: str) -> dict[str, Any]:
    """The machine and library versions."""
    import transformers

    try:
        import peft

        peft_version = peft.__version__
    except ImportError:
        peft_version = None
    out = {
        "date": dt.datetime.now().isoformat(timespec="seconds"), "device": device,
        "python": platform.python_version(), "platform": platform.platform(),
        "cpus": os.cpu_count(), "torch": torch.__version__, "cuda": torch.version.cuda,
        "transformers": transformers.__version__, "peft": peft_version,
        "torch_threads": torch.get_num_threads(),
    }  # fmt: skip
    if device == "cuda":
        p = torch.cuda.get_device_properties(0)
        out.update(gpu=p.name, gpu_memory_mib=p.total_memory / MiB,
                   cudnn=torch.backends.cudnn.version(),
                   gpus_visible=torch.cuda.device_count())  # fmt: skip
    return out


def _f(x: Any, fmt: str, none: str = "n/a") -> str:
    return none if x is None else format(x, fmt)


def markdown(meta: dict[str, Any], results: list[dict[str, Any]]) -> str:
    """gpu.md: the machine, the table, what each column means."""
    m = meta["machine"]
    where = (f"{m.get('gpu')} ({m.get('gpu_memory_mib', 0) / 1024:.0f} GiB), CUDA {m['cuda']}"
             if m["device"] == "cuda" else "the CPU (a check of the script, not a GPU "
             "measurement: no memory statistics)")  # fmt: skip
    weights = ("random weights (SmolLM2-135M's config, see below)" if not meta.get("gguf")
               else f"the real SmolLM2-135M-Instruct weights ({meta['gguf']})")  # fmt: skip
    lines = [
        "# The training loop on a GPU: seconds per epoch and peak memory vs the plan", "",
        f"{m['date']}, {where}; torch {m['torch']}, transformers {m['transformers']}, peft "
        f"{m['peft']}, python {m['python']}, {m['cpus']} CPUs; `bench/bench_gpu.py` "
        f"({meta['total_s']:.0f} s in all). grammarlab's loop (`loop.train`, what "
        "`grammarlab train` runs, without the end-of-run analysis) on the paper's random "
        "grammar (64 letters over 26), n_test = n_random = 10, one full batch per epoch, "
        f"{meta['epochs']} updates per case, no sampling; SmolLM2-135M: {weights}.", "",
        "| case | params (trainable) | n | dtype | s/epoch | fwd+bwd s | AdamW s | eval s | "
        "peak allocated MiB | peak reserved MiB | plan MiB | plan / allocated | "
        "checkpoint s (MB) |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for r in results:
        if r.get("error"):
            error = r["error"].splitlines()[0][:160].replace("|", "/")
            lines.append(f"| {r['name']} | | {r['n_train']} | {r['dtype']} | failed: {error} |"
                         + " |" * 8)  # fmt: skip
            continue
        params = (f"{r['params'] / 1e6:.2f}M" if r["trainable"] == r["params"]
                  else f"{r['params'] / 1e6:.2f}M ({r['trainable'] / 1e6:.2f}M)")  # fmt: skip
        lines.append(
            f"| {r['name']} | {params} | {r['n_train']} | {r['dtype']} | "
            f"{_f(r['s_per_epoch'], '.4f')} | {_f(r['fwd_bwd_s'], '.4f')} | "
            f"{_f(r['optimizer_s'], '.4f')} | {_f(r['eval_s'], '.4f')} | "
            f"{_f(r['peak_allocated_mib'], '.1f')} | {_f(r['peak_reserved_mib'], '.1f')} | "
            f"{r['plan_mib']['total']:.1f} | {_f(r['plan_ratio'], '.2f')} | "
            f"{r['checkpoint_s']:.2f} ({r['checkpoint_bytes'] / 1e6:.1f}) |"
        )
    for s in meta.get("skipped", []):
        lines.append(f"| {s['name']} | skipped: {s['why']} |" + " |" * 11)
    lines += [
        "",
        "s/epoch: the wall time between two consecutive metrics.jsonl lines (the whole epoch: "
        "AdamW step, forward + backward of the training set, evaluation of test and random "
        "sets, per-epoch files), median over the epochs after the first update and before the "
        "last (evaluation only); fwd+bwd, AdamW, eval: timers around the loop's own functions, "
        "with a CUDA synchronization before and after each, medians over the same epochs. Peak "
        "allocated / reserved: torch.cuda.max_memory_allocated / max_memory_reserved over the "
        "whole run (model load, epochs, final checkpoint), reset before it; the CUDA context "
        "is in neither. plan: grammarlab.scale.plan.estimate (weights + gradients + AdamW "
        "states + saved activations + the output head's transient peak) for the same "
        "architecture, dtype (float32, or pure bfloat16), full or LoRA, n strings in one "
        "pass and the strings' length (64 letters + bos + eos = 66 tokens); plan / allocated > "
        "1: the plan is on the safe side. checkpoint: the one the loop writes at the end of the "
        "run (weights + AdamW state, or the adapter; fsynced), seconds from metrics.jsonl, size "
        "on disk.",
        "",
        "SmolLM2-135M without `--gguf`: a Llama model built from SmolLM2-135M-Instruct's config "
        "(hidden 576, 30 layers, 9 heads, 3 key/value heads, MLP 1536, vocabulary 49152, tied "
        "embeddings, rope theta 100000; the same as the GGUF file's metadata) with random "
        "weights, saved as a Hugging Face directory with the grammar's tokenizer: the same "
        "shapes, so the same compute and memory as the real weights. compile=MODE: the run's "
        "`compile` setting (torch.compile); its first epochs pay the compile, outside the median.",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def write(out: Path, meta: dict[str, Any], results: list[dict[str, Any]]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "gpu.json", {"meta": meta, "results": results})
    write_text_atomic(out / "gpu.md", markdown(meta, results))


# ------------------------------------------------------------------------------ main


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("--quick", action="store_true",
                   help="tiny models and a SmolLM2 in miniature, 3 updates")  # fmt: skip
    p.add_argument("--out", type=Path, help="folder for gpu.json and gpu.md")
    p.add_argument("--gguf", type=Path, help="the SmolLM2-135M-Instruct GGUF file (real weights)")
    p.add_argument("--epochs", type=int, help="updates per case (default 8; --quick 3)")
    p.add_argument("--budget-s", type=float, default=200.0,
                   help="start no case after this many seconds (default 200)")  # fmt: skip
    p.add_argument("--only", help="run only the cases whose name contains this text")
    p.add_argument("--from-json", type=Path, help="rewrite gpu.md from this gpu.json and stop")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    t_start = time.perf_counter()
    args = parse(argv)
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        write_text_atomic(args.from_json.with_suffix(".md"),
                          markdown(saved["meta"], saved["results"]))  # fmt: skip
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        say("error: --device cuda but torch sees no CUDA GPU (use --device cpu --quick)")
        return 2
    if args.device == "cpu":
        torch.set_num_threads(1)  # a shared machine
    epochs = args.epochs or (3 if args.quick else 8)
    out = args.out or (HERE / "results" if args.device == "cuda"
                       else Path(tempfile.mkdtemp(prefix="bench-gpu-out-")))  # fmt: skip
    grammar = load(GRAMMAR)
    meta: dict[str, Any] = {"machine": machine(args.device), "epochs": epochs,
                            "quick": args.quick, "gguf": str(args.gguf) if args.gguf else None,
                            "grammar": "grammars/random_26.cfg", "skipped": [],
                            "total_s": 0.0}  # fmt: skip
    say(f"bench_gpu: {json.dumps(meta['machine'])}")
    say(f"bench_gpu: results go to {out}")
    todo = [c for c in cases(args.quick) if not args.only or args.only in c.name]
    results: list[dict[str, Any]] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-gpu-runs-"))
    env: dict[str, Any] = {"device": args.device, "grammar": grammar}
    try:
        if any(c.model == "smol" for c in todo):
            t0 = time.perf_counter()
            try:
                env["smol_arch"], env["smol_dir"] = smol_model(args, grammar, tmp)
                say(f"bench_gpu: SmolLM2 model directory ready in {time.perf_counter() - t0:.1f}"
                    f" s: {env['smol_arch']}")  # fmt: skip
            except Exception as e:  # the SmolLM2 cases then fail one by one with this reason
                env["smol_error"] = f"building the SmolLM2 model: {type(e).__name__}: {e}"
                say(f"bench_gpu: {env['smol_error']}")
        for i, case in enumerate(todo):
            elapsed = time.perf_counter() - t_start
            # the longest case of the same model so far predicts this one
            like = [r["wall_s"] for r in results if r["model"] == case.model and "wall_s" in r]
            expected = max(like, default=0.0)
            if elapsed + expected > args.budget_s:  # skip it, try the next
                meta["skipped"].append({"name": case.name,
                                        "why": f"time budget ({args.budget_s:g} s)"})  # fmt: skip
                say(f"[{i + 1}/{len(todo)}] {case.name}: skipped, {elapsed:.0f} s + "
                    f"{expected:.0f} s > budget")  # fmt: skip
                continue
            say(f"[{i + 1}/{len(todo)}] {case.name} (at {elapsed:.0f} s)")
            try:
                if case.model == "smol" and "smol_error" in env:
                    raise RuntimeError(env["smol_error"])
                r = run_case(case, env, tmp, epochs)
                say(f"  -> {r['s_per_epoch']:.4f} s/epoch, peak allocated "
                    f"{_f(r['peak_allocated_mib'], '.1f')} MiB, reserved "
                    f"{_f(r['peak_reserved_mib'], '.1f')} MiB, plan "
                    f"{r['plan_mib']['total']:.1f} MiB, checkpoint {r['checkpoint_s']:.2f} s, "
                    f"case {r['wall_s']:.1f} s")  # fmt: skip
            except Exception as e:  # record it and go on with the next case
                tb = traceback.format_exc().strip().splitlines()
                r = {**asdict(case), "error": f"{type(e).__name__}: {e}", "traceback": tb[-12:]}
                say(f"  -> FAILED: {r['error']}")
                if args.device == "cuda":
                    gc.collect()
                    torch.cuda.empty_cache()
            results.append(r)
            meta["total_s"] = time.perf_counter() - t_start
            write(out, meta, results)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        meta["total_s"] = time.perf_counter() - t_start
        write(out, meta, results)
    failed = sum(1 for r in results if r.get("error"))
    say(f"bench_gpu: {len(results) - failed} cases measured, {failed} failed, "
        f"{len(meta['skipped'])} skipped, {meta['total_s']:.0f} s; wrote {out / 'gpu.json'} and "
        f"{out / 'gpu.md'}")  # fmt: skip
    return 0


def smol_model(args: argparse.Namespace, grammar: Any, tmp: Path) -> tuple[Architecture, str]:
    """The architecture and the model directory of the SmolLM2 cases."""
    if args.gguf:
        arch = gguf_architecture(args.gguf)
        return arch, str(gguf_directory(tmp / "smollm2-gguf", args.gguf))
    arch = SMOL_MINI if args.quick else ARCHITECTURES[SMOL]
    return arch, str(smol_directory(tmp / "smollm2-random", arch, grammar.terminals))


if __name__ == "__main__":
    sys.exit(main())
