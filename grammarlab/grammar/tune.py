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

The quantity brought to the target is chosen explicitly (``quantity``, :data:`QUANTITIES`):

* ``"string"`` (the default): the exact string entropy, where the engine can compute it (proven
  unambiguous, or a language small enough to enumerate); any other grammar is refused;
* ``"derivational"``: the derivational entropy (exact for any grammar; an upper bound of the
  string entropy, equal to it on an unambiguous grammar), bits per derivation;
* ``"monte-carlo"``: the engine's Monte Carlo estimate of the string entropy
  (:func:`grammarlab.grammar.entropy.analyze`) with a fixed seed and sample budget
  (:class:`MonteCarloBudget`), so the estimate is a deterministic function of the probabilities;
  the search stops within :data:`MC_TOL_SE` standard errors of the target, and the header states
  the estimate and its standard error.

The tuned header names the quantity and its value in machine-readable lines
(:mod:`grammarlab.grammar.header`) for the two non-default quantities.

Reshaping a recursive grammar also changes its expected string length, sometimes by orders of
magnitude (tempering toward uniform can bring the recursion near criticality). The tuned header
states the expected length, and :func:`length_warning` says when it passes a bound.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from grammarlab.errors import GrammarError, GrammarlabError
from grammarlab.grammar import entropy
from grammarlab.grammar.header import ENTROPY_QUANTITIES, fields_of_header
from grammarlab.grammar.load import loads
from grammarlab.grammar.parse import Grammar, format_prob
from grammarlab.grammar.validate import validate

TOL_BITS = 1e-6
# Expected tokens per string above which a tuned grammar is flagged: the tiny models' context
# (256 positions); the paper's strings have 64 or 72 tokens.
LONG_EXPECTED_LENGTH = 256.0
METHODS = ("temper", "skew")
# the quantities a target can be stated in (see the module docstring)
QUANTITIES = ENTROPY_QUANTITIES
# the Monte Carlo search stops once the estimate is within this many standard errors of the
# target (and within TOL_BITS when the estimate is exact, i.e. its standard error is 0)
MC_TOL_SE = 0.5
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


