"""Seeded, vectorized sampling of strings from a grammar (nltk has no sampler).

All samples of a batch grow together, one tree level per iteration: every nonterminal of the
current level picks its rule at once (one uniform draw each through Walker's alias tables: O(1)
per draw, several times faster than ``searchsorted`` on unsorted keys) and its right side is
gathered from a flat right-side table with ``np.repeat``. Terminals are touched once, when created.
At the end, yields (subtree lengths) are summed bottom-up and offsets pushed top-down, which puts
every terminal at its place in its string. The work is linear in the number of tree nodes; the
number of numpy calls is linear in the tree depth. When every nonterminal always derives the same
length (both of the paper's families), positions are known top-down and a leaner path is used.

Every function takes an explicit :class:`numpy.random.Generator`; the same seed gives the same
strings.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from grammarlab.analysis import expected_expansions
from grammarlab.errors import GrammarlabError
from grammarlab.grammar import Grammar
from grammarlab.language import check_distinct, count_derivations, language
from grammarlab.strings import Tokens

# count_derivations and language moved to grammarlab.language; re-exported for old imports
__all__ = [
    "count_derivations",
    "language",
    "overlap",
    "overlap_report",
    "random_strings",
    "sample",
    "sample_derivations",
]

BATCH = 65_536  # most samples derived together (results depend on it, so it is fixed)
MAX_NODES = 20_000_000  # tree nodes kept per batch by the general path before giving up
MAX_DEPTH = 100_000  # tree levels before giving up
MAX_ROUNDS = 64  # sampling rounds for `unique` / `exclude` before giving up


@dataclass(frozen=True)
class _Tables:
    """A grammar compiled to integer arrays. Symbol ids: nonterminal i is i (grammar order),
    terminal j is n_nt + j (``Grammar.terminals`` order)."""

    n_nt: int
    start: int
    n_alt: np.ndarray  # [n_nt] number of rules of each nonterminal (float: int*float is slow)
    first_rule: np.ndarray  # [n_nt] index of its first rule (= its first alias slot)
    alias_prob: np.ndarray  # [n_rules] alias slot: keep its own rule if frac < this
    alias_rule: np.ndarray  # [n_rules] alias slot: otherwise take this rule
    rule_logp: np.ndarray  # [n_rules] natural log of the rule probability as written
    rhs_start: np.ndarray  # [n_rules] offset into rhs_flat
    rhs_len: np.ndarray  # [n_rules]
    rhs_flat: np.ndarray  # all right sides, concatenated, as symbol ids
    terminals: np.ndarray  # object array of terminal names
    fixed: _Fixed | None  # the fast path's tables, when every string has the same length
    batch: int  # samples per batch: BATCH, or fewer when expected trees are large


@dataclass(frozen=True)
class _Fixed:
    """Per rule, its terminal children (t_*) and nonterminal children (n_*): where they start in
    t_sym / n_sym, how many, and their offsets from the start of the rule's yield."""

    length: int  # of every string
    t_start: np.ndarray
    t_cnt: np.ndarray
    t_sym: np.ndarray
    t_off: np.ndarray
    n_start: np.ndarray
    n_cnt: np.ndarray
    n_sym: np.ndarray
    n_off: np.ndarray


@lru_cache(maxsize=64)
def _tables(g: Grammar) -> _Tables:
    """Compiled tables of ``g``, cached per grammar (frozen, hashable)."""
    return _compile(g)


