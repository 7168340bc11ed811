"""Entropies of a PCFG in bits: derivational entropy, string entropy (exact or estimated),
plus lengths, counts and ambiguity facts (:func:`analyze`)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from itertools import product

import numpy as np

from grammarlab.errors import GrammarlabError
from grammarlab.grammar import language
from grammarlab.grammar.parse import Grammar
from grammarlab.grammar.structure import expected_expansions


def _rule_entropies_bits(g: Grammar) -> np.ndarray:
    """h_A = -sum_r p_r log2 p_r over the alternatives of each nonterminal (bits)."""
    h = np.zeros(len(g.nonterminals))
    idx = {a: i for i, a in enumerate(g.nonterminals)}
    for r in g.rules:
        if r.prob > 0:
            h[idx[r.lhs]] -= r.prob * math.log2(r.prob)
    return h


def derivational_entropy_bits(g: Grammar) -> float:
    """Entropy of the derivation (tree) distribution in bits per derivation:
    H_D = sum_A c_A h_A with c_A the expected number of expansions of A and h_A the entropy of
    A's rule choice. ``inf`` when the grammar is critical (expected derivation size infinite)."""
    c = expected_expansions(g)
    h = _rule_entropies_bits(g)
    mask = h > 0
    if not np.all(np.isfinite(c[mask])):
        return math.inf
    return float(np.dot(c[mask], h[mask]))


ENUMERATE_LIMIT = 200_000  # enumerate a finite language exactly up to this many derivations
DISJOINT_BUDGET = 200_000  # steps of the fixed-length disjointness proof before giving up


@dataclass(frozen=True)
class EntropyReport:
    """Entropy, length and size facts of a grammar. Entropies are bits per string unless the name
    says ``per_token``; ``entropy_bits_per_token`` = entropy_bits / expected_length (string
    entropy divided by the expected number of tokens, not a per-position conditional entropy)."""

    start: str
    terminals: tuple[str, ...]
    n_rules: int
    n_nonterminals: int
    entropy_bits: float | None
    entropy_bits_per_token: float | None
    entropy_exact: bool
    entropy_stderr_bits: float
    entropy_method: str
    derivational_entropy_bits: float
    ambiguous: bool | None
    ambiguity_reason: str
    expected_length: float
    min_length: int
    max_length: int | None
    n_strings: int | None
    n_derivations: int | None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """JSON-safe dict (no NaN; infinities become ``None`` with a note)."""
        d = asdict(self)
        d["terminals"] = list(self.terminals)
        notes = list(self.notes)
        for k, v in d.items():
            if isinstance(v, float) and not math.isfinite(v):
                notes.append(f"{k} is {'infinite' if v > 0 else v} (written as null)")
                d[k] = None
        d["notes"] = notes
        return d

    def summary(self) -> str:
        """Readable multi-line text."""

        def fmt(x: float | None, unit: str) -> str:
            return "unknown" if x is None else f"{x:.6g} {unit}"

        ent = fmt(self.entropy_bits, "bits/string")
        if not self.entropy_exact and self.entropy_bits is not None:
            ent += f" +- {self.entropy_stderr_bits:.3g} (1 s.e.)"
        amb = {True: "yes", False: "no", None: "unknown"}[self.ambiguous]
        n_strings = self.n_strings
        lines = [
            f"start symbol      {self.start}",
            f"terminals         {len(self.terminals)}: {' '.join(self.terminals[:30])}"
            + (" ..." if len(self.terminals) > 30 else ""),
            f"rules             {self.n_rules} ({self.n_nonterminals} nonterminals)",
            f"string entropy    {ent} [{self.entropy_method}]",
            f"                  {fmt(self.entropy_bits_per_token, 'bits/token')} (over E[length])",
            f"derivational H    {fmt(self.derivational_entropy_bits, 'bits/derivation')}",
            f"ambiguous         {amb} ({self.ambiguity_reason})",
            f"length            min {self.min_length}, expected {self.expected_length:.6g}, "
            f"max {'unbounded' if self.max_length is None else self.max_length}",
            f"strings           {'infinite or unknown' if n_strings is None else n_strings}",
            f"derivations       {'infinite' if self.n_derivations is None else self.n_derivations}",
        ]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def expected_length(g: Grammar) -> float:
    """Expected number of tokens per string (``inf`` when the grammar is critical)."""
    c = expected_expansions(g)
    idx = {a: i for i, a in enumerate(g.nonterminals)}
    total = 0.0
    for r in g.rules:
        n_t = sum(r.terminal_mask)
        if n_t and r.prob > 0:
            total += c[idx[r.lhs]] * r.prob * n_t
    return float(total)


