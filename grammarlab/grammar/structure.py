"""Structural facts about a grammar that several modules need: reachability, productivity, the
expectation ("mean") matrix, termination probabilities and finiteness of the language.

Everything here is a pure function of a :class:`~grammarlab.grammar.parse.Grammar`. Results are
indexed by
``grammar.nonterminals`` order unless a function says otherwise.
"""

from __future__ import annotations

import numpy as np

from grammarlab.grammar.parse import Grammar


def defined(g: Grammar) -> set[str]:
    return set(g.by_lhs)


def reachable(g: Grammar) -> set[str]:
    """Nonterminals reachable from the start symbol (through defined nonterminals)."""
    seen = {g.start}
    todo = [g.start]
    while todo:
        a = todo.pop()
        for r in g.by_lhs.get(a, ()):
            for b in r.nonterminals:
                if b not in seen and b in g.by_lhs:
                    seen.add(b)
                    todo.append(b)
    return seen


def productive(g: Grammar, assume: set[str] | frozenset[str] = frozenset()) -> set[str]:
    """Nonterminals that derive at least one finite terminal string, counting the symbols in
    ``assume`` (e.g. undefined ones, reported elsewhere) as productive."""
    prod: set[str] = set(assume)
    changed = True
    while changed:
        changed = False
        for r in g.rules:
            if r.lhs not in prod and all(b in prod for b in r.nonterminals):
                prod.add(r.lhs)
                changed = True
    return prod


def mean_matrix(g: Grammar) -> np.ndarray:
    """M[A, B] = expected number of B's in the right side chosen for A (rule probabilities as
    given). The expected number of expansions of each nonterminal is ``e_S (I - M)^-1`` when the
    spectral radius of M is below 1."""
    idx = {a: i for i, a in enumerate(g.nonterminals)}
    m = np.zeros((len(idx), len(idx)))
    for r in g.rules:
        for b in r.nonterminals:
            if b in idx:
                m[idx[r.lhs], idx[b]] += r.prob
    return m


def spectral_radius(m: np.ndarray) -> float:
    if m.size == 0:
        return 0.0
    return float(np.max(np.abs(np.linalg.eigvals(m))))


def expected_expansions(g: Grammar) -> np.ndarray:
    """Expected number of times each nonterminal is expanded in one derivation from the start
    symbol (``inf`` everywhere when the grammar is critical or improper)."""
    m = mean_matrix(g)
    n = len(g.nonterminals)
    if spectral_radius(m) >= 1 - 1e-12:
        return np.full(n, np.inf)
    e = np.zeros(n)
    e[0] = 1.0  # the start symbol is nonterminals[0]
    return np.linalg.solve((np.eye(n) - m).T, e)


def termination_probabilities(
    g: Grammar, tol: float = 1e-13, max_iter: int = 100_000
) -> np.ndarray:
    """q[A] = probability that a derivation from A is finite: the least fixed point of
    q_A = sum_r p_r prod_{B in rhs_r} q_B, found by Newton's method from q = 0 (monotone and
    convergent for this system; Etessami & Yannakakis 2009). Undefined nonterminals count as 0."""
    nts = g.nonterminals
    idx = {a: i for i, a in enumerate(nts)}
    n = len(nts)
    rules = [(idx[r.lhs], r.prob, [idx.get(b, -1) for b in r.nonterminals]) for r in g.rules]

    def f_and_jac(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        qx = np.append(q, 0.0)  # index -1 -> undefined -> 0
        f = np.zeros(n)
        jac = np.zeros((n, n))
        for a, p, bs in rules:
            vals = qx[bs] if bs else np.empty(0)
            f[a] += p * float(np.prod(vals))
            for k, b in enumerate(bs):
                if b >= 0:
                    jac[a, b] += p * float(np.prod(np.delete(vals, k)))
        return f, jac

    q = np.zeros(n)
    for _ in range(max_iter):
        f, jac = f_and_jac(q)
        try:
            step = np.linalg.solve(np.eye(n) - jac, f - q)
        except np.linalg.LinAlgError:
            step = f - q  # singular (critical point): fall back to plain iteration
        q_new = np.clip(q + step, 0.0, 1.0)
        if not np.all(np.isfinite(q_new)):
            q_new = np.clip(f, 0.0, 1.0)
        if np.max(np.abs(q_new - q)) < tol:
            q = q_new
            break
        q = q_new
    return q


def useful_cycle(g: Grammar) -> bool:
    """True when some reachable, productive nonterminal can derive itself (the language or the
    set of derivations may then be infinite)."""
    useful = reachable(g) & productive(g)
    graph = {
        a: {b for r in g.by_lhs.get(a, ()) for b in r.nonterminals if b in useful} for a in useful
    }
    color: dict[str, int] = {}

    def visit(a: str) -> bool:
        color[a] = 1
        for b in graph[a]:
            c = color.get(b, 0)
            if c == 1 or (c == 0 and visit(b)):
                return True
        color[a] = 2
        return False

    return any(color.get(a, 0) == 0 and visit(a) for a in useful)
