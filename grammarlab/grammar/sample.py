"""Seeded, vectorized sampling of strings from a grammar (nltk has no sampler).

All samples of a batch grow together, one tree level per iteration. The module reads top to
bottom in the order the work is done:

1. **Tables.** The grammar is compiled once (cached per grammar) into arrays: symbols become
   integers, rules are grouped by left side, each left side gets Walker's alias table, right
   sides are concatenated into one flat table.
2. **One draw per nonterminal.** :func:`_choose` picks every rule of a tree level at once from one
   uniform draw each (O(1) per draw, several times faster than ``searchsorted`` on unsorted
   keys). Both paths below draw the same numbers in the same order, so they give the same
   strings.
3. **The general path** (:func:`_derive_general`, any grammar): keep every level of the
   derivation forest, gathering right sides with ``np.repeat``; then sum yields (subtree
   lengths) bottom-up and push offsets top-down, which puts every terminal at its place. The work
   is linear in the number of tree nodes; the number of numpy calls in the tree depth.
4. **The fixed-length fast path** (:func:`_derive_fixed`, when every nonterminal always derives
   one length, as in both of the paper's families): each child's position in the output is known
   as soon as its parent's rule is chosen, so terminals are written at once and only
   nonterminals are carried to the next level. What each level has in common (rule counts, equal
   probabilities, children and their offsets) is worked out once per grammar, so gathers become
   scalars and masks disappear.
5. **Batches.** Strings are derived BATCH at a time (fewer when trees are large), in order, from
   one generator: :func:`sample_batches` hands them out one batch at a time (constant memory for
   any number of strings), :func:`sample_ids` as padded arrays, :func:`sample` and the others as
   tuples of terminal names.

Every function takes an explicit :class:`numpy.random.Generator`; the same seed gives the same
strings, whichever function delivers them.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from grammarlab.errors import GrammarlabError
from grammarlab.grammar.language import check_distinct
from grammarlab.grammar.parse import Grammar
from grammarlab.grammar.strings import Tokens
from grammarlab.grammar.structure import expected_expansions

__all__ = ["overlap", "overlap_report", "random_strings", "sample", "sample_batches"]
__all__ += ["sample_derivations", "sample_ids"]

BATCH = 65_536  # most samples derived together (results depend on it, so it is fixed)
MAX_NODES = 20_000_000  # tree nodes kept per batch by the general path before giving up
MAX_DEPTH = 100_000  # tree levels before giving up
STATIC_LEVELS = 1_024  # tree levels the fast path works out in advance
MAX_ROUNDS = 64  # sampling rounds for `unique` / `exclude` before giving up
MAX_PADDED = 400_000_000  # cells of the padded array sample_ids may allocate (1.6 GB)


# ---------------------------------------------------------------------------------------------
# 1. Tables


@dataclass(frozen=True)
class Level:
    """What all nodes of one tree level share, known before sampling (None: it varies): rules
    per nonterminal, equal rule probabilities, one node per sample (so node i is in sample i),
    nats added to each derivation, and per rule the number and offsets of the terminal (t) and
    nonterminal (n) children."""

    alts: float | None = None
    plain: bool = False
    single: bool = False
    logp: float | None = None
    block: bool = False  # the t_k terminals sit at offsets 0..t_k-1 of t_k-aligned positions
    t_k: int | None = None
    t_off: np.ndarray | None = None
    n_k: int | None = None
    n_off: np.ndarray | None = None


ANY_LEVEL = Level()  # a level where nothing is known in advance


@dataclass(frozen=True)
class FixedTables:
    """The fast path's tables. Per rule, its terminal children (kind "t": terminal index) and
    nonterminal children ("n": the child's first rule) with their offsets from the start of the
    rule's yield, as padded tables: ``tabs[kind, None]`` has -1 pads, ``tabs[kind, k]`` the first
    k columns."""

    length: int  # of every string
    tabs: dict[tuple[str, int | None], tuple[np.ndarray, np.ndarray]]
    levels: tuple[Level, ...]


@dataclass(frozen=True)
class Tables:
    """A grammar compiled to arrays. Symbol ids: nonterminal i is i (grammar order), terminal j
    is n_nt + j (``Grammar.terminals`` order). Rules are grouped by left side."""

    n_nt: int
    start: int
    first_rule: np.ndarray  # [n_nt] index of its first rule (= its first alias slot)
    rule_alts: np.ndarray  # [n_rules] number of rules of its left side (float: int*float is slow)
    alias_prob: np.ndarray  # [n_rules] alias slot: keep its own rule if frac < this
    alias_rule: np.ndarray  # [n_rules] alias slot: otherwise take this rule
    rule_logp: np.ndarray  # [n_rules] natural log of the rule probability as written
    rhs_start: np.ndarray  # [n_rules] offset into rhs_flat
    rhs_len: np.ndarray  # [n_rules]
    rhs_flat: np.ndarray  # all right sides, concatenated, as symbol ids
    terminals: np.ndarray  # object array of terminal names
    chars: np.ndarray | None  # the same as '<U1' when every terminal is one character (not NUL)
    fixed: FixedTables | None = None  # the fast path's tables, when all strings have one length
    batch: int = BATCH  # samples per batch: BATCH, or fewer when expected trees are large


Seed = int | np.random.Generator  # an int seeds a new generator; a Generator is used as it is


def generator(seed: Seed) -> np.random.Generator:
    """The generator a sampling function draws from: ``seed`` itself when it is a
    ``numpy.random.Generator`` (its stream goes on), else a new one seeded with the int."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise GrammarlabError(
            f"seed must be an int >= 0 or a numpy.random.Generator, got {seed!r}",
            hint="e.g. sample(g, 10, 0) or sample(g, 10, np.random.default_rng(0))",
        )
    return np.random.default_rng(int(seed))