def _length_bound(g: Grammar, best) -> dict[str, int] | None:
    """Shortest (``best=min``) or longest (``max``) yield per nonterminal by fixed-point
    iteration (in place, last rule first: one sweep for bottom-up files); None when the longest is
    unbounded (still changing after |N| + 2 sweeps)."""
    rules = [(r.lhs, sum(r.terminal_mask), r.nonterminals) for r in reversed(g.rules) if r.prob > 0]
    val: dict[str, int] = {}
    sweeps = 0
    while best is min or sweeps < len(g.nonterminals) + 2:
        sweeps += 1
        changed = False
        for lhs, n_t, nts in rules:
            if any(b not in val for b in nts):
                continue
            n = n_t + sum(val[b] for b in nts)
            old = val.get(lhs)
            if old is None or best(old, n) != old:
                val[lhs] = n
                changed = True
        if not changed:
            return val
    return None


def _positive(g: Grammar) -> Grammar:
    """The grammar without zero-probability rules (they derive nothing with positive mass)."""
    if all(r.prob > 0 for r in g.rules):
        return g
    return Grammar(tuple(r for r in g.rules if r.prob > 0), g.source, g.header)


def count_derivations(g: Grammar) -> int | None:
    """Exact number of derivations (positive probability) from the start; None when infinite."""
    return language.count_derivations(_positive(g))


def enumerate_language(g: Grammar) -> dict[tuple[str, ...], tuple[float, int]]:
    """Every string of a finite grammar with (probability, number of derivations). Cost grows with
    the number of derivations; see :func:`count_derivations`."""
    g = _positive(g)
    memo: dict[str, dict] = {}

    def strings(a: str) -> dict:
        if a not in memo:
            out: dict[tuple[str, ...], list] = {}
            for r in g.by_lhs[a]:
                parts = [
                    {(s,): (1.0, 1)} if t else strings(s)
                    for s, t in zip(r.rhs, r.terminal_mask, strict=True)
                ]
                for combo in product(*(p.items() for p in parts)):
                    s = sum((x for x, _ in combo), ())
                    p = r.prob * math.prod(v[0] for _, v in combo)
                    n = math.prod(v[1] for _, v in combo)
                    cur = out.setdefault(s, [0.0, 0])
                    cur[0] += p
                    cur[1] += n
            memo[a] = {k: (v[0], v[1]) for k, v in out.items()}
        return memo[a]

    return strings(g.start)


def _has_unit_cycle(g: Grammar) -> bool:
    units = {
        a: {r.rhs[0] for r in g.by_lhs[a] if len(r.rhs) == 1 and not r.terminal_mask[0]}
        for a in g.nonterminals
    }
    state: dict[str, int] = {}

    def visit(a: str) -> bool:
        state[a] = 1
        for b in units[a]:
            if state.get(b) == 1 or (b not in state and visit(b)):
                return True
        state[a] = 2
        return False

    return any(a not in state and visit(a) for a in g.nonterminals)


