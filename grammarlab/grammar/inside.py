"""Exact string, prefix and next-token probabilities of a PCFG (natural log, nats).

General grammars use their compiled binary/lexical/unit form (:mod:`grammarlab.grammar.cnf`): inside
probabilities (CKY by span width, vectorized over strings of the same length and over all spans of
a width) and prefix probabilities (Jelinek & Lafferty 1991, with the left-corner closure
``(I - P_L)^-1``; needs a consistent grammar). Work is pruned exactly by the set of lengths each
nonterminal can derive. The prefix tables grow with the cube of the length.

Right-linear (regular) grammars, such as the paper's random grammars, take an exact fast path
instead: one left-to-right forward pass of their automaton, vectorized over strings of any
lengths. The forward mass after a prefix, summed over states, is the prefix probability (each
state then finishes a string with probability 1 in a consistent grammar, the assumption of the
general path too); the mass that reached the final state on the last token is P(string).

Large general grammars are parsed left to right instead (:mod:`grammarlab.grammar.earley`: a
probabilistic Earley chart extended one token at a time, the strings walked as a trie so a shared
prefix is parsed once): its top-down filter touches only the items a prefix can use, where the
chart path computes every nonterminal over every span. :func:`next_token_logprobs` always reads
the distribution off one such chart; the charts are kept between queries in a cache of at most
:data:`CHART_CACHE_BYTES` (256 MiB of Python objects, least recently used out), so the queries
along a test set's strings parse each token once. The chart path refuses, before allocating, a
string whose tables would exceed :data:`CHART_LIMIT_BYTES`.

A grammar with empty alternatives is scored through its empty-string split
(:func:`grammarlab.grammar.cnf.empty_free`): every path above runs on the grammar of the non-empty
strings, and P(w) = (1 - e) P_+(w) for a non-empty w, P(empty) = e (e = the start symbol's
exact probability of deriving the empty string). Prefix probabilities of non-empty prefixes get
the same factor 1 - e, so next-token distributions after a non-empty prefix are the split
grammar's own; after the empty prefix the terminals share 1 - e and the end of string has e.

All paths stay in log space: every sum over derivations is a max-shifted log-sum-exp per output
cell, so a 500-token string does not underflow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from grammarlab.errors import GrammarlabError
from grammarlab.grammar import earley
from grammarlab.grammar.cnf import (
    Compiled,
    EmptyFree,
    Regular,
    closure_plan,
    compile_cnf,
    compile_regular,
    empty_free,
    lengths,
    pairs,
    reachable_states,
)
from grammarlab.grammar.parse import Grammar

END = "</s>"
LN2 = math.log(2.0)
_CHART_BYTES = 192 * 2**20  # table memory per batch of strings
_REGULAR_FAST_PATH = True  # tests switch it off to compare with the general path
# General grammars with at least this many binary rules (after binarization) take the Earley
# path: below it, the vectorized chart's dense work over all nonterminals is cheaper than
# per-item Python (bench/bench_engine.py measures both). Tests move it to force either path.
EARLEY_MIN_RULES = 64
CHART_LIMIT_BYTES = 8 * 2**30  # one string's chart-path tables; longer strings are refused
_CHART_LENGTH_CHECK = 5_000  # above this length only the worst-case bound is affordable
# (span, split, rule) terms one string's inside and prefix sums may take on the chart path
# (about 10 million a second on a shared core); a longer string is refused before the work
MAX_CHART_TERMS = 100_000_000
_PAIRS_CHECK = 10_000_000  # (split, rule) pairs affordable to list for the exact term count


def _closed(c: Compiled, kind: str, key: int, ins: np.ndarray, x: np.ndarray) -> tuple:
    """(nonterminals, log values ``[starts, nts, strings]``) after the unit (``kind="unit"``) or
    left-corner (``"lc"``) closure of values ``x`` of nonterminals ``ins``."""
    if kind == "unit" and len(c.u_rows) == 0:
        return ins, x
    out, starts, pos, logw = closure_plan(c, kind, key, ins)
    if len(out) == 0:
        return out, x[:, :0]
    return out, _seg_lse(x[:, pos] + logw[:, None], starts, axis=1)


def _seg_lse(vals: np.ndarray, starts: np.ndarray, axis: int) -> np.ndarray:
    """log-sum-exp of consecutive segments (beginning at ``starts``) along ``axis``. Segments are
    mostly of one or two terms, so a pairwise ``logaddexp`` (stable, exact for ``-inf``, a copy
    for one term) beats a max-shifted sum."""
    return np.logaddexp.reduceat(vals, starts, axis=axis)


def _encode(c: Compiled, strings: Sequence[Sequence[str]]) -> np.ndarray:
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


def _layouts(c: Compiled, length: int) -> tuple:
    lens, ml = lengths(c, length)
    act_in = lens[:, : length + 1].T.copy()  # [width, nt]
    act_in[0] = False
    off_in, n_in = _offsets(act_in, length, 1)
    act_q = np.zeros((length, c.k), dtype=bool)  # [width - 1, nt]
    act_q[:, c.lc_rows] = ml[c.lc_rows][None, :] >= np.arange(1, length + 1)[:, None]
    off_q, n_q = _offsets(act_q, length, 0)
    return lens, ml, off_in, n_in, off_q, n_q


def _inside(c: Compiled, tok: np.ndarray, lay: tuple) -> np.ndarray:
    """Flat log inside chart of same-length token arrays: ``chart[off[w, A] + i, s]`` is
    log P(A =>* tokens i .. i+w-1 of string s)."""
    n, length = tok.shape
    lens, ml, off, size = lay[:4]
    chart = np.full((size, n), -np.inf)
    i = np.arange(length)[:, None]
    nts, x = _closed(c, "unit", 1, c.lex_nts, c.lex[tok].transpose(1, 2, 0))
    chart[off[1, nts][None, :] + i] = x
    for w in range(2, length + 1):
        split, left, right, logp, starts, lhs = pairs(c, "inside", w, lens, ml)
        if len(split) == 0:
            continue
        i = np.arange(length - w + 1)[:, None]
        vals = chart[off[split, left] + i] + chart[off[w - split, right] + i + split]
        x = _seg_lse(vals + logp[:, None], starts, axis=1)
        nts, x = _closed(c, "unit", w, lhs, x)
        chart[off[w, nts][None, :] + i] = x
    return chart


def _prefix(c: Compiled, tok: np.ndarray, chart: np.ndarray, lay: tuple) -> np.ndarray:
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
        split, left, right, logp, starts, lhs = pairs(c, "prefix", d, lens, ml)
        if len(split) == 0:
            continue
        i = np.arange(length - d)[:, None]
        vals = chart[off_in[split, left] + i] + q[off[d - split, right] + i + split]
        x = _seg_lse(vals + logp[:, None], starts, axis=1)
        nts, x = _closed(c, "lc", d, lhs, x)
        q[off[d, nts][None, :] + i] = x
    return q[off[:, 0]]


def _unique(
    strings: Sequence[Sequence[str]],
) -> tuple[list[tuple[str, ...]], list[int], np.ndarray]:
    """The distinct strings (in order of first appearance), the index of each one's first
    appearance and, per string, the position of its distinct string."""
    pos: dict[tuple[str, ...], int] = {}
    first: list[int] = []
    inv = np.empty(len(strings), dtype=np.intp)
    for i, s in enumerate(strings):
        key = tuple(s)
        j = pos.get(key)
        if j is None:
            j = pos[key] = len(first)
            first.append(i)
        inv[i] = j
    return list(pos), first, inv


def _batches(c: Compiled, strings: Sequence[Sequence[str]], prefix: bool, first: list[int]):
    """(length, indices, layout) of same-length strings, in chunks whose tables stay under about
    ``_CHART_BYTES``; a refusal names string ``first[i]`` (its index in the caller's list)."""
    by_len: dict[int, list[int]] = {}
    for i, s in enumerate(strings):
        by_len.setdefault(len(s), []).append(i)
    for length, ids in sorted(by_len.items()):  # every string checked before any work
        if length:
            _check_chart_size(c, length, first[ids[0]], prefix)
            _check_chart_terms(c, length, first[ids[0]], prefix)
    if by_len:
        lengths(c, max(by_len))  # one length table and pair list for all batches (cached)
    for length, ids in sorted(by_len.items()):
        if length == 0:
            yield length, ids, None
            continue
        lay = _layouts(c, length)
        lens, ml = lay[:2]
        peak = max(
            [
                (length - w + 1) * len(pairs(c, "inside", w, lens, ml)[0])
                for w in range(2, length + 1)
            ]
            + [length * c.k]
        )
        if prefix:
            npre = [len(pairs(c, "prefix", d, lens, ml)[0]) for d in range(1, length)]
            peak = max([peak] + [(length - d) * p for d, p in enumerate(npre, 1)])
        per = 8 * (lay[3] + (lay[5] if prefix else 0) + 4 * peak)
        step = max(1, _CHART_BYTES // per)
        for lo in range(0, len(ids), step):
            yield length, ids[lo : lo + step], lay


def _check_chart_size(c: Compiled, length: int, index: int, prefix: bool) -> None:
    """Raise :class:`GrammarlabError` naming string ``index`` when its chart-path tables (inside,
    plus the prefix table when ``prefix``) would exceed :data:`CHART_LIMIT_BYTES`. The cheap
    worst case (every nonterminal over every span) usually settles it; otherwise the tables'
    exact size, from the lengths each nonterminal derives, decides (affordable up to
    ``_CHART_LENGTH_CHECK`` tokens)."""
    tables = 2 if prefix else 1
    worst = 8 * tables * c.k * length * (length + 1) // 2
    if worst <= CHART_LIMIT_BYTES:
        return
    need = worst
    if length <= _CHART_LENGTH_CHECK:
        lay = _layouts(c, length)
        need = 8 * (lay[3] + (lay[5] if prefix else 0))
        if need <= CHART_LIMIT_BYTES:
            return
    raise GrammarlabError(
        f"string {index} (length {length}) needs {need / 2**30:,.1f} GiB of chart tables, over "
        f"the bound of {CHART_LIMIT_BYTES / 2**30:.0f} GiB",
        hint="score shorter strings (the tables grow with the square of the length)",
    )


def chart_terms(c: Compiled, length: int, prefix: bool) -> int:
    """The number of (span, split, rule) terms the chart path sums for one string of
    ``length`` tokens (inside, plus the prefix table when ``prefix``), from the lengths each
    nonterminal derives."""
    lay = _layouts(c, length)
    lens, ml = lay[:2]
    n = sum(
        (length - w + 1) * len(pairs(c, "inside", w, lens, ml)[0]) for w in range(2, length + 1)
    )
    if prefix:
        n += sum((length - d) * len(pairs(c, "prefix", d, lens, ml)[0]) for d in range(1, length))
    return n


def _check_chart_terms(c: Compiled, length: int, index: int, prefix: bool) -> None:
    """Raise :class:`GrammarlabError` naming string ``index`` when the chart path would sum
    more than :data:`MAX_CHART_TERMS` terms for it. Every binary rule at every (start, split,
    end) bounds the count from above; the exact count is taken only when that bound is over
    and listing the pairs is affordable (:data:`_PAIRS_CHECK`)."""
    n_bin = len(c.b_lhs)
    worst = (2 if prefix else 1) * n_bin * math.comb(length + 1, 3)
    if worst <= MAX_CHART_TERMS:
        return
    need, up_to = worst, "up to "
    if n_bin * (length + 1) ** 2 <= _PAIRS_CHECK:
        need, up_to = chart_terms(c, length, prefix), ""
        if need <= MAX_CHART_TERMS:
            return
    raise GrammarlabError(
        f"string {index} (length {length}) needs {up_to}{need:,} terms of the chart's sums, "
        f"over the bound of {MAX_CHART_TERMS:,} (about 10 s of work)",
        hint="score shorter strings (the work grows with the cube of the length)",
    )


CHART_CACHE_BYTES = 256 * 2**20
# The prefix charts kept between next-token queries (all grammars, one process), bounded by the
# bytes of the Python objects they hold (least recently used out; earley.ChartCache).
_CHARTS = earley.ChartCache(CHART_CACHE_BYTES)


def _chart(g: Grammar, prefix: tuple[str, ...]) -> earley.PrefixChart:
    """The Earley chart of ``prefix``, extended from the longest cached prefix of it, so that
    successive next-token queries along a string (or a test set) parse each token once."""
    return _CHARTS.chart(g, prefix)


def _use_earley(c: Compiled) -> bool:
    return len(c.b_lhs) >= EARLEY_MIN_RULES


def _regular(g: Grammar) -> Regular | None:
    return compile_regular(g) if _REGULAR_FAST_PATH else None


def _lse_rows(x: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        m = x.max(axis=1, initial=-np.inf)
        m = np.where(np.isfinite(m), m, 0.0)
        return np.log(np.exp(x - m[:, None]).sum(axis=1)) + m


def _forward(rc: Regular, tok: np.ndarray, ln: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward pass over token arrays ``tok`` (padded; lengths ``ln``, longest first):
    (``pre[s, j]`` = log P(string s starts with its first j tokens), log P(string s)), nats.
    ``alpha[s, B]`` = log of the expected number of times a derivation that has read the tokens
    so far is in state B (unit rules included; see :class:`Regular` for the prefix weights);
    only states reachable in that many steps are computed, and strings that have ended drop out
    of the batch."""
    n, lmax = tok.shape
    pre = np.full((n, lmax + 1), -np.inf)
    pre[:, 0] = 0.0
    fin = np.full(n, -np.inf)
    alpha = np.broadcast_to(rc.init, (n, rc.k + 1))
    reach = reachable_states(rc, lmax)
    active = np.searchsorted(-ln, -np.arange(lmax), side="left")  # strings longer than i
    for i, a in enumerate(active):
        t, cols = tok[:a, i, None], reach[i + 1]
        vals = alpha[np.arange(a)[:, None, None], rc.in_src[t, cols]] + rc.in_logp[t, cols]
        alpha = np.full((a, rc.k + 1), -np.inf)
        if vals.shape[2] == 1:
            alpha[:, cols] = vals[:, :, 0]
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                m = vals.max(axis=2)
                m = np.where(np.isfinite(m), m, 0.0)
                alpha[:, cols] = np.log(np.exp(vals - m[:, :, None]).sum(axis=2)) + m
        pre[:a, i + 1] = _lse_rows(alpha[:, cols] + rc.logz[cols])
        done = np.flatnonzero(ln[:a] == i + 1)
        fin[done] = alpha[done, rc.k]
    return pre, fin


def _forward_batches(rc: Regular, strings: Sequence[Sequence[str]]):
    """(indices, lengths, log prefix probabilities, log string probabilities) of
    :func:`_forward`, per batch of strings whose tables stay under about ``_CHART_BYTES``."""
    lens = np.array([len(s) for s in strings], dtype=np.int64)
    order = np.argsort(-lens, kind="stable")
    unk = len(rc.tid)
    per = 8 * ((4 * rc.in_src.shape[2] + 3) * (rc.k + 1) + int(lens.max(initial=0)) + 1)
    step = max(1, _CHART_BYTES // per)
    for lo in range(0, len(order), step):
        ids = order[lo : lo + step]
        ln = lens[ids]
        tok = np.full((len(ids), ln[0]), unk, dtype=np.int64)
        for r, i in enumerate(ids):
            tok[r, : ln[r]] = [rc.tid.get(t, unk) for t in strings[i]]
        yield (ids, ln, *_forward(rc, tok, ln))


def _bits(logp: np.ndarray) -> np.ndarray:
    """Surprisals in bits from log prefix probabilities (nats) along axis 0; ``inf`` once the
    prefix is impossible."""
    with np.errstate(invalid="ignore"):
        bits = (logp[:-1] - logp[1:]) / LN2
    bits[np.isneginf(logp[1:])] = np.inf
    return bits


def _split(g: Grammar, strings: Sequence[Sequence[str]]) -> tuple[EmptyFree, list[int], list]:
    """The empty-string split of ``g``, the indices of the non-empty ``strings`` and those
    strings."""
    ef = empty_free(g)
    ids = [i for i, s in enumerate(strings) if len(s)]
    return ef, ids, [strings[i] for i in ids]


def _refuse_text(strings: Sequence[Sequence[str]]) -> None:
    """A string of the grammar is a sequence of tokens: a plain Python str in its place would be
    read character by character (and silently score as impossible), so it is refused."""
    if isinstance(strings, str):
        strings = [strings]
    for s in strings:
        if isinstance(s, str):
            raise GrammarlabError(
                f"got the text {s[:60]!r} where a sequence of tokens was expected",
                hint=f"split it into tokens, e.g. {s[:40]!r}.split(), or read strings files "
                "with grammarlab.grammar.strings.read_strings",
            )


def string_logprobs(g: Grammar, strings: Sequence[Sequence[str]]) -> np.ndarray:
    """Natural log P(string) (nats), summed over all derivations; ``-inf`` when impossible.
    The empty string (``()``) has the probability that the start symbol derives it."""
    _refuse_text(strings)
    ef = empty_free(g)
    if ef.grammar is not g:
        ef, ids, rest = _split(g, strings)
        out = np.full(len(strings), ef.log_empty)
        out[ids] = -np.inf
        if ef.grammar is not None and ids:
            out[ids] = string_logprobs(ef.grammar, rest) + ef.log_rest
        return out
    out = np.full(len(strings), -np.inf)
    rc = _regular(g)
    if rc is not None:
        for ids, _, _, fin in _forward_batches(rc, strings):
            out[ids] = fin
        return out
    c = compile_cnf(g)
    if _use_earley(c):
        return np.array([x[-1] for x in earley.trie_logprobs(g, strings, prefixes=False)])
    uniq, first, inv = _unique(strings)  # each distinct string scored once
    res = np.full(len(uniq), -np.inf)
    for length, ids, lay in _batches(c, uniq, False, first):
        if length > 0:
            chart = _inside(c, _encode(c, [uniq[i] for i in ids]), lay)
            res[ids] = chart[lay[2][length, 0]]
    return res[inv]


def surprisal_bits(g: Grammar, strings: Sequence[Sequence[str]]) -> np.ndarray:
    """-log2 P(string) in bits per string; ``inf`` when impossible."""
    return -string_logprobs(g, strings) / LN2


def prefix_logprobs(g: Grammar, prefixes: Sequence[Sequence[str]]) -> np.ndarray:
    """Natural log of P(a string of the grammar starts with the prefix) (nats); 0 for the empty
    prefix, ``-inf`` when no string starts with it."""
    _refuse_text(prefixes)
    ef = empty_free(g)
    if ef.grammar is not g:
        ef, ids, rest = _split(g, prefixes)
        out = np.zeros(len(prefixes))
        out[ids] = -np.inf
        if ef.grammar is not None and ids:
            out[ids] = prefix_logprobs(ef.grammar, rest) + ef.log_rest
        return out
    out = np.zeros(len(prefixes))
    rc = _regular(g)
    if rc is not None:
        for ids, ln, pre, _ in _forward_batches(rc, prefixes):
            out[ids] = pre[np.arange(len(ids)), ln]
        return out
    c = compile_cnf(g)
    if _use_earley(c):
        return np.array([x[-2] for x in earley.trie_logprobs(g, prefixes)])
    uniq, first, inv = _unique(prefixes)
    res = np.zeros(len(uniq))
    for length, ids, lay in _batches(c, uniq, True, first):
        if length > 0:
            tok = _encode(c, [uniq[i] for i in ids])
            res[ids] = _prefix(c, tok, _inside(c, tok, lay), lay)[-1]
    return res[inv]


def next_token_logprobs(g: Grammar, prefix: Sequence[str]) -> tuple[tuple[str, ...], np.ndarray]:
    """Exact distribution of the symbol after ``prefix``: natural-log probabilities (nats) over
    ``g.terminals`` and, last, :data:`END` (the string stops here); they sum to 1 in probability.
    Raises :class:`GrammarlabError` when the prefix is impossible (no distribution exists)."""
    _refuse_text([prefix])
    prefix = tuple(prefix)
    ef = empty_free(g)
    if ef.grammar is not g:
        return _next_with_empty(g, ef, prefix)
    rc = _regular(g)
    if rc is None:
        # the chart's terminals are numbered like g.terminals (compile_cnf)
        nxt = _CHARTS.next_token_logprobs(g, prefix)
        if nxt is None:
            _impossible(g, prefix)
        return (*g.terminals, END), nxt
    base = prefix_logprobs(g, [prefix])[0]
    if not np.isfinite(base):
        _impossible(g, prefix)
    ext = prefix_logprobs(g, [(*prefix, t) for t in g.terminals])
    end = string_logprobs(g, [prefix])[0] if prefix else -np.inf
    return (*g.terminals, END), np.r_[ext, end] - base


def _impossible(g: Grammar, prefix: tuple[str, ...]) -> None:
    raise GrammarlabError(
        f"no string of the grammar starts with {' '.join(prefix)!r}",
        file=g.source,
        hint="the next-token distribution exists only after a possible prefix",
    )


def _next_with_empty(
    g: Grammar, ef: EmptyFree, prefix: tuple[str, ...]
) -> tuple[tuple[str, ...], np.ndarray]:
    """:func:`next_token_logprobs` of a grammar with empty alternatives, from its split: after a
    non-empty prefix the split grammar's distribution (the factor 1 - e cancels), after the empty
    prefix (1 - e) times the split grammar's first-token distribution and e for the end."""
    out = np.full(len(g.terminals) + 1, -np.inf)
    if ef.grammar is None:  # the empty string is the only one
        if prefix:
            _impossible(g, prefix)
        out[-1] = 0.0
        return (*g.terminals, END), out
    names, logp = next_token_logprobs(ef.grammar, prefix)
    if not prefix:
        logp = np.r_[logp[:-1] + ef.log_rest, ef.log_empty]
    where = {t: j for j, t in enumerate(g.terminals)}
    for t, x in zip(names[:-1], logp[:-1], strict=True):
        out[where[t]] = x
    out[-1] = logp[-1]
    return (*g.terminals, END), out


def token_surprisals_bits(g: Grammar, strings: Sequence[Sequence[str]]) -> list[np.ndarray]:
    """Per string, ``L + 1`` surprisals in bits: -log2 P(x_i | x_<i) for each token, then
    -log2 P(end | x). They sum to :func:`surprisal_bits`; ``inf`` from the first impossible
    token on. One forward pass (right-linear grammars), one Earley chart per trie node (large
    grammars) or one inside chart and one prefix table per batch serve every prefix. The empty
    string has one surprisal, that of its end: -log2 P(empty)."""
    _refuse_text(strings)
    ef = empty_free(g)
    if ef.grammar is not g:
        ef, ids, rest = _split(g, strings)
        out_e = [np.full(len(s) + 1, np.inf) for s in strings]
        for i, s in enumerate(strings):
            if not s:
                out_e[i][0] = -ef.log_empty / LN2
        if ef.grammar is not None and ids:
            for i, bits in zip(ids, token_surprisals_bits(ef.grammar, rest), strict=True):
                bits[0] -= ef.log_rest / LN2  # the first token also says: not the empty string
                out_e[i] = bits
        return out_e
    out: list[np.ndarray] = [np.full(1, np.inf) for _ in strings]
    rc = _regular(g)
    if rc is not None:
        for ids, ln, pre, fin in _forward_batches(rc, strings):
            for r, i in enumerate(ids):
                out[i] = _bits(np.r_[pre[r, : ln[r] + 1], fin[r]])
        return out
    c = compile_cnf(g)
    if _use_earley(c):
        return [_bits(x) for x in earley.trie_logprobs(g, strings)]
    uniq, first, inv = _unique(strings)
    res: list[np.ndarray] = [np.full(1, np.inf) for _ in uniq]
    for length, ids, lay in _batches(c, uniq, True, first):
        if length == 0:
            continue
        tok = _encode(c, [uniq[i] for i in ids])
        chart = _inside(c, tok, lay)
        pre = _prefix(c, tok, chart, lay)
        bits = _bits(np.vstack([np.zeros(len(ids)), pre, chart[lay[2][length, 0]][None, :]]))
        for col, i in enumerate(ids):
            res[i] = bits[:, col]
    return [res[j].copy() for j in inv]
