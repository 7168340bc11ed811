"""Incremental prefix parsing: a chart extended one token at a time (Stolcke's probabilistic
Earley parser on the compiled binary/lexical/unit form of :mod:`grammarlab.grammar.cnf`).

A :class:`PrefixChart` holds the columns 0..j of a prefix x_1..x_j. :meth:`PrefixChart.advance`
returns the chart of x_1..x_j x_{j+1}, sharing the parent's columns, so strings that share a
prefix (a trie, walked depth first by :func:`trie_logprobs`) parse that prefix once. Each column
keeps, in natural log (nats):

* the active items ``(i, A -> C . D)`` waiting for D to start at j, with their inner weight
  P(A -> C D) * inside(C, i, j);
* the forward mass ``pi[D]``: the probability of every leftmost derivation from the start that
  has read x_1..x_j and next expands D as a right child (Stolcke's forward probabilities);
* the prefix probability P(x_1..x_j) and, when the start symbol spans it, P(x_1..x_j).

The left-corner closure ``R_L = (I - P_L)^-1`` of :mod:`grammarlab.grammar.cnf` turns ``pi`` into
the mass of every nonterminal that can start at j: ``pi'(A) = sum_D pi[D] R_L[D, A]``. The
next-token distribution is then ``pi @ R_L @ Lex`` (one product per column) and the prefix
probability of x_1..x_j a is its entry for a (Jelinek & Lafferty 1991; Stolcke 1995). Inside
weights are computed only for predicted items (Earley's top-down filter), which keeps the chart
of an unambiguous grammar small. Like the chart path of :mod:`grammarlab.grammar.inside`, prefix
probabilities assume a consistent grammar (every derivation ends with probability 1).

The chart takes a grammar without empty alternatives (its compiled form needs one); the public
functions of :mod:`grammarlab.grammar.inside` give it the empty-string split of any other
(:func:`grammarlab.grammar.cnf.empty_free`) and account for the empty string themselves.

Everything stays in log space (nats), so a 2^-1323 probability is an ordinary number.
"""

from __future__ import annotations

import math
import sys
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from heapq import heappop, heappush

import numpy as np

from grammarlab.errors import GrammarlabError
from grammarlab.grammar.cnf import compile_cnf, per_grammar
from grammarlab.grammar.parse import Grammar

NEG_INF = -math.inf
MAX_ITEMS = 20_000_000  # items one chart may hold (about 3 GiB of Python objects) before refusing
# completion steps (an item waiting at k met by a complete item from k) one chart may take
# (about 1.5 million a second on a shared core): a string past it is refused, so no string
# parses for more than about 7 s
MAX_STEPS = 10_000_000


def _lae(a: float, b: float) -> float:
    """log(exp(a) + exp(b)), exact for ``-inf``."""
    if a < b:
        a, b = b, a
    if b == NEG_INF:
        return a
    return a + math.log1p(math.exp(b - a))


def _lse(xs: Sequence[float]) -> float:
    m = max(xs, default=NEG_INF)
    if m == NEG_INF:
        return NEG_INF
    return m + math.log(math.fsum(math.exp(x - m) for x in xs))


@dataclass(frozen=True, eq=False)
class Tables:
    """The compiled grammar as lookup tables for the parser (log weights, nats)."""

    k: int
    tid: dict[str, int]
    lex_by_t: tuple[tuple[tuple[int, float], ...], ...]  # terminal -> (preterminal, log P)
    unit_up: tuple[tuple[tuple[int, float], ...], ...]  # C -> (A, log R_U[A, C]), R_U[A, C] > 0
    by_left: tuple[tuple[tuple[int, int, float], ...], ...]  # C -> (A, D, log P(A -> C D))
    lc_log: np.ndarray  # [rows, k] log R_L[D, A] for D the start and the right children
    lc_sparse: tuple[tuple[tuple[int, float], ...], ...]  # D -> (A, log R_L[D, A]), R_L > 0
    lc_nnz: tuple[int, ...]  # D -> len(lc_sparse[D])
    has_units: bool  # some unit closure row is not the identity
    lc_index: dict[int, int]  # D -> row of ``lc_log`` and ``next_log``
    next_log: np.ndarray  # [rows, n_terminals] log (R_L @ Lex)[D, a]


