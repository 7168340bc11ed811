"""Finite languages: derivation counts and enumerations against hand-derived values, infinite
grammars, and the distinct-strings check used by ``sample(..., unique=True)``."""

from __future__ import annotations

import pytest
from hand_grammars import SMALL

import grammarlab.grammar.language as language_mod
from grammarlab.errors import GrammarlabError
from grammarlab.grammar.families import hierarchical_grammar
from grammarlab.grammar.language import check_distinct, count_derivations, language
from grammarlab.grammar.load import loads

SMALL_LANG = {
    tuple(s.split()) for s in ("a c", "a a c", "a d", "b c", "b a c", "b d", "x a", "x b", "y")
}
# Three positions over {a, b}: 8 derivations, 8 strings.
BINARY3 = (
    "S -> 'a' A [0.5] | 'b' A [0.5]\nA -> 'a' B [0.5] | 'b' B [0.5]\nB -> 'a' [0.5] | 'b' [0.5]"
)
RECURSIVE = "S -> 'a' S [0.5] | 'b' [0.5]\n"


def test_counts_by_hand() -> None:
    # S: A B gives 2 * 3 = 6, 'x' A gives 2, C gives 3 -> 11
    assert count_derivations(loads(SMALL)) == 11
    assert count_derivations(loads(BINARY3)) == 8  # 2 * 2 * 2
    # A16 (2 rules) -> three of A13-A15 (2 each) -> 8 of A10-A12 (2 each) -> 24 of A7-A9
    # (2 each): 1 + 3 + 8 + 24 = 36 binary choices
    assert count_derivations(hierarchical_grammar(0.5)) == 2**36


def test_language_by_hand() -> None:
    assert language(loads(SMALL)) == SMALL_LANG
    assert language(loads(BINARY3)) == {(x, y, z) for x in "ab" for y in "ab" for z in "ab"}
    # a shared nonterminal is enumerated once and reused: S -> A A over A in {p, q r}
    shared = loads("S -> A A [1]\nA -> 'p' [0.5] | 'q' 'r' [0.5]\n")
    assert language(shared) == {
        ("p", "p"),
        ("p", "q", "r"),
        ("q", "r", "p"),
        ("q", "r", "q", "r"),
    }
    assert count_derivations(shared) == 4


def test_infinite() -> None:
    g = loads(RECURSIVE)
    assert count_derivations(g) is None
    with pytest.raises(GrammarlabError, match="infinite"):
        language(g)
    check_distinct(g, 10**9)  # no bound on an infinite language


def test_check_distinct_enumerates() -> None:
    g = loads(SMALL)
    check_distinct(g, 9)
    with pytest.raises(GrammarlabError, match="only 9 distinct strings") as e:
        check_distinct(g, 10)
    assert "ask for at most 9" in str(e.value)
    excl = frozenset({("a", "c"), ("y",), ("x", "b"), ("not", "in", "language")})
    check_distinct(g, 6, excl)
    with pytest.raises(GrammarlabError, match="3 of them excluded"):
        check_distinct(g, 7, excl)


def test_check_distinct_by_count(monkeypatch: pytest.MonkeyPatch) -> None:
    # without enumeration the number of derivations is the bound (8 here)
    g = loads(BINARY3)
    monkeypatch.setattr(language_mod, "ENUMERATE_LIMIT", 4)
    check_distinct(g, 8)
    with pytest.raises(GrammarlabError, match="at most 8"):
        check_distinct(g, 9)
    # an ambiguous grammar's count is only a bound: 11 derivations, 9 strings, 10 passes
    monkeypatch.setattr(language_mod, "ENUMERATE_LIMIT", 5)
    check_distinct(loads(SMALL), 10)
