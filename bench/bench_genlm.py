"""grammarlab's exact engine side by side with genlm-grammar 0.2.0, in one process.

Run by hand (genlm-grammar is not a dependency of grammarlab; install it into a private venv):

    python3 -m venv GENLM_VENV && GENLM_VENV/bin/pip install genlm_grammar-0.2.0-py3-none-any.whl
    OMP_NUM_THREADS=1 PYTHONPATH=. nice -n 5 GENLM_VENV/bin/python bench/bench_genlm.py

(grammarlab's grammar stage needs only numpy). Writes bench/results/genlm.md and genlm.json.
Without genlm installed it times grammarlab alone and says so.

Grammars: the LL(1) and ambiguous ~1,000-rule grammars of bench/bench_engine.py, the paper's
hierarchical grammar (p = 0.75, 72-token strings), and the field's small grammars, written
inline: Dyck-2 with the empty rule, a^n b^n, left-recursive expressions, marked palindromes and
a toy English grammar with PP attachment ambiguity. For each, 10,000 strings are sampled
(seed 0) and timed, every measurement repeated ``REPEATS`` times with fresh models, the ratio
genlm / grammarlab taken within each repeat:

* score: log P of the 10,000 strings. grammarlab: ``inside.string_logprobs`` in one call;
  genlm: ``Earley(cfg)(x)`` per string (its charts cached by prefix, like our trie).
* next-token: the distribution after each of the 200 longest distinct strings (as prefixes),
  cold (empty chart caches) and cached (the same 200 queries again). grammarlab:
  ``inside.next_token_logprobs``; genlm: ``EarleyLM(cfg).p_next``.

Model construction is timed separately (grammarlab compiles its tables once per grammar and
caches them; genlm's ``EarleyLM`` builds a prefix grammar).

genlm's agenda (``CFG.agenda``, the fixed point behind ``EarleyLM``'s prefix grammar) stops after
``maxiter`` updates per block, 100,000 by default; with the default its next-token values are
wrong on grammars of a few hundred nonterminals, so the bench sets ``maxiter = GENLM_MAXITER``
(>= 1e6) and checks genlm's values against ours (largest absolute difference of a probability
and of a log string probability); where they still disagree, the table says so.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import generated_grammar  # noqa: E402

from grammarlab.grammar import inside  # noqa: E402
from grammarlab.grammar.families import hierarchical_grammar  # noqa: E402
from grammarlab.grammar.inside import END, next_token_logprobs, string_logprobs  # noqa: E402
from grammarlab.grammar.load import loads  # noqa: E402
from grammarlab.grammar.parse import Grammar  # noqa: E402
from grammarlab.grammar.sample import sample  # noqa: E402
from grammarlab.io import write_json_atomic, write_text_atomic  # noqa: E402

N_STRINGS = 10_000
N_CONTEXTS = 200
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
GENLM_MAXITER = 1_000_000
SWEEP_MAXITER = (100_000, 1_000_000, 10_000_000)  # genlm's agenda bound, on the ambiguous grammar
N_SWEEP_CONTEXTS = N_CONTEXTS

FIELD = {
    "Dyck-2 (empty rule)": "S -> '(' S ')' S [0.2] | '[' S ']' S [0.2] | [0.6]",
    "a^n b^n": "S -> 'a' S 'b' [0.8] | 'a' 'b' [0.2]",
    "expressions (left-recursive)": (
        "E -> E '+' T [0.3] | T [0.7]\nT -> T '*' F [0.3] | F [0.7]\n"
        "F -> '(' E ')' [0.2] | 'a' [0.3] | 'b' [0.25] | 'c' [0.25]"
    ),
    "marked palindromes": "S -> 'a' S 'a' [0.4] | 'b' S 'b' [0.4] | 'c' [0.2]",
    "toy English (PP attachment)": (
        "S -> NP VP [1.0]\nVP -> V NP [0.75] | VP PP [0.25]\nNP -> Det N [0.75] | NP PP [0.25]\n"
        "PP -> P NP [1.0]\nDet -> 'the' [0.5] | 'a' [0.5]\n"
        "N -> 'man' [0.25] | 'dog' [0.25] | 'telescope' [0.25] | 'park' [0.25]\n"
        "V -> 'saw' [0.5] | 'walked' [0.5]\nP -> 'with' [0.5] | 'in' [0.5]"
    ),
}


def grammars() -> dict[str, Grammar]:
    out = {
        "LL(1) generated": generated_grammar(True),
        "ambiguous generated": generated_grammar(False),
        "hierarchical p=0.75": hierarchical_grammar(0.75),
    }
    out.update({name: loads(src) for name, src in FIELD.items()})
    return out


class Genlm:
    """genlm-grammar's view of one grammar: nonterminals renamed X0.. (start X0) and terminals
    t0.. (genlm tells terminals by a lower-case first letter)."""

    def __init__(self, g: Grammar, maxiter: int = GENLM_MAXITER) -> None:
        from genlm.grammar import CFG, Float

        set_maxiter(maxiter)
        nts = [g.start, *(a for a in g.nonterminals if a != g.start)]
        nid = {a: f"X{i}" for i, a in enumerate(nts)}
        self.tid = {t: f"t{i}" for i, t in enumerate(g.terminals)}
        lines = []
        for r in g.rules:
            body = " ".join(
                self.tid[s] if m else nid[s] for s, m in zip(r.rhs, r.terminal_mask, strict=True)
            )
            lines.append(f"{r.prob!r}: {nid[r.lhs]} -> {body}")
        self.cfg = CFG.from_string("\n".join(lines), Float, start="X0")
        self.back = {v: k for k, v in self.tid.items()}

    def encode(self, s) -> list[str]:
        return [self.tid[x] for x in s]

    def score(self, strings) -> np.ndarray:
        from genlm.grammar import Earley

        m = Earley(self.cfg)
        with np.errstate(divide="ignore"):
            return np.log(np.array([float(m(self.encode(s))) for s in strings]))

    def lm(self):
        from genlm.grammar import EarleyLM

        return EarleyLM(self.cfg)

    def p_next(self, lm, ctx, names: tuple[str, ...]) -> np.ndarray:
        got = lm.p_next(self.encode(ctx))
        where = {n: i for i, n in enumerate(names)}
        out = np.zeros(len(names))
        for k, v in got.items():
            out[where[self.back.get(k, END)]] = float(v)
        return out


def set_maxiter(maxiter: int) -> None:
    """Set the default ``maxiter`` of genlm's ``CFG.agenda(self, tol=1e-12, maxiter=100_000)``,
    which ``EarleyLM`` calls without passing it."""
    from genlm.grammar.cfg import CFG

    defaults = list(CFG.agenda.__defaults__)
    defaults[-1] = maxiter
    CFG.agenda.__defaults__ = tuple(defaults)


def maxiter_sweep(g: Grammar) -> list[dict]:
    """genlm's next-token values against ours at several agenda bounds: the build time of
    ``EarleyLM`` and the largest absolute difference of a probability over the first
    ``N_SWEEP_CONTEXTS`` of the longest strings."""
    strings = sample(g, N_STRINGS, np.random.default_rng(0))
    contexts = sorted(set(strings), key=lambda s: (len(s), s))[-N_SWEEP_CONTEXTS:]
    names = (*g.terminals, END)
    ours = ours_next(g, contexts)
    out = []
    for mi in SWEEP_MAXITER:
        gl = Genlm(g, mi)
        build, lm = timed(gl.lm)
        diff = max(
            float(np.max(np.abs(gl.p_next(lm, c, names) - o)))
            for c, o in zip(contexts, ours, strict=True)
        )
        out.append({"maxiter": mi, "build_s": build, "next_max_abs_diff": diff})
        print("maxiter", out[-1], flush=True)
    set_maxiter(GENLM_MAXITER)
    return out


def timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def ours_next(g: Grammar, contexts) -> list[np.ndarray]:
    return [np.exp(next_token_logprobs(g, c)[1]) for c in contexts]


def bench_grammar(name: str, g: Grammar, have_genlm: bool) -> dict:
    strings = sample(g, N_STRINGS, np.random.default_rng(0))
    contexts = sorted(set(strings), key=lambda s: (len(s), s))[-N_CONTEXTS:]
    names = (*g.terminals, END)
    lens = np.array([len(s) for s in strings])
    row: dict = {
        "grammar": name,
        "rules": len(g.rules),
        "distinct": len(set(strings)),
        "mean_length": float(lens.mean()),
        "max_length": int(lens.max()),
        "context_length": [len(contexts[0]), len(contexts[-1])],
        "reps": [],
    }
    string_logprobs(g, strings[:1])  # compile and cache the tables (grammarlab's build)
    next_token_logprobs(g, ())
    gl = Genlm(g) if have_genlm else None
    for _ in range(REPEATS):
        rep: dict = {}
        rep["ours_score_s"], lp = timed(lambda: string_logprobs(g, strings))
        inside._CHARTS.clear()
        rep["ours_next_cold_s"], nx = timed(lambda: ours_next(g, contexts))
        rep["ours_next_cached_s"], nx2 = timed(lambda: ours_next(g, contexts))
        assert all(np.array_equal(a, b) for a, b in zip(nx, nx2, strict=True))
        if gl is not None:
            rep["genlm_score_s"], glp = timed(lambda: gl.score(strings))
            rep["genlm_build_s"], lm = timed(gl.lm)
            rep["genlm_next_cold_s"], gnx = timed(
                lambda: [gl.p_next(lm, c, names) for c in contexts]  # noqa: B023
            )
            rep["genlm_next_cached_s"], _ = timed(
                lambda: [gl.p_next(lm, c, names) for c in contexts]  # noqa: B023
            )
            fin = np.isfinite(lp)
            rep["score_max_abs_diff_nats"] = float(np.max(np.abs(glp[fin] - lp[fin]), initial=0.0))
            rep["score_support_agrees"] = bool(np.array_equal(np.isfinite(glp), fin))
            rep["next_max_abs_diff"] = float(
                max(np.max(np.abs(a - b)) for a, b in zip(gnx, nx, strict=True))
            )
        row["reps"].append(rep)
    return row


def _ratio(row: dict, what: str) -> list[float]:
    return [r[f"genlm_{what}_s"] / r[f"ours_{what}_s"] for r in row["reps"]]


def _med(xs: list[float]) -> float:
    return float(np.median(xs))


def _cell(row: dict, what: str, have: bool) -> str:
    ours = _med([r[f"ours_{what}_s"] for r in row["reps"]])
    if not have:
        return f"{ours:.3f} | - | -"
    theirs = _med([r[f"genlm_{what}_s"] for r in row["reps"]])
    ratios = _ratio(row, what)
    return f"{ours:.3f} | {theirs:.3f} | {_med(ratios):.1f}x ({min(ratios):.1f}-{max(ratios):.1f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="run only the grammars whose name contains this")
    ap.add_argument(
        "--no-sweep", action="store_true", help="skip the sweep of genlm's agenda maxiter"
    )
    args = ap.parse_args()
    try:
        import genlm.grammar  # noqa: F401

        have = True
    except ImportError:
        have = False
        print("genlm-grammar is not installed: timing grammarlab alone", file=sys.stderr)
    load_before = os.getloadavg()
    rows = []
    sweep = []
    if have and not args.no_sweep:
        sweep = maxiter_sweep(grammars()["ambiguous generated"])
    for name, g in grammars().items():
        if args.only and args.only not in name:
            continue
        rows.append(bench_grammar(name, g, have))
        print(rows[-1]["grammar"], rows[-1]["reps"][-1], flush=True)
    info = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join(["python", *sys.argv]),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "genlm_grammar": _genlm_version() if have else None,
        "genlm_maxiter": GENLM_MAXITER,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "niceness": os.nice(0),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "pythonhashseed": os.environ.get("PYTHONHASHSEED"),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
    }
    out = Path(__file__).parent / "results"
    write_json_atomic(out / "genlm.json", {"machine": info, "rows": rows, "sweep": sweep})
    write_text_atomic(out / "genlm.md", report(info, rows, have, sweep))


def _genlm_version() -> str:
    from importlib.metadata import version

    return version("genlm-grammar")


def report(info: dict, rows: list[dict], have: bool, sweep: list[dict] | None = None) -> str:
    lb, la = (", ".join(f"{x:.1f}" for x in info[k]) for k in ("loadavg_before", "loadavg_after"))
    lines = [
        "# grammarlab and genlm-grammar side by side (bench/bench_genlm.py)",
        "",
        f"`{info['command']}` on {info['date']}: Python {info['python']}, numpy {info['numpy']}, "
        f"genlm-grammar {info['genlm_grammar'] or 'not installed'} (agenda maxiter "
        f"{info['genlm_maxiter']:,}), {info['platform']}, {info['cpus']} CPUs shared with other "
        f"jobs, niceness {info['niceness']}, OMP_NUM_THREADS={info['omp_num_threads']}, load "
        f"average {lb} before, {la} after.",
        "",
        f"Seconds (median of {REPEATS} repeats, fresh models each) and genlm / grammarlab "
        "(median, range over the repeats; each ratio from one repeat, both libraries timed "
        f"back to back). Score: {N_STRINGS:,} sampled strings (seed 0). Next-token: the "
        f"{N_CONTEXTS} longest distinct strings as prefixes, cold (empty chart caches) and "
        "cached (the same queries again).",
        "",
        "| grammar | rules | distinct strings | mean / max length | context lengths "
        "| score: ours | genlm | ratio | next cold: ours | genlm | ratio "
        "| next cached: ours | genlm | ratio | genlm build (s) | agreement |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if have:
            build = f"{_med([x['genlm_build_s'] for x in r['reps']]):.2f}"
            sd = max(x["score_max_abs_diff_nats"] for x in r["reps"])
            nd = max(x["next_max_abs_diff"] for x in r["reps"])
            sup = all(x["score_support_agrees"] for x in r["reps"])
            agree = f"log P {sd:.1e} nats{'' if sup else ' (support differs)'}; next {nd:.1e}"
            if nd > 1e-6:
                agree += " (**genlm off**)"
        else:
            build, agree = "-", "-"
        lines.append(
            f"| {r['grammar']} | {r['rules']:,} | {r['distinct']:,} "
            f"| {r['mean_length']:.1f} / {r['max_length']} "
            f"| {r['context_length'][0]}-{r['context_length'][1]} "
            f"| {_cell(r, 'score', have)} | {_cell(r, 'next_cold', have)} "
            f"| {_cell(r, 'next_cached', have)} | {build} | {agree} |"
        )
    lines += [
        "",
        "Agreement: the largest absolute difference, over the strings, of log P (nats) and, "
        "over the contexts and symbols, of a next-token probability, genlm against grammarlab. "
        "grammarlab's values are checked against its own independent chart path and brute "
        "force in tests/grammar; a difference above 1e-6 is genlm's agenda stopping at maxiter "
        f"{GENLM_MAXITER:,} before its fixed point; where it stops depends on the order of its "
        "agenda, which follows Python's string hashing, so genlm's error changes with "
        "PYTHONHASHSEED (0.54 with seed 0, 0.084 with seed 1 after a 10-token prefix of the "
        "ambiguous grammar, maxiter 1e6; this run's seed: "
        f"{info.get('pythonhashseed') or 'random'}).",
    ]
    if sweep:
        lines += [
            "",
            "genlm's agenda bound on the ambiguous grammar (next-token distributions after the "
            f"{N_SWEEP_CONTEXTS} longest strings, against grammarlab's):",
            "",
            "| maxiter | EarleyLM build (s) | largest absolute difference of a probability |",
            "|---|---|---|",
        ]
        for x in sweep:
            lines.append(
                f"| {x['maxiter']:,} | {x['build_s']:.2f} | {x['next_max_abs_diff']:.1e} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
