"""``grammarlab grammar check|info|sample|score|tune|new``: thin shells over the grammar engine.

User mistakes are :class:`GrammarlabError` (printed by :mod:`grammarlab.cli` as one ``error:``
line plus a hint, exit status 2); bad flag values are refused by argparse (also exit status 2).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from grammarlab.cli.outputs import output_file
from grammarlab.errors import GrammarError, GrammarlabError
from grammarlab.grammar import formal
from grammarlab.grammar.dataset import FORMATS, batch_strings, jsonl_chunks, write_parquet
from grammarlab.grammar.entropy import analyze
from grammarlab.grammar.families import hierarchical_grammar, random_grammar
from grammarlab.grammar.formal import MC_SAMPLES, MC_SEED
from grammarlab.grammar.inside import surprisal_bits
from grammarlab.grammar.load import load
from grammarlab.grammar.parse import Grammar
from grammarlab.grammar.sample import sample, sample_batches
from grammarlab.grammar.strings import decode_strings, encode_lines, format_strings, read_strings
from grammarlab.grammar.tune import (
    LONG_EXPECTED_LENGTH,
    QUANTITIES,
    MonteCarloBudget,
    length_warning,
    tune,
)
from grammarlab.io import STDOUT, write_atomic

# `score` names at most this many out-of-language strings on stderr (then a count)
MAX_NAMED = 10
# `sample --unique` keeps every string in memory (about 1 KB each for 64 tokens): at most this many
MAX_UNIQUE = 1_000_000

EXIT_CODES = """exit status:
  0    success
  1    `check`: some grammar file is invalid (each problem printed as FILE:LINE: error: ...)
  2    a user error: bad input file, flag value or request (one `error:` line and a hint)
  130  interrupted"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "grammar",
        help="check, inspect, sample, score, tune and create grammars",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    gsub = p.add_subparsers(dest="grammar_command", metavar="SUBCOMMAND")
    gsub.required = True

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return gsub.add_parser(
            name, help=help, epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter
        )

    c = command("check", "validate grammar files; errors as FILE:LINE on stderr")
    c.add_argument("files", nargs="+", metavar="FILE")
    c.set_defaults(func=cmd_check)

    i = command("info", "exact entropy, lengths, ambiguity and size of a grammar")
    i.add_argument("file", metavar="FILE")
    i.add_argument("--json", action="store_true", help="print one JSON object")
    i.add_argument(
        "--mc-samples",
        type=_int_at_least(2),
        default=20_000,
        help="samples for a Monte Carlo "
        "estimate when the string entropy cannot be computed exactly",
    )
    i.add_argument("--seed", type=_int_at_least(0), default=0)
    i.set_defaults(func=cmd_info)

    s = command("sample", "sample strings, one per line")
    s.add_argument("file", metavar="FILE")
    s.add_argument(
        "-n",
        type=_int_at_least(0),
        required=True,
        help="number of strings; written in batches, so memory stays constant for any -n",
    )
    s.add_argument("--seed", type=_int_at_least(0), default=0)
    s.add_argument(
        "--unique",
        action="store_true",
        help="distinct strings only; keeps every string in memory (not constant-memory), so -n "
        f"is limited to {MAX_UNIQUE:,}",
    )
    s.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text: one string per line; jsonl / parquet: one row per string with its tokens, "
        "length and exact surprisal in bits (parquet needs -o and the data extra)",
    )
    s.add_argument("-o", "--out", help="output file, written atomically (default: stdout)")
    s.set_defaults(func=cmd_sample)

    sc = command("score", "surprisal -log2 P(string) in bits, one per line")
    sc.add_argument("file", metavar="FILE")
    sc.add_argument("input", nargs="?", metavar="INPUT", help="strings file (default: stdin)")
    sc.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when a string is not in the grammar's language (each is named on stderr "
        "either way; its surprisal is printed as inf)",
    )
    sc.set_defaults(func=cmd_score)

    t = command("tune", "make a grammar whose entropy (exact or estimated) hits a target")
    t.add_argument("file", metavar="FILE")
    t.add_argument(
        "--target-bits",
        type=float,
        required=True,
        help="target entropy in bits (per string; per derivation for --entropy derivational)",
    )
    t.add_argument("--method", choices=["temper", "skew"], default="temper")
    t.add_argument(
        "--toward",
        metavar="SYMBOL",
        help="skew toward this terminal (default: the first alternative of each nonterminal)",
    )
    t.add_argument(
        "--entropy",
        choices=QUANTITIES,
        default="string",
        help="the quantity brought to the target: string (the exact string entropy; refused "
        "where it cannot be computed exactly), derivational (exact, bits per derivation, an "
        "upper bound of the string entropy) or monte-carlo (the seeded estimate of the string "
        "entropy, reached within 0.5 standard errors; the header states it and its error)",
    )
    t.add_argument(
        "--mc-samples",
        type=_int_at_least(2),
        default=MonteCarloBudget.samples,
        help="--entropy monte-carlo: samples per estimate (default: %(default)s)",
    )
    t.add_argument(
        "--seed",
        type=_int_at_least(0),
        default=0,
        help="--entropy monte-carlo: the sampler's seed (default: %(default)s)",
    )
    t.add_argument(
        "--warn-length",
        type=float,
        default=LONG_EXPECTED_LENGTH,
        metavar="TOKENS",
        help="warn when the tuned grammar's expected string length exceeds this many tokens "
        "(default: %(default)g, the tiny models' context)",
    )
    t.add_argument("-o", "--out", required=True)
    t.set_defaults(func=cmd_tune)

    n = command(
        "new",
        "write a grammar: the paper's random or hierarchical family, or a formal language "
        "(Dyck-k, a^n b^n, marked palindromes, arithmetic expressions, toy English)",
    )
    n.add_argument("family", choices=["random", "hierarchical", *FORMAL])
    n.add_argument("--alphabet-size", type=int,
                   help="random: number of symbols (default 26); palindrome: letters before the "
                   "centre marker (default 2)")  # fmt: skip
    n.add_argument("--symbols", choices=("auto", "letters", "indexed"), default="auto",
                   help="random: terminal names: letters a..z (at most 26), indexed t0, t1, ...; "
                   "auto: letters up to 26 symbols, else indexed")  # fmt: skip
    n.add_argument("--length", type=int, default=64, help="random: string length")
    n.add_argument("--oversample", metavar="SYMBOL", help="random: the oversampled letter")
    n.add_argument("--oversample-prob", type=float, help="random: its probability per position")
    n.add_argument(
        "--target-bits",
        type=float,
        help="random: entropy per string to reach by oversampling (instead of --oversample-prob)",
    )
    n.add_argument("-p", type=float,
                   help="hierarchical: first-rule probability (default 0.5); dyck: probability "
                   "of another pair and of a nested one (0.4); anbn: of another a..b (0.8); "
                   "palindrome: of another letter pair (0.8); english: of a PP (0.25)")  # fmt: skip
    n.add_argument("-k", type=int, default=2, help="dyck: bracket pairs")
    n.add_argument("--depth", type=int, help="dyck: bound on the nesting depth")
    n.add_argument("--empty", action="store_true",
                   help="dyck: the textbook grammar with an empty alternative (the empty string "
                   "is in the language)")  # fmt: skip
    n.add_argument("--variables", type=int, default=3, help="expr: variables a, b, ...")
    n.add_argument("--add", type=float, default=0.3, help="expr: probability of E -> E '+' T")
    n.add_argument("--mul", type=float, default=0.3, help="expr: probability of T -> T '*' F")
    n.add_argument("--paren", type=float, default=0.2, help="expr: probability of F -> '(' E ')'")
    n.add_argument("--mc-samples", type=_int_at_least(2), default=MC_SAMPLES,
                   help="formal languages: Monte Carlo samples behind the header's entropy "
                   "estimate where it is not exact")  # fmt: skip
    n.add_argument("--seed", type=_int_at_least(0), default=MC_SEED,
                   help="formal languages: its seed")  # fmt: skip
    n.add_argument("-o", "--out", required=True)
    n.set_defaults(func=cmd_new)


