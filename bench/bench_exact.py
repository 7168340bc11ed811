"""Exact-probability throughput: scoring with grammarlab.inside and the cost of entropy analysis.

Run by hand: ``.venv/bin/python bench/bench_exact.py`` (writes bench/results/exact.md and
exact.json). Strings are sampled from each grammar (seed 0) and scored in one call; a rate is
strings per second, best of a few repeats after one warm-up call (which also compiles and
caches the grammar). The machine may be shared; the load average is recorded.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from grammarlab.entropy import analyze, string_entropy_bits
from grammarlab.grammar import Grammar, Rule, loads
from grammarlab.inside import string_logprobs, token_surprisals_bits
from grammarlab.io import write_json_atomic, write_text_atomic
from grammarlab.sample import sample

REPEATS = 3
N_SCORE = 2_000
N_TOKENS = 500

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


def chain(letters: int, length: int) -> Grammar:
    """The paper's uniform random grammar (S -> A1, Ai -> t A(i+1)): 1 + length * letters rules."""
    rules = [Rule("S", ("A1",), 1.0)]
    for i in range(1, length + 1):
        for t in "abcdefghijklmnopqrstuvwxyz"[:letters]:
            rhs, mask = ((t, f"A{i + 1}"), (True, False)) if i < length else ((t,), (True,))
            rules.append(Rule(f"A{i}", rhs, 1.0 / letters, 0, mask))
    return Grammar(tuple(rules))


def best_time(fn, repeats: int = REPEATS) -> float:
    fn()  # warm-up: compile and cache
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    grammars = {
        "hierarchical p=0.5": loads(HIERARCHICAL),
        "random 26 letters, length 64": chain(26, 64),
    }
    rows = []
    for name, g in grammars.items():
        strings = sample(g, N_SCORE, np.random.default_rng(0))
        few = strings[:N_TOKENS]
        t_str = best_time(lambda g=g, s=strings: string_logprobs(g, s))
        t_tok = best_time(lambda g=g, s=few: token_surprisals_bits(g, s))
        fresh = Grammar(g.rules, "fresh")  # a copy with no cached properties or compiled tables
        t0 = time.perf_counter()
        report = analyze(fresh)
        t_an = time.perf_counter() - t0
        t_h = best_time(lambda g=g: string_entropy_bits(g))
        rows.append(
            {
                "grammar": name,
                "n_rules": len(g.rules),
                "string_logprobs_strings_per_s": N_SCORE / t_str,
                "token_surprisals_strings_per_s": len(few) / t_tok,
                "analyze_s": t_an,
                "string_entropy_s": t_h,
                "entropy_bits": report.entropy_bits,
                "entropy_method": report.entropy_method,
            }
        )
        print(rows[-1], flush=True)
    long_g = chain(26, 500)
    long_s = sample(long_g, 20, np.random.default_rng(0))
    t_long = best_time(lambda: string_logprobs(long_g, long_s), 1)
    info = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "n_score": N_SCORE,
        "n_token_surprisals": N_TOKENS,
    }
    result = {
        "machine": info,
        "rows": rows,
        "long_chain_500": {"n_rules": len(long_g.rules), "strings_per_s": len(long_s) / t_long},
    }
    out = Path(__file__).parent / "results"
    write_json_atomic(out / "exact.json", result)
    lines = [
        "# Exact scoring and entropy analysis (bench/bench_exact.py)",
        "",
        f"{info['date']}, Python {info['python']}, numpy {info['numpy']}, {info['platform']}, "
        f"{info['cpus']} CPUs, load average {', '.join(f'{x:.1f}' for x in info['loadavg'])}.",
        "Rates: strings per second, best of 3 after a warm-up (single process, numpy only).",
        "",
        "| grammar | rules | string_logprobs (str/s) | token_surprisals_bits (str/s) "
        "| analyze (s, cold) | string_entropy_bits (s, cached) | entropy (bits) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['grammar']} | {r['n_rules']} | {r['string_logprobs_strings_per_s']:,.0f} "
            f"| {r['token_surprisals_strings_per_s']:,.0f} | {r['analyze_s']:.3f} "
            f"| {r['string_entropy_s']:.3f} | {r['entropy_bits']:.4f} ({r['entropy_method']}) |"
        )
    lo = result["long_chain_500"]
    lines += [
        "",
        f"Long strings: 26-letter chain of length 500 ({lo['n_rules']} rules), string_logprobs "
        f"{lo['strings_per_s']:,.1f} strings/s (one timed call after a warm-up).",
    ]
    write_text_atomic(out / "exact.md", "\n".join(lines) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
