"""Entropy control: reshape a grammar's rule probabilities until its exact string entropy hits a
target (bits per string).

Two one-parameter families of reshapings, applied within each nonterminal:

* ``temper``: p_r -> p_r^beta / sum p^beta, beta >= 0 (0: uniform choice over the rules that had
  positive probability; 1: unchanged; large: near-deterministic, the most probable rule wins);
* ``skew``: p -> (1 - lam) p + lam t, lam in [0, 1], with t the first alternative (the paper's
  p knob for the hierarchical grammar) or, with ``toward=SYMBOL``, the original distribution
  restricted to the alternatives whose right side contains that terminal (the paper's
  oversampled "a"); nonterminals without such an alternative keep their distribution.

The parameter is found by evaluating a grid (to bracket the target) and then Brent's method.
The result is written as text and read back, and its entropy is checked on the read-back grammar:
what ships is the text. A target that needs a rule of probability 0 (skew at lam = 1, e.g. 0 bits)
is refused: a grammar file cannot hold such a rule.

Reshaping a recursive grammar also changes its expected string length, sometimes by orders of
magnitude (tempering toward uniform can bring the recursion near criticality). The tuned header
states the expected length, and :func:`length_warning` says when it passes a bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import pairwise

import numpy as np

from grammarlab.errors import GrammarError, GrammarlabError
from grammarlab.grammar import entropy
from grammarlab.grammar.load import loads
from grammarlab.grammar.parse import Grammar, format_prob

TOL_BITS = 1e-6
# Expected tokens per string above which a tuned grammar is flagged: the tiny models' context
# (256 positions); the paper's strings have 64 or 72 tokens.
LONG_EXPECTED_LENGTH = 256.0
METHODS = ("temper", "skew")
# Grids that bracket the target before the root search (beta for temper, lam for skew).
_BETA_GRID = (
    0.0,
    1 / 16,
    1 / 8,
    1 / 4,
    1 / 2,
    3 / 4,
    1.0,
    1.5,
    2.0,
    3.0,
    4.0,
    6.0,
    8.0,
    16.0,
    32.0,
    64.0,
)
_LAM_GRID = tuple(np.linspace(0.0, 1.0, 21))


def tune(
    g: Grammar, target_bits: float, method: str = "temper", toward: str | None = None
) -> Grammar:
    """A grammar with ``g``'s rules whose exact string entropy is ``target_bits`` bits per string
    (within 1e-6 bits, measured on the grammar as read back from its text).

    ``method`` is ``"temper"`` or ``"skew"``; ``toward`` (skew only) names a terminal to skew
    toward. Raises :class:`GrammarlabError` when the target is out of reach (naming the reachable
    range) or when ``g``'s string entropy cannot be computed exactly.
    """
    if method not in METHODS:
        raise GrammarlabError(f"unknown method {method!r}", hint=f"choose one of {METHODS}")
    if toward is not None and method != "skew":
        raise GrammarlabError("toward=SYMBOL applies to method 'skew' only", file=g.source)
    target = float(target_bits)
    if not math.isfinite(target) or target < 0:
        raise GrammarlabError(f"target entropy must be a finite number >= 0 bits, got {target}")
    base_bits = _exact_bits(g)
    if method == "temper":
        reshape, grid, name = _temper(g), _BETA_GRID, "beta"
    else:
        reshape, grid, name = _skew(g, toward), _LAM_GRID, "lam"
    # When g's string entropy equals its derivational entropy (one derivation per string), so does
    # that of every reshaping that adds no rule to the positive ones: the search can then use the
    # cheap derivational entropy. The result is checked with the exact string entropy either way.
    support = g.probs > 0
    fast = abs(base_bits - entropy.derivational_entropy_bits(g)) <= 1e-9

    def search(fast: bool) -> tuple[float, Grammar, float]:
        def bits_at(x: float) -> float:
            probs = reshape(x)
            if fast and not np.any((probs > 0) & ~support):
                return float(entropy.derivational_entropy_bits(g.with_probs(probs)))
            return _exact_bits(g.with_probs(probs))

        x = _solve(bits_at, grid, target, method, name)
        back = _read_back(g, reshape(x), target, f"{name} = {format_prob(x)}")
        return x, back, _exact_bits(back)

    x, back, achieved = search(fast)
    if fast and abs(achieved - target) > TOL_BITS:
        x, back, achieved = search(False)
    if abs(achieved - target) > TOL_BITS:
        raise GrammarlabError(
            f"internal: the tuned grammar has {achieved!r} bits after the text round trip, "
            f"target {target!r}",
            file=g.source,
        )
    if method == "temper":
        what = ["each nonterminal's rule probabilities raised to the power beta and renormalised"]
    else:
        t = "its first alternative" if toward is None else f"its alternatives containing {toward!r}"
        what = [
            "each nonterminal's distribution p mixed as (1 - lam) p + lam t, with t the",
            f"distribution restricted to {t} (renormalised; unchanged where there is none)",
        ]
    cmd = f"grammarlab grammar tune {g.source} --target-bits {format_prob(target)}"
    cmd += f" --method {method}" + (f" --toward {toward}" if toward is not None else "")
    header = [
        f"Tuned from {g.source} (exact string entropy {base_bits:.9f} bits per string)",
        f"by method {method}: {name} = {format_prob(x)};",
        *what,
        f"Exact string entropy: {achieved:.9f} bits per string (target {format_prob(target)}).",
        f"Expected length: {_length_text(back)} tokens per string (base grammar: "
        f"{_length_text(g)}).",
        f"Written by: {cmd} -o FILE",
    ]
    if g.header:
        header += ["", "Header of the base grammar (its entropy figures do not apply here):"]
        header += [f"> {line}".rstrip() for line in g.header.splitlines()]
    tuned = loads(back.with_probs(back.probs, header="\n".join(header)).to_text(), g.source)
    if not np.array_equal(tuned.probs, back.probs):
        raise GrammarlabError("internal: probabilities changed in the text round trip")
    return tuned


def _read_back(g: Grammar, probs: np.ndarray, target: float, at: str) -> Grammar:
    """``g`` with ``probs``, written as text and read back; a target whose solution the text
    cannot hold (a rule of probability 0) is refused, naming the target, not ``g``'s lines."""
    zero = [r for r, p in zip(g.rules, probs, strict=True) if r.prob > 0 and not p > 0]
    if zero:
        shown = "; ".join(f"{r.lhs} -> {r.rhs_text()}" for r in zero[:3])
        more = f" and {len(zero) - 3} more" if len(zero) > 3 else ""
        raise GrammarlabError(
            f"target {format_prob(target)} bits is reached only at {at}, which gives "
            f"probability 0 to {len(zero)} rule(s) ({shown}{more}); a grammar file cannot hold "
            "a rule of probability 0",
            hint="choose a higher target, or delete those rules from the base grammar and tune "
            "that",
        )
    try:
        return loads(g.with_probs(probs).to_text(), g.source)
    except GrammarError as e:
        raise GrammarlabError(
            f"the grammar tuned to {format_prob(target)} bits ({at}) is not valid: "
            f"{e.diagnostics[0].message}",
            hint="choose another target or the other method",
        ) from None


