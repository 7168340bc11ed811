"""Structural facts about a grammar that several modules need: reachability, productivity, the
nonterminal graph's strongly connected components, the expectation ("mean") matrix and its
spectral radius, expected expansions, termination probabilities and whether the language is
finite.

Everything here is a pure function of a :class:`~grammarlab.grammar.parse.Grammar`, iterative
(no recursion limit) and linear in the grammar's size, except the dense linear algebra on the
strongly connected components that have cycles: a chain of 10,000 nonterminals costs
milliseconds, as each of its components is a single nonterminal. Results are indexed by
``grammar.nonterminals`` order unless a function says otherwise.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from grammarlab.grammar.parse import Grammar

CRITICAL_TOL = 1e-12  # expected_expansions: a spectral radius within this of 1 counts as 1
SILENT_TOL = 1e-6  # empty_probabilities: a termination probability within this of 1 is 1


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
    ``assume`` (e.g. undefined ones, reported elsewhere) as productive. A worklist: each rule
    waits for its missing nonterminals and fires when the last one becomes productive."""
    prod: set[str] = set(assume)
    missing: list[int] = []  # per rule, how many distinct nonterminals it still waits for
    waiting: dict[str, list[int]] = defaultdict(list)  # nonterminal -> rules waiting for it
    ready: list[int] = []
    for i, r in enumerate(g.rules):
        need = set(r.nonterminals) - prod
        missing.append(len(need))
        for b in need:
            waiting[b].append(i)
        if not need:
            ready.append(i)
    while ready:
        a = g.rules[ready.pop()].lhs
        if a in prod:
            continue
        prod.add(a)
        for i in waiting.pop(a, ()):
            missing[i] -= 1
            if missing[i] == 0:
                ready.append(i)
    return prod


def _weights(g: Grammar) -> list[dict[int, float]]:
    """The mean matrix as rows of a sparse table: ``w[A][B]`` = expected number of B's in the
    right side chosen for A (rule probabilities as given; undefined nonterminals left out). The
    expected number of expansions of each nonterminal is ``e_S (I - M)^-1`` when the spectral
    radius of M is below 1."""
    idx = {a: i for i, a in enumerate(g.nonterminals)}
    w: list[dict[int, float]] = [{} for _ in idx]
    for r in g.rules:
        row = w[idx[r.lhs]]
        for b in r.nonterminals:
            if b in idx:
                row[idx[b]] = row.get(idx[b], 0.0) + r.prob
    return w


def _block(w: list[dict[int, float]], comp: list[int]) -> np.ndarray:
    """The dense diagonal block of the mean matrix on one component."""
    pos = {a: k for k, a in enumerate(comp)}
    m = np.zeros((len(comp), len(comp)))
    for k, a in enumerate(comp):
        for b, x in w[a].items():
            if b in pos:
                m[k, pos[b]] = x
    return m


def components(g: Grammar) -> list[list[int]]:
    """Strongly connected components of the nonterminal graph (A -> B when B occurs in a rule
    for A), as sorted lists of nonterminal indices, children first: every component comes after
    all the components its nonterminals use."""
    return _components([list(row) for row in _weights(g)])


def _components(succ: list[list[int]]) -> list[list[int]]:
    """Tarjan's algorithm with an explicit stack (no recursion limit): the strongly connected
    components of the graph ``succ`` (node -> its successors), children first (Tarjan emits a
    component once everything it reaches has been emitted)."""
    n = len(succ)
    index, low, on_stack = [-1] * n, [0] * n, [False] * n
    stack: list[int] = []
    out: list[list[int]] = []
    counter = 0
    for root in range(n):
        if index[root] >= 0:
            continue
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = True
        work = [(root, 0)]  # (node, next successor to look at)
        while work:
            v, i = work[-1]
            if i < len(succ[v]):
                work[-1] = (v, i + 1)
                u = succ[v][i]
                if index[u] < 0:
                    index[u] = low[u] = counter
                    counter += 1
                    stack.append(u)
                    on_stack[u] = True
                    work.append((u, 0))
                elif on_stack[u]:
                    low[v] = min(low[v], index[u])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    u = stack.pop()
                    on_stack[u] = False
                    comp.append(u)
                    if u == v:
                        break
                out.append(sorted(comp))
    return out


def _cyclic(succ: list, comp: list[int]) -> bool:
    """Does the component have a cycle (more than one member, or a self-loop)?"""
    return len(comp) > 1 or comp[0] in succ[comp[0]]


