"""Sampling throughput: grammarlab.grammar.sample against a plain recursive sampler over nltk's
PCFG.

Run by hand: ``.venv/bin/python bench/bench_sample.py`` (writes bench/results/sample.md and
sample.json). Two of ours, each against the same nltk baseline:

* tuple API: ``sample(g, n, rng)``, a list of tuples of terminal strings, as the baseline returns;
* array API: ``sample_ids(g, n, rng)``, an int32 [n, length] array of terminal indices plus
  lengths and derivation log probabilities (no Python object per token).

The machine is shared, so the three samplers are timed in interleaved rounds (each round times
each once) and the medians over rounds are reported, with per-round speedups and the load average
(``os.getloadavg()``) before and after. Rates are per second, so the samplers may use different
numbers of strings.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import nltk
import numpy as np
from nltk.grammar import Nonterminal

from grammarlab.grammar.families import hierarchical_grammar, random_grammar
from grammarlab.grammar.parse import Grammar
from grammarlab.grammar.sample import sample, sample_ids
from grammarlab.io import write_json_atomic, write_text_atomic

OURS_N = 20_000
NLTK_N = 1_000
ROUNDS = 7


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


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def bench(name: str, g: Grammar, text: str) -> dict:
    """ROUNDS interleaved rounds of (tuple API, array API, nltk); medians over rounds."""
    draw = nltk_sampler(text)
    ours = sample(g, 1000, np.random.default_rng(0))  # compile and cache the tables
    ids, lengths, _ = sample_ids(g, 1000, np.random.default_rng(0))
    assert [tuple(g.terminals[i] for i in r[:k]) for r, k in zip(ids, lengths, strict=True)] == ours
    load_before = os.getloadavg()[0]
    rounds = []
    for k in range(ROUNDS):
        t_tup, strings = timed(lambda k=k: sample(g, OURS_N, np.random.default_rng(k)))
        t_arr, (_ids, lens, _lp) = timed(
            lambda k=k: sample_ids(g, OURS_N, np.random.default_rng(k))
        )
        t_nltk, base = timed(lambda k=k: draw(NLTK_N, random.Random(k)))
        rounds.append(
            {
                "tuple_strings_per_s": OURS_N / t_tup,
                "tuple_tokens_per_s": sum(map(len, strings)) / t_tup,
                "array_strings_per_s": OURS_N / t_arr,
                "array_tokens_per_s": int(lens.sum()) / t_arr,
                "nltk_strings_per_s": NLTK_N / t_nltk,
                "nltk_tokens_per_s": sum(map(len, base)) / t_nltk,
                "mean_length_nltk": float(np.mean([len(s) for s in base])),
            }
        )
        rounds[-1]["tuple_speedup"] = rounds[-1]["tuple_strings_per_s"] / (NLTK_N / t_nltk)
        rounds[-1]["array_speedup"] = rounds[-1]["array_strings_per_s"] / (NLTK_N / t_nltk)
    row = {"grammar": name, "ours_strings": OURS_N, "nltk_strings": NLTK_N, "rounds": rounds}
    row |= {f"median_{k}": statistics.median(r[k] for r in rounds) for k in rounds[0]}
    row |= {"load_average_1m_before": load_before, "load_average_1m_after": os.getloadavg()[0]}
    print(
        f"{name}: tuple API {row['median_tuple_strings_per_s']:,.0f} strings/s "
        f"({row['median_tuple_speedup']:.0f}x), array API "
        f"{row['median_array_strings_per_s']:,.0f} strings/s ({row['median_array_speedup']:.0f}x), "
        f"nltk {row['median_nltk_strings_per_s']:,.0f} strings/s; load {load_before:.2f}",
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
    # The paper's grammars as grammarlab writes them; nltk gets the same rules (no comments).
    hier, rand = hierarchical_grammar(0.5), random_grammar(26, 64)
    rows = [
        bench("hierarchical p=0.5 (length 72)", hier, hier.to_text(header="")),
        bench("random uniform, 26 letters, length 64", rand, rand.to_text(header="")),
    ]
    out = Path(__file__).parent / "results"
    write_json_atomic(out / "sample.json", {"machine": machine, "results": rows})
    lines = [
        "# Sampling throughput",
        "",
        "`.venv/bin/python bench/bench_sample.py`, one run: grammarlab against a recursive sampler",
        "over `nltk.PCFG` (`random.choices` weighted by rule probability, tuples of tokens), timed",
        f"in {ROUNDS} interleaved rounds ({OURS_N:,} strings for ours, {NLTK_N:,} for nltk per "
        "round); medians over rounds. Speedup: the median of the per-round ratios of strings/s.",
        "*Tuple API*: `sample()` returns a list of tuples of token strings, like the baseline.",
        "*Array API*: `sample_ids()` returns an int32 array of token indices [n, length], the",
        "lengths and the derivation log probabilities; no Python object per token.",
        "",
        "| grammar | API | ours strings/s | ours tokens/s | nltk strings/s | nltk tokens/s "
        "| speedup | load avg (1 min) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        for api in ("tuple", "array"):
            lines.append(
                f"| {r['grammar']} | {api} | {r[f'median_{api}_strings_per_s']:,.0f} "
                f"| {r[f'median_{api}_tokens_per_s']:,.0f} | {r['median_nltk_strings_per_s']:,.0f} "
                f"| {r['median_nltk_tokens_per_s']:,.0f} | {r[f'median_{api}_speedup']:.0f}x "
                f"| {r['load_average_1m_before']:.2f} -> {r['load_average_1m_after']:.2f} |"
            )
    lines += ["", "Machine: " + json.dumps(machine), ""]
    write_text_atomic(out / "sample.md", "\n".join(lines))
    print(f"wrote {out / 'sample.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