def _compile(g: Grammar) -> _Tables:
    if not g.rules:
        raise GrammarlabError("cannot sample from a grammar with no rules", file=g.source)
    nts = g.nonterminals
    nt_id = {a: i for i, a in enumerate(nts)}
    t_id = {t: len(nts) + j for j, t in enumerate(g.terminals)}
    alias_prob, alias_rule, logp, starts, lens, flat, lhs = [], [], [], [], [], [], []
    for i, a in enumerate(nts):
        rules = g.by_lhs[a]
        keep, other = _alias_table([r.prob for r in rules])
        alias_prob.extend(keep)
        alias_rule.extend(len(logp) + o for o in other)
        for r in rules:
            logp.append(math.log(r.prob))
            lhs.append(i)
            starts.append(len(flat))
            lens.append(len(r.rhs))
            for s, is_t in zip(r.rhs, r.terminal_mask, strict=True):
                if not is_t and s not in nt_id:
                    raise GrammarlabError(f"undefined nonterminal {s}", file=g.source, line=r.line)
                flat.append(t_id[s] if is_t else nt_id[s])
    # Rule index k is the k-th rule in nonterminal order (rules grouped by left side).
    rhs_start = np.asarray(starts, dtype=np.int64)
    rhs_len = np.asarray(lens, dtype=np.int64)
    rhs_flat = np.asarray(flat, dtype=np.int64)
    fixed = _fixed_length_tables(len(nts), lhs, rhs_start, rhs_len, rhs_flat)
    return _Tables(
        n_nt=len(nts),
        start=nt_id[g.start],
        n_alt=np.asarray([len(g.by_lhs[a]) for a in nts], dtype=np.float64),
        first_rule=np.cumsum([0] + [len(g.by_lhs[a]) for a in nts][:-1], dtype=np.int64),
        alias_prob=np.asarray(alias_prob),
        alias_rule=np.asarray(alias_rule, dtype=np.int64),
        rule_logp=np.asarray(logp),
        rhs_start=rhs_start,
        rhs_len=rhs_len,
        rhs_flat=rhs_flat,
        terminals=_object_array(g.terminals),
        fixed=fixed,
        batch=BATCH if fixed else _batch_size(g, np.exp(logp), rhs_len, lhs),
    )


