"""Brute-force enumeration of a grammar's strings, the reference the exact algorithms are tested
against (shared by test_inside.py and test_entropy.py)."""

from __future__ import annotations

from collections import defaultdict

from grammarlab.grammar.parse import Grammar


def enumerate_strings(g: Grammar, max_len: int, min_prob: float = 0.0) -> dict:
    """P(string) summed over derivations, by expanding the leftmost nonterminal of every
    sentential form. Each symbol yields at least one token, so forms longer than ``max_len`` are
    dropped; branches below ``min_prob`` are cut (needed to stop unit cycles)."""
    out: dict[tuple, float] = defaultdict(float)
    todo = [((g.start,), (False,), 1.0)]
    while todo:
        form, mask, p = todo.pop()
        if len(form) > max_len or p < min_prob:
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