@per_grammar
@lru_cache(maxsize=16)
def tables(g: Grammar) -> Tables:
    """The parser's tables for ``g`` (cached per grammar)."""
    c = compile_cnf(g)
    n_t = len(c.tid)
    lex_by_t: list[list[tuple[int, float]]] = [[] for _ in range(n_t)]
    for t in range(n_t):
        for j in np.flatnonzero(np.isfinite(c.lex[t])):
            lex_by_t[t].append((int(c.lex_nts[j]), float(c.lex[t, j])))
    unit_up: list[list[tuple[int, float]]] = [[] for _ in range(c.k)]
    in_rows = np.zeros(c.k, dtype=bool)
    in_rows[c.u_rows] = True
    for r, a in enumerate(c.u_rows):
        for col in np.flatnonzero(c.u_mat[r] > 0):
            unit_up[col].append((int(a), math.log(c.u_mat[r, col])))
    for a in np.flatnonzero(~in_rows):
        unit_up[a].append((int(a), 0.0))
    by_left: list[list[tuple[int, int, float]]] = [[] for _ in range(c.k)]
    for a, left, right, lp in zip(c.b_lhs, c.b_left, c.b_right, c.b_logp, strict=True):
        by_left[left].append((int(a), int(right), float(lp)))
    lex_p = np.zeros((c.k, n_t))
    lex_p[c.lex_nts] = np.exp(c.lex[:n_t]).T
    with np.errstate(divide="ignore"):
        next_log = np.log(c.lc_mat @ lex_p)
        lc_log = np.log(c.lc_mat)
    lc_sparse: list[tuple[tuple[int, float], ...]] = [() for _ in range(c.k)]
    for r, d in enumerate(c.lc_rows):
        cols = np.flatnonzero(np.isfinite(lc_log[r]))
        lc_sparse[int(d)] = tuple(zip(cols.tolist(), lc_log[r, cols].tolist(), strict=True))
    return Tables(
        k=c.k,
        tid=c.tid,
        lex_by_t=tuple(map(tuple, lex_by_t)),
        unit_up=tuple(map(tuple, unit_up)),
        by_left=tuple(map(tuple, by_left)),
        lc_log=lc_log,
        lc_sparse=tuple(lc_sparse),
        lc_nnz=tuple(map(len, lc_sparse)),
        has_units=len(c.u_rows) > 0,
        lc_index={int(d): r for r, d in enumerate(c.lc_rows)},
        next_log=next_log,
    )


class _Column:
    """Column j of the chart: the items waiting at j and the forward masses (nats)."""

    __slots__ = ("wait", "pi", "closed", "prefix", "full", "items")

    def __init__(self) -> None:
        self.wait: dict[int, dict[tuple[int, int], float]] = {}  # D -> {(i, A): log inner}
        self.pi: dict[int, float] = {}  # D -> log forward mass waiting for D
        self.closed: dict[int, float] | None = None  # A -> log pi'(A) > -inf, on first use
        self.prefix = NEG_INF  # log P(x_1..x_j is a prefix)
        self.full = NEG_INF  # log P(x_1..x_j is the whole string)
        self.items = 0

    def predicted(self, t: Tables) -> dict[int, float]:
        """A -> log pi'(A) = log sum_D pi[D] R_L[D, A] for the A with pi'(A) > 0: the mass of the
        derivations in which A starts here (as a left corner of something waiting, or waiting
        itself); computed once per column. The closure is sparse (a few nonzeros per row), so
        it is summed term by term (pairwise log-add-exp); a column with more than
        ``_DENSE_TERMS`` terms takes one max-shifted dense sum over the rows instead."""
        if self.closed is None:
            pi = self.pi
            if len(pi) == 1:
                ((d, v),) = pi.items()
                self.closed = {a: v + w for a, w in t.lc_sparse[d]}
            elif sum(t.lc_nnz[d] for d in pi) <= _DENSE_TERMS:
                out: dict[int, float] = {}
                for d, v in pi.items():
                    for a, w in t.lc_sparse[d]:
                        old = out.get(a)
                        out[a] = v + w if old is None else _lae(old, v + w)
                self.closed = out
            else:
                rows = [t.lc_index[d] for d in pi]
                dense = _lse_cols(t.lc_log[rows], np.fromiter(pi.values(), float))
                self.closed = {a: x for a, x in enumerate(dense) if x != NEG_INF}
        return self.closed