def _length_text(g: Grammar) -> str:
    e = entropy.expected_length(g)
    return f"{e:.6g}" if math.isfinite(e) else "infinite"


def length_warning(g: Grammar, bound: float = LONG_EXPECTED_LENGTH) -> str | None:
    """A one-line warning (without location) when ``g``'s expected string length in tokens
    exceeds ``bound``, else None. Long strings make sampling, scoring and training slow and
    memory-hungry, and the longest of many samples is far longer than the mean."""
    e = entropy.expected_length(g)
    if e <= bound:
        return None
    return (
        f"the expected string length is {_length_text(g)} tokens per string, above the bound of "
        f"{bound:g} tokens; the longest of many samples is far longer"
    )


def _exact_bits(g: Grammar) -> float:
    """Exact string entropy in bits, or a GrammarlabError saying why exact control is impossible."""
    try:
        return float(entropy.string_entropy_bits(g))
    except GrammarlabError as e:
        raise GrammarlabError(
            "exact entropy control needs an exactly computable string entropy, and this grammar's"
            f" cannot be computed exactly: {e.diagnostics[0].message}",
            file=g.source,
            hint="tune works on grammars proven unambiguous (string entropy = derivational"
            " entropy); 'grammarlab grammar info' shows what is known",
        ) from None


