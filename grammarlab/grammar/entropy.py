"""Entropies of a PCFG in bits: derivational entropy, string entropy (exact or estimated),
plus lengths, counts and ambiguity facts (:func:`analyze`)."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from itertools import product

import numpy as np

from grammarlab.errors import GrammarlabError
from grammarlab.grammar import language
from grammarlab.grammar.inside import string_logprobs
from grammarlab.grammar.parse import Grammar
from grammarlab.grammar.sample import sample_derivations
from grammarlab.grammar.structure import expected_expansions, spectral_radius, unit_cycle


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
# The Monte Carlo estimate's budget: wall-clock seconds, tokens scored exactly, and the longest
# sampled string scored (the chart's cost grows with the cube of the length on ambiguous
# grammars). Samples past the budget or the length are cut and counted in the report.
MC_SECONDS = 10.0
MC_TOKENS = 2_000_000
MC_MAX_LENGTH = 400
# Spectral radius of the mean matrix from which a grammar counts as near critical. The number
# of nodes of a derivation then has a power-law tail (about n^-3/2) cut off only near
# (1 - rho)^-2 nodes, 400 at 0.95, comparable with MC_MAX_LENGTH: the sample mean is dominated by
# rare huge strings and its standard error is not trustworthy.
NEAR_CRITICAL = 0.95


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
    mc_samples_used: int = 0  # Monte Carlo samples in the estimate (0 when exact)
    mc_samples_cut: int = 0  # samples drawn or planned but left out (too long, over budget)

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
    for a in _postorder(g):  # children first (a finite grammar has no recursion)
        out: dict[tuple[str, ...], list] = {}
        for r in g.by_lhs[a]:
            parts = [
                {(s,): (1.0, 1)} if t else memo[s]
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
    return memo[g.start]


def _postorder(g: Grammar) -> list[str]:
    """Nonterminals reachable from the start, each after the nonterminals of its right sides
    (iterative depth-first search; a cycle's back edge is skipped)."""
    kids = {a: [b for r in g.by_lhs[a] for b in r.nonterminals] for a in g.nonterminals}
    seen, order = {g.start}, []
    stack = [(g.start, iter(kids[g.start]))]
    while stack:
        a, it = stack[-1]
        nxt = next((b for b in it if b not in seen), None)
        if nxt is None:
            order.append(a)
            stack.pop()
        else:
            seen.add(nxt)
            stack.append((nxt, iter(kids[nxt])))
    return order


def _ll1(g: Grammar) -> bool:
    """Sufficient for unambiguity: the alternatives of every nonterminal start with disjoint
    terminal sets (FIRST, no epsilon rules) and there is no unit cycle, so the next token picks
    the rule of each leftmost step."""
    first: dict[str, set[str]] = {a: set() for a in g.nonterminals}
    done = set(_postorder(g))  # children first: one pass settles a grammar without recursion
    rules = [r for a in [*_postorder(g), *(a for a in g.nonterminals if a not in done)]
             for r in g.by_lhs[a]]  # fmt: skip
    changed = True
    while changed:
        changed = False
        for r in rules:
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
    return not unit_cycle(g)


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


def _exact(
    g: Grammar, n_deriv: int | None, limit: int
) -> tuple[float, str, bool | None, str, int | None] | None:
    """:func:`_exact_entropy`, whose unambiguity proofs read the first symbol of every right
    side, for a grammar without empty alternatives; a grammar with one is exact only by
    enumeration (its empty string counts like any other)."""
    if not any(not r.rhs for r in g.rules):
        return _exact_entropy(g, n_deriv, limit)
    if n_deriv is None or n_deriv > limit:
        return None
    lang = enumerate_language(g)
    p = np.array([v[0] for v in lang.values()])
    amb = any(v[1] > 1 for v in lang.values())
    why = "enumeration: " + ("a string has 2+ derivations" if amb else "one derivation each")
    return float(-np.sum(p * np.log2(p))) + 0.0, "exact: enumeration", amb, why, len(lang)


def string_entropy_bits(g: Grammar, *, enumerate_limit: int = ENUMERATE_LIMIT) -> float:
    """Exact string entropy H(G) = -sum_x P(x) log2 P(x) in bits per string. Raises
    :class:`GrammarlabError` when it can only be estimated (use :func:`analyze`)."""
    g = _positive(g)
    got = _exact(g, count_derivations(g), enumerate_limit)
    if got is None:
        raise GrammarlabError(
            "the string entropy of this grammar cannot be computed exactly",
            file=g.source,
            hint="it may be ambiguous and its language is too large to enumerate; "
            "`grammarlab grammar info` gives a Monte Carlo estimate with its standard error",
        )
    return got[0]


@dataclass(frozen=True)
class MonteCarlo:
    """What the Monte Carlo step did within its budget: ``terms`` are exact per-sample values of
    log2 P(x) - log2 P(d) (bits, >= 0) for the samples kept."""

    terms: np.ndarray
    logp_d: np.ndarray
    cut_long: int  # sampled strings longer than the length bound
    cut_budget: int  # planned samples never drawn or scored (time, tokens, runaway sampler)
    stopped: str  # why sampling stopped early ("" when it did not)


def monte_carlo_terms(
    g: Grammar,
    n: int,
    rng: np.random.Generator,
    *,
    seconds: float = MC_SECONDS,
    tokens: int = MC_TOKENS,
    max_length: int = MC_MAX_LENGTH,
) -> MonteCarlo:
    """Draw up to ``n`` derivations and score their strings exactly, in growing chunks, until the
    time (``seconds``) or token (``tokens``) budget is spent. Samples are scored in the order
    drawn, so the ones cut by the budget are a random subset; strings longer than
    ``max_length`` tokens are cut (a bias toward short strings, reported)."""
    start = time.perf_counter()
    terms: list[np.ndarray] = []
    logps: list[np.ndarray] = []
    done = cut_long = spent = 0
    chunk, stopped = 64, ""
    while done < n:
        if time.perf_counter() - start > seconds:
            stopped = f"the {seconds:g} s time budget ran out"
            break
        if spent >= tokens:
            stopped = f"the {tokens:,} token budget ran out"
            break
        m = min(chunk, n - done)
        try:
            strings, logp_d = sample_derivations(g, m, rng)
        except GrammarlabError as e:
            stopped = f"the sampler stopped ({str(e).splitlines()[0]})"
            break
        lengths = np.array([len(x) for x in strings])
        keep = np.flatnonzero(lengths <= max_length)
        cut_long += m - len(keep)
        # score in slices of similar cost (the chart's work grows with the cube of the length
        # on ambiguous grammars), checking the clock between them
        slot = np.cumsum(lengths[keep].astype(float) ** 3) // 2e7
        for part in np.split(keep, np.flatnonzero(np.diff(slot)) + 1):
            if len(part) == 0:
                continue
            if time.perf_counter() - start > seconds or spent >= tokens:
                stopped = stopped or "the budget ran out while scoring"
                break
            lp = string_logprobs(g, [strings[i] for i in part])
            terms.append(np.maximum((lp - logp_d[part]) / math.log(2), 0.0))
            logps.append(logp_d[part])
            spent += int(lengths[part].sum())
            done += len(part)
        else:
            done += m - len(keep)
            chunk = min(chunk * 2, 4096)
            continue
        break
    used = sum(len(t) for t in terms)
    return MonteCarlo(
        terms=np.concatenate(terms) if terms else np.zeros(0),
        logp_d=np.concatenate(logps) if logps else np.zeros(0),
        cut_long=cut_long,
        cut_budget=n - used - cut_long,
        stopped=stopped,
    )


def analyze(
    g: Grammar,
    *,
    mc_samples: int = 20_000,
    seed: int = 0,
    enumerate_limit: int = ENUMERATE_LIMIT,
    mc_seconds: float = MC_SECONDS,
    mc_tokens: int = MC_TOKENS,
    mc_max_length: int = MC_MAX_LENGTH,
) -> EntropyReport:
    """Entropies (bits), lengths, counts and ambiguity of a validated grammar. The string entropy
    is exact when unambiguity is proven (then it equals the derivational entropy) or the language
    is small enough to enumerate; otherwise it is the Monte Carlo estimate
    H(X) = H(D) - E[log2 P(x) - log2 P(d)] over up to ``mc_samples`` sampled derivations, with
    exact per-sample terms (zero variance when no sampled string has a second derivation), within
    a budget (``mc_seconds`` of wall clock, ``mc_tokens`` tokens scored, strings of at most
    ``mc_max_length`` tokens): the report counts the samples used and cut, and notes when the
    grammar is near critical (spectral radius of the mean matrix >= :data:`NEAR_CRITICAL`)."""
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
    exact = _exact(g, n_deriv, enumerate_limit)
    stderr = 0.0
    used = cut = 0
    if exact is not None:
        h, method, amb, why, n_strings = exact
    elif not math.isfinite(h_d):
        h, method, amb, why, n_strings = None, "unknown: critical grammar", None, "unknown", None
        notes.append("the grammar is critical (infinite expected derivation size)")
    else:
        rho = spectral_radius(g)
        mc = monte_carlo_terms(
            g,
            mc_samples,
            np.random.default_rng(seed),
            seconds=mc_seconds,
            tokens=mc_tokens,
            max_length=mc_max_length,
        )
        terms, used, cut = mc.terms, len(mc.terms), mc.cut_long + mc.cut_budget
        h = h_d - float(terms.mean()) if used else None
        stderr = float(terms.std(ddof=1) / math.sqrt(used)) if used > 1 else math.inf
        method = f"estimate: Monte Carlo, n={used}" + (f" ({cut} cut)" if cut else "")
        if mc.cut_long:
            notes.append(
                f"{mc.cut_long} of the sampled strings were longer than {mc_max_length} tokens "
                "and left out: the estimate is over the shorter strings (biased if many)"
            )
        if mc.cut_budget:
            notes.append(f"{mc.cut_budget} of {mc_samples} planned samples cut: {mc.stopped}")
        if rho >= NEAR_CRITICAL:
            notes.append(
                f"near critical: the spectral radius of the mean matrix is {rho:.4g} "
                f"(>= {NEAR_CRITICAL}); string lengths are heavy-tailed, so the Monte Carlo "
                "estimate and its standard error are unreliable"
            )
        witness = terms > 1e-9 * np.maximum(1.0, np.abs(mc.logp_d) / math.log(2))
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
        mc_samples_used=used,
        mc_samples_cut=cut,
    )