def _int_at_least(lo: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``lo`` (argparse turns the error into one line, exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {lo}, got {text!r}") from None
        if value < lo:
            raise argparse.ArgumentTypeError(f"expected an integer >= {lo}, got {value}")
        return value

    return parse


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
    # Counts of strings and derivations are exact integers with up to thousands of digits for long
    # grammars; Python refuses to print more than 4,300 digits unless told (a guard against
    # parsing untrusted text, not needed for numbers we computed).
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        if args.json:
            text = json.dumps(report.to_dict(), allow_nan=False, default=_json_default)
        else:
            text = report.summary()
    finally:
        sys.set_int_max_str_digits(limit)
    write_chunks(None, "", [(text + "\n").encode()])
    return 0


def _json_default(o: object) -> object:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    raise TypeError(f"not JSON serializable: {type(o)}")


def cmd_sample(args: argparse.Namespace) -> int:
    _check_out(args.out, "--out")
    g = load(args.file)
    rng = np.random.default_rng(args.seed)
    if args.unique:
        if args.n > MAX_UNIQUE:
            raise GrammarlabError(
                f"-n {args.n:,} with --unique: distinct strings are all kept in memory, so at "
                f"most {MAX_UNIQUE:,} are allowed",
                file="--unique",
                hint="sample without --unique (constant memory) and drop duplicates afterwards, "
                "e.g. with `sort -u`, or ask for fewer strings",
            )
        if args.format == "text":
            chunks: Iterable[bytes] = [format_strings(sample(g, args.n, rng, unique=True)).encode()]
            return write_chunks(args.out, "--out", chunks) or 0
        batches: Iterable[list] = [sample(g, args.n, rng, unique=True)]
    elif args.format == "text":  # batch by batch: the same strings as sample(), constant memory
        chunks = (encode_lines(g.terminals, ids, n) for ids, n in sample_batches(g, args.n, rng))
        return write_chunks(args.out, "--out", chunks) or 0
    else:
        batches = (batch_strings(g, ids, n) for ids, n in sample_batches(g, args.n, rng))
    if args.format == "jsonl":
        write_chunks(args.out, "--out", jsonl_chunks(g, batches))
        return 0
    parquet_out(args.out)
    write_file(args.out, "--out", lambda tmp: write_parquet(tmp, g, batches))
    return 0


def parquet_out(out: str | None) -> None:
    """Refuse --format parquet without -o (a binary file) or without pyarrow, before any work."""
    if out is None:
        raise GrammarlabError(
            "--format parquet writes a binary file: give it with -o",
            file="--format",
            hint="e.g. -o samples.parquet, or --format jsonl to stream to stdout",
        )
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise GrammarlabError(
            "--format parquet needs the package pyarrow",
            file="--format",
            hint="pip install 'grammarlab[data]' (or pip install pyarrow), or use --format jsonl",
        ) from None


def write_chunks(out: str | None, flag: str, chunks: Iterable[bytes]) -> None:
    """Write ``chunks`` to the file ``out`` atomically (``flag`` names it in errors), or to
    stdout when it is None or ``-``."""
    if out is None or out == STDOUT:
        stream = sys.stdout.buffer
        try:
            for chunk in chunks:
                stream.write(chunk)
            stream.flush()
        except BrokenPipeError:
            # the reader left (e.g. `| head`): stop quietly (the CLI exits 0), and keep Python's
            # exit-time flush of stdout from reporting the broken pipe again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise
        except OSError as e:  # e.g. a full disk behind a redirection
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise GrammarlabError(
                f"cannot write the output: {e.strerror}",
                file="<stdout>",
                hint="free some space, or send the output elsewhere",
            ) from None
        return

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            for chunk in chunks:
                f.write(chunk)

    write_file(out, flag, write)


def write_file(out: str, flag: str, write: Callable[[Path], None]) -> None:
    """``write`` the file named by the flag ``flag`` atomically; a path that cannot be written is
    a user error naming the flag."""
    _check_out(out, flag)
    try:
        write_atomic(out, write, follow_symlinks=True)  # -o LINK: into the file it names
    except OSError as e:
        raise GrammarlabError(
            f"cannot write {out}: {e.strerror}",
            file=flag,
            hint=f"{flag} must name a file in a folder you can write to",
        ) from None


def _check_out(out: str | None, flag: str) -> None:
    """Refuse an output path that cannot be written (a folder, read-only) or is a run folder's
    own file, before any work is done."""
    if out is not None:
        output_file(out, flag)


def _write_text(out: str, flag: str, text: str) -> None:
    write_file(out, flag, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def cmd_score(args: argparse.Namespace) -> int:
    g = load(args.file)
    if args.input:
        strings = read_strings(args.input)
    else:
        if sys.stdin is None or sys.stdin.closed:
            raise GrammarlabError(
                "no INPUT file given and stdin is closed",
                file="INPUT",
                hint="give a strings file, or pipe strings into the command (one per line)",
            )
        strings = decode_strings(sys.stdin.buffer.read(), "<stdin>")
    try:
        bits = surprisal_bits(g, strings)
    except MemoryError:
        longest = max(map(len, strings), default=0)
        raise GrammarlabError(
            f"scoring needs more memory than this machine has (longest string: {longest:,} "
            "tokens); exact probabilities of a general grammar need memory growing with the "
            "square of the string length",
            file=args.input or "<stdin>",
            hint="score shorter strings, or split the input",
        ) from None
    # + 0.0 turns the -0.0 of a certain string into 0.0
    lines = (("inf" if math.isinf(b) else repr(float(b) + 0.0)) + "\n" for b in bits)
    write_chunks(None, "", ["".join(lines).encode()])
    outside = np.flatnonzero(np.isinf(bits))
    where = args.input or "<stdin>"
    for i in outside[:MAX_NAMED]:  # strings files are read one string per line: i + 1 is its line
        shown = (
            " ".join(strings[i]) if len(strings[i]) <= 20 else " ".join(strings[i][:20]) + " ..."
        )
        print(f"{where}:{i + 1}: warning: not in the language of {args.file}: {shown!r}",
              file=sys.stderr)  # fmt: skip
    if len(outside) > MAX_NAMED:
        print(f"{where}: warning: {len(outside) - MAX_NAMED:,} more strings not in the language",
              file=sys.stderr)  # fmt: skip
    return 1 if args.strict and len(outside) else 0


def cmd_tune(args: argparse.Namespace) -> int:
    _check_out(args.out, "--out")
    g = load(args.file)
    mc = MonteCarloBudget(samples=args.mc_samples, seed=args.seed)
    tuned = tune(g, args.target_bits, method=args.method, toward=args.toward,
                 quantity=args.entropy, mc=mc)  # fmt: skip
    _write_text(args.out, "--out", tuned.to_text())
    print(f"wrote {args.out}", file=sys.stderr)
    warning = length_warning(tuned, args.warn_length)
    if warning:
        print(f"{args.out}: warning: {warning} (bound set by --warn-length)", file=sys.stderr)
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    _check_out(args.out, "--out")
    if args.family == "random":
        g = random_grammar(
            26 if args.alphabet_size is None else args.alphabet_size,
            args.length,
            oversample=args.oversample,
            oversample_prob=args.oversample_prob,
            target_bits=args.target_bits,
            symbols=args.symbols,
        )
    elif args.family == "hierarchical":
        g = hierarchical_grammar(0.5 if args.p is None else args.p)
    else:
        g = FORMAL[args.family](args)
    _write_text(args.out, "--out", g.to_text())
    print(f"wrote {args.out}", file=sys.stderr)
    warning = length_warning(g)
    if warning:
        print(f"{args.out}: warning: {warning}", file=sys.stderr)
    return 0


def _p(args: argparse.Namespace, default: float) -> float:
    return default if args.p is None else args.p


def _mc(args: argparse.Namespace) -> dict:
    return {"mc_samples": args.mc_samples, "seed": args.seed}


# family -> the generator of grammarlab.grammar.formal called with the `new` flags
FORMAL: dict[str, Callable[[argparse.Namespace], Grammar]] = {
    "dyck": lambda a: formal.dyck_grammar(a.k, _p(a, 0.4), a.depth, a.empty, **_mc(a)),
    "anbn": lambda a: formal.anbn_grammar(_p(a, 0.8), **_mc(a)),
    "palindrome": lambda a: formal.palindrome_grammar(
        2 if a.alphabet_size is None else a.alphabet_size, _p(a, 0.8), **_mc(a)
    ),
    "expr": lambda a: formal.expr_grammar(a.variables, a.add, a.mul, a.paren, **_mc(a)),
    "english": lambda a: formal.english_grammar(_p(a, 0.25), **_mc(a)),
}