def _ll1(g: Grammar) -> bool:
    """Sufficient for unambiguity: the alternatives of every nonterminal start with disjoint
    terminal sets (FIRST, no epsilon rules) and there is no unit cycle, so the next token picks
    the rule of each leftmost step."""
    first: dict[str, set[str]] = {a: set() for a in g.nonterminals}
    changed = True
    while changed:
        changed = False
        for r in g.rules:
            f = {r.rhs[0]} if r.terminal_mask[0] else first[r.rhs[0]]
            if not f <= first[r.lhs]:
                first[r.lhs] |= f
                changed = True
    for alts in g.by_lhs.values():
        seen: set[str] = set()
        for r in alts:
            f = {r.rhs[0]} if r.terminal_mask[0] else first[r.rhs[0]]
            if seen & f:
                return False
            seen |= f
    return not _has_unit_cycle(g)


class _Budget(Exception):
    pass


def _fixed_length_disjoint(g: Grammar, budget: int = DISJOINT_BUDGET) -> bool | None:
    """Sufficient for unambiguity when every nonterminal derives strings of one length: the
    alternatives of every nonterminal have pairwise disjoint languages (then the split of a string
    among a right side's symbols is forced, and by induction the derivation is unique). Returns
    None when not every nonterminal has a single length or the work budget runs out, False when
    two alternatives share a string."""
    lo, hi = _length_bound(g, min), _length_bound(g, max)
    if hi is None or lo != hi:
        return None
    size = {**lo}
    steps = [0]
    memo: dict = {}

    def ln(x: tuple[str, bool]) -> int:
        return 1 if x[1] else size[x[0]]

    def alts(a: str) -> list[tuple]:
        return [tuple(zip(r.rhs, r.terminal_mask, strict=True)) for r in g.by_lhs[a]]

    def meet(xs: tuple, ys: tuple) -> bool:
        """Do two equal-length symbol sequences share a string?"""
        key = (xs, ys) if xs <= ys else (ys, xs)
        if key in memo:
            return memo[key]
        steps[0] += 1
        if steps[0] > budget:
            raise _Budget
        memo[key] = True  # a cycle back here is assumed to meet (conservative)
        if not xs:
            res = True
        elif xs[0] == ys[0]:
            res = meet(xs[1:], ys[1:])
        elif ln(xs[0]) == ln(ys[0]):
            if xs[0][1] and ys[0][1]:
                res = False
            else:
                res = meet((xs[0],), (ys[0],)) if len(xs) > 1 else _expand(xs, ys)
                res = res and meet(xs[1:], ys[1:])
        else:
            res = _expand(xs, ys) if ln(xs[0]) > ln(ys[0]) else _expand(ys, xs)
        memo[key] = res
        return res

    def _expand(xs: tuple, ys: tuple) -> bool:
        """Expand xs's leading nonterminal (the longer block, or either of equal blocks)."""
        if xs[0][1]:
            xs, ys = ys, xs
        return any(meet(alt + xs[1:], ys) for alt in alts(xs[0][0]))

    try:
        for a in g.nonterminals:
            rs = alts(a)
            for i in range(len(rs)):
                for j in range(i + 1, len(rs)):
                    if meet(rs[i], rs[j]):
                        return False
    except (_Budget, RecursionError):
        return None
    return True


def _exact_entropy(
    g: Grammar, n_deriv: int | None, limit: int
) -> tuple[float, str, bool | None, str, int | None] | None:
    """(entropy bits, method, ambiguous, why, n_strings) when exact; None otherwise."""
    h_d = derivational_entropy_bits(g)
    if _ll1(g):
        return h_d, "exact: unambiguous", False, "proven: LL(1), no unit cycle", n_deriv
    fixed = _fixed_length_disjoint(g)
    if fixed:
        why = "proven: fixed lengths, disjoint alternatives"
        return h_d, "exact: unambiguous", False, why, n_deriv
    if n_deriv is not None and n_deriv <= limit:
        lang = enumerate_language(g)
        p = np.array([v[0] for v in lang.values()])
        h = float(-np.sum(p * np.log2(p)))
        amb = any(v[1] > 1 for v in lang.values())
        why = "enumeration: " + ("a string has 2+ derivations" if amb else "one derivation each")
        return h, "exact: enumeration", amb, why, len(lang)
    return None