@lru_cache(maxsize=64)
def _tables(g: Grammar) -> Tables:
    """Compiled tables of ``g`` with the fast path's tables (when its strings all have one
    length) and the batch size, cached per grammar (frozen, hashable)."""
    t, rhs, lhs = _compile(g)
    fixed = _fixed_length_tables(t, rhs)
    batch = BATCH if fixed else _batch_size(g, np.exp(t.rule_logp), t.rhs_len, lhs)
    return replace(t, fixed=fixed, batch=batch)


def _compile(g: Grammar) -> tuple[Tables, list[list[int]], list[int]]:
    """The tables of ``g`` (without the fast path's tables; batch BATCH), its right sides as
    symbol ids and each rule's left side (nonterminal id)."""
    if not g.rules:
        raise GrammarlabError("cannot sample from a grammar with no rules", file=g.source)
    nts = g.nonterminals
    nt_id = {a: i for i, a in enumerate(nts)}
    t_id = {t: len(nts) + j for j, t in enumerate(g.terminals)}
    alias_prob, alias_rule, logp, rhs, lhs = [], [], [], [], []
    for i, a in enumerate(nts):
        keep, other = _alias_table([r.prob for r in g.by_lhs[a]])
        alias_prob.extend(keep)
        alias_rule.extend(len(logp) + o for o in other)
        for r in g.by_lhs[a]:
            logp.append(math.log(r.prob))
            lhs.append(i)
            for s, is_t in zip(r.rhs, r.terminal_mask, strict=True):
                if not is_t and s not in nt_id:
                    raise GrammarlabError(f"undefined nonterminal {s}", file=g.source, line=r.line)
            rhs.append(
                [
                    t_id[s] if is_t else nt_id[s]
                    for s, is_t in zip(r.rhs, r.terminal_mask, strict=True)
                ]
            )
    n_alt = np.asarray([len(g.by_lhs[a]) for a in nts], dtype=np.float64)
    rhs_len = np.asarray([len(r) for r in rhs], dtype=np.int64)
    one_char = all(len(x) == 1 and x != "\0" for x in g.terminals)
    t = Tables(
        n_nt=len(nts),
        start=nt_id[g.start],
        first_rule=(np.cumsum(n_alt) - n_alt).astype(np.intp),
        rule_alts=n_alt[lhs],
        alias_prob=np.asarray(alias_prob),
        alias_rule=np.asarray(alias_rule, dtype=np.intp),
        rule_logp=np.asarray(logp),
        rhs_start=np.cumsum(rhs_len) - rhs_len,
        rhs_len=rhs_len,
        rhs_flat=np.asarray([s for r in rhs for s in r], dtype=np.int64),
        terminals=np.asarray(g.terminals, dtype=object),
        chars=np.asarray(g.terminals, dtype="<U1") if one_char else None,
    )
    return t, rhs, lhs