def _batch_size(g: Grammar, rule_p: np.ndarray, rhs_len: np.ndarray, lhs: list[int]) -> int:
    """Samples per batch for the general path: on average at most MAX_NODES / 8 tree nodes, so
    the runaway guard only fires on heavy-tailed (near-critical) grammars."""
    e = expected_expansions(g)  # per nonterminal, per derivation
    if not np.all(np.isfinite(e)):
        return BATCH
    nodes = 1.0 + float(np.sum(e[np.asarray(lhs)] * rule_p * rhs_len))
    return int(max(1, min(BATCH, MAX_NODES // (8 * nodes))))


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


def _choose(t: _Tables, sym: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One rule per nonterminal in ``sym``, from one uniform draw each: its integer part (times
    the number of rules) picks the alias slot, the fractional part decides keep or alias."""
    x = rng.random(sym.size) * t.n_alt[sym]
    i = x.astype(np.int64)
    slot = t.first_rule[sym] + i
    return np.where(x - i < t.alias_prob[slot], slot, t.alias_rule[slot])


def _object_array(items: Sequence[str]) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = list(items)
    return out


def _fixed_length_tables(
    n_nt: int, lhs: list[int], rhs_start: np.ndarray, rhs_len: np.ndarray, rhs_flat: np.ndarray
) -> _Fixed | None:
    """Tables for the fast path when each nonterminal always derives strings of one length (true
    of both of the paper's families); None otherwise."""
    rhs = [rhs_flat[a : a + k].tolist() for a, k in zip(rhs_start, rhs_len, strict=True)]
    size: dict[int, int] = {}
    changed = True
    while changed:  # propagate lengths from rules whose symbols all have one
        changed = False
        for a, r in zip(lhs, rhs, strict=True):
            if a not in size and all(b >= n_nt or b in size for b in r):
                size[a] = sum(size.get(b, 1) for b in r)
                changed = True
    for a, r in zip(lhs, rhs, strict=True):
        if a not in size or any(b < n_nt and b not in size for b in r):
            return None
        if sum(size.get(b, 1) for b in r) != size[a]:
            return None
    cols: dict[str, list[int]] = {k: [] for k in ("t_start", "t_cnt", "t_sym", "t_off")}
    cols.update({k: [] for k in ("n_start", "n_cnt", "n_sym", "n_off")})
    for r in rhs:
        cols["t_start"].append(len(cols["t_sym"]))
        cols["n_start"].append(len(cols["n_sym"]))
        off = 0
        for b in r:
            kind = "n" if b < n_nt else "t"
            cols[f"{kind}_sym"].append(b)
            cols[f"{kind}_off"].append(off)
            off += size.get(b, 1)
        cols["t_cnt"].append(len(cols["t_sym"]) - cols["t_start"][-1])
        cols["n_cnt"].append(len(cols["n_sym"]) - cols["n_start"][-1])
    arrays = {k: np.asarray(v, dtype=np.int64) for k, v in cols.items()}
    return _Fixed(length=size[0], **arrays)  # the start symbol is nonterminal 0


def sample_derivations(
    g: Grammar, n: int, rng: np.random.Generator
) -> tuple[list[Tokens], np.ndarray]:
    """``n`` strings and the natural-log probability (nats) of each one's sampled derivation
    (the sum of the log probabilities of the rules used; for an ambiguous string this is less
    than the string's own log probability)."""
    if n < 0:
        raise GrammarlabError(f"number of samples must be >= 0, got {n}")
    t = _tables(g)
    strings: list[Tokens] = []
    logps = []
    for lo in range(0, n, t.batch):
        s, lp = _derive_batch(g, t, min(t.batch, n - lo), rng)
        strings.extend(s)
        logps.append(lp)
    return strings, (np.concatenate(logps) if logps else np.zeros(0))


def _derive_batch(
    g: Grammar, t: _Tables, n: int, rng: np.random.Generator
) -> tuple[list[Tokens], np.ndarray]:
    if t.fixed is not None:
        return _derive_fixed(g, t, n, rng)
    return _derive_general(g, t, n, rng)


def _derive_fixed(
    g: Grammar, t: _Tables, n: int, rng: np.random.Generator
) -> tuple[list[Tokens], np.ndarray]:
    """Fast path: every nonterminal's yield has a known length, so each child's position in
    the output is fixed when its parent's rule is chosen; terminals are written at once and only
    nonterminals are carried to the next level. Draws the same random numbers in the same order
    as the general path, so both give the same strings."""
    f = t.fixed
    size = f.length
    out = np.empty(n * size, dtype=np.int64)
    sym = np.full(n, t.start, dtype=np.int64)
    pos = np.arange(n, dtype=np.int64) * size  # where each node's yield starts in `out`
    logp = np.zeros(n)
    nodes, depth = n, 0
    while sym.size:
        rule = _choose(t, sym, rng)
        logp += np.bincount(pos // size, weights=t.rule_logp[rule], minlength=n)
        k = f.t_cnt[rule]
        if k.any():  # j: index of each new terminal child in t_sym
            j = np.repeat(f.t_start[rule] - (np.cumsum(k) - k), k) + np.arange(int(k.sum()))
            out[np.repeat(pos, k) + f.t_off[j]] = f.t_sym[j]
        k = f.n_cnt[rule]
        j = np.repeat(f.n_start[rule] - (np.cumsum(k) - k), k) + np.arange(int(k.sum()))
        sym = f.n_sym[j]
        pos = np.repeat(pos, k) + f.n_off[j]
        nodes += int(t.rhs_len[rule].sum())  # nothing is kept: only the depth can run away
        depth += 1
        if depth > MAX_DEPTH:
            _runaway(g, n, nodes, depth)
    return _to_tuples(t.terminals, out - t.n_nt, np.full(n, size)), logp


def _derive_general(
    g: Grammar, t: _Tables, n: int, rng: np.random.Generator
) -> tuple[list[Tokens], np.ndarray]:
    """Any grammar: keep every level of the derivation forest, then place the terminals."""
    # levels[k] = (symbols, parent index into level k-1, first-child index per level-k node)
    sym = np.full(n, t.start, dtype=np.int64)
    syms, parents, child_lo = [sym], [np.arange(n)], []
    logp = np.zeros(n)
    root = np.arange(n)  # sample id of each node of the current level
    nodes = n
    while True:
        nt_pos = np.flatnonzero(sym < t.n_nt)
        if nt_pos.size == 0:
            child_lo.append(np.zeros(len(sym), dtype=np.int64))
            break
        rule = _choose(t, sym[nt_pos], rng)
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
    out = np.empty(int(lengths.sum()), dtype=np.int64)
    pos = np.cumsum(lengths) - lengths
    for lvl in range(len(syms)):
        is_t = syms[lvl] >= t.n_nt
        out[pos[is_t]] = syms[lvl][is_t]
        if lvl + 1 == len(syms):
            break
        yc = yields[lvl + 1]
        excl = np.cumsum(yc) - yc  # exclusive prefix over the whole level
        p = parents[lvl + 1]
        pos = pos[p] + excl - excl[child_lo[lvl][p]]
    return _to_tuples(t.terminals, out - t.n_nt, lengths), logp


def _to_tuples(names: np.ndarray, ids: np.ndarray, lengths: np.ndarray) -> list[Tokens]:
    """Strings as tuples of terminal names, from terminal indices ``ids`` (all strings
    concatenated) and the strings' ``lengths``. This Python-object step costs about as much as
    the sampling itself, hence the fast cases."""
    if len(lengths) == 0:
        return []
    same = bool(np.all(lengths == lengths[0]))
    if all(len(x) == 1 for x in names):
        # one-character terminals (both paper families): build each string as one str and let
        # tuple() split it into characters in C (single characters are cached by CPython)
        chars = np.array(list(names), dtype="<U1")[ids]
        if same:
            return list(map(tuple, chars.view(f"<U{int(lengths[0])}").tolist()))
        text = chars.tobytes().decode("utf-32-le")
        ends = np.cumsum(lengths).tolist()
        return [tuple(text[a:b]) for a, b in zip([0, *ends[:-1]], ends, strict=True)]
    tokens = names[ids]
    if same:  # zip builds one tuple per row in C from the columns
        return list(zip(*tokens.reshape(len(lengths), -1).T.tolist(), strict=True))
    flat = tokens.tolist()
    ends = np.cumsum(lengths).tolist()
    return [tuple(flat[a:b]) for a, b in zip([0, *ends[:-1]], ends, strict=True)]


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


def sample(
    g: Grammar,
    n: int,
    rng: np.random.Generator,
    *,
    unique: bool = False,
    exclude: Iterable[Sequence[str]] = (),
) -> list[Tokens]:
    """``n`` strings sampled from ``g``. With ``unique``, all distinct (in order of first
    appearance); strings in ``exclude`` are never returned (e.g. to keep a test set disjoint
    from a training set). Raises :class:`GrammarlabError` when the language (minus ``exclude``)
    has too few strings."""
    excl = {tuple(s) for s in exclude}
    if not unique and not excl:
        return sample_derivations(g, n, rng)[0]
    if unique:
        check_distinct(g, n, excl)
    out: list[Tokens] = []
    seen: set[Tokens] = set()
    drawn = 0
    for _ in range(MAX_ROUNDS):
        need = n - len(out)
        if need <= 0:
            break
        batch, _lp = sample_derivations(g, max(2 * need, 64), rng)
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


def random_strings(g: Grammar, n: int, rng: np.random.Generator) -> list[Tokens]:
    """The paper's third evaluation set: tokens drawn uniformly and independently from the
    grammar's alphabet, with lengths distributed as the lengths of the grammar's strings (``n``
    grammar strings are sampled with the same ``rng`` and only their lengths kept)."""
    strings, _lp = sample_derivations(g, n, rng)
    lengths = np.array([len(s) for s in strings], dtype=np.int64)
    ids = rng.integers(0, len(g.terminals), size=int(lengths.sum()))
    return _to_tuples(_object_array(g.terminals), ids, lengths)
