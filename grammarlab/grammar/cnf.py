"""Compiled forms of a PCFG for the exact algorithms of :mod:`grammarlab.grammar.inside` (internal).

Two forms, each built once per grammar and cached:

* :func:`compile_cnf` -- a binary/lexical/unit normal form for the chart algorithms (any grammar):
  right sides of length >= 3 are binarized from the right with fresh intermediate nonterminals
  (probability 1; a suffix shared by several rules gets one intermediate), terminals inside right
  sides of length >= 2 become preterminals ``T -> 'a' [1]``, and unit rules ``A -> B`` (cycles
  included) are kept and closed with ``(I - U)^-1``. :func:`lengths`, :func:`pairs` and
  :func:`closure_plan` derive (and cache on the compiled object) what the charts iterate over.
* :func:`compile_regular` -- for a right-linear grammar (every right side is terminals followed by
  at most one nonterminal), a probabilistic automaton read left to right, or ``None`` when the
  grammar is not right-linear.

Both take grammars without empty alternatives. :func:`empty_free` turns any grammar into one
(:class:`EmptyFree`): the grammar of the non-empty strings and the probability of the empty one.

Why an elimination rather than empty items in the charts: with e(A) the exact probability that A
derives the empty string (:func:`~grammarlab.grammar.structure.empty_probabilities`, the least
fixed point of a polynomial system), the non-empty part of every nonterminal is again a PCFG,

    A+ -> kept+ [p * prod_{dropped B} e(B) * prod_{kept nonterminals C} (1 - e(C)) / (1 - e(A))]

one rule per rule ``A -> X1 .. Xn [p]`` and per choice of which nullable nonterminals derive the
empty string (dropped) and which do not (kept, as C+), leaving at least one symbol. For a
non-empty string w, summing over those choices counts every derivation of w from A exactly once,
so P_A(w) = (1 - e(A)) P_{A+}(w), and the rules of A+ sum to 1 (the choices of all rules of A
sum to 1 minus the all-dropped ones, which are e(A)). Then P(w) = (1 - e(S)) P_{S+}(w) and
P(empty) = e(S): inside, prefix and Earley algorithms (and the regular fast path, as a
right-linear grammar stays right-linear) run unchanged on the eliminated grammar, and
:mod:`grammarlab.grammar.inside` multiplies in 1 - e(S) once (the empty prefix and the first
token). Unit cycles the elimination creates (``A -> A B`` with B nullable gives
``A+ -> A+ [p e(B)]``) have weight below 1 in a consistent grammar and go into the unit closure
``(I - U)^-1`` like any other. Where e(A) is near 1 the difference 1 - e(A) would lose digits,
so it is solved from its own positive polynomial system there (:func:`_nonempty_mass`). A rule
with many nullable nonterminals would have 2^n choices, so
such a rule is first cut into a chain of right sides of at most :data:`MAX_NULLABLE_PER_RULE`
nullable symbols with fresh nonterminals (probability 1), which changes no probability.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache, wraps
from itertools import product
from typing import TypeVar

import numpy as np

from grammarlab.errors import GrammarlabError
from grammarlab.grammar.parse import Grammar, Rule
from grammarlab.grammar.structure import empty_probabilities, least_fixed_point

MAX_NULLABLE_PER_RULE = 6  # nullable symbols per right side before it is cut (2^6 choices)


@dataclass(frozen=True, eq=False)
class Compiled:
    """The grammar in binary/lexical/unit form; nonterminal 0 is the start symbol."""

    k: int  # number of nonterminals after compilation
    tid: dict[str, int]  # terminal -> row of `lex`
    lex: np.ndarray  # [n_terminals + 1, n_lex_nts] log P(A -> 'a'); last row (unknown) -inf
    lex_nts: np.ndarray  # nonterminals with a lexical rule (columns of `lex`)
    b_lhs: np.ndarray  # binary rules A -> B C, sorted by A
    b_left: np.ndarray
    b_right: np.ndarray
    b_logp: np.ndarray
    u_rows: np.ndarray  # nonterminals whose unit closure row is not the identity
    u_mat: np.ndarray  # [len(u_rows), k] rows of (I - U)^-1
    ureach: np.ndarray  # [k, k] bool: A =>* B by unit rules (reflexive)
    lc_rows: np.ndarray  # nonterminals whose prefix probabilities are read (right children, S)
    lc_mat: np.ndarray  # [len(lc_rows), k] rows of the left-corner closure (I - P_L)^-1
    cache: dict = field(default_factory=dict)  # lengths, pair lists and closure plans


@dataclass(frozen=True, eq=False)
class Regular:
    """A right-linear grammar as an automaton over states 0..k-1 (nonterminals, start first, then
    intermediate states inside right sides with several terminals) and the final state ``k`` (the
    derivation has ended). Arcs are stored by destination: ``in_src[t, c, :]`` are the states
    with an arc into c reading terminal t, padded to the largest in-degree with log probability
    ``-inf`` (cheap for the usual grammars, where it is 1 or small). Arcs already include the
    unit-rule closure of their destination, so a forward step is one gather and one sum. That
    closure counts a derivation once in every state its unit chain passes through; weighting
    state C by ``1 - P(C -> unit rule)`` (``logz``) counts it once, where it reads a token."""

    k: int
    tid: dict[str, int]  # terminal -> row of the arc tables; row len(tid) (unknown) has no arcs
    init: np.ndarray  # [k + 1] log P(start =>* state by unit rules)
    in_src: np.ndarray  # [n_terminals + 1, k + 1, max in-degree] source states
    in_logp: np.ndarray  # [n_terminals + 1, k + 1, max in-degree] log arc probabilities
    logz: np.ndarray  # [k + 1] log(1 - P(state -> unit rule))
    cache: dict = field(default_factory=dict)  # states reachable in exactly i steps


def inverse_closure(m: np.ndarray, what: str, g: Grammar) -> np.ndarray:
    """``(I - m)^-1`` (expected visits); raises :class:`GrammarlabError` when it does not exist."""
    k = len(m)
    try:
        inv = np.linalg.solve(np.eye(k) - m, np.eye(k))
    except np.linalg.LinAlgError:
        inv = np.full((k, k), np.nan)
    if not np.all(np.isfinite(inv)) or inv.min() < -1e-9:
        raise GrammarlabError(
            f"the {what} closure (I - M)^-1 of the grammar does not exist",
            file=g.source,
            hint="the grammar must be consistent (every derivation terminates with probability 1)",
        )
    inv[inv < 1e-300] = 0.0
    return inv


T = TypeVar("T")


def per_grammar(fn: Callable[[Grammar], T]) -> Callable[[Grammar], T]:
    """Cache ``fn(g)`` by the identity of ``g`` in front of an equality cache: hashing a frozen
    grammar walks all its rules, which costs more than a next-token query on a cached chart."""
    memo: dict[int, tuple[weakref.ref, T]] = {}

    @wraps(fn)
    def call(g: Grammar) -> T:
        hit = memo.get(id(g))
        if hit is not None and hit[0]() is g:
            return hit[1]
        value = fn(g)
        if len(memo) >= 64:
            memo.clear()
        memo[id(g)] = (weakref.ref(g), value)
        return value

    return call


@dataclass(frozen=True, eq=False)
class EmptyFree:
    """A grammar split at the empty string: ``grammar`` (None when the empty string is the only
    one) derives the non-empty strings with their probabilities divided by 1 - P(empty), with the
    same nonterminal names (those that derive only the empty string are gone, and fresh ones whose
    names start with ``<`` cut long right sides); ``log_empty`` = log P(empty string) and
    ``log_rest`` = log(1 - P(empty string)), nats."""

    grammar: Grammar | None
    log_empty: float
    log_rest: float


def has_empty_rules(g: Grammar) -> bool:
    return any(not r.rhs for r in g.rules)


@per_grammar
def empty_free(g: Grammar) -> EmptyFree:
    """The empty-string split of ``g`` (cached; see the module docstring); ``g`` itself, with
    P(empty) = 0, when it has no empty alternative."""
    if not has_empty_rules(g):
        return EmptyFree(g, -math.inf, 0.0)
    g = _cut_long_rules(g)
    e = dict(zip(g.nonterminals, empty_probabilities(g).tolist(), strict=True))
    if e[g.start] >= 1.0:
        return EmptyFree(None, 0.0, -math.inf)
    # per rule and choice of the dropped symbols: the new rule, p * prod e(dropped), the kept
    # nonterminals (whose factors 1 - e(C) come below)
    terms: list[tuple[str, tuple, int, float, list[str]]] = []
    for r in g.rules:
        if e[r.lhs] >= 1.0 or r.prob <= 0:
            continue
        opts = []  # per symbol, its choices: (kept?, factor)
        for s, t in zip(r.rhs, r.terminal_mask, strict=True):
            x = 0.0 if t else e[s]
            opts.append([(True, 1.0)] * (x < 1.0) + [(False, x)] * (x > 0.0))
        syms = list(zip(r.rhs, r.terminal_mask, strict=True))
        for combo in product(*opts):
            keep = [st for st, (k, _) in zip(syms, combo, strict=True) if k]
            if keep:
                key = (r.lhs, tuple(s for s, _ in keep), tuple(t for _, t in keep))
                coef = r.prob * math.prod(f for _, f in combo)
                terms.append((r.lhs, key, r.line, coef, [s for s, t in keep if not t]))
    n = _nonempty_mass(g, e, terms)
    out: dict[tuple, list] = {}  # (lhs, rhs, mask) -> [line, probability terms]
    for lhs, key, line, coef, kept in terms:
        p = coef * math.prod(n[c] for c in kept) / n[lhs]
        out.setdefault(key, [line, []])[1].append(p)
    with np.errstate(divide="ignore"):
        log_empty = float(np.log(e[g.start]))
    log_rest = math.log(n[g.start])
    rules = [
        Rule(lhs, rhs, math.fsum(ps), line, mask) for (lhs, rhs, mask), (line, ps) in out.items()
    ]
    order = {a: i for i, a in enumerate(g.nonterminals)}
    rules.sort(key=lambda r: order[r.lhs])  # stable: the start symbol's rules first
    return EmptyFree(Grammar(tuple(rules), g.source, g.header), log_empty, log_rest)


def _nonempty_mass(g: Grammar, e: dict[str, float], terms: list) -> dict[str, float]:
    """n(A) = 1 - e(A), the probability that A derives a non-empty string. Where e(A) > 1/2 the
    subtraction would lose digits (n = 1e-9 from e = 1 - 1e-9 keeps 7 of them), so n is solved
    there from its own positive system, n_A = sum over the choices of p prod_{dropped} e(B)
    prod_{kept nonterminals} n(C), whose least fixed point it is; the rules of A+ then sum to 1
    to rounding whatever e(A)."""
    n = {a: 1.0 - x for a, x in e.items()}
    if all(x <= 0.5 or x >= 1.0 for x in e.values()):
        return n
    idx = {a: i for i, a in enumerate(g.nonterminals)}
    rules_of: list[list[tuple[float, list[int]]]] = [[] for _ in idx]
    for lhs, _key, _line, coef, kept in terms:
        rules_of[idx[lhs]].append((coef, [idx[c] for c in kept]))
    solved = least_fixed_point(rules_of)
    for a, i in idx.items():
        if 0.5 < e[a] < 1.0:
            n[a] = float(solved[i])
    return n


def _cut_long_rules(g: Grammar) -> Grammar:
    """``g`` with every right side holding more than MAX_NULLABLE_PER_RULE nonterminals cut
    into ``A -> X1 .. Xk <n>``, ``<n> -> Xk+1 ..`` (probability 1; k = MAX_NULLABLE_PER_RULE - 1)
    with fresh nonterminals ``<n>`` (a grammar file's names cannot start with ``<``): the same
    derivations with the same probabilities."""
    if all(len(r.nonterminals) <= MAX_NULLABLE_PER_RULE for r in g.rules):
        return g
    rules: list[Rule] = []
    fresh = 0
    tail: list[Rule] = []
    for r in g.rules:
        lhs, rhs, mask, prob = r.lhs, r.rhs, r.terminal_mask, r.prob
        while sum(not t for t in mask) > MAX_NULLABLE_PER_RULE:
            cut, seen = 0, 0
            while seen < MAX_NULLABLE_PER_RULE - 1:
                seen += not mask[cut]
                cut += 1
            fresh += 1
            name = f"<{fresh}>"
            head = Rule(lhs, (*rhs[:cut], name), prob, r.line, (*mask[:cut], False))
            (rules if lhs == r.lhs else tail).append(head)
            lhs, rhs, mask, prob = name, rhs[cut:], mask[cut:], 1.0
        (rules if lhs == r.lhs else tail).append(Rule(lhs, rhs, prob, r.line, mask))
    return Grammar(tuple(rules + tail), g.source, g.header)


@per_grammar
@lru_cache(maxsize=16)
def compile_cnf(g: Grammar) -> Compiled:
    """The binary/lexical/unit form of ``g`` (cached per grammar; no empty alternatives: see
    :func:`empty_free`)."""
    if has_empty_rules(g):
        raise ValueError("compile_cnf needs a grammar without empty alternatives (empty_free)")
    idx = {a: i for i, a in enumerate(g.nonterminals)}
    tid = {t: j for j, t in enumerate(g.terminals)}
    lex_rules: list[tuple[int, int, float]] = []
    unit_rules: list[tuple[int, int, float]] = []
    binary: list[tuple[int, int, int, float]] = []
    pre: dict[str, int] = {}
    inter: dict[tuple[int, ...], int] = {}
    count = [len(idx)]

    def new_nt() -> int:
        count[0] += 1
        return count[0] - 1

    def symbol(s: str, is_t: bool) -> int:
        if not is_t:
            return idx[s]
        if s not in pre:
            pre[s] = new_nt()
            lex_rules.append((pre[s], tid[s], 0.0))
        return pre[s]

    def suffix(ids: tuple[int, ...]) -> int:
        if len(ids) == 1:
            return ids[0]
        if ids not in inter:
            inter[ids] = new_nt()
            binary.append((inter[ids], ids[0], suffix(ids[1:]), 0.0))
        return inter[ids]

    for r in g.rules:
        if r.prob <= 0:
            continue
        if len(r.rhs) == 1:
            if r.terminal_mask[0]:
                lex_rules.append((idx[r.lhs], tid[r.rhs[0]], math.log(r.prob)))
            else:
                unit_rules.append((idx[r.lhs], idx[r.rhs[0]], r.prob))
            continue
        ids = tuple(symbol(s, t) for s, t in zip(r.rhs, r.terminal_mask, strict=True))
        binary.append((idx[r.lhs], ids[0], suffix(ids[1:]), math.log(r.prob)))
    k = count[0]
    lex_nts = np.unique([a for a, _, _ in lex_rules])
    col = {a: j for j, a in enumerate(lex_nts)}
    lex = np.full((len(tid) + 1, len(lex_nts)), -np.inf)
    for a, t, lp in lex_rules:
        lex[t, col[a]] = np.logaddexp(lex[t, col[a]], lp)
    binary.sort(key=lambda x: x[0])
    b = np.array(binary, dtype=float).reshape(-1, 4)
    u = np.zeros((k, k))
    for a, c, p in unit_rules:
        u[a, c] += p
    uc = inverse_closure(u, "unit-rule", g)
    u_rows = np.flatnonzero(np.any(np.abs(uc - np.eye(k)) > 0, axis=1))
    pl = u.copy()
    for a, left, _, lp in binary:
        pl[a, left] += math.exp(lp)
    lc = inverse_closure(pl, "left-corner", g)
    lc_rows = np.unique(np.r_[0, b[:, 2]].astype(int))
    return Compiled(
        k=k,
        tid=tid,
        lex=lex,
        lex_nts=lex_nts,
        b_lhs=b[:, 0].astype(int),
        b_left=b[:, 1].astype(int),
        b_right=b[:, 2].astype(int),
        b_logp=b[:, 3].copy(),
        u_rows=u_rows,
        u_mat=uc[u_rows],
        ureach=uc > 0,
        lc_rows=lc_rows,
        lc_mat=lc[lc_rows],
    )


@per_grammar
@lru_cache(maxsize=16)
def compile_regular(g: Grammar) -> Regular | None:
    """The automaton of a right-linear ``g`` (cached), or ``None`` when some rule is not of the
    form ``A -> 't1' ... 'tn' [B]`` (n >= 1) or ``A -> B``. A rule ``A -> 'a' 'b' B`` becomes the
    arcs ``A -a-> X`` (its probability) and ``X -b-> B`` (probability 1), where the intermediate
    state X is shared by every rule ending in ``'b' B``."""
    rules = [r for r in g.rules if r.prob > 0]
    if has_empty_rules(g):
        raise ValueError("compile_regular needs a grammar without empty alternatives (empty_free)")
    if not all(all(r.terminal_mask[:-1]) for r in rules):
        return None
    idx = {a: i for i, a in enumerate(g.nonterminals)}
    tid = {t: j for j, t in enumerate(g.terminals)}
    final = -1  # the final state, renumbered to k below
    arcs: list[tuple[int, int, int, float]] = []  # (source, terminal, destination, probability)
    units: list[tuple[int, int, float]] = []
    inter: dict[tuple[tuple[str, ...], int], int] = {}
    for r in rules:
        if not r.terminal_mask[0]:
            units.append((idx[r.lhs], idx[r.rhs[0]], r.prob))
            continue
        terms = r.rhs if r.terminal_mask[-1] else r.rhs[:-1]
        state = final if r.terminal_mask[-1] else idx[r.rhs[-1]]
        last = state
        for j in range(len(terms) - 1, 0, -1):  # intermediates, innermost suffix first
            key = (terms[j:], last)
            if key not in inter:
                inter[key] = len(idx) + len(inter)
                arcs.append((inter[key], tid[terms[j]], state, 1.0))
            state = inter[key]
        arcs.append((idx[r.lhs], tid[terms[0]], state, r.prob))
    k, n_nt = len(idx) + len(inter), len(idx)
    u = np.zeros((n_nt, n_nt))
    for a, b, p in units:
        u[a, b] += p
    uc = inverse_closure(u, "unit-rule", g)
    total: dict[tuple[int, int, int], float] = {}
    for a, t, b, p in arcs:  # fold the unit closure of the destination into each arc
        targets = [(k, 1.0)] if b == final else [(b, 1.0)]
        if 0 <= b < n_nt:
            (cs,) = np.nonzero(uc[b])
            targets = [(int(c), float(uc[b, c])) for c in cs]
        for c, w in targets:
            total[(t, c, a)] = total.get((t, c, a), 0.0) + p * w
    into: dict[tuple[int, int], list[tuple[int, float]]] = {}
    for (t, c, a), p in total.items():
        into.setdefault((t, c), []).append((a, math.log(p)))
    degree = max([1] + [len(x) for x in into.values()])
    in_src = np.zeros((len(tid) + 1, k + 1, degree), dtype=np.int64)
    in_logp = np.full((len(tid) + 1, k + 1, degree), -np.inf)
    for (t, c), arc in into.items():
        in_src[t, c, : len(arc)], in_logp[t, c, : len(arc)] = zip(*arc, strict=True)
    init, logz = np.full(k + 1, -np.inf), np.zeros(k + 1)
    with np.errstate(divide="ignore"):
        init[:n_nt] = np.log(uc[0])
        logz[:n_nt] = np.log(np.maximum(1.0 - u.sum(axis=1), 0.0))
    return Regular(k=k, tid=tid, init=init, in_src=in_src, in_logp=in_logp, logz=logz)


def reachable_states(rc: Regular, steps: int) -> list[np.ndarray]:
    """For i = 0..steps, the states a derivation can be in after exactly i tokens (any tokens):
    the forward pass computes only those columns (for the paper's chain, one per step)."""
    got = rc.cache.setdefault("reach", [])
    if not got:
        adj = np.zeros((rc.k + 1, rc.k + 1), dtype=bool)
        live = np.isfinite(rc.in_logp)
        adj[rc.in_src[live], np.nonzero(live)[1]] = True
        rc.cache["adj"] = adj
        got.append(np.flatnonzero(np.isfinite(rc.init)))
    while len(got) <= steps:
        got.append(np.flatnonzero(rc.cache["adj"][got[-1]].any(axis=0)))
    return got[: steps + 1]


def lengths(c: Compiled, length: int) -> tuple[np.ndarray, np.ndarray]:
    """``lens[A, l]``: A derives some string of length l (l <= length); ``maxlen[A]``: the longest
    length A derives, capped at ``length + 1``. Length sets are bit masks (bit l = length l),
    combined by sum-sets, children before parents, until nothing changes."""
    got = c.cache.get("lens")
    if got is not None and got[0].shape[1] > length:
        return got
    top = 1 << (length + 1)  # "longer than length" (saturating)
    full = (top << 1) - 1
    kids: list[list[tuple[int, int]]] = [[] for _ in range(c.k)]
    for a, left, right in zip(c.b_lhs, c.b_left, c.b_right, strict=True):
        kids[a].append((int(left), int(right)))
    for a, bb in zip(*np.nonzero(c.ureach), strict=True):
        if a != bb:
            kids[a].append((int(bb), -1))
    masks = [0] * c.k
    for a in c.lex_nts:
        masks[a] = 2
    order = _postorder(kids)

    def sumset(x: int, y: int) -> int:
        if x.bit_count() > y.bit_count():
            x, y = y, x
        res = 0
        while x:
            low = x & -x
            res |= y << (low.bit_length() - 1)
            x ^= low
        return (res & full) | top if res > full else res

    changed = True
    while changed:
        changed = False
        for a in order:
            new = masks[a]
            for left, right in kids[a]:
                new |= masks[left] if right < 0 else sumset(masks[left], masks[right])
            if new != masks[a]:
                masks[a], changed = new, True
    nbytes = (length + 2 + 7) // 8 + 1
    bits = np.frombuffer(b"".join(m.to_bytes(nbytes, "little") for m in masks), np.uint8)
    lens = np.unpackbits(bits.reshape(c.k, nbytes), axis=1, bitorder="little")[:, : length + 1]
    ml = np.array([m.bit_length() - 1 for m in masks], dtype=np.int64)
    c.cache.clear()
    c.cache["lens"] = (lens.astype(bool), ml)
    return c.cache["lens"]


def _postorder(kids: list[list[tuple[int, int]]]) -> list[int]:
    """Nonterminals with children (mostly) before parents (iterative depth-first search)."""
    seen = [False] * len(kids)
    order: list[int] = []
    for root in range(len(kids)):
        if seen[root]:
            continue
        seen[root] = True
        stack = [(root, iter([x for lr in kids[root] for x in lr if x >= 0]))]
        while stack:
            a, it = stack[-1]
            nxt = next((x for x in it if not seen[x]), None)
            if nxt is None:
                order.append(a)
                stack.pop()
            else:
                seen[nxt] = True
                stack.append((nxt, iter([x for lr in kids[nxt] for x in lr if x >= 0])))
    return order


def pairs(c: Compiled, kind: str, w: int, lens: np.ndarray, ml: np.ndarray) -> tuple:
    """(split, left, right, logp, segment starts, segment lhs) for the (split, rule) pairs that can
    contribute to a span: ``inside`` width w (left child width = split), or ``prefix`` width
    w + 1 (complete left child of width split, right child a prefix of width w + 1 - split).
    Built for every width at once from the length sets, so the work is the number of pairs."""
    if kind not in c.cache:
        length = lens.shape[1] - 1
        parts = []
        for r, (left, right) in enumerate(zip(c.b_left, c.b_right, strict=True)):
            ks = np.flatnonzero(lens[left])
            if kind == "inside":
                ms = np.flatnonzero(lens[right])
            else:
                ms = np.arange(1, min(ml[right], length) + 1)
            ww = (ks[:, None] + ms[None, :] - (kind == "prefix")).ravel()
            kk = np.repeat(ks, len(ms))
            keep = ww <= length - (kind == "prefix")
            parts.append((ww[keep], np.full(keep.sum(), r), kk[keep]))
        allp = np.zeros((3, 0), dtype=np.int64)
        if parts:
            allp = np.array([np.concatenate(x) for x in zip(*parts, strict=True)], dtype=np.int64)
        allp = allp[:, np.lexsort((allp[2], allp[1], allp[0]))]  # by width, rule (lhs), split
        table = {}
        bounds = np.flatnonzero(np.r_[True, allp[0, 1:] != allp[0, :-1], True])[: allp.shape[1] + 1]
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            r, split = allp[1, lo:hi], allp[2, lo:hi]
            lhs = c.b_lhs[r]
            starts = np.flatnonzero(np.r_[True, lhs[1:] != lhs[:-1]])
            table[int(allp[0, lo])] = (
                split,
                c.b_left[r],
                c.b_right[r],
                c.b_logp[r],
                starts,
                lhs[starts],
            )
        c.cache[kind] = table
    got = c.cache[kind].get(w)
    if got is None:
        empty = np.zeros(0, dtype=np.int64)
        got = (empty, empty, empty, np.zeros(0), empty, empty)
    return got


def closure_plan(c: Compiled, kind: str, key: int, ins: np.ndarray) -> tuple:
    """How to apply the unit (``kind="unit"``) or left-corner (``"lc"``) closure to log values of
    nonterminals ``ins`` (cached under ``key``): (output nonterminals, segment starts, input
    positions, log weights). The unit closure passes nonterminals without unit rules through."""
    cache = c.cache.setdefault(kind, {})
    if key not in cache:
        rows, mat = (c.u_rows, c.u_mat) if kind == "unit" else (c.lc_rows, c.lc_mat)
        r, j = np.nonzero(mat[:, ins] > 0)
        out, pos, logw = rows[r], j, np.log(mat[r, ins[j]])
        if kind == "unit":
            keep = ~np.isin(ins, rows)
            out = np.r_[out, ins[keep]]
            pos = np.r_[pos, np.flatnonzero(keep)]
            logw = np.r_[logw, np.zeros(keep.sum())]
        order = np.argsort(out, kind="stable")
        out, pos, logw = out[order], pos[order], logw[order]
        starts = np.flatnonzero(np.r_[True, out[1:] != out[:-1]]) if len(out) else out
        cache[key] = (out[starts], starts, pos, logw)
    return cache[key]
