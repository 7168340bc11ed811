"""Grammars written out by hand for the engine tests (shared by test_inside, test_entropy,
test_sample and test_language): one copy of each, independent of grammarlab.grammar.families."""

from __future__ import annotations

from grammarlab.grammar.load import loads
from grammarlab.grammar.parse import Grammar, Rule

# Nine strings, eleven derivations: "a a c" (A B with B -> 'a' 'c', or C -> 'a' 'a' 'c') and
# "x a" ('x' A, or C -> 'x' 'a') have two each.
SMALL = """
S -> A B [0.4] | 'x' A [0.3] | C [0.3]
A -> 'a' [0.5] | 'b' [0.5]
B -> 'c' [0.6] | 'a' 'c' [0.3] | 'd' [0.1]
C -> 'a' 'a' 'c' [0.5] | 'x' 'a' [0.2] | 'y' [0.3]
"""

# Ambiguous, finite, with unit rules, long right sides and terminals mixed with nonterminals.
MIXED = """
S -> A B [0.4] | 'a' C 'b' [0.3] | D [0.2] | A 'b' B 'a' [0.1]
A -> 'a' [0.5] | 'a' 'b' [0.5]
B -> 'b' [0.6] | 'b' 'b' [0.4]
C -> 'b' [0.5] | A [0.5]
D -> A 'b' 'b' [0.7] | C [0.3]
"""

# The hierarchical grammar of Appendix A.2 of "Rethinking memorization in LLMs: on learning by rote
# vs. with understanding": first rule p, second q = 1 - p (fill in with .format(p=..., q=...)).
HIERARCHICAL = """
S -> A16 [1.0]
A16 -> A15 A14 A13 [{p}] | A13 A15 A14 [{q}]
A13 -> A11 A12 [{p}] | A12 A11 [{q}]
A14 -> A11 A10 A12 [{p}] | A10 A11 A12 [{q}]
A15 -> A12 A11 A10 [{p}] | A11 A12 A10 [{q}]
A10 -> A7 A9 A8 [{p}] | A9 A8 A7 [{q}]
A11 -> A8 A7 A9 [{p}] | A7 A8 A9 [{q}]
A12 -> A8 A9 A7 [{p}] | A9 A7 A8 [{q}]
A7 -> '3' '1' '2' [{p}] | '1' '2' '3' [{q}]
A8 -> '6' '5' '4' [{p}] | '6' '4' '5' [{q}]
A9 -> '9' '8' '7' [{p}] | '8' '7' '9' [{q}]
"""


def hierarchical_text(p: float) -> str:
    return HIERARCHICAL.format(p=p, q=1 - p)


def hierarchical(p: float) -> Grammar:
    return loads(hierarchical_text(p))


def chain(letters: int, length: int) -> Grammar:
    """The paper's uniform random grammar: S -> A1, Ai -> t A(i+1) for every letter t."""
    rules = [Rule("S", ("A1",), 1.0)]
    for i in range(1, length + 1):
        for t in "abcdefghijklmnopqrstuvwxyz"[:letters]:
            rhs, mask = ((t, f"A{i + 1}"), (True, False)) if i < length else ((t,), (True,))
            rules.append(Rule(f"A{i}", rhs, 1.0 / letters, 0, mask))
    return Grammar(tuple(rules))