def string_entropy_bits(g: Grammar, *, enumerate_limit: int = ENUMERATE_LIMIT) -> float:
    """Exact string entropy H(G) = -sum_x P(x) log2 P(x) in bits per string. Raises
    :class:`GrammarlabError` when it can only be estimated (use :func:`analyze`)."""
    g = _positive(g)
    got = _exact_entropy(g, count_derivations(g), enumerate_limit)
    if got is None:
        raise GrammarlabError(
            "the string entropy of this grammar cannot be computed exactly",
            file=g.source,
            hint="it may be ambiguous and its language is too large to enumerate; "
            "`grammarlab grammar info` gives a Monte Carlo estimate with its standard error",
        )
    return got[0]


def analyze(
    g: Grammar, *, mc_samples: int = 20_000, seed: int = 0, enumerate_limit: int = ENUMERATE_LIMIT
) -> EntropyReport:
    """Entropies (bits), lengths, counts and ambiguity of a validated grammar. The string entropy
    is exact when unambiguity is proven (then it equals the derivational entropy) or the language
    is small enough to enumerate; otherwise it is the Monte Carlo estimate
    H(X) = H(D) - E[log2 P(x) - log2 P(d)] over ``mc_samples`` sampled derivations, with exact
    per-sample terms (zero variance when no sampled string has a second derivation)."""
    from grammarlab.grammar.inside import string_logprobs
    from grammarlab.grammar.sample import sample_derivations

    full = g
    g = _positive(g)
    notes: list[str] = []
    h_d = derivational_entropy_bits(g)
    e_len = expected_length(g)
    lo = _length_bound(g, min)
    hi = _length_bound(g, max)
    if hi is not None and lo[g.start] == hi[g.start]:
        e_len = float(lo[g.start])  # fixed length: exact, without the linear solve's rounding
    n_deriv = count_derivations(g)
    exact = _exact_entropy(g, n_deriv, enumerate_limit)
    stderr = 0.0
    if exact is not None:
        h, method, amb, why, n_strings = exact
    elif not math.isfinite(h_d):
        h, method, amb, why, n_strings = None, "unknown: critical grammar", None, "unknown", None
        notes.append("the grammar is critical (infinite expected derivation size)")
    else:
        strings, logp_d = sample_derivations(g, mc_samples, np.random.default_rng(seed))
        terms = (string_logprobs(g, strings) - logp_d) / math.log(2)  # bits, >= 0
        terms = np.maximum(terms, 0.0)
        h = h_d - float(terms.mean())
        stderr = float(terms.std(ddof=1) / math.sqrt(len(terms))) if len(terms) > 1 else math.inf
        method = f"estimate: Monte Carlo, n={mc_samples}"
        witness = terms > 1e-9 * np.maximum(1.0, np.abs(logp_d) / math.log(2))
        amb = True if witness.any() else None
        why = (
            f"witness: {int(witness.sum())} sampled strings with 2+ derivations"
            if amb
            else "unknown: no proof found, no witness sampled"
        )
        n_strings = None
    per_token = None if h is None or not e_len > 0 else h / e_len
    return EntropyReport(
        start=g.start,
        terminals=tuple(full.terminals),
        n_rules=len(full.rules),
        n_nonterminals=len(full.nonterminals),
        entropy_bits=h,
        entropy_bits_per_token=per_token,
        entropy_exact=exact is not None,
        entropy_stderr_bits=stderr,
        entropy_method=method,
        derivational_entropy_bits=h_d,
        ambiguous=amb,
        ambiguity_reason=why,
        expected_length=e_len,
        min_length=lo[g.start],
        max_length=None if hi is None else hi[g.start],
        n_strings=n_strings,
        n_derivations=n_deriv,
        notes=tuple(notes),
    )