def _alias_table(probs: Sequence[float]) -> tuple[list[float], list[int]]:
    """Walker's alias method (Vose's construction): slot i keeps rule i with probability
    keep[i] and otherwise gives rule other[i]; a uniformly chosen slot then yields each rule with
    its (normalized) probability. The validator allows sums off 1 by 1e-6, hence the scaling."""
    k = len(probs)
    total = math.fsum(probs)
    scaled = [p * k / total for p in probs]
    keep, other = [1.0] * k, list(range(k))
    small = [i for i, x in enumerate(scaled) if x < 1.0]
    large = [i for i, x in enumerate(scaled) if x >= 1.0]
    while small and large:
        s_, l_ = small.pop(), large.pop()
        keep[s_], other[s_] = scaled[s_], l_
        scaled[l_] -= 1.0 - scaled[s_]
        (small if scaled[l_] < 1.0 else large).append(l_)
    return keep, other  # leftovers (rounding) keep themselves with probability 1


def _batch_size(g: Grammar, rule_p: np.ndarray, rhs_len: np.ndarray, lhs: list[int]) -> int:
    """Samples per batch for the general path: on average at most MAX_NODES / 8 tree nodes, so
    the runaway guard only fires on heavy-tailed (near-critical) grammars."""
    e = expected_expansions(g)  # per nonterminal, per derivation
    if not np.all(np.isfinite(e)):
        return BATCH
    nodes = 1.0 + float(np.sum(e[np.asarray(lhs)] * rule_p * rhs_len))
    return int(max(1, min(BATCH, MAX_NODES // (8 * nodes))))


def _fixed_length_tables(t: Tables, rhs: list[list[int]]) -> FixedTables | None:
    """Tables for the fast path when each nonterminal always derives strings of one length (true
    of both of the paper's families); None otherwise."""
    lhs = np.repeat(np.arange(t.n_nt), np.diff([*t.first_rule.tolist(), len(rhs)])).tolist()
    size: dict[int, int] = {}

    def length(r: list[int]) -> int | None:
        parts = [1 if b >= t.n_nt else size.get(b) for b in r]
        return None if None in parts else sum(parts)

    # propagate lengths from rules whose symbols all have one, each rule visited once per
    # nonterminal of its right side (a worklist: a unit chain of 100,000 rules is linear)
    missing = [sum(1 for b in set(r) if b < t.n_nt) for r in rhs]
    users: dict[int, list[int]] = {}
    for i, r in enumerate(rhs):
        for b in set(r):
            if b < t.n_nt:
                users.setdefault(b, []).append(i)
    ready = [i for i, m in enumerate(missing) if m == 0]
    while ready:
        i = ready.pop()
        a = lhs[i]
        if a in size:
            continue
        size[a] = length(rhs[i])
        for u in users.get(a, ()):
            missing[u] -= 1
            if missing[u] == 0:
                ready.append(u)
    if any(a not in size or length(r) != size[a] for a, r in zip(lhs, rhs, strict=True)):
        return None
    if size[t.start] == 0:  # the empty string alone: nothing to place, the general path does it
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


# ---------------------------------------------------------------------------------------------
# 2. One draw per nonterminal


def _choose(t: Tables, first: np.ndarray, rng: np.random.Generator, lv: Level) -> np.ndarray:
    """One rule per nonterminal, given by its ``first`` rule, from one uniform draw each: its
    integer part (times the number of rules) picks the alias slot, the fractional part decides
    keep or alias. What the level ``lv`` is known to share replaces gathers by scalars."""
    x = rng.random(first.size)
    x *= np.take(t.rule_alts, first) if lv.alts is None else lv.alts
    slot = x.astype(np.intp)
    if lv.plain:  # every keep probability is 1.0 and x - floor(x) < 1.0
        slot += first
        return slot
    x -= slot  # exact
    slot += first
    return np.where(x < np.take(t.alias_prob, slot), slot, np.take(t.alias_rule, slot))


def _runaway(g: Grammar, n: int, nodes: int, depth: int) -> None:
    e = expected_expansions(g)
    mean = "infinite" if not np.all(np.isfinite(e)) else f"{float(e.sum()):.4g}"
    raise GrammarlabError(
        f"sampling stopped: {n} derivations reached {nodes:,} tree nodes and depth {depth:,} "
        f"(limits {MAX_NODES:,} nodes, depth {MAX_DEPTH:,}); the expected number of expansions "
        f"per string is {mean}",
        file=g.source,
        hint="the grammar's recursion is (nearly) critical, so some strings are extremely long; "
        "lower the probabilities of the recursive rules, or sample fewer strings at a time",
    )


# ---------------------------------------------------------------------------------------------
# 3. The general path


def _derive_general(
    g: Grammar, t: Tables, n: int, rng: np.random.Generator, logp: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Any grammar: keep every level of the derivation forest, then place the terminals.
    Returns the terminal indices of all strings concatenated and the strings' lengths."""
    # levels[k] = (symbols, parent index into level k-1, first-child index per level-k node)
    sym = np.full(n, t.start, dtype=np.int64)
    syms, parents, child_lo = [sym], [np.arange(n)], []
    root = np.arange(n)  # sample id of each node of the current level
    nodes = n
    while True:
        nt_pos = np.flatnonzero(sym < t.n_nt)
        if nt_pos.size == 0:
            child_lo.append(np.zeros(len(sym), dtype=np.int64))
            break
        rule = _choose(t, np.take(t.first_rule, sym[nt_pos]), rng, ANY_LEVEL)
        if logp is not None:
            logp += np.bincount(root[nt_pos], weights=t.rule_logp[rule], minlength=n)
        k = t.rhs_len[rule]
        total = int(k.sum())
        nodes += total
        if nodes > MAX_NODES or len(syms) > MAX_DEPTH:
            _runaway(g, n, nodes, len(syms))
        first = np.cumsum(k) - k  # index of each expanded node's first child
        lo = np.zeros(len(sym), dtype=np.int64)
        lo[nt_pos] = first
        child_lo.append(lo)
        parent = np.repeat(nt_pos, k)
        within = np.arange(total) - np.repeat(first, k)
        sym = t.rhs_flat[np.repeat(t.rhs_start[rule], k) + within]
        root = root[parent]
        syms.append(sym)
        parents.append(parent)
    # bottom-up: yield = number of terminals below each node
    yields = [None] * len(syms)
    y = np.ones(len(syms[-1]), dtype=np.int64)
    yields[-1] = y
    for lvl in range(len(syms) - 2, -1, -1):
        y = np.where(syms[lvl] < t.n_nt, 0, 1) + np.bincount(
            parents[lvl + 1], weights=yields[lvl + 1], minlength=len(syms[lvl])
        ).astype(np.int64)
        yields[lvl] = y
    lengths = yields[0]
    # top-down: absolute position of each node's first terminal in the output buffer
    out = np.empty(int(lengths.sum()), dtype=np.int32)
    pos = np.cumsum(lengths) - lengths
    for lvl in range(len(syms)):
        is_t = syms[lvl] >= t.n_nt
        out[pos[is_t]] = syms[lvl][is_t] - t.n_nt
        if lvl + 1 == len(syms):
            break
        yc = yields[lvl + 1]
        excl = np.cumsum(yc) - yc  # exclusive prefix over the whole level
        p = parents[lvl + 1]
        pos = pos[p] + excl - excl[child_lo[lvl][p]]
    return out, lengths


# ---------------------------------------------------------------------------------------------
# 4. The fixed-length fast path


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


def _derive_fixed(
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
        rule = _choose(t, first, rng, lv)
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
    _runaway(g, n, nodes, MAX_DEPTH)  # nothing is kept: only the depth can run away


# ---------------------------------------------------------------------------------------------
# 5. Batches and the public functions


def _batches(
    g: Grammar, n: int, rng: np.random.Generator, want_logp: bool
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """``n`` derivations, one batch at a time, in order: the terminal indices of the batch's
    strings concatenated (int32), their lengths and, if wanted, their log probabilities (nats).
    The draws do not depend on how the batches are consumed."""
    t = _tables(g)
    for lo in range(0, n, t.batch):
        m = min(n, lo + t.batch) - lo
        logp = np.zeros(m) if want_logp else None
        if t.fixed:
            ids = np.empty(m * t.fixed.length, dtype=np.int32)
            _derive_fixed(g, t, rng, ids, logp)
            yield ids, np.full(m, t.fixed.length, dtype=np.int64), logp
        else:
            yield (*_derive_general(g, t, m, rng, logp), logp)


def _check_n(n: int) -> None:
    if n < 0:
        raise GrammarlabError(f"number of samples must be >= 0, got {n}")


def _derive(
    g: Grammar, n: int, rng: np.random.Generator, want_logp: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """All ``n`` derivations of :func:`_batches`, concatenated."""
    _check_n(n)
    parts = list(_batches(g, n, rng, want_logp))
    if not parts:
        return np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0) if want_logp else None
    ids, lengths, logp = zip(*parts, strict=True)
    return np.concatenate(ids), np.concatenate(lengths), np.concatenate(logp) if want_logp else None


def sample_batches(g: Grammar, n: int, seed: Seed) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The strings of ``sample(g, n, rng)`` in batches of at most BATCH strings, each as
    ``(ids, lengths)``: int32 indices into ``g.terminals`` of the batch's strings concatenated,
    and int64 lengths in tokens. Memory stays that of one batch for any ``n``."""
    rng = generator(seed)
    _check_n(n)
    return ((ids, lengths) for ids, lengths, _ in _batches(g, n, rng, want_logp=False))


def sample_ids(g: Grammar, n: int, seed: Seed) -> tuple[np.ndarray, ...]:
    """``n`` strings as arrays, with no Python object per token: ``(ids, lengths, logp_nats)``;
    ``ids`` int32 [n, longest length] holds the index of each token in ``g.terminals``, -1 after
    the string's end; ``lengths`` int64 [n] in tokens; ``logp_nats`` float64 [n] as in
    :func:`sample_derivations`. Draws as :func:`sample` does: the same seed, the same strings."""
    rng = generator(seed)
    flat, lengths, logp = _derive(g, n, rng, want_logp=True)
    width = int(lengths.max()) if n else 0
    if _tables(g).fixed:
        return flat.reshape(n, width), lengths, logp
    if n * width > MAX_PADDED:
        raise GrammarlabError(
            f"{n} strings padded to the longest ({width:,} tokens) would need {n * width:,} "
            f"cells (limit {MAX_PADDED:,})",
            file=g.source,
            hint="sample fewer strings at a time, or use sample(), which does not pad",
        )
    ids = np.full((n, width), -1, dtype=np.int32)
    ids[np.arange(width) < lengths[:, None]] = flat
    return ids, lengths, logp


def sample_derivations(g: Grammar, n: int, seed: Seed) -> tuple[list[Tokens], np.ndarray]:
    """``n`` strings and the natural-log probability (nats) of each one's sampled derivation
    (the sum of the log probabilities of the rules used; for an ambiguous string this is less
    than the string's own log probability)."""
    rng = generator(seed)
    flat, lengths, logp = _derive(g, n, rng, want_logp=True)
    return _to_tuples(_tables(g), flat, lengths), logp


def _to_tuples(t: Tables, ids: np.ndarray, lengths: np.ndarray) -> list[Tokens]:
    """Strings as tuples of terminal names, from terminal indices ``ids`` (all strings
    concatenated) and the strings' ``lengths``: this Python-object step is much of the cost.
    The cyclic garbage collector is paused meanwhile: tuples of strings cannot form cycles, and
    it would scan the new tuples over and over (a third of the time)."""
    if len(lengths) == 0:
        return []
    same = int(lengths[0]) if bool(np.all(lengths == lengths[0])) else 0
    ends = np.cumsum(lengths).tolist()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        if t.chars is not None:
            # one-character terminals (both paper families): build each string as one str and
            # let tuple() split it into characters in C (single characters are cached by CPython)
            chars = np.take(t.chars.view(np.uint32), ids).view("<U1")  # 2x faster than on U1
            if same:  # a '<U{same}' view holds one string per row
                return list(map(tuple, chars.view(f"<U{same}").tolist()))
            text = chars.tobytes().decode("utf-32-le")
            return [tuple(text[a:b]) for a, b in zip([0, *ends[:-1]], ends, strict=True)]
        tokens = np.take(t.terminals, ids)
        if same:  # zip builds one tuple per row in C from the columns
            return list(zip(*tokens.reshape(len(lengths), -1).T.tolist(), strict=True))
        flat = tokens.tolist()
        return [tuple(flat[a:b]) for a, b in zip([0, *ends[:-1]], ends, strict=True)]
    finally:
        if was_enabled:
            gc.enable()


def sample(
    g: Grammar,
    n: int,
    seed: Seed,
    *,
    unique: bool = False,
    exclude: Iterable[Sequence[str]] = (),
) -> list[Tokens]:
    """``n`` strings sampled from ``g``. With ``unique``, all distinct (in order of first
    appearance); strings in ``exclude`` are never returned (e.g. to keep a test set disjoint
    from a training set). Raises :class:`GrammarlabError` when the language (minus ``exclude``)
    has too few strings."""
    rng = generator(seed)
    excl = {tuple(s) for s in exclude}
    if not unique and not excl:
        return _to_tuples(_tables(g), *_derive(g, n, rng, want_logp=False)[:2])
    if unique:
        check_distinct(g, n, excl)
    out: list[Tokens] = []
    seen: set[Tokens] = set()
    drawn = 0
    for _ in range(MAX_ROUNDS):
        need = n - len(out)
        if need <= 0:
            break
        batch = _to_tuples(_tables(g), *_derive(g, max(2 * need, 64), rng, want_logp=False)[:2])
        drawn += len(batch)
        for s in batch:
            if s in excl or (unique and s in seen):
                continue
            seen.add(s)
            out.append(s)
            if len(out) == n:
                break
    if len(out) < n:
        what = "distinct strings" if unique else "strings"
        raise GrammarlabError(
            f"asked for {n} {what} but found only {len(out)} after drawing {drawn:,} samples "
            f"in {MAX_ROUNDS} rounds" + (f" ({len(excl)} strings excluded)" if excl else ""),
            file=g.source,
            hint="the grammar's language (minus the excluded strings) is too small or its "
            "remaining strings too unlikely; ask for fewer strings",
        )
    return out


def random_strings(g: Grammar, n: int, seed: Seed) -> list[Tokens]:
    """The paper's third evaluation set: tokens drawn uniformly and independently from the
    grammar's alphabet, with lengths distributed as the lengths of the grammar's strings (``n``
    grammar strings are sampled with the same ``rng`` and only their lengths kept)."""
    rng = generator(seed)
    _ids, lengths, _ = _derive(g, n, rng, want_logp=False)
    ids = rng.integers(0, len(g.terminals), size=int(lengths.sum()))
    return _to_tuples(_tables(g), ids, lengths)


def overlap(a: Iterable[Sequence[str]], b: Iterable[Sequence[str]]) -> int:
    """Number of strings of ``a`` (counting repeats) that occur in ``b``."""
    bs = {tuple(s) for s in b}
    return sum(1 for s in a if tuple(s) in bs)


def overlap_report(train: Sequence[Sequence[str]], test: Sequence[Sequence[str]]) -> dict:
    """How much a test set overlaps a training set: counts and the fraction of test strings
    (counting repeats) that also occur in the training set."""
    train_set = {tuple(s) for s in train}
    test_set = {tuple(s) for s in test}
    n_in = overlap(test, train_set)
    return {
        "n_train": len(train),
        "n_test": len(test),
        "n_train_distinct": len(train_set),
        "n_test_distinct": len(test_set),
        "n_test_in_train": n_in,
        "n_shared_distinct": len(train_set & test_set),
        "test_in_train_fraction": n_in / len(test) if len(test) else 0.0,
    }
