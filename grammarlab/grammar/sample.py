"""Seeded, vectorized sampling of strings from a grammar (nltk has no sampler): the public API.

All samples of a batch grow together, one tree level per iteration: every nonterminal of the
current level picks its rule at once (one uniform draw each through Walker's alias tables: O(1)
per draw, several times faster than ``searchsorted`` on unsorted keys) and its right side is
gathered from a flat right-side table with ``np.repeat``. At the end, yields (subtree lengths)
are summed bottom-up and offsets pushed top-down, which puts every terminal at its place. The
work is linear in the number of tree nodes; the number of numpy calls in the tree depth.

This module holds that general path and the public functions; the compiled tables are in
:mod:`grammarlab.grammar.sample_tables` and the fixed-length fast path (same numbers, fewer steps)
in :mod:`grammarlab.grammar.sample_fast`.

:func:`sample_ids` gives token indices as arrays; :func:`sample` and the others build tuples from
them. Every function takes an explicit :class:`numpy.random.Generator`; the same seed gives the
same strings.
"""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np

from grammarlab.errors import GrammarlabError
from grammarlab.grammar.language import check_distinct, count_derivations, language
from grammarlab.grammar.parse import Grammar
from grammarlab.grammar.sample_fast import derive_fixed, fixed_length_tables
from grammarlab.grammar.sample_tables import (
    ANY_LEVEL,
    BATCH,
    MAX_DEPTH,
    MAX_NODES,
    Tables,
    batch_size,
    choose,
    compile_tables,
    runaway,
)
from grammarlab.grammar.strings import Tokens

# count_derivations and language live in grammarlab.grammar.language; re-exported for older imports
__all__ = ["count_derivations", "language", "overlap", "overlap_report", "random_strings"]
__all__ += ["sample", "sample_derivations", "sample_ids"]

MAX_ROUNDS = 64  # sampling rounds for `unique` / `exclude` before giving up
MAX_PADDED = 400_000_000  # cells of the padded array sample_ids may allocate (1.6 GB)


@lru_cache(maxsize=64)
def _tables(g: Grammar) -> Tables:
    """Compiled tables of ``g`` with the fast path's tables (when its strings all have one
    length) and the batch size, cached per grammar (frozen, hashable)."""
    t, rhs, lhs = compile_tables(g)
    fixed = fixed_length_tables(t, rhs)
    batch = BATCH if fixed else batch_size(g, np.exp(t.rule_logp), t.rhs_len, lhs)
    return dataclasses.replace(t, fixed=fixed, batch=batch)


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
        rule = choose(t, np.take(t.first_rule, sym[nt_pos]), rng, ANY_LEVEL)
        if logp is not None:
            logp += np.bincount(root[nt_pos], weights=t.rule_logp[rule], minlength=n)
        k = t.rhs_len[rule]
        total = int(k.sum())
        nodes += total
        if nodes > MAX_NODES or len(syms) > MAX_DEPTH:
            runaway(g, n, nodes, len(syms))
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


def _derive(
    g: Grammar, n: int, rng: np.random.Generator, want_logp: bool
) -> tuple[Tables, np.ndarray, np.ndarray, np.ndarray | None]:
    """``n`` derivations, BATCH at a time: the tables, the terminal indices of all strings
    concatenated (int32), the strings' lengths and, if wanted, their log probabilities (nats)."""
    if n < 0:
        raise GrammarlabError(f"number of samples must be >= 0, got {n}")
    t = _tables(g)
    logp = np.zeros(n) if want_logp else None
    size = t.fixed.length if t.fixed else 0
    ids, lengths = [np.empty(n * size, dtype=np.int32)], [np.full(n if size else 0, size)]
    for lo in range(0, n, t.batch):
        hi = min(n, lo + t.batch)
        lp = None if logp is None else logp[lo:hi]  # a view: filled in place
        if t.fixed:
            derive_fixed(g, t, rng, ids[0][lo * size : hi * size], lp)
        else:
            ids[len(ids) :], lengths[len(lengths) :] = zip(_derive_general(g, t, hi - lo, rng, lp))
    if t.fixed:
        return t, ids[0], lengths[0], logp
    return t, np.concatenate(ids), np.concatenate(lengths), logp


def sample_ids(g: Grammar, n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """``n`` strings as arrays, with no Python object per token: ``(ids, lengths, logp_nats)``;
    ``ids`` int32 [n, longest length] holds the index of each token in ``g.terminals``, -1 after
    the string's end; ``lengths`` int64 [n] in tokens; ``logp_nats`` float64 [n] as in
    :func:`sample_derivations`. Draws as :func:`sample` does: the same seed, the same strings."""
    t, flat, lengths, logp = _derive(g, n, rng, want_logp=True)
    width = int(lengths.max()) if n else 0
    if t.fixed:
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


def sample_derivations(
    g: Grammar, n: int, rng: np.random.Generator
) -> tuple[list[Tokens], np.ndarray]:
    """``n`` strings and the natural-log probability (nats) of each one's sampled derivation
    (the sum of the log probabilities of the rules used; for an ambiguous string this is less
    than the string's own log probability)."""
    t, flat, lengths, logp = _derive(g, n, rng, want_logp=True)
    return _to_tuples(t, flat, lengths), logp


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
        return _to_tuples(*_derive(g, n, rng, want_logp=False)[:3])
    if unique:
        check_distinct(g, n, excl)
    out: list[Tokens] = []
    seen: set[Tokens] = set()
    drawn = 0
    for _ in range(MAX_ROUNDS):
        need = n - len(out)
        if need <= 0:
            break
        batch = _to_tuples(*_derive(g, max(2 * need, 64), rng, want_logp=False)[:3])
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
    t, _ids, lengths, _ = _derive(g, n, rng, want_logp=False)
    ids = rng.integers(0, len(g.terminals), size=int(lengths.sum()))
    return _to_tuples(t, ids, lengths)
