"""``grammarlab plan``: memory per GPU of a fine-tune (grammarlab.scale.plan), and what fits."""

from __future__ import annotations

import argparse
import math

from grammarlab.errors import ConfigError
from grammarlab.scale.arch import architecture_of
from grammarlab.scale.plan import Setup, report


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan",
        help="estimate memory per GPU (plain, FSDP, LoRA) and say whether a fine-tune fits",
        description="Estimated memory per GPU of fine-tuning MODEL: weights, gradients, AdamW "
        "states and activations of one micro-batch (formulas: grammarlab/scale/plan.py), for "
        "plain, FSDP and LoRA training; a verdict and, when it does not fit, options that do.",
    )
    p.add_argument("--model", required=True, metavar="PRESET",
                   help="pythia-1b, llama3-8b, mistral-nemo-12b, smollm2-135m-instruct or a "
                   "tiny preset (with --vocab)")  # fmt: skip
    p.add_argument("--gpu-memory-gb", type=float, required=True, metavar="G",
                   help="memory of one GPU in GiB (e.g. 80 for an H100)")  # fmt: skip
    p.add_argument("--gpus", type=int, default=1, metavar="N",
                   help="GPUs to shard over with FSDP (default 1: plain training)")  # fmt: skip
    p.add_argument("--lora", action="store_true", help="LoRA adapters instead of a full fine-tune")
    p.add_argument("--lora-rank", type=int, default=8, metavar="R", help="LoRA rank (default 8)")
    p.add_argument("--dtype", default="mixed", choices=("float32", "bfloat16", "mixed"),
                   help="mixed (default): bf16 compute, fp32 master weights (accelerate bf16); "
                   "bfloat16: everything in bf16; float32")  # fmt: skip
    p.add_argument("--n-train", type=int, default=64, metavar="N",
                   help="training strings, one full batch per epoch (default 64)")  # fmt: skip
    p.add_argument("--micro-batch", type=int, metavar="M",
                   help="strings per forward pass on one GPU (default: the run's share of "
                   "--n-train, n / GPUs)")  # fmt: skip
    p.add_argument("--max-len", type=int, default=72, metavar="L",
                   help="tokens of the longest string, without bos/eos (default 72)")  # fmt: skip
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
    for flag in ("gpus", "n_train", "max_len", "lora_rank", "max_gpus"):
        v = getattr(args, flag)
        if v < 1:
            raise ConfigError(f"--{flag.replace('_', '-')} must be >= 1, got {v}")
    if args.micro_batch is not None and args.micro_batch < 1:
        raise ConfigError(f"--micro-batch must be >= 1, got {args.micro_batch}")
    if args.lora and args.gpus > 1:
        raise ConfigError("--lora plans one GPU; drop --gpus (or drop --lora for FSDP)")
    arch = architecture_of(args.model, vocab=args.vocab)
    mode = "lora" if args.lora else "fsdp" if args.gpus > 1 else "plain"
    setup = Setup(mode=mode, dtype=args.dtype, gpus=args.gpus, n_train=args.n_train,
                  micro_batch=args.micro_batch,
                  seq_len=args.max_len + 2, lora_rank=args.lora_rank,
                  checkpointing=args.checkpointing, cpu_offload=args.cpu_offload)  # fmt: skip
    print(report(arch, args.model, setup, args.gpu_memory_gb, max(args.max_gpus, args.gpus)))
    return 0
