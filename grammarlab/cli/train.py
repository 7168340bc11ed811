"""``grammarlab train`` and ``grammarlab eval``: thin shells over grammarlab.runs.launch (train,
then analyse) and grammarlab.train.restore (score strings under a run's model)."""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grammarlab.cli.outputs import output_file, write_error
from grammarlab.errors import ConfigError
from grammarlab.grammar.strings import read_strings
from grammarlab.io import write_text_atomic

if TYPE_CHECKING:
    from grammarlab.train.config import TrainConfig

# flag (argparse dest) -> the config key it sets, with the flag's already typed value
FLAGS = {
    "grammar": "grammar",
    "model": "model.preset",
    "n_train": "n_train",
    "epochs": "epochs",
    "seed": "seed",
    "lr": "lr",
    "lora_rank": "lora.rank",
    "sequential": "sequential",
}
REFERENCE = "docs/config.md"


def add_parser(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser(
        "train",
        help="fine-tune a model on strings of a grammar (or resume an unfinished run folder)",
        description="Train a run. Settings come from CONFIG.toml, then --set key=value, then "
        "the shortcut flags. Running the same command on an unfinished run folder resumes it.",
        epilog=f"Every config key, its unit and default: {REFERENCE} (or: grammarlab config-doc).",
    )
    t.add_argument("config", nargs="?", metavar="CONFIG.toml", help="run config (TOML)")
    t.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"set a config key (dotted for tables: model.hidden_size=128; keys: {REFERENCE}); "
        "repeatable",
    )
    t.add_argument("--grammar", metavar="FILE", help="grammar file")
    t.add_argument("--model", metavar="PRESET", help="model preset or local model directory")
    t.add_argument("--n-train", type=int, metavar="N", help="training strings")
    t.add_argument("--epochs", type=int, metavar="E", help="epochs (stage 1)")
    t.add_argument("--seed", type=int, metavar="S", help="seed (data and model)")
    t.add_argument("--lr", type=float, metavar="LR", help="learning rate (default: the preset's)")
    t.add_argument("--lora-rank", type=int, metavar="R", help="LoRA rank (0: full fine-tune)")
    t.add_argument("--sequential", action="store_true", default=None,
                   help="train on D1, then on D2 (Sec. 4)")  # fmt: skip
    t.add_argument(
        "--out", metavar="DIR", help="run folder (default: runs/<grammar>-<model>-n<N>-s<S>)"
    )
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="surprisal (bits) of strings under a trained run's model")
    e.add_argument("run_dir", metavar="RUN_DIR")
    e.add_argument("strings", metavar="STRINGS_FILE", help="one string per line")
    e.add_argument("--per-token", action="store_true",
                   help="also print each predicted token's bits (end token last)")  # fmt: skip
    e.set_defaults(func=cmd_eval)

    d = sub.add_parser("config-doc", help=f"print the run config reference ({REFERENCE})")
    d.add_argument("-o", "--out", metavar="FILE", help="write it to FILE instead")
    d.set_defaults(func=cmd_config_doc)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig of the command line: the file's values, then each ``--set``, then the
    flags' typed values, merged by dotted key into one dict and built once."""
    # lazy: train.config imports train.models, hence torch (seconds), which `grammarlab grammar`
    # and `grammarlab --help` do not need
    from grammarlab.train.config import (
        config_from_dict,
        merge_settings,
        parse_set,
        read_config_file,
    )

    data, where = read_config_file(args.config) if args.config else ({}, {})
    settings: dict[str, Any] = {}
    for item in args.set:
        k, v = parse_set(item)
        settings[k], where[k] = v, {"file": f"--set {item}"}
    for attr, k in FLAGS.items():
        value = getattr(args, attr)
        if value is not None:
            settings[k], where[k] = value, {"file": f"--{attr.replace('_', '-')} {value}"}
    if "grammar" not in data and "grammar" not in settings:
        raise ConfigError(
            "no grammar given", hint="pass CONFIG.toml, --grammar FILE or --set grammar=FILE"
        )
    return config_from_dict(merge_settings(data, settings), where)


def default_out(cfg: TrainConfig) -> Path:
    """runs/<grammar stem>-<model>-n<n_train>-s<seed>[-seq]."""
    model = re.sub(r"[^\w.-]+", "_", Path(cfg.model.preset).name)
    name = f"{Path(cfg.grammar).stem}-{model}-n{cfg.n_train}-s{cfg.seed}"
    return Path("runs") / (name + ("-seq" if cfg.sequential else ""))


def out_from_args(args: argparse.Namespace, cfg: TrainConfig) -> Path:
    """The run folder: ``--out``, else :func:`default_out`; refused when it (or a parent) is a
    file."""
    out = Path(args.out) if args.out else default_out(cfg)
    flag = f"--out {args.out}" if args.out else str(out)
    for p in (out, *out.parents):
        if p.exists() and not p.is_dir():
            what = "is a file" if p == out else f"is inside {p}, which is a file"
            raise ConfigError(f"the run folder {out} {what}", file=flag,
                              hint="--out names a folder (new, or a run to resume)")  # fmt: skip
    return out


def cmd_train(args: argparse.Namespace) -> int:
    from grammarlab.runs.launch import EXIT_CODES, run  # lazy: torch
    from grammarlab.train.distributed import is_main_process

    cfg = config_from_args(args)
    out = out_from_args(args, cfg)
    state = run(cfg, out, quiet=args.quiet)
    if is_main_process():  # under accelerate launch, one line for the run, not one per process
        print(f"{out}: {state}", file=sys.stderr)
    return EXIT_CODES[state]


def cmd_eval(args: argparse.Namespace) -> int:
    from grammarlab.train.restore import score_strings  # lazy: torch

    bits, per_token = score_strings(Path(args.run_dir), read_strings(args.strings), args.strings)
    for b, tok in zip(bits, per_token, strict=True):
        line = _num(b)
        if args.per_token:
            line += "\t" + " ".join(_num(x) for x in tok)
        print(line)
    return 0


def _num(x: float) -> str:
    return "inf" if math.isinf(x) else f"{float(x):.6g}"


def cmd_config_doc(args: argparse.Namespace) -> int:
    from grammarlab.train.config import config_reference

    if args.out:
        output_file(args.out, "--out")
        try:
            write_text_atomic(args.out, config_reference(), follow_symlinks=True)
        except OSError as e:
            raise write_error(args.out, "--out", e) from None
    else:
        sys.stdout.write(config_reference())
    return 0