def spectral_radius(g: Grammar, within: set[str] | None = None) -> float:
    """Spectral radius of the mean matrix, restricted to the nonterminals ``within`` (a set
    closed under use, such as :func:`reachable`; default all). The radius of a nonnegative
    matrix is the largest among its strongly connected components' diagonal blocks (the matrix
    is block-triangular in their order), so only components with a cycle need an eigenvalue
    computation, each on its own block."""
    w = _weights(g)
    keep = None if within is None else {i for i, a in enumerate(g.nonterminals) if a in within}
    rho = 0.0
    for comp in _components([list(row) for row in w]):
        if (keep is None or comp[0] in keep) and _cyclic(w, comp):
            rho = max(rho, float(np.max(np.abs(np.linalg.eigvals(_block(w, comp))))))
    return rho


def expected_expansions(g: Grammar) -> np.ndarray:
    """Expected number of times each nonterminal is expanded in one derivation from the start
    symbol (``inf`` everywhere when the grammar is critical or improper). Propagated parents
    first along the components: a nonterminal without a cycle gets exactly its inflow, a cyclic
    component solves its own block (I - M_CC)^T e_C = inflow."""
    n = len(g.nonterminals)
    if spectral_radius(g) >= 1 - CRITICAL_TOL:
        return np.full(n, np.inf)
    w = _weights(g)
    e = np.zeros(n)
    e[0] = 1.0  # the start symbol is nonterminals[0]
    for comp in reversed(_components([list(row) for row in w])):  # parents first
        if _cyclic(w, comp):
            e[comp] = np.linalg.solve((np.eye(len(comp)) - _block(w, comp)).T, e[comp])
        inside = set(comp)
        for a in comp:
            for b, x in w[a].items():
                if b not in inside:
                    e[b] += e[a] * x
    return e


def termination_probabilities(
    g: Grammar, tol: float = 1e-13, max_iter: int = 100_000
) -> np.ndarray:
    """q[A] = probability that a derivation from A is finite: the least fixed point of
    q_A = sum_r p_r prod_{B in rhs_r} q_B. Components are solved children first, so their
    children's q are known: a nonterminal without a cycle is one evaluation, a cyclic component
    runs Newton's method from q = 0 on its own block (monotone and convergent for this system;
    Etessami & Yannakakis 2009). Undefined nonterminals count as 0. An empty alternative is a
    product over no nonterminals: it ends the derivation (1)."""
    idx = {a: i for i, a in enumerate(g.nonterminals)}
    rules_of: list[list[tuple[float, list[int]]]] = [[] for _ in idx]
    for r in g.rules:
        rules_of[idx[r.lhs]].append((r.prob, [idx.get(b, -1) for b in r.nonterminals]))
    return least_fixed_point(rules_of, tol, max_iter)


def nullable(g: Grammar) -> set[str]:
    """Nonterminals that derive the empty string (through empty alternatives): a worklist over
    the rules without terminals, like :func:`productive`."""
    plain = tuple(r for r in g.rules if not any(r.terminal_mask))
    return productive(Grammar(plain, g.source)) if plain else set()


def empty_probabilities(g: Grammar, tol: float = 1e-13, max_iter: int = 100_000) -> np.ndarray:
    """e[A] = probability that a derivation from A yields the empty string: the least fixed
    point of e_A = sum_r p_r prod_{X in rhs_r} e_X with e = 0 for a terminal, so only rules
    without terminals count (the system of :func:`termination_probabilities` on those rules,
    solved the same way). Exact zeros and ones are set combinatorially rather than left to
    Newton's method, which converges only linearly at a critical point
    (S -> S S [0.5] | [0.5]): e = 0 where A is not :func:`nullable`, and e = q (the termination
    probability) where A derives no terminal at all, as every finite derivation from A is then
    empty; q is 1 there unless the grammar leaks mass (Newton's shortfall of about 1e-8 at a
    critical point is rounding, as in the validator). Indexed like ``g.nonterminals``."""
    idx = {a: i for i, a in enumerate(g.nonterminals)}
    rules_of: list[list[tuple[float, list[int]]]] = [[] for _ in idx]
    for r in g.rules:
        if not any(r.terminal_mask):
            rules_of[idx[r.lhs]].append((r.prob, [idx.get(b, -1) for b in r.rhs]))
    e = least_fixed_point(rules_of, tol, max_iter)
    null = nullable(g)
    e[[i for a, i in idx.items() if a not in null]] = 0.0
    # A derives a terminal when a rule of A has one, or uses a nonterminal that derives one
    # (every nonterminal of a valid grammar is productive, so the rest of the rule can end)
    uses: dict[str, set[str]] = defaultdict(set)
    todo = []
    for r in g.rules:
        if any(r.terminal_mask):
            todo.append(r.lhs)
        for b in r.nonterminals:
            uses[b].add(r.lhs)
    lexical = set(todo)
    while todo:
        for a in uses[todo.pop()]:
            if a not in lexical:
                lexical.add(a)
                todo.append(a)
    silent = [i for a, i in idx.items() if a not in lexical]
    if silent:
        q = termination_probabilities(g, tol, max_iter)[silent]
        e[silent] = np.where(q > 1.0 - SILENT_TOL, 1.0, q)
    return e


