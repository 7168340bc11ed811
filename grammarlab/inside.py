"""Exact string, prefix and next-token probabilities of a PCFG (natural log, nats).

The grammar is compiled once (cached) into a normal form the chart algorithms can use:

* right sides of length >= 3 are binarized from the right with fresh intermediate nonterminals
  (probability 1; a suffix shared by several rules gets one intermediate);
* terminals inside right sides of length >= 2 become preterminals ``T -> 'a' [1]``;
* unit rules ``A -> B`` (cycles included) are kept and closed with ``(I - U)^-1``.

Inside probabilities (CKY by span width, vectorized over strings of the same length and over all
spans of a width) and prefix probabilities (Jelinek & Lafferty 1991, with the left-corner closure
``(I - P_L)^-1``; needs a consistent grammar) are kept in log space: every sum over derivations is
a max-shifted log-sum-exp per output cell and nonterminal, so a 500-token string does not
underflow. Work is pruned exactly by the set of lengths each nonterminal can derive.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from grammarlab.errors import GrammarlabError
from grammarlab.grammar import Grammar

END = "</s>"
LN2 = math.log(2.0)
_CHART_BYTES = 192 * 2**20  # chart memory per batch of same-length strings


@dataclass(frozen=True, eq=False)
class _Compiled:
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


def _inverse_closure(m: np.ndarray, what: str, g: Grammar) -> np.ndarray:
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


@lru_cache(maxsize=16)
def _compile(g: Grammar) -> _Compiled:
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
    uc = _inverse_closure(u, "unit-rule", g)
    u_rows = np.flatnonzero(np.any(np.abs(uc - np.eye(k)) > 0, axis=1))
    pl = u.copy()
    for a, left, _, lp in binary:
        pl[a, left] += math.exp(lp)
    lc = _inverse_closure(pl, "left-corner", g)
    lc_rows = np.unique(np.r_[0, b[:, 2]].astype(int))
    return _Compiled(
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


def _lengths(c: _Compiled, length: int) -> tuple[np.ndarray, np.ndarray]:
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


def _pairs(c: _Compiled, kind: str, w: int, lens: np.ndarray, ml: np.ndarray) -> tuple:
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
    empty = np.zeros(0, dtype=np.int64)
    return c.cache[kind].get(w, (empty, empty, empty, np.zeros(0), empty, empty))


def _plan(rows: np.ndarray, mat: np.ndarray, ins: np.ndarray, identity: bool) -> tuple:
    """How to apply closure rows ``mat`` to log values of nonterminals ``ins``: (output
    nonterminals, segment starts, input positions, log weights). With ``identity``, nonterminals
    outside ``rows`` pass through unchanged."""
    r, j = np.nonzero(mat[:, ins] > 0)
    out, pos, logw = rows[r], j, np.log(mat[r, ins[j]])
    if identity:
        keep = ~np.isin(ins, rows)
        out = np.r_[out, ins[keep]]
        pos = np.r_[pos, np.flatnonzero(keep)]
        logw = np.r_[logw, np.zeros(keep.sum())]
    order = np.argsort(out, kind="stable")
    out, pos, logw = out[order], pos[order], logw[order]
    starts = np.flatnonzero(np.r_[True, out[1:] != out[:-1]]) if len(out) else out
    return out[starts], starts, pos, logw


def _closed(c: _Compiled, kind: str, key: int, ins: np.ndarray, x: np.ndarray) -> tuple:
    """(nonterminals, log values ``[starts, nts, strings]``) after the unit (``kind="unit"``) or
    left-corner (``"lc"``) closure of values ``x`` of nonterminals ``ins``."""
    if kind == "unit" and len(c.u_rows) == 0:
        return ins, x
    cache = c.cache.setdefault(kind, {})
    if key not in cache:
        if kind == "unit":
            cache[key] = _plan(c.u_rows, c.u_mat, ins, True)
        else:
            cache[key] = _plan(c.lc_rows, c.lc_mat, ins, False)
    out, starts, pos, logw = cache[key]
    if len(out) == 0:
        return out, x[:, :0]
    return out, _seg_lse(x[:, pos] + logw[:, None], starts, axis=1)


def _seg_lse(vals: np.ndarray, starts: np.ndarray, axis: int) -> np.ndarray:
    """log-sum-exp of consecutive segments (beginning at ``starts``) along ``axis``, each segment
    shifted by its own maximum."""
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.maximum.reduceat(vals, starts, axis=axis)
        m = np.where(np.isfinite(m), m, 0.0)
        sizes = np.diff(np.r_[starts, vals.shape[axis]])
        s = np.add.reduceat(np.exp(vals - np.repeat(m, sizes, axis=axis)), starts, axis=axis)
        return np.log(s) + m


def _encode(c: _Compiled, strings: Sequence[Sequence[str]]) -> np.ndarray:
    unk = len(c.tid)
    return np.array([[c.tid.get(t, unk) for t in s] for s in strings], dtype=np.int64)


def _offsets(active: np.ndarray, length: int, shrink: int) -> tuple[np.ndarray, int]:
    """Flat chart layout: block (width w, nonterminal A) starts at ``off[w, A]`` and holds
    ``length - w + shrink`` start positions; inactive blocks point at the all ``-inf`` block 0."""
    sizes = np.where(active, length - np.arange(len(active))[:, None] + shrink, 0)
    sizes = np.maximum(sizes, 0)
    ends = length + np.cumsum(sizes.ravel())
    off = np.where(active.ravel(), ends - sizes.ravel(), 0).reshape(active.shape)
    return off, int(ends[-1]) if len(ends) else length


def _layouts(c: _Compiled, length: int) -> tuple:
    lens, ml = _lengths(c, length)
    act_in = lens[:, : length + 1].T.copy()  # [width, nt]
    act_in[0] = False
    off_in, n_in = _offsets(act_in, length, 1)
    act_q = np.zeros((length, c.k), dtype=bool)  # [width - 1, nt]
    act_q[:, c.lc_rows] = ml[c.lc_rows][None, :] >= np.arange(1, length + 1)[:, None]
    off_q, n_q = _offsets(act_q, length, 0)
    return lens, ml, off_in, n_in, off_q, n_q


def _inside(c: _Compiled, tok: np.ndarray, lay: tuple) -> np.ndarray:
    """Flat log inside chart of same-length token arrays: ``chart[off[w, A] + i, s]`` is
    log P(A =>* tokens i .. i+w-1 of string s)."""
    n, length = tok.shape
    lens, ml, off, size = lay[:4]
    chart = np.full((size, n), -np.inf)
    i = np.arange(length)[:, None]
    nts, x = _closed(c, "unit", 1, c.lex_nts, c.lex[tok].transpose(1, 2, 0))
    chart[off[1, nts][None, :] + i] = x
    for w in range(2, length + 1):
        split, left, right, logp, starts, lhs = _pairs(c, "inside", w, lens, ml)
        if len(split) == 0:
            continue
        i = np.arange(length - w + 1)[:, None]
        vals = chart[off[split, left] + i] + chart[off[w - split, right] + i + split]
        x = _seg_lse(vals + logp[:, None], starts, axis=1)
        nts, x = _closed(c, "unit", w, lhs, x)
        chart[off[w, nts][None, :] + i] = x
    return chart


def _prefix(c: _Compiled, tok: np.ndarray, chart: np.ndarray, lay: tuple) -> np.ndarray:
    """``out[j, s]`` = log P(string s starts with its first j + 1 tokens) (Jelinek-Lafferty):
    q(A, i, d) = sum_B LC[A, B] (lex(B, x_i) if d = 0 else
    sum_{B -> C D, c} P inside(C, i, c) q(D, i + c, d - c))."""
    n, length = tok.shape
    lens, ml, off_in, _, off, size = lay
    q = np.full((size, n), -np.inf)
    i = np.arange(length)[:, None]
    nts, x = _closed(c, "lc", 0, c.lex_nts, c.lex[tok].transpose(1, 2, 0))
    q[off[0, nts][None, :] + i] = x
    for d in range(1, length):
        split, left, right, logp, starts, lhs = _pairs(c, "prefix", d, lens, ml)
        if len(split) == 0:
            continue
        i = np.arange(length - d)[:, None]
        vals = chart[off_in[split, left] + i] + q[off[d - split, right] + i + split]
        x = _seg_lse(vals + logp[:, None], starts, axis=1)
        nts, x = _closed(c, "lc", d, lhs, x)
        q[off[d, nts][None, :] + i] = x
    return q[off[:, 0]]


def _batches(c: _Compiled, strings: Sequence[Sequence[str]], prefix: bool):
    """(length, indices, layout) of same-length strings, in chunks whose tables stay under about
    ``_CHART_BYTES``."""
    by_len: dict[int, list[int]] = {}
    for i, s in enumerate(strings):
        by_len.setdefault(len(s), []).append(i)
    for length, ids in sorted(by_len.items()):
        if length == 0:
            yield length, ids, None
            continue
        lay = _layouts(c, length)
        lens, ml = lay[:2]
        peak = max(
            [
                (length - w + 1) * len(_pairs(c, "inside", w, lens, ml)[0])
                for w in range(2, length + 1)
            ]
            + [length * c.k]
        )
        if prefix:
            pairs = [len(_pairs(c, "prefix", d, lens, ml)[0]) for d in range(1, length)]
            peak = max([peak] + [(length - d) * p for d, p in enumerate(pairs, 1)])
        per = 8 * (lay[3] + (lay[5] if prefix else 0) + 4 * peak)
        step = max(1, _CHART_BYTES // per)
        for lo in range(0, len(ids), step):
            yield length, ids[lo : lo + step], lay


def string_logprobs(g: Grammar, strings: Sequence[Sequence[str]]) -> np.ndarray:
    """Natural log P(string) (nats), summed over all derivations; ``-inf`` when impossible."""
    c = _compile(g)
    out = np.full(len(strings), -np.inf)
    for length, ids, lay in _batches(c, strings, False):
        if length > 0:
            chart = _inside(c, _encode(c, [strings[i] for i in ids]), lay)
            out[ids] = chart[lay[2][length, 0]]
    return out


def surprisal_bits(g: Grammar, strings: Sequence[Sequence[str]]) -> np.ndarray:
    """-log2 P(string) in bits per string; ``inf`` when impossible."""
    return -string_logprobs(g, strings) / LN2


def prefix_logprobs(g: Grammar, prefixes: Sequence[Sequence[str]]) -> np.ndarray:
    """Natural log of P(a string of the grammar starts with the prefix) (nats); 0 for the empty
    prefix, ``-inf`` when no string starts with it."""
    c = _compile(g)
    out = np.zeros(len(prefixes))
    for length, ids, lay in _batches(c, prefixes, True):
        if length > 0:
            tok = _encode(c, [prefixes[i] for i in ids])
            out[ids] = _prefix(c, tok, _inside(c, tok, lay), lay)[-1]
    return out


def next_token_logprobs(g: Grammar, prefix: Sequence[str]) -> tuple[tuple[str, ...], np.ndarray]:
    """Exact distribution of the symbol after ``prefix``: natural-log probabilities (nats) over
    ``g.terminals`` and, last, :data:`END` (the string stops here); they sum to 1 in probability.
    Raises :class:`GrammarlabError` when the prefix is impossible (no distribution exists)."""
    prefix = tuple(prefix)
    base = prefix_logprobs(g, [prefix])[0]
    if not np.isfinite(base):
        raise GrammarlabError(
            f"no string of the grammar starts with {' '.join(prefix)!r}",
            file=g.source,
            hint="the next-token distribution exists only after a possible prefix",
        )
    ext = prefix_logprobs(g, [(*prefix, t) for t in g.terminals])
    end = string_logprobs(g, [prefix])[0] if prefix else -np.inf
    return (*g.terminals, END), np.r_[ext, end] - base


def token_surprisals_bits(g: Grammar, strings: Sequence[Sequence[str]]) -> list[np.ndarray]:
    """Per string, ``L + 1`` surprisals in bits: -log2 P(x_i | x_<i) for each token, then
    -log2 P(end | x). They sum to :func:`surprisal_bits`; ``inf`` from the first impossible
    token on. One inside chart and one prefix table per batch serve every prefix."""
    c = _compile(g)
    out: list[np.ndarray] = [np.full(1, np.inf) for _ in strings]
    for length, ids, lay in _batches(c, strings, True):
        if length == 0:
            continue
        tok = _encode(c, [strings[i] for i in ids])
        chart = _inside(c, tok, lay)
        pre = _prefix(c, tok, chart, lay)
        logp = np.vstack([np.zeros(len(ids)), pre, chart[lay[2][length, 0]][None, :]])
        with np.errstate(invalid="ignore"):
            bits = (logp[:-1] - logp[1:]) / LN2
        bits[np.isneginf(logp[1:])] = np.inf
        for col, i in enumerate(ids):
            out[i] = bits[:, col].copy()
    return out
