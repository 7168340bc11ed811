"""Brute-force enumeration of a grammar's strings, the reference the exact algorithms are tested
against (shared by test_inside.py, test_entropy.py and test_empty_rules.py)."""

from __future__ import annotations

from collections import defaultdict

from grammarlab.grammar.parse import Grammar
from grammarlab.grammar.structure import nullable


def enumerate_strings(g: Grammar, max_len: int, min_prob: float = 0.0) -> dict:
    """P(string) summed over derivations, for every string of at most ``max_len`` tokens, by
    expanding the leftmost nonterminal of every sentential form. A form is dropped once its
    terminals plus its non-nullable nonterminals (each yields at least one token) exceed
    ``max_len``, so without empty alternatives (or with them, when no nonterminal derives itself
    without producing a token) the enumeration is exhaustive and exact; branches below
    ``min_prob`` are cut (needed to stop unit cycles and cycles through nullable symbols)."""
    null = nullable(g)
    out: dict[tuple, float] = defaultdict(float)
    todo = [((g.start,), (False,), 1.0)]
    while todo:
        form, mask, p = todo.pop()
        least = sum(1 for s, t in zip(form, mask, strict=True) if t or s not in null)
        if least > max_len or p < min_prob:
            continue
        if all(mask):
            out[form] += p
            continue
        j = mask.index(False)
        for r in g.by_lhs[form[j]]:
            todo.append(
                (
                    form[:j] + r.rhs + form[j + 1 :],
                    mask[:j] + r.terminal_mask + mask[j + 1 :],
                    p * r.prob,
                )
            )
    return dict(out)


def inside_fixed_point(g: Grammar, string: tuple[str, ...], max_iter: int = 100_000) -> float:
    """P(string) from the inside equations of the grammar itself, empty alternatives included
    (an independent reference for the elimination of cnf.empty_free): beta[A, i, j] = P(A =>*
    tokens i..j-1), over every span, empty ones too, as the least fixed point of
    beta[A, i, j] = sum_rules sum over the splits of i..j among the right side's symbols of the
    product of their betas. Iterated from 0 (monotone) until no value changes in float64."""
    n = len(string)
    spans = [(i, j) for i in range(n + 1) for j in range(i, n + 1)]
    beta = {(a, i, j): 0.0 for a in g.nonterminals for i, j in spans}

    def rule_value(r, i: int, j: int) -> float:
        # ways[t] = probability that the symbols read so far yield tokens i..t-1
        ways = {i: 1.0}
        for s, is_t in zip(r.rhs, r.terminal_mask, strict=True):
            nxt: dict[int, float] = defaultdict(float)
            for t, w in ways.items():
                if is_t:
                    if t < j and string[t] == s:
                        nxt[t + 1] += w
                else:
                    for u in range(t, j + 1):
                        b = beta[(s, t, u)]
                        if b:
                            nxt[u] += w * b
            ways = nxt
        return r.prob * ways.get(j, 0.0)

    for _ in range(max_iter):
        new = {
            (a, i, j): sum(rule_value(r, i, j) for r in g.by_lhs[a])
            for a in g.nonterminals
            for i, j in spans
        }
        if new == beta:
            break
        beta = new
    return beta[(g.start, 0, n)]
