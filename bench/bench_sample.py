"""Sampling throughput: grammarlab.sample against a plain recursive sampler over nltk's PCFG.

Run by hand: ``.venv/bin/python bench/bench_sample.py`` (writes bench/results/sample.md and
sample.json). Both samplers return strings as tuples of terminal strings; rates are normalised
per second, so the two may use different numbers of strings. Each timing is the best of a few
repeats (the machine may be shared; the load average is recorded).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import random
import string
import sys
import time
from collections.abc import Callable
from pathlib import Path

import nltk
import numpy as np
from nltk.grammar import Nonterminal

from grammarlab.grammar import Grammar, loads
from grammarlab.io import write_json_atomic, write_text_atomic
from grammarlab.sample import sample

OURS_N = 20_000
NLTK_N = 1_000
REPEATS = 5

# Appendix A.2 of seed 002 with p = 0.5.
HIERARCHICAL = """\
S -> A16 [1.0]
A16 -> A15 A14 A13 [0.5] | A13 A15 A14 [0.5]
A13 -> A11 A12 [0.5] | A12 A11 [0.5]
A14 -> A11 A10 A12 [0.5] | A10 A11 A12 [0.5]
A15 -> A12 A11 A10 [0.5] | A11 A12 A10 [0.5]
A10 -> A7 A9 A8 [0.5] | A9 A8 A7 [0.5]
A11 -> A8 A7 A9 [0.5] | A7 A8 A9 [0.5]
A12 -> A8 A9 A7 [0.5] | A9 A7 A8 [0.5]
A7 -> '3' '1' '2' [0.5] | '1' '2' '3' [0.5]
A8 -> '6' '5' '4' [0.5] | '6' '4' '5' [0.5]
A9 -> '9' '8' '7' [0.5] | '8' '7' '9' [0.5]
"""


def random_chain(alphabet_size: int = 26, length: int = 64) -> str:
    """The paper's uniform random grammar as a chain S -> A1; Ai -> 'x' A(i+1); A64 -> 'x'."""
    letters = string.ascii_lowercase[:alphabet_size]
    p = repr(1 / alphabet_size)
    lines = ["S -> A1 [1.0]"]
    for i in range(1, length + 1):
        nxt = f" A{i + 1}" if i < length else ""
        lines.append(f"A{i} -> " + " | ".join(f"'{c}'{nxt} [{p}]" for c in letters))
    return "\n".join(lines) + "\n"


def nltk_sampler(text: str) -> Callable[[int, random.Random], list[tuple[str, ...]]]:
    """A straightforward recursive sampler over nltk.PCFG (nltk has none of its own)."""
    body = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
    pcfg = nltk.PCFG.fromstring(body)

    def one(rnd: random.Random) -> tuple[str, ...]:
        out: list[str] = []

        def expand(sym: Nonterminal) -> None:
            prods = pcfg.productions(lhs=sym)
            prod = rnd.choices(prods, weights=[p.prob() for p in prods])[0]
            for s in prod.rhs():
                if isinstance(s, Nonterminal):
                    expand(s)
                else:
                    out.append(s)

        expand(pcfg.start())
        return tuple(out)

    return lambda n, rnd: [one(rnd) for _ in range(n)]


def best_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def bench(name: str, g: Grammar, text: str) -> dict:
    sample(g, 100, np.random.default_rng(0))  # compile and cache the tables
    t_ours, ours = best_time(lambda: sample(g, OURS_N, np.random.default_rng(1)), REPEATS)
    draw = nltk_sampler(text)
    t_nltk, base = best_time(lambda: draw(NLTK_N, random.Random(1)), max(1, REPEATS // 2))
    tok_ours = sum(len(s) for s in ours) / t_ours
    tok_nltk = sum(len(s) for s in base) / t_nltk
    row = {
        "grammar": name,
        "ours_strings": OURS_N,
        "ours_seconds": t_ours,
        "ours_strings_per_s": OURS_N / t_ours,
        "ours_tokens_per_s": tok_ours,
        "nltk_strings": NLTK_N,
        "nltk_seconds": t_nltk,
        "nltk_strings_per_s": NLTK_N / t_nltk,
        "nltk_tokens_per_s": tok_nltk,
        "speedup": (OURS_N / t_ours) / (NLTK_N / t_nltk),
        "mean_length_ours": float(np.mean([len(s) for s in ours])),
        "mean_length_nltk": float(np.mean([len(s) for s in base])),
    }
    print(
        f"{name}: ours {row['ours_strings_per_s']:,.0f} strings/s ({tok_ours:,.0f} tokens/s), "
        f"nltk {row['nltk_strings_per_s']:,.0f} strings/s -> {row['speedup']:.0f}x",
        flush=True,
    )
    return row


def main() -> None:
    machine = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "nltk": nltk.__version__,
    }
    chain = random_chain()
    rows = [
        bench("hierarchical p=0.5 (length 72)", loads(HIERARCHICAL), HIERARCHICAL),
        bench("random uniform, 26 letters, length 64", loads(chain), chain),
    ]
    out = Path(__file__).parent / "results"
    write_json_atomic(out / "sample.json", {"machine": machine, "results": rows})
    lines = [
        "# Sampling throughput",
        "",
        "`.venv/bin/python bench/bench_sample.py`: `grammarlab.sample.sample` (vectorized numpy)",
        "against a recursive sampler over `nltk.PCFG` (`random.choices` weighted by rule",
        f"probability), same run. Best of {REPEATS} repeats for ours ({OURS_N:,} strings), of "
        f"{max(1, REPEATS // 2)} for nltk ({NLTK_N:,} strings); both return tuples of tokens.",
        "",
        "| grammar | ours strings/s | ours tokens/s | nltk strings/s | nltk tokens/s | speedup |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['grammar']} | {r['ours_strings_per_s']:,.0f} | {r['ours_tokens_per_s']:,.0f} "
            f"| {r['nltk_strings_per_s']:,.0f} | {r['nltk_tokens_per_s']:,.0f} "
            f"| {r['speedup']:.0f}x |"
        )
    lines += ["", "Machine: " + json.dumps(machine), ""]
    write_text_atomic(out / "sample.md", "\n".join(lines))
    print(f"wrote {out / 'sample.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