@dataclass(frozen=True)
class MonteCarloBudget:
    """The Monte Carlo estimate that ``quantity="monte-carlo"`` tunes: ``samples`` sampled
    derivations per evaluation with generator seed ``seed``, at most ``tokens`` tokens scored and
    strings of at most ``max_length`` tokens (as in :func:`grammarlab.grammar.entropy.analyze`,
    but without its per-estimate time limit, which would make the estimate depend on the
    machine); ``seconds`` bounds the wall clock of the whole search (refused past it)."""

    samples: int = 4_000
    seed: int = 0
    tokens: int = entropy.MC_TOKENS
    max_length: int = entropy.MC_MAX_LENGTH
    seconds: float = 600.0

    def __post_init__(self) -> None:
        for name, lo in (("samples", 2), ("seed", 0), ("tokens", 1), ("max_length", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise GrammarlabError(f"Monte Carlo {name} must be an integer >= {lo}, got {v!r}")
        if not (isinstance(self.seconds, (int, float)) and self.seconds > 0):
            raise GrammarlabError(f"Monte Carlo seconds must be > 0, got {self.seconds!r}")


class _Stop(GrammarlabError):
    """A refusal that ends the search at once (not a grid point without a finite entropy)."""


def tune(
    g: Grammar,
    target_bits: float,
    method: str = "temper",
    toward: str | None = None,
    quantity: str = "string",
    mc: MonteCarloBudget | None = None,
) -> Grammar:
    """A grammar with ``g``'s rules whose entropy ``quantity`` is ``target_bits``, measured on
    the grammar as read back from its text: the exact string entropy (bits per string, the
    default) or the derivational entropy (bits per derivation) within 1e-6 bits, or the Monte
    Carlo estimate of the string entropy (budget ``mc``) within :data:`MC_TOL_SE` of its
    standard error.

    ``method`` is ``"temper"`` or ``"skew"``; ``toward`` (skew only) names a terminal to skew
    toward. Raises :class:`GrammarlabError` when the target is out of reach (naming the reachable
    range) or, for ``quantity="string"``, when ``g``'s string entropy cannot be computed exactly
    (the hint names the other quantities).
    """
    if method not in METHODS:
        raise GrammarlabError(f"unknown method {method!r}", hint=f"choose one of {METHODS}")
    if quantity not in QUANTITIES:
        raise GrammarlabError(
            f"unknown entropy quantity {quantity!r}", hint=f"choose one of {', '.join(QUANTITIES)}"
        )
    if toward is not None and method != "skew":
        raise GrammarlabError("toward=SYMBOL applies to method 'skew' only", file=g.source)
    target = float(target_bits)
    if not math.isfinite(target) or target < 0:
        raise GrammarlabError(f"target entropy must be a finite number >= 0 bits, got {target}")
    if method == "temper":
        reshape, grid, name = _temper(g), _BETA_GRID, "beta"
    else:
        reshape, grid, name = _skew(g, toward), _LAM_GRID, "lam"
    if quantity == "string":
        x, back, achieved, base = _tune_string(g, target, reshape, grid, method, name)
        stated = [
            f"Exact string entropy: {achieved:.9f} bits per string (target {format_prob(target)})."
        ]
        base_text = f"exact string entropy {base:.9f} bits per string"
        keys: list[str] = []
    elif quantity == "derivational":
        x, back, achieved, base = _tune_derivational(g, target, reshape, grid, method, name)
        stated = [
            "Target quantity: the derivational entropy (exact; an upper bound of the string",
            "entropy, equal to it where the grammar is unambiguous).",
            f"Derivational entropy: {achieved:.9f} bits per derivation "
            f"(target {format_prob(target)}).",
            _string_entropy_line(back),
        ]
        base_text = f"derivational entropy {base:.9f} bits per derivation"
        keys = [f"entropy: derivational\nentropy_bits: {achieved:.9f}"]
    else:
        mc = MonteCarloBudget() if mc is None else mc
        x, back, rep, base = _tune_monte_carlo(g, target, reshape, grid, method, name, mc)
        achieved, se = float(rep.entropy_bits), float(rep.entropy_stderr_bits)
        stated = [
            "Target quantity: the Monte Carlo estimate of the string entropy (seed "
            f"{mc.seed}, {mc.samples} samples, at most {mc.tokens} tokens scored, strings of at "
            f"most {mc.max_length} tokens; the search stops within {MC_TOL_SE:g} s.e.).",
            f"String entropy: {achieved:.9f} +- {se:.3g} bits per string (1 s.e.; "
            f"{rep.entropy_method}) (target {format_prob(target)}).",
            f"Derivational entropy: {rep.derivational_entropy_bits:.9f} bits per derivation "
            "(an upper bound of the string entropy).",
            *(f"Note: {n}" for n in rep.notes),
        ]
        base_text = f"estimated string entropy {base:.6g} bits per string"
        keys = [f"entropy: monte-carlo\nentropy_bits: {achieved:.9f}\nentropy_se_bits: {se:.6g}"]
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
    if quantity != "string":
        cmd += f" --entropy {quantity}"
    if quantity == "monte-carlo":
        cmd += f" --mc-samples {mc.samples} --seed {mc.seed}"
    try:  # the tuned grammar is of the base grammar's family (its other fields do not apply)
        family = fields_of_header(g.header, g.source).family
    except GrammarError:
        family = None
    header = [
        f"Tuned from {g.source} ({base_text})",
        f"by method {method}: {name} = {format_prob(x)};",
        *what,
        *stated,
        f"Expected length: {_length_text(back)} tokens per string (base grammar: "
        f"{_length_text(g)}).",
        f"Written by: {cmd} -o FILE",
        *(["family: " + family] if family else []),
        *keys,
    ]
    if g.header:
        header += ["", "Header of the base grammar (its entropy figures do not apply here):"]
        header += [f"> {line}".rstrip() for line in g.header.splitlines()]
    tuned = loads(back.with_probs(back.probs, header="\n".join(header)).to_text(), g.source)
    if not np.array_equal(tuned.probs, back.probs):
        raise GrammarlabError("internal: probabilities changed in the text round trip")
    return tuned


def _tune_string(g, target, reshape, grid, method, name):
    """(parameter, read-back grammar, its exact string entropy, g's) for an exact target."""
    base_bits = _exact_bits(g)
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
    _check_reached(g, achieved, target, TOL_BITS)
    return x, back, achieved, base_bits


def _tune_derivational(g, target, reshape, grid, method, name):
    """(parameter, read-back grammar, its derivational entropy, g's), bits per derivation."""

    def bits_at(x: float) -> float:
        return float(entropy.derivational_entropy_bits(g.with_probs(reshape(x))))

    base = float(entropy.derivational_entropy_bits(g))
    x = _solve(bits_at, grid, target, method, name)
    back = _read_back(g, reshape(x), target, f"{name} = {format_prob(x)}")
    achieved = float(entropy.derivational_entropy_bits(back))
    _check_reached(g, achieved, target, TOL_BITS)
    return x, back, achieved, base


def _tune_monte_carlo(g, target, reshape, grid, method, name, mc: MonteCarloBudget):
    """(parameter, read-back grammar, its entropy report, g's estimate) for a Monte Carlo
    target: the estimate is a deterministic function of the probabilities (fixed seed and
    sample budget, no time limit per estimate), so the read-back grammar's estimate is the one
    the search found."""
    start = time.perf_counter()
    se_at: dict[float, float] = {}

    def report(h: Grammar) -> entropy.EntropyReport:
        if time.perf_counter() - start > mc.seconds:
            raise _Stop(
                f"the Monte Carlo search ran past its budget of {mc.seconds:g} s",
                file=g.source,
                hint="fewer --mc-samples make each estimate cheaper (and its standard error "
                "larger); or a longer budget",
            )
        positive = Grammar(tuple(r for r in h.rules if r.prob > 0), h.source)
        problems = validate(positive)
        if problems:  # e.g. skew at lam = 1 can leave a nonterminal whose derivations never end
            raise GrammarlabError(problems[0].message, file=g.source)
        rep = entropy.analyze(
            h,
            mc_samples=mc.samples,
            seed=mc.seed,
            mc_seconds=math.inf,
            mc_tokens=mc.tokens,
            mc_max_length=mc.max_length,
        )
        if rep.entropy_bits is None or not math.isfinite(rep.entropy_stderr_bits):
            raise GrammarlabError("no Monte Carlo estimate", file=g.source)
        return rep

    def bits_at(x: float) -> float:
        rep = report(g.with_probs(reshape(x)))
        se_at[x] = float(rep.entropy_stderr_bits)
        return float(rep.entropy_bits)

    def tol_at(x: float) -> float:
        return max(TOL_BITS / 10, MC_TOL_SE * se_at.get(x, 0.0))

    base = report(g)
    x = _solve(bits_at, grid, target, method, name, tol_at=tol_at)
    back = _read_back(g, reshape(x), target, f"{name} = {format_prob(x)}")
    rep = report(back)
    se = float(rep.entropy_stderr_bits)
    _check_reached(g, float(rep.entropy_bits), target, max(TOL_BITS, MC_TOL_SE * se))
    return x, back, rep, float(base.entropy_bits)


def _check_reached(g: Grammar, achieved: float, target: float, tol: float) -> None:
    if not abs(achieved - target) <= tol:
        raise GrammarlabError(
            f"internal: the tuned grammar has {achieved!r} bits after the text round trip, "
            f"target {target!r}",
            file=g.source,
        )


def _string_entropy_line(g: Grammar) -> str:
    """What is known of ``g``'s string entropy without a Monte Carlo estimate."""
    try:
        h = float(entropy.string_entropy_bits(g))
    except GrammarlabError:
        return "String entropy: not computed exactly (at most the derivational entropy)."
    return f"String entropy: {h:.9f} bits per string (exact)."


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
            hint="tune the string entropy of a grammar proven unambiguous or enumerable "
            "('grammarlab grammar info' shows what is known), or choose another target quantity:"
            " --entropy derivational (exact, an upper bound of the string entropy) or --entropy"
            " monte-carlo (an estimate with its standard error); in a sweep file's [[derive]]:"
            ' entropy = "derivational" or "monte-carlo"',
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
    tol_at: Callable[[float], float] | None = None,
) -> float:
    """The parameter whose entropy is ``target`` within ``tol_at(x)`` bits (default TOL_BITS / 10):
    bracket on the grid, then Brent, stopped as soon as a value is within the tolerance."""
    tol_at = tol_at or (lambda x: TOL_BITS / 10)
    xs, hs = [], []
    for x in grid:
        try:
            h = bits_at(float(x))
        except _Stop:
            raise
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
    if best[0] <= tol_at(best[1]):
        return best[1]

    class _Found(Exception):
        pass

    def f(v: float) -> float:
        h = bits_at(v)
        if abs(h - target) <= tol_at(v):
            raise _Found(v)
        return h - target

    for (xa, ha), (xb, hb) in pairwise(zip(xs, hs, strict=True)):
        if math.isnan(ha) or math.isnan(hb) or (ha - target) * (hb - target) > 0:
            continue
        try:
            x = brentq(f, xa, xb, xtol=1e-15, rtol=1e-15, maxiter=200)
        except _Found as found:
            return float(found.args[0])
        except RuntimeError:  # no convergence (a jump in a Monte Carlo estimate)
            continue
        if abs(bits_at(x) - target) <= tol_at(x):
            return float(x)
    raise GrammarlabError(
        f"could not reach {target!r} bits with method {method} (the entropy jumps between grid"
        f" points of {name})",
        hint=f"the grid values range over [{lo!r}, {hi!r}] bits; try the other method",
    )