_DENSE_TERMS = 4096  # closure terms of one column above which a dense numpy sum is cheaper


def _lse_cols(logm: np.ndarray, logv: np.ndarray) -> list[float]:
    """log sum_r exp(logv[r] + logm[r, :]) per column, as a list (exact for ``-inf``)."""
    x = logm + logv[:, None]
    if len(x) == 0:
        return [NEG_INF] * logm.shape[1]
    if len(x) == 1:
        return x[0].tolist()
    with np.errstate(invalid="ignore", divide="ignore"):
        m = x.max(axis=0)
        m = np.where(np.isfinite(m), m, 0.0)
        return (np.log(np.exp(x - m).sum(axis=0)) + m).tolist()


class PrefixChart:
    """The Earley chart of a prefix. ``PrefixChart(g)`` is the empty prefix; :meth:`advance`
    extends it by one token (the original is unchanged and can be extended again)."""

    __slots__ = ("t", "cols", "n_items", "n_steps", "where")

    def __init__(self, g: Grammar, *, where: str = "the prefix") -> None:
        self.t = tables(g)
        root = _Column()
        root.pi[0] = 0.0  # the start symbol waits at position 0 with probability 1
        root.prefix = 0.0
        self.cols: tuple[_Column, ...] = (root,)
        self.n_items = 0
        self.n_steps = 0
        self.where = where  # names the string in the memory guard's message

    def __len__(self) -> int:
        return len(self.cols) - 1

    @property
    def prefix_logprob(self) -> float:
        """Natural log P(a string starts with this prefix) (nats); 0 for the empty prefix."""
        return self.cols[-1].prefix

    @property
    def string_logprob(self) -> float:
        """Natural log P(the string is exactly this prefix) (nats); ``-inf`` if impossible."""
        return self.cols[-1].full

    def advance(self, token: str) -> PrefixChart:
        """The chart of this prefix followed by ``token``."""
        t = self.t
        j = len(self.cols)  # index of the new column (tokens read after the token)
        prev = self.cols[-1]
        new = _Column()
        child = object.__new__(PrefixChart)
        child.t, child.where = t, self.where
        child.cols = (*self.cols, new)
        child.n_items = self.n_items
        child.n_steps = self.n_steps
        tok = t.tid.get(token)
        if tok is None or prev.prefix == NEG_INF:
            return child
        lex = {}
        terms = []
        pred = prev.predicted(t)
        for b, ll in t.lex_by_t[tok]:
            pb = pred.get(b)
            if pb is not None:
                lex[b] = ll
                terms.append(pb + ll)
        if not terms:
            return child
        new.prefix = terms[0] if len(terms) == 1 else _lse(terms)
        pending: dict[int, dict[int, float]] = {j - 1: lex}
        unit_up, by_left, units = t.unit_up, t.by_left, t.has_units
        wait, pi = new.wait, new.pi
        cols = self.cols
        n = steps = 0
        starts = [1 - j]  # -k for the starts k of pending complete items (a max-heap)
        while starts:  # later starts first: a completion at k only adds starts before k
            k = -heappop(starts)
            got = pending.pop(k)
            col = cols[k]
            pred = col.predicted(t)
            if units:  # unit closure of the inside weights
                closed: dict[int, float] = {}
                for c, b in got.items():
                    for a, w in unit_up[c]:
                        old = closed.get(a)
                        closed[a] = b + w if old is None else _lae(old, b + w)
            else:
                closed = got
            col_wait = col.wait
            for c, b in closed.items():
                if c not in pred:
                    continue  # nothing at k can use c (top-down filter)
                n += 1
                if k == 0 and c == 0:
                    new.full = b
                waiting = col_wait.get(c)
                if waiting:  # complete what waited for c
                    steps += len(waiting)
                    for (i, a), g_ in waiting.items():
                        d = pending.get(i)
                        if d is None:
                            pending[i] = {a: g_ + b}
                            heappush(starts, -i)
                        else:
                            old = d.get(a)
                            d[a] = g_ + b if old is None else _lae(old, g_ + b)
                for a, right, lp in by_left[c]:  # c is the left child of a -> c right
                    pa = pred.get(a)
                    if pa is None:
                        continue
                    g_ = lp + b
                    w = wait.get(right)
                    if w is None:
                        wait[right] = {(k, a): g_}
                    else:
                        old = w.get((k, a))
                        w[(k, a)] = g_ if old is None else _lae(old, g_)
                    old = pi.get(right)
                    pi[right] = pa + g_ if old is None else _lae(old, pa + g_)
                    n += 1
        child.n_items += n
        child.n_steps += steps
        if child.n_steps > MAX_STEPS:
            raise GrammarlabError(
                f"{self.where}: the chart after {j} tokens took {child.n_steps:,} completion "
                f"steps, over the bound of {MAX_STEPS:,} (about 7 s of work)",
                hint="score shorter strings; this grammar's parses grow with the cube of the "
                "length",
            )
        if child.n_items > MAX_ITEMS:
            raise GrammarlabError(
                f"{self.where}: the chart after {j} tokens holds {child.n_items:,} items, over "
                f"the bound of {MAX_ITEMS:,}",
                hint="score shorter strings; this grammar's charts grow with the square of "
                "the length or faster",
            )
        return child

    def next_token_logprobs(self) -> np.ndarray:
        """log P(next = a | prefix) over the grammar's terminals, then log P(end | prefix)
        (nats); all ``-inf`` when the prefix is impossible."""
        t = self.t
        col = self.cols[-1]
        n_t = len(t.tid)
        if col.prefix == NEG_INF:
            return np.full(n_t + 1, NEG_INF)
        rows = [t.lc_index[d] for d in col.pi]
        nxt = _lse_cols(t.next_log[rows], np.fromiter(col.pi.values(), float))
        return np.r_[nxt, col.full] - col.prefix


