"""``grammarlab train`` and ``grammarlab eval``: thin shells over grammarlab.train.loop /
evaluate."""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

from grammarlab.errors import ConfigError

# flag -> config key (flags are shortcuts for --set key=value)
FLAGS = {
    "grammar": "grammar",
    "model": "model.preset",
    "n_train": "n_train",
    "epochs": "epochs",
    "seed": "seed",
    "lr": "lr",
    "lora_rank": "lora.rank",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser(
        "train",
        help="fine-tune a model on strings of a grammar (or resume an unfinished run folder)",
        description="Train a run. Settings come from CONFIG.toml, then --set key=value, then "
        "the shortcut flags. Running the same command on an unfinished run folder resumes it.",
    )
    t.add_argument("config", nargs="?", metavar="CONFIG.toml", help="run config (TOML)")
    t.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a config key (dotted for tables: model.hidden_size=128); repeatable",
    )
    t.add_argument("--grammar", metavar="FILE", help="grammar file")
    t.add_argument("--model", metavar="PRESET", help="model preset or local model directory")
    t.add_argument("--n-train", type=int, metavar="N", help="training strings")
    t.add_argument("--epochs", type=int, metavar="E", help="epochs (stage 1)")
    t.add_argument("--seed", type=int, metavar="S", help="seed (data and model)")
    t.add_argument("--lr", type=float, metavar="LR", help="learning rate (default: the preset's)")
    t.add_argument("--lora-rank", type=int, metavar="R", help="LoRA rank (0: full fine-tune)")
    t.add_argument("--sequential", action="store_true", help="train on D1, then on D2 (Sec. 4)")
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


def config_from_args(args: argparse.Namespace):
    """The TrainConfig of the command line (file, then --set, then flags)."""
    from grammarlab.train.config import apply_overrides, config_from_dict, load_config

    sets = list(args.set)
    where = {s.partition("=")[0].strip(): {"file": f"--set {s}"} for s in sets}
    for attr, key in FLAGS.items():
        value = getattr(args, attr)
        if value is not None:
            sets.append(f"{key}={value!r}" if isinstance(value, str) else f"{key}={value}")
            where[key] = {"file": f"--{attr.replace('_', '-')} {value}"}
    if args.sequential:
        sets.append("sequential=true")
    if args.config:
        return load_config(args.config, sets, where)
    if not any(s.startswith("grammar=") for s in sets):
        raise ConfigError(
            "no grammar given", hint="pass CONFIG.toml, --grammar FILE or --set grammar=FILE"
        )
    return config_from_dict(apply_overrides({}, sets), where)


def default_out(cfg) -> Path:
    """runs/<grammar stem>-<model>-n<n_train>-s<seed>[-seq]."""
    model = re.sub(r"[^\w.-]+", "_", Path(cfg.model.preset).name)
    name = f"{Path(cfg.grammar).stem}-{model}-n{cfg.n_train}-s{cfg.seed}"
    return Path("runs") / (name + ("-seq" if cfg.sequential else ""))


def cmd_train(args: argparse.Namespace) -> int:
    from grammarlab.runs.launch import EXIT_CODES, run

    cfg = config_from_args(args)
    out = Path(args.out) if args.out else default_out(cfg)
    state = run(cfg, out, quiet=args.quiet)
    print(f"{out}: {state}", file=sys.stderr)
    return EXIT_CODES[state]


def cmd_eval(args: argparse.Namespace) -> int:
    from grammarlab.grammar.strings import read_strings
    from grammarlab.train.restore import score_strings

    bits, per_token = score_strings(Path(args.run_dir), read_strings(args.strings))
    for b, tok in zip(bits, per_token, strict=True):
        line = _num(b)
        if args.per_token:
            line += "\t" + " ".join(_num(x) for x in tok)
        print(line)
    return 0


def _num(x: float) -> str:
    return "inf" if math.isinf(x) else f"{float(x):.6g}"
