"""The sampler's fast path for grammars whose strings all have one length (both paper families).

When every nonterminal always derives the same length, each child's position in the output is
known as soon as its parent's rule is chosen: terminals are written at once and only
nonterminals are carried to the next tree level. Right sides are rows of padded tables, and
what each tree level has in common (rule counts, equal probabilities, children and their
offsets) is worked out once per grammar, so gathers become scalars and masks disappear. It draws
the same numbers in the same order as the general path in :mod:`grammarlab.grammar.sample`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from grammarlab.grammar.parse import Grammar
from grammarlab.grammar.sample_tables import ANY_LEVEL, MAX_DEPTH, Level, Tables, choose, runaway

STATIC_LEVELS = 1_024  # tree levels the fast path works out in advance


@dataclass(frozen=True)
class FixedTables:
    """Per rule, its terminal children (kind "t": terminal index) and nonterminal children
    ("n": the child's first rule) with their offsets from the start of the rule's yield, as
    padded tables: ``tabs[kind, None]`` has -1 pads, ``tabs[kind, k]`` the first k columns."""

    length: int  # of every string
    tabs: dict[tuple[str, int | None], tuple[np.ndarray, np.ndarray]]
    levels: tuple[Level, ...]


def fixed_length_tables(t: Tables, rhs: list[list[int]]) -> FixedTables | None:
    """Tables for the fast path when each nonterminal always derives strings of one length (true
    of both of the paper's families); None otherwise."""
    lhs = np.repeat(np.arange(t.n_nt), np.diff([*t.first_rule.tolist(), len(rhs)])).tolist()
    size: dict[int, int] = {}

    def length(r: list[int]) -> int | None:
        parts = [1 if b >= t.n_nt else size.get(b) for b in r]
        return None if None in parts else sum(parts)

    changed = True
    while changed:  # propagate lengths from rules whose symbols all have one
        changed = False
        for a, r in zip(lhs, rhs, strict=True):
            if a not in size and (k := length(r)) is not None:
                size[a], changed = k, True
    if any(a not in size or length(r) != size[a] for a, r in zip(lhs, rhs, strict=True)):
        return None
    kids: dict[str, list[list[tuple[int, int]]]] = {"t": [], "n": []}  # per rule: (child, offset)
    for r in rhs:
        at = np.cumsum([0] + [size.get(b, 1) for b in r]).tolist()
        kids["t"].append([(b - t.n_nt, o) for b, o in zip(r, at, strict=False) if b >= t.n_nt])
        kids["n"].append([(t.first_rule[b], o) for b, o in zip(r, at, strict=False) if b < t.n_nt])
    levels = _level_tables(t, size[t.start], kids)
    tabs = {}
    for kind, rows in kids.items():
        sym = np.full((len(rows), max(map(len, rows))), -1, dtype=np.intp)
        off = np.zeros(sym.shape, dtype=np.intp)
        for i, x in enumerate(rows):
            sym[i, : len(x)], off[i, : len(x)] = [s for s, _ in x], [o for _, o in x]
        for k in {None} | {getattr(lv, f"{kind}_k") for lv in levels}:
            tabs[kind, k] = (sym, off) if k is None else (sym[:, :k].copy(), off[:, :k].copy())
            if kind == "t" and k:  # rows of k int32 as one item each, for block writes
                item = sym[:, :k].astype(np.int32)
                tabs["b", k] = (item.ravel() if k == 1 else item.view(f"V{4 * k}").ravel(), off)
    return FixedTables(size[t.start], tabs, levels)


def _level_tables(
    t: Tables, size: int, kids: dict[str, list[list[tuple[int, int]]]]
) -> tuple[Level, ...]:
    """What each tree level of a fixed-length grammar has in common, from the set of
    nonterminals (as first rules) that can occur there, until none is left, a level repeats
    (unit cycles) or STATIC_LEVELS levels are known; ``per``: nodes per sample, if fixed."""
    levels: list[Level] = []
    syms, per, seen, align = frozenset([int(t.first_rule[t.start])]), 1, set(), size
    while syms and len(levels) < STATIC_LEVELS and (syms, per) not in seen:
        seen.add((syms, per))
        rules = [r for f in sorted(syms) for r in range(f, f + int(t.rule_alts[f]))]
        info = {}
        for kind in ("t", "n"):
            rows = {tuple(kids[kind][r]) for r in rules}
            ks, offs = {len(x) for x in rows}, {tuple(o for _, o in x) for x in rows}
            info[f"{kind}_k"] = ks.pop() if len(ks) == 1 else None
            info[f"{kind}_off"] = np.asarray(offs.pop(), np.intp) if len(offs) == 1 else None
        alts, logps = {t.rule_alts[r] for r in rules}, {t.rule_logp[r] for r in rules}
        logp = None
        if per is not None and len(logps) == 1:  # what bincount would add: 0.0 + w + w ...
            logp = 0.0
            for w in [float(logps.pop())] * per:
                logp += w
        plain = all(t.alias_prob[r] == 1.0 for r in rules)
        alts = float(alts.pop()) if len(alts) == 1 else None
        k = info["t_k"]
        block = bool(k) and align % k == 0 and tuple(info["t_off"]) == tuple(range(k))
        levels.append(Level(alts, plain, per == 1, logp, block, **info))
        align = math.gcd(align, *(o for r in rules for _, o in kids["n"][r]))
        per = None if per is None or info["n_k"] is None else per * info["n_k"]
        syms = frozenset(b for r in rules for b, _ in kids["n"][r])
    return tuple(levels)


def _expand(
    f: FixedTables,
    kind: str,
    k: int | None,
    off: np.ndarray | None,
    rule: np.ndarray,
    pos: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Children of one kind of the nodes at ``pos`` that used ``rule``, in order: their table
    entries and positions (k: children per rule, None when it varies; off: their offsets when
    all rules share them)."""
    sym_tab, off_tab = f.tabs[kind, k]
    sym = np.take(sym_tab, rule, axis=0)
    at = np.take(off_tab, rule, axis=0) if off is None else np.empty_like(sym)
    for j in range(sym.shape[1]):  # column by column: numpy is slow on short inner axes
        np.add(pos, at[:, j] if off is None else off[j], out=at[:, j])
    if k is None:
        real = sym >= 0
        return sym[real], at[real]
    return sym.ravel(), at.ravel()


def derive_fixed(
    g: Grammar, t: Tables, rng: np.random.Generator, out: np.ndarray, logp: np.ndarray | None
) -> None:
    """Fast path: every nonterminal's yield has a known length, so each child's position in
    the output is fixed when its parent's rule is chosen; terminals are written at once and only
    nonterminals are carried to the next level. Writes the terminal indices of ``len(out) /
    length`` strings into ``out`` and adds their derivation log probabilities to ``logp``."""
    f, size = t.fixed, t.fixed.length
    n = out.size // size
    first = np.full(n, t.first_rule[t.start], dtype=np.intp)  # each node's first rule
    pos = np.arange(0, n * size, size, dtype=np.intp)  # where each node's yield starts in `out`
    nodes = 0
    for depth in range(MAX_DEPTH):
        lv = f.levels[depth] if depth < len(f.levels) else ANY_LEVEL
        rule = choose(t, first, rng, lv)
        nodes += rule.size
        if logp is not None and lv.logp is not None:
            logp += lv.logp
        elif logp is not None:  # bincount adds in node order, as 0.0 + w for one node
            w = np.take(t.rule_logp, rule)
            logp += w if lv.single else np.bincount(pos // size, weights=w, minlength=n)
        if lv.block:  # each rule's terminals as one item (put: 2x faster than setitem here)
            items = np.take(f.tabs["b", lv.t_k][0], rule)
            if lv.t_k == 1:
                out[pos] = items
            else:
                np.put(out.view(f"V{4 * lv.t_k}"), pos // lv.t_k, items)
        elif lv.t_k != 0:
            sym, at = _expand(f, "t", lv.t_k, lv.t_off, rule, pos)
            out[at] = sym
        if lv.n_k == 0:
            return
        first, pos = _expand(f, "n", lv.n_k, lv.n_off, rule, pos)
        if first.size == 0:
            return
    runaway(g, n, nodes, MAX_DEPTH)  # nothing is kept: only the depth can run away
