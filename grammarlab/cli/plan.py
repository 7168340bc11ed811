"""``grammarlab plan``: memory per GPU of a fine-tune (grammarlab.scale.plan), and what fits."""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from typing import Any

from grammarlab.errors import ConfigError
from grammarlab.scale.arch import architecture_of
from grammarlab.scale.plan import Setup, report

# the plan's defaults without a run config: the paper's largest n and its longest strings
DEFAULTS = {"dtype": "mixed", "n_train": 64, "max_len": 72, "lora_rank": 8}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan",
        help="estimate memory per GPU (plain, FSDP, LoRA) and say whether a fine-tune fits",
        description="Estimated memory per GPU of fine-tuning MODEL: weights, gradients, AdamW "
        "states and activations of one micro-batch (formulas: grammarlab/scale/plan.py), for "
        "plain, FSDP and LoRA training; a verdict and, when it does not fit, options that do. "
        "With --config, the model, dtype, LoRA rank, n_train, micro-batch and the longest "
        "training string come from a run config; flags given override it.",
    )
    p.add_argument("--config", metavar="RUN.toml",
                   help="a run config (as grammarlab train reads it)")  # fmt: skip
    p.add_argument("--model", metavar="PRESET",
                   help="pythia-1b, llama3-8b, mistral-nemo-12b, smollm2-135m-instruct, a "
                   "tiny preset (with --vocab) or a model directory; required without "
                   "--config")  # fmt: skip
    p.add_argument("--gpu-memory-gb", type=float, required=True, metavar="G",
                   help="memory of one GPU in GiB (e.g. 80 for an H100)")  # fmt: skip
    p.add_argument("--gpus", type=int, default=1, metavar="N",
                   help="GPUs to shard over with FSDP (default 1: plain training)")  # fmt: skip
    p.add_argument("--lora", action="store_true", help="LoRA adapters instead of a full fine-tune")
    p.add_argument("--lora-rank", type=int, metavar="R",
                   help="LoRA rank (default: the config's, else 8); 0: a full fine-tune even "
                   "where the config trains LoRA")  # fmt: skip
    p.add_argument("--dtype", choices=("float32", "bfloat16", "mixed"),
                   help="mixed (default without --config): bf16 compute, fp32 master weights "
                   "(accelerate bf16); bfloat16: everything in bf16; float32")  # fmt: skip
    p.add_argument("--n-train", type=int, metavar="N",
                   help="training strings, one full batch per epoch (default 64)")  # fmt: skip
    p.add_argument("--micro-batch", type=int, metavar="M",
                   help="strings per forward pass on one GPU (default: the config's "
                   "micro_batch_size, else the run's share of --n-train, n / GPUs)")  # fmt: skip
    p.add_argument("--max-len", type=int, metavar="L",
                   help="tokens of the longest string, without bos/eos (default: the config's "
                   "longest training string, else 72)")  # fmt: skip
    p.add_argument("--checkpointing", action="store_true", help="activation checkpointing")
    p.add_argument("--cpu-offload", action="store_true", help="FSDP shards in host memory")
    p.add_argument("--vocab", type=int, metavar="V",
                   help="tiny presets: vocabulary size (terminals + 3)")  # fmt: skip
    p.add_argument("--max-gpus", type=int, default=8, metavar="N",
                   help="most GPUs an option may use (default 8: one node)")  # fmt: skip
    p.set_defaults(func=cmd_plan)


def cmd_plan(args: argparse.Namespace) -> int:
    if args.gpu_memory_gb <= 0 or not math.isfinite(args.gpu_memory_gb):
        raise ConfigError(f"--gpu-memory-gb must be a positive number, got {args.gpu_memory_gb}")
    for flag in ("gpus", "n_train", "max_len", "max_gpus", "micro_batch", "vocab"):
        v = getattr(args, flag)
        if v is not None and v < 1:
            raise ConfigError(f"--{flag.replace('_', '-')} must be >= 1, got {v}")
    if args.lora_rank is not None and (args.lora_rank < 0 or args.lora and args.lora_rank < 1):
        need = ">= 1 with --lora" if args.lora else ">= 0 (0: full fine-tune)"
        raise ConfigError(f"--lora-rank must be {need}, got {args.lora_rank}")
    if args.config is None and args.model is None:
        raise ConfigError("plan needs a model", hint="pass --model PRESET or --config RUN.toml")
    facts = _from_config(args) if args.config else None
    rank_cfg = facts.lora_rank if facts else 0
    # --lora-rank 0 plans a full fine-tune of a LoRA config; without a config, only --lora
    # asks for LoRA (--lora-rank alone sets the rank of the LoRA row)
    lora = args.lora or (rank_cfg > 0 and args.lora_rank != 0)
    rank = args.lora_rank or rank_cfg or DEFAULTS["lora_rank"]
    if lora and args.gpus > 1:
        raise ConfigError("--lora plans one GPU; drop --gpus (or drop --lora for FSDP)"
                          if args.lora else "the config trains LoRA, which plans one GPU; drop "
                          "--gpus (or plan a full fine-tune with --lora-rank 0)")  # fmt: skip
    if args.model is not None:  # an explicit model overrides the config's and its sizes
        name, arch = args.model, architecture_of(args.model, vocab=args.vocab)
    else:
        name, arch = facts.model, facts.arch
        if args.vocab:
            arch = replace(arch, vocab=args.vocab)

    # the config's values (or the defaults), then the flags given
    base = {**DEFAULTS, "micro_batch": None}
    if facts:
        base = dict(dtype=facts.dtype, n_train=facts.n_train, micro_batch=facts.micro_batch,
                    max_len=facts.max_len)  # fmt: skip
    v = {k: base[k] if getattr(args, k) is None else getattr(args, k)
         for k in ("dtype", "n_train", "micro_batch", "max_len")}  # fmt: skip
    mode = "lora" if lora else "fsdp" if args.gpus > 1 else "plain"
    setup = Setup(mode=mode, dtype=v["dtype"], gpus=args.gpus, n_train=v["n_train"],
                  micro_batch=v["micro_batch"], seq_len=v["max_len"] + 2, lora_rank=rank,
                  checkpointing=args.checkpointing, cpu_offload=args.cpu_offload)  # fmt: skip
    if facts:
        print(f"from {args.config}: {facts.model}, {facts.dtype}, "
              f"{'LoRA rank ' + str(facts.lora_rank) if facts.lora_rank else 'full fine-tune'}, "
              f"n_train {facts.n_train}, micro-batch {facts.micro_batch}, longest training "
              f"string {facts.max_len} tokens (+ bos, eos)")  # fmt: skip
    print(report(arch, name, setup, args.gpu_memory_gb, max(args.max_gpus, args.gpus)))
    return 0


def _from_config(args: argparse.Namespace) -> Any:
    """The plan's facts of the run config ``args.config`` (grammarlab.scale.from_config)."""
    # lazy: the run config and its data sets need torch (train.models), which `grammarlab
    # --help` and a plan from flags do not
    from grammarlab.scale.from_config import read_run_facts

    return read_run_facts(args.config)