def least_fixed_point(
    rules_of: list[list[tuple[float, list[int]]]], tol: float = 1e-13, max_iter: int = 100_000
) -> np.ndarray:
    """Least fixed point of x_A = sum_{(p, bs) in rules_of[A]} p prod_{B in bs} x_B (index -1:
    a constant 0), component by component, children first."""
    n = len(rules_of)
    w: list[dict[int, float]] = [{} for _ in range(n)]
    for a, rules in enumerate(rules_of):
        for _, bs in rules:
            for b in bs:
                if b >= 0:
                    w[a][b] = 1.0
    q = np.zeros(n + 1)  # q[-1] = 0: undefined (or a terminal)
    succ = [list(row) for row in w]
    for comp in _components(succ):
        if not _cyclic(succ, comp):
            a = comp[0]
            q[a] = sum(p * float(np.prod(q[bs])) for p, bs in rules_of[a])
        else:
            q[comp] = _newton(comp, rules_of, q, tol, max_iter)
    return q[:-1]


def _newton(
    comp: list[int],
    rules_of: list[list[tuple[float, list[int]]]],
    q: np.ndarray,
    tol: float,
    max_iter: int,
) -> np.ndarray:
    """Least fixed point of one cyclic component's equations, the rest of ``q`` held fixed."""
    pos = {a: k for k, a in enumerate(comp)}
    size = len(comp)

    def f_and_jac(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q[comp] = x
        f = np.zeros(size)
        jac = np.zeros((size, size))
        for k, a in enumerate(comp):
            for p, bs in rules_of[a]:
                vals = q[bs]
                f[k] += p * float(np.prod(vals))
                for j, b in enumerate(bs):
                    if b in pos:
                        jac[k, pos[b]] += p * float(np.prod(np.delete(vals, j)))
        return f, jac

    x = np.zeros(size)
    for _ in range(max_iter):
        f, jac = f_and_jac(x)
        try:
            step = np.linalg.solve(np.eye(size) - jac, f - x)
        except np.linalg.LinAlgError:
            step = f - x  # singular (critical point): fall back to plain iteration
        x_new = np.clip(x + step, 0.0, 1.0)
        if not np.all(np.isfinite(x_new)):
            x_new = np.clip(f, 0.0, 1.0)
        if np.max(np.abs(x_new - x)) < tol:
            x = x_new
            break
        x = x_new
    return x


def useful_order(g: Grammar) -> list[str] | None:
    """The useful (reachable and productive) nonterminals, each after every useful nonterminal
    it uses (children first), or None when they form a cycle (then the set of derivations, and
    perhaps the language, is infinite). Rules that use a useless nonterminal derive nothing."""
    useful = reachable(g) & productive(g)
    nts = [a for a in g.nonterminals if a in useful]
    idx = {a: i for i, a in enumerate(nts)}
    succ = [list({idx[b] for r in g.by_lhs[a] for b in r.nonterminals if b in idx}) for a in nts]
    comps = _components(succ)
    if any(_cyclic(succ, c) for c in comps):
        return None
    return [nts[c[0]] for c in comps]


def useful_cycle(g: Grammar) -> bool:
    """True when some reachable, productive nonterminal can derive itself (the language or the
    set of derivations may then be infinite)."""
    return useful_order(g) is None


def unit_cycle(g: Grammar) -> bool:
    """True when some nonterminal derives itself without producing a token: through unit rules
    (A -> B, B -> ... -> A), or through rules whose other symbols are all nullable
    (A -> B C with C deriving the empty string), so a string can have infinitely many
    derivations."""
    idx = {a: i for i, a in enumerate(g.nonterminals)}
    null = nullable(g) if any(not r.rhs for r in g.rules) else set()
    succ: list[list[int]] = [[] for _ in idx]
    for r in g.rules:
        if any(r.terminal_mask):
            continue
        rest = [b for b in r.rhs if b not in null]
        if len(rest) > 1:
            continue
        for b in rest or r.rhs:  # none left: any of them can be the one that is not empty
            if b in idx:
                succ[idx[r.lhs]].append(idx[b])
    return any(_cyclic(succ, c) for c in _components(succ))