_INT, _FLOAT, _PAIR = sys.getsizeof(10**6), sys.getsizeof(0.5), sys.getsizeof((10**6, 10**6))


def column_bytes(col: _Column) -> int:
    """Bytes of the Python objects one column holds (its dicts, their keys and values; every
    int counted as a separate object, so an upper bound)."""
    n = sys.getsizeof(col) + sys.getsizeof(col.wait) + sys.getsizeof(col.pi)
    n += len(col.pi) * (_INT + _FLOAT) + len(col.wait) * _INT
    for d in col.wait.values():
        n += sys.getsizeof(d) + len(d) * (_PAIR + 2 * _INT + _FLOAT)
    if col.closed is not None:
        n += sys.getsizeof(col.closed) + len(col.closed) * (_INT + _FLOAT)
    return n


class _Node:
    __slots__ = ("chart", "kids", "parent", "token", "nbytes", "next", "key")

    def __init__(self, chart: PrefixChart, parent: _Node | None, token: str | None) -> None:
        self.chart, self.parent, self.token = chart, parent, token
        self.next: np.ndarray | None = None  # the next-token distribution, once asked for
        self.key: tuple | None = None  # (tables id, prefix) once queried directly
        self.kids: dict[str, _Node] = {}
        chart.cols[-1].predicted(chart.t)  # the closure every extension needs, counted now
        self.nbytes = (
            column_bytes(chart.cols[-1]) + sys.getsizeof(chart) + sys.getsizeof(chart.cols)
        )


