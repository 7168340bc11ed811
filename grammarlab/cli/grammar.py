"""``grammarlab grammar check|info|sample|score|tune|new``: thin shells over the grammar engine."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from grammarlab.errors import GrammarError, GrammarlabError
from grammarlab.grammar.entropy import analyze
from grammarlab.grammar.families import hierarchical_grammar, random_grammar
from grammarlab.grammar.inside import surprisal_bits
from grammarlab.grammar.load import load
from grammarlab.grammar.sample import sample
from grammarlab.grammar.strings import format_strings, parse_strings, read_strings
from grammarlab.grammar.tune import tune
from grammarlab.io import write_text_atomic


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("grammar", help="check, inspect, sample, score, tune and create grammars")
    gsub = p.add_subparsers(dest="grammar_command", metavar="SUBCOMMAND")
    gsub.required = True

    c = gsub.add_parser("check", help="validate grammar files; errors as FILE:LINE on stderr")
    c.add_argument("files", nargs="+", metavar="FILE")
    c.set_defaults(func=cmd_check)

    i = gsub.add_parser("info", help="exact entropy, lengths, ambiguity and size of a grammar")
    i.add_argument("file", metavar="FILE")
    i.add_argument("--json", action="store_true", help="print one JSON object")
    i.add_argument(
        "--mc-samples",
        type=int,
        default=20_000,
        help="samples for a Monte Carlo "
        "estimate when the string entropy cannot be computed exactly",
    )
    i.add_argument("--seed", type=int, default=0)
    i.set_defaults(func=cmd_info)

    s = gsub.add_parser("sample", help="sample strings, one per line")
    s.add_argument("file", metavar="FILE")
    s.add_argument("-n", type=int, required=True, help="number of strings")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--unique", action="store_true", help="distinct strings only")
    s.add_argument("-o", "--out", help="output file (default: stdout)")
    s.set_defaults(func=cmd_sample)

    sc = gsub.add_parser("score", help="surprisal -log2 P(string) in bits, one per line")
    sc.add_argument("file", metavar="FILE")
    sc.add_argument("input", nargs="?", metavar="INPUT", help="strings file (default: stdin)")
    sc.set_defaults(func=cmd_score)

    t = gsub.add_parser("tune", help="make a grammar whose exact entropy hits a target")
    t.add_argument("file", metavar="FILE")
    t.add_argument("--target-bits", type=float, required=True, help="target entropy, bits/string")
    t.add_argument("--method", choices=["temper", "skew"], default="temper")
    t.add_argument(
        "--toward",
        metavar="SYMBOL",
        help="skew toward this terminal (default: the first alternative of each nonterminal)",
    )
    t.add_argument("-o", "--out", required=True)
    t.set_defaults(func=cmd_tune)

    n = gsub.add_parser("new", help="write a grammar of the paper's random or hierarchical family")
    n.add_argument("family", choices=["random", "hierarchical"])
    n.add_argument("--alphabet-size", type=int, default=26, help="random: number of letters")
    n.add_argument("--length", type=int, default=64, help="random: string length")
    n.add_argument("--oversample", metavar="SYMBOL", help="random: the oversampled letter")
    n.add_argument("--oversample-prob", type=float, help="random: its probability per position")
    n.add_argument(
        "--target-bits",
        type=float,
        help="random: entropy per string to reach by oversampling (instead of --oversample-prob)",
    )
    n.add_argument("-p", type=float, default=0.5, help="hierarchical: first-rule probability")
    n.add_argument("-o", "--out", required=True)
    n.set_defaults(func=cmd_new)


def cmd_check(args: argparse.Namespace) -> int:
    bad = 0
    for f in args.files:
        try:
            load(f)
        except GrammarError as e:
            print(str(e), file=sys.stderr)
            bad += 1
    if bad:
        print(f"{bad} of {len(args.files)} grammar file(s) invalid", file=sys.stderr)
        return 1
    print(f"{len(args.files)} grammar file(s) valid", file=sys.stderr)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    g = load(args.file)
    report = analyze(g, mc_samples=args.mc_samples, seed=args.seed)
    info = report.to_dict()
    if args.json:
        print(json.dumps(info, allow_nan=False, default=_json_default))
    else:
        print(report.summary())
    return 0


def _json_default(o: object) -> object:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    raise TypeError(f"not JSON serializable: {type(o)}")


def cmd_sample(args: argparse.Namespace) -> int:
    if args.n < 0:
        raise GrammarlabError("-n must be >= 0")
    g = load(args.file)
    strings = sample(g, args.n, np.random.default_rng(args.seed), unique=args.unique)
    text = format_strings(strings)
    if args.out:
        write_text_atomic(Path(args.out), text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    g = load(args.file)
    strings = read_strings(args.input) if args.input else parse_strings(sys.stdin.read())
    bits = surprisal_bits(g, strings)
    sys.stdout.write("".join(("inf" if math.isinf(b) else repr(float(b))) + "\n" for b in bits))
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    g = load(args.file)
    tuned = tune(g, args.target_bits, method=args.method, toward=args.toward)
    write_text_atomic(Path(args.out), tuned.to_text())
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    if args.family == "random":
        g = random_grammar(
            args.alphabet_size,
            args.length,
            oversample=args.oversample,
            oversample_prob=args.oversample_prob,
            target_bits=args.target_bits,
        )
    else:
        g = hierarchical_grammar(args.p)
    write_text_atomic(Path(args.out), g.to_text())
    print(f"wrote {args.out}", file=sys.stderr)
    return 0