def _groups(g: Grammar) -> list[np.ndarray]:
    """Rule indices of each nonterminal's alternatives."""
    idx: dict[str, list[int]] = {}
    for i, r in enumerate(g.rules):
        idx.setdefault(r.lhs, []).append(i)
    return [np.array(v) for v in idx.values()]


def _temper(g: Grammar) -> Callable[[float], np.ndarray]:
    p0 = g.probs
    groups = _groups(g)

    def reshape(beta: float) -> np.ndarray:
        out = np.zeros_like(p0)
        for ix in groups:
            p = p0[ix]
            pos = p > 0
            logits = np.full(len(p), -np.inf)
            logits[pos] = beta * np.log(p[pos])
            w = np.exp(logits - logits[pos].max())
            out[ix] = w / w.sum()
        return out

    return reshape


def _skew(g: Grammar, toward: str | None) -> Callable[[float], np.ndarray]:
    p0 = g.probs
    t = np.zeros_like(p0)
    if toward is not None and toward not in g.terminals:
        shown = ", ".join(repr(s) for s in g.terminals[:20])
        more = ", ..." if len(g.terminals) > 20 else ""
        raise GrammarlabError(
            f"toward={toward!r} is not a terminal of the grammar",
            file=g.source,
            hint=f"terminals: {shown}{more}",
        )
    for ix in _groups(g):
        p = p0[ix]
        if toward is None:
            t[ix[0]] = 1.0
            continue
        has = np.array(
            [
                toward in {s for s, m in zip(r.rhs, r.terminal_mask, strict=True) if m}
                for r in (g.rules[i] for i in ix)
            ]
        )
        mass = p[has].sum()
        if mass > 0:
            t[ix] = np.where(has, p, 0.0) / mass
        else:  # no (possible) alternative with the symbol: this nonterminal keeps its distribution
            t[ix] = p

    def reshape(lam: float) -> np.ndarray:
        return (1.0 - lam) * p0 + lam * t

    return reshape


def _solve(
    bits_at: Callable[[float], float],
    grid: tuple[float, ...],
    target: float,
    method: str,
    name: str,
) -> float:
    """The parameter whose entropy is ``target`` within TOL_BITS: bracket on the grid, then
    Brent."""
    xs, hs = [], []
    for x in grid:
        try:
            h = bits_at(float(x))
        except GrammarlabError:
            h = math.nan  # e.g. a reshaped grammar whose derivations need not end
        xs.append(float(x))
        hs.append(h if math.isfinite(h) else math.nan)
    finite = [h for h in hs if not math.isnan(h)]
    if not finite:
        raise GrammarlabError(f"no {name} in [{grid[0]}, {grid[-1]}] gives a finite entropy")
    lo, hi = min(finite), max(finite)
    if not lo - TOL_BITS <= target <= hi + TOL_BITS:
        raise GrammarlabError(
            f"target {target!r} bits is out of reach for method {method}",
            hint=f"reachable range [{lo!r}, {hi!r}] bits ({name} from {grid[0]:g} to"
            f" {grid[-1]:g}); try the other method"
            + (" or a lower target" if target > hi else " or a higher target"),
        )
    from scipy.optimize import brentq  # scipy is heavy: imported when needed (CLI start-up)

    best = min((abs(h - target), x) for x, h in zip(xs, hs, strict=True) if not math.isnan(h))
    if best[0] <= TOL_BITS / 10:
        return best[1]
    for (xa, ha), (xb, hb) in pairwise(zip(xs, hs, strict=True)):
        if math.isnan(ha) or math.isnan(hb) or (ha - target) * (hb - target) > 0:
            continue
        x = brentq(lambda v: bits_at(v) - target, xa, xb, xtol=1e-15, rtol=1e-15, maxiter=200)
        if abs(bits_at(x) - target) <= TOL_BITS / 10:
            return float(x)
    raise GrammarlabError(
        f"could not reach {target!r} bits with method {method} (the entropy jumps between grid"
        f" points of {name})",
        hint=f"the grid values range over [{lo!r}, {hi!r}] bits; try the other method",
    )