class ChartCache:
    """Prefix charts kept for repeated queries, least recently used first out, bounded by
    ``max_bytes``: the bytes of the Python objects the cached charts hold (:func:`column_bytes`
    of each chart's last column plus the chart and its tuple of columns).

    The charts form a trie (a chart extends its parent prefix's chart by one column). A query
    touches its path from the leaf up to the root, so a chart is never older than any of its
    extensions and the least recently used chart is always a leaf: evicting it frees its last
    column, and the bytes counted are the bytes held. A query's own path stays in the cache
    even when it alone is over the bound (it is the chart being returned); everything older
    goes first. A chart's next-token distribution, once asked for, is kept with it (and
    counted). Keyed by the identity of the grammar's parser tables, which every cached chart
    holds, so an id is not reused while its entries exist."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.nbytes = 0
        self._roots: dict[int, _Node] = {}
        self._lru: OrderedDict[_Node, None] = OrderedDict()  # by identity
        self._index: dict[tuple, _Node] = {}  # (tables id, prefix) -> node, for queried prefixes

    def __len__(self) -> int:
        return len(self._lru)

    def _add(self, node: _Node) -> _Node:
        self._lru[node] = None
        self.nbytes += node.nbytes
        return node

    def chart(self, g: Grammar, prefix: Sequence[str]) -> PrefixChart:
        """The chart of ``prefix``, extended from the longest cached prefix of it."""
        return self._node(g, prefix).chart

    def next_token_logprobs(self, g: Grammar, prefix: Sequence[str]) -> np.ndarray | None:
        """:meth:`PrefixChart.next_token_logprobs` of ``prefix``, kept with its chart (a copy);
        None when the prefix is impossible."""
        node = self._node(g, prefix)
        if node.chart.cols[-1].prefix == NEG_INF:
            return None
        if node.next is None:
            node.next = node.chart.next_token_logprobs()
            node.nbytes += sys.getsizeof(node.next)
            self.nbytes += sys.getsizeof(node.next)
        return node.next.copy()

    def _node(self, g: Grammar, prefix: Sequence[str]) -> _Node:
        t = tables(g)
        key = (id(t), tuple(prefix))
        lru = self._lru
        hit = self._index.get(key)
        if hit is not None:  # a repeated query: touch its path, leaf first, root last
            n: _Node | None = hit
            while n is not None:
                lru.move_to_end(n)
                n = n.parent
            return hit
        node = self._roots.get(id(t))
        if node is None:
            node = self._roots[id(t)] = self._add(_Node(PrefixChart(g), None, None))
        path = [node]
        for tok in key[1]:
            nxt = node.kids.get(tok)
            if nxt is None:
                nxt = node.kids[tok] = self._add(_Node(node.chart.advance(tok), node, tok))
            node = nxt
            path.append(node)
        if node.key is None:
            node.key = key
            self._index[key] = node
            node.nbytes += sys.getsizeof(key[1])
            self.nbytes += sys.getsizeof(key[1])
        for n in reversed(path):  # leaf first, root last: ancestors stay the more recent
            lru.move_to_end(n)
        keep = len(path)
        while self.nbytes > self.max_bytes and len(lru) > keep:
            old, _ = lru.popitem(last=False)
            self.nbytes -= old.nbytes
            if old.key is not None:
                del self._index[old.key]
            if old.parent is None:
                del self._roots[id(old.chart.t)]
            else:
                del old.parent.kids[old.token]
        return node

    def clear(self) -> None:
        self._roots.clear()
        self._index.clear()
        self._lru.clear()
        self.nbytes = 0


def trie_logprobs(
    g: Grammar, strings: Sequence[Sequence[str]], *, prefixes: bool = True
) -> list[np.ndarray]:
    """Per string of length L, ``L + 2`` natural logs (nats): log P(prefix of length i) for
    i = 0..L, then log P(string). Strings are parsed as a trie, depth first, so a shared prefix
    is parsed once and only the charts on the current path are kept."""
    first: dict[tuple[str, ...], int] = {}  # distinct string -> its first index
    for i, s in enumerate(strings):
        first.setdefault(tuple(s), i)
    done: dict[tuple[str, ...], np.ndarray] = {}
    stack: list[PrefixChart] = []
    last: tuple[str, ...] = ()
    for s in sorted(first):
        i = first[s]
        shared = 0
        limit = min(len(s), len(last))
        while shared < limit and s[shared] == last[shared]:
            shared += 1
        where = f"string {i} (length {len(s)})"
        if not stack:
            stack.append(PrefixChart(g, where=where))
        del stack[shared + 1 :]
        for tok in s[shared:]:
            stack[-1].where = where
            stack.append(stack[-1].advance(tok))
        last = s
        full = stack[len(s)].string_logprob if s else NEG_INF
        if prefixes:
            done[s] = np.array([*(c.prefix_logprob for c in stack[: len(s) + 1]), full])
        else:
            done[s] = np.array([full])
    return [done[tuple(s)] for s in strings]
