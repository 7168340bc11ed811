"""A grammar compiled to arrays for sampling, and the one rule-drawing step both paths share.

Symbols become integers, rules are grouped by left side, each left side gets Walker's alias
table, and right sides are concatenated into one flat table. :func:`choose` draws one rule per
nonterminal from one uniform each. The limits (batch size, tree nodes, depth) and the runaway
error live here because both sampling paths use them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from grammarlab.errors import GrammarlabError
from grammarlab.grammar.parse import Grammar
from grammarlab.grammar.structure import expected_expansions

if TYPE_CHECKING:
    from grammarlab.grammar.sample_fast import FixedTables

BATCH = 65_536  # most samples derived together (results depend on it, so it is fixed)
MAX_NODES = 20_000_000  # tree nodes kept per batch by the general path before giving up
MAX_DEPTH = 100_000  # tree levels before giving up


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
    fixed: FixedTables | None = (
        None  # the fast path's tables, when every string has the same length
    )
    batch: int = BATCH  # samples per batch: BATCH, or fewer when expected trees are large


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


def compile_tables(g: Grammar) -> tuple[Tables, list[list[int]], list[int]]:
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


def batch_size(g: Grammar, rule_p: np.ndarray, rhs_len: np.ndarray, lhs: list[int]) -> int:
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


def choose(t: Tables, first: np.ndarray, rng: np.random.Generator, lv: Level) -> np.ndarray:
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


def runaway(g: Grammar, n: int, nodes: int, depth: int) -> None:
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
