"""The exact engine on large grammars: scoring, next-token distributions and per-token surprisals.

Run by hand: ``nice -n 10 .venv/bin/python bench/bench_engine.py`` (writes
bench/results/engine.md and engine.json; a few minutes on a shared 2-core machine).

Two grammars are generated deterministically (seed 0): an LL(1) grammar of 1,000+ rules (every
alternative of a nonterminal starts with its own terminal) and an ambiguous one of 1,000+ rules
(first terminals shared, binary rules without terminals). 10,000 strings are sampled from each
(seed 0). Timed on the same strings, in the same process:

* ``engine``: grammarlab.grammar.inside as shipped (large grammars take the Earley trie path);
* ``chart path``: the same functions forced onto the vectorized CKY + prefix-table path (the
  engine before the Earley path), timed on a subset and scaled to the full set;
* ``pure Python``: a plain CKY inside algorithm written below (dicts, log space), timed on a
  subset and scaled, which also cross-checks the engine's numbers.

The external mark here is genlm-grammar 0.2.0 on the issue's grammars, quoted, not re-run
(bench/bench_genlm.py measures genlm side by side in one process on these grammars and
more): scoring 10,000 strings 0.24-0.70 s (LL(1), 1,078 rules) and 0.78 s (ambiguous, 1,106
rules); next-token distributions of 189 contexts 0.0075 s; per-token surprisals 4.0 s. Our
grammars are not the issue's, so the comparison is of orders of magnitude.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from grammarlab.grammar import inside
from grammarlab.grammar.cnf import compile_cnf
from grammarlab.grammar.inside import next_token_logprobs, string_logprobs, token_surprisals_bits
from grammarlab.grammar.load import loads
from grammarlab.grammar.parse import Grammar
from grammarlab.grammar.sample import sample
from grammarlab.io import write_json_atomic, write_text_atomic

N_STRINGS = 10_000
N_CONTEXTS = 189
N_SUBSET = 500  # strings timed on the slow baselines (scaled to N_STRINGS)
GENLM = {  # seconds, from the engine issue (genlm-grammar 0.2.0, same shared machine)
    "score_ll1": "0.24-0.70",
    "score_ambiguous": "0.78",
    "next_token": "0.0075",
    "token_surprisals": "4.0",
}


def _alternatives(rng: np.random.Generator, a: int, n_nt: int, n_t: int, ll1: bool) -> list:
    m = int(rng.integers(4, 9))
    firsts = rng.choice(n_t, size=m, replace=not ll1)
    kids = rng.choice([0, 1, 2], size=m, p=[0.6, 0.3, 0.1])
    kids[0] = max(kids[0], 1)
    alts = []
    for f, k in zip(firsts, kids, strict=True):
        rhs = [f"'t{f}'"] + [f"N{int(rng.integers(n_nt))}" for _ in range(k)]
        if not alts and a + 1 < n_nt:
            rhs[1] = f"N{a + 1}"  # a chain through every nonterminal keeps all reachable
        if rng.random() < 0.3:
            rhs.append(f"'t{int(rng.integers(n_t))}'")
        if not ll1 and k == 2 and rng.random() < 0.5:
            rhs = rhs[1:]  # A -> B C: no terminal, many ways to split a string
        if rhs not in alts:
            alts.append(rhs)
    return alts


def generated_grammar(ll1: bool, n_nt: int = 180, n_t: int = 40, seed: int = 0) -> Grammar:
    """A recursive, subcritical grammar of about 1,100 rules (spectral radius near 0.8).
    ``ll1``: distinct first terminals per nonterminal (unambiguous, LL(1)); otherwise first
    terminals repeat and some rules are binary without terminals (ambiguous)."""
    rng = np.random.default_rng(seed)
    lines = []
    for a in range(n_nt):
        alts = _alternatives(rng, a, n_nt, n_t, ll1)
        w = rng.dirichlet(np.ones(len(alts)))
        body = " | ".join(f"{' '.join(r)} [{p:.17g}]" for r, p in zip(alts, w, strict=True))
        lines.append(f"N{a} -> {body}")
    return loads("\n".join(lines))


def pure_python_logprobs(g: Grammar, strings: list) -> list[float]:
    """Plain CKY over the compiled binary/lexical/unit form: dicts of log inside weights per
    span, every binary rule tried at every split. The reference for speed and values."""
    c = compile_cnf(g)
    lex = {}
    for t, row in c.tid.items():
        lex[t] = [
            (int(c.lex_nts[j]), float(c.lex[row, j]))
            for j in np.flatnonzero(np.isfinite(c.lex[row]))
        ]
    unit = {}
    rows = {int(a): r for r, a in enumerate(c.u_rows)}
    for b in range(c.k):
        if b in rows or any(c.u_mat[:, b] > 0):
            unit[b] = [(int(a), math.log(c.u_mat[r, b])) for a, r in rows.items() if c.u_mat[r, b]]
            if b not in rows:
                unit[b].append((b, 0.0))
    rules = list(
        zip(c.b_lhs.tolist(), c.b_left.tolist(), c.b_right.tolist(), c.b_logp.tolist(), strict=True)
    )

    def add(cell: dict, a: int, v: float) -> None:
        old = cell.get(a)
        cell[a] = v if old is None else max(old, v) + math.log1p(math.exp(-abs(old - v)))

    def close(cell: dict) -> dict:
        out: dict = {}
        for b, v in cell.items():
            for a, w in unit.get(b, [(b, 0.0)]):
                add(out, a, v + w)
        return out

    res = []
    for s in strings:
        n = len(s)
        ch: dict = {}
        for i, t in enumerate(s):
            cell: dict = {}
            for a, v in lex.get(t, []):
                add(cell, a, v)
            ch[i, i + 1] = close(cell)
        for w in range(2, n + 1):
            for i in range(n - w + 1):
                cell = {}
                for k in range(i + 1, i + w):
                    left, right = ch[i, k], ch[k, i + w]
                    if not left or not right:
                        continue
                    for a, b, d, lp in rules:
                        if b in left and d in right:
                            add(cell, a, lp + left[b] + right[d])
                ch[i, i + w] = close(cell)
        res.append(ch.get((0, n), {}).get(0, -math.inf) if n else -math.inf)
    return res


def timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def chart_path(fn):
    """``fn`` run with the Earley path switched off (the vectorized chart path)."""

    def run():
        old = inside.EARLEY_MIN_RULES
        inside.EARLEY_MIN_RULES = 10**9
        try:
            return fn()
        finally:
            inside.EARLEY_MIN_RULES = old

    return run


def bench_grammar(name: str, g: Grammar) -> dict:
    strings = sample(g, N_STRINGS, np.random.default_rng(0))
    lens = np.array([len(s) for s in strings])
    sub = strings[:N_SUBSET]
    scale = N_STRINGS / N_SUBSET
    compile_cnf(g)  # compile once (cached), outside the timings
    t_score, lp = timed(lambda: string_logprobs(g, strings))
    t_tok, bits = timed(lambda: token_surprisals_bits(g, strings))
    contexts = sorted({s[:k] for s in strings for k in range(len(s))})
    contexts = [contexts[i] for i in np.random.default_rng(0).permutation(len(contexts))]
    contexts = contexts[:N_CONTEXTS]
    t_next, _ = timed(lambda: [next_token_logprobs(g, x) for x in contexts])
    t_next_warm, _ = timed(lambda: [next_token_logprobs(g, x) for x in contexts])
    t_chart, lp_chart = timed(chart_path(lambda: string_logprobs(g, sub)))
    t_chart_tok, _ = timed(chart_path(lambda: token_surprisals_bits(g, sub)))
    t_py, lp_py = timed(lambda: pure_python_logprobs(g, sub))
    diff = max(
        float(np.max(np.abs(lp[:N_SUBSET] - np.array(lp_py)))),
        float(np.max(np.abs(lp[:N_SUBSET] - lp_chart))),
    )
    sums = max(abs(float(b.sum()) + float(x) / math.log(2)) for b, x in zip(bits, lp, strict=True))
    return {
        "grammar": name,
        "n_rules": len(g.rules),
        "n_strings": N_STRINGS,
        "distinct_strings": len(set(strings)),
        "mean_length": float(lens.mean()),
        "max_length": int(lens.max()),
        "tokens": int(lens.sum()),
        "score_s": t_score,
        "token_surprisals_s": t_tok,
        "next_token_contexts": len(contexts),
        "next_token_s": t_next,
        "next_token_warm_s": t_next_warm,
        "chart_path_score_s_scaled": t_chart * scale,
        "chart_path_token_surprisals_s_scaled": t_chart_tok * scale,
        "pure_python_score_s_scaled": t_py * scale,
        "max_abs_diff_nats_vs_references": diff,
        "max_abs_surprisal_sum_minus_total_bits": sums,
    }


def main() -> None:
    load_before = os.getloadavg()
    rows = []
    for name, ll1 in [("LL(1)", True), ("ambiguous", False)]:
        rows.append(bench_grammar(name, generated_grammar(ll1)))
        print(rows[-1], flush=True)
    info = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "niceness": os.nice(0),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
    }
    out = Path(__file__).parent / "results"
    write_json_atomic(out / "engine.json", {"machine": info, "rows": rows, "genlm_s": GENLM})
    lb, la = (", ".join(f"{x:.1f}" for x in info[k]) for k in ("loadavg_before", "loadavg_after"))
    lines = [
        "# The exact engine on large grammars (bench/bench_engine.py)",
        "",
        f"{info['date']}, Python {info['python']}, numpy {info['numpy']}, {info['platform']}, "
        f"{info['cpus']} CPUs shared with other jobs, niceness {info['niceness']}, load average "
        f"{lb} before, {la} after. One call per measurement (wall clock, seconds).",
        "Baselines on the first "
        f"{N_SUBSET} strings, scaled to {N_STRINGS:,}: the vectorized chart path (the engine "
        "before the Earley path) and a plain pure-Python CKY written in the bench.",
        "",
        "| grammar | rules | strings (distinct) | mean / max length | score (s) | chart path "
        "(s, scaled) | pure Python CKY (s, scaled) | genlm (s, quoted) | token surprisals (s) "
        "| chart path (s, scaled) | genlm (s) | next-token, contexts (s): cold, charts cached "
        "| genlm 189 (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        mark = GENLM["score_ll1"] if r["grammar"] == "LL(1)" else GENLM["score_ambiguous"]
        lines.append(
            f"| {r['grammar']} | {r['n_rules']:,} | {r['n_strings']:,} ({r['distinct_strings']:,})"
            f" | {r['mean_length']:.1f} / {r['max_length']} | {r['score_s']:.2f} "
            f"| {r['chart_path_score_s_scaled']:.1f} | {r['pure_python_score_s_scaled']:.1f} "
            f"| {mark} | {r['token_surprisals_s']:.2f} "
            f"| {r['chart_path_token_surprisals_s_scaled']:.1f} | {GENLM['token_surprisals']} "
            f"| {r['next_token_s']:.3f}, {r['next_token_warm_s']:.4f} ({r['next_token_contexts']}) "
            f"| {GENLM['next_token']} |"
        )
    lines += [
        "",
        "Agreement: largest |log P| difference from both baselines "
        + ", ".join(f"{r['max_abs_diff_nats_vs_references']:.1e}" for r in rows)
        + " nats; per-token surprisals sum to the string's surprisal within "
        + ", ".join(f"{r['max_abs_surprisal_sum_minus_total_bits']:.1e}" for r in rows)
        + " bits. genlm's figures are the issue's, on its own grammars and strings.",
    ]
    write_text_atomic(out / "engine.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
