"""Structural facts against hand-derived values, and long chains without recursion limits."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from grammarlab.grammar.load import loads
from grammarlab.grammar.parse import parse
from grammarlab.grammar.structure import (
    components,
    expected_expansions,
    productive,
    reachable,
    spectral_radius,
    termination_probabilities,
    unit_cycle,
    useful_cycle,
    useful_order,
)


def chain(n: int, letters: str = "ab", unit: bool = False) -> str:
    """S -> A1; A_i -> 'a' A_(i+1) | 'b' A_(i+1); A_n -> 'a' | 'b' (strings of exactly n
    letters), written top-down; with ``unit``, A_i -> A_(i+1) instead (one string, 'a')."""
    p = 1 / len(letters)
    lines = ["S -> A1 [1.0]"]
    for i in range(1, n):
        if unit:
            lines.append(f"A{i} -> A{i + 1} [1.0]")
        else:
            lines.append(f"A{i} -> " + " | ".join(f"'{c}' A{i + 1} [{p}]" for c in letters))
    last = "'a' [1.0]" if unit else " | ".join(f"'{c}' [{p}]" for c in letters)
    lines.append(f"A{n} -> {last}")
    return "\n".join(lines) + "\n"


def test_components_children_first() -> None:
    # S uses A and B; A and B use each other (one component); B uses C.
    g = loads(
        "S -> A 'x' [1.0]\nA -> B 'a' [0.5] | 'a' [0.5]\nB -> A 'b' [0.3] | C [0.7]\nC -> 'c' [1.0]"
    )
    names = [[g.nonterminals[i] for i in c] for c in components(g)]
    assert names == [["C"], ["A", "B"], ["S"]]


def test_spectral_radius_by_hand() -> None:
    # S -> S S [p]: M = [[2p]], radius 2p.
    assert spectral_radius(loads("S -> S S [0.3] | 'a' [0.7]\n")) == pytest.approx(0.6, abs=1e-15)
    # Two cyclic components: A (radius 0.5) and B (2 * 0.3 = 0.6); S itself has no cycle.
    g = loads("S -> A B [1.0]\nA -> 'a' A [0.5] | 'a' [0.5]\nB -> 'b' B B [0.3] | 'b' [0.7]\n")
    assert spectral_radius(g) == pytest.approx(0.6, abs=1e-15)
    # A 2-cycle A -> B -> A with probabilities 0.5 and 0.8: M = [[0, .5], [.8, 0]], radius
    # sqrt(0.4); restricted to {C}, which has no cycle, the radius is 0.
    g2 = loads(
        "S -> A [0.5] | C [0.5]\nA -> B [0.5] | 'a' [0.5]\nB -> A [0.8] | 'b' [0.2]\n"
        "C -> 'c' [1.0]\n"
    )
    assert spectral_radius(g2) == pytest.approx(math.sqrt(0.4), abs=1e-15)
    assert spectral_radius(g2, within={"C"}) == 0.0


def test_expected_expansions_by_hand() -> None:
    # S -> 'a' S [q]: S is expanded 1 / (1 - q) times on average.
    e = expected_expansions(loads("S -> 'a' S [0.25] | 'b' [0.75]\n"))
    assert e[0] == pytest.approx(4 / 3, rel=1e-15)
    # S -> A A, A -> 'a' A [0.5] | 'a': A is entered twice, each time expanded 2 times.
    e = expected_expansions(loads("S -> A A [1.0]\nA -> 'a' A [0.5] | 'a' [0.5]\n"))
    assert e.tolist() == pytest.approx([1.0, 4.0], rel=1e-15)
    # critical: infinite everywhere
    assert np.all(np.isinf(expected_expansions(loads("S -> S S [0.5] | 'a' [0.5]\n"))))


def test_termination_probabilities_by_hand() -> None:
    # S -> S S [p] | 'a' [1 - p] with p > 1/2: the least root of q = p q^2 + 1 - p is (1 - p)/p.
    g, _ = parse("S -> S S [0.75] | 'a' [0.25]\nT -> S [0.5] | 't' [0.5]\n")
    q = termination_probabilities(g)
    assert q[0] == pytest.approx(1 / 3, abs=1e-12)  # Newton's tolerance 1e-13
    assert q[1] == pytest.approx(0.5 * (1 / 3) + 0.5, abs=1e-12)  # one evaluation above S


def test_useful_order_and_cycles() -> None:
    g = loads("S -> A B [1.0]\nA -> B 'a' [1.0]\nB -> 'b' [1.0]\n")
    assert useful_order(g) == ["B", "A", "S"]
    assert not useful_cycle(g)
    assert useful_cycle(loads("S -> 'a' S [0.5] | 'b' [0.5]\n"))


def test_productive_worklist() -> None:
    g, _ = parse("S -> A [0.5] | 'x' [0.5]\nA -> B [1.0]\nB -> A 'b' [1.0]\nC -> S S [1.0]\n")
    assert productive(g) == {"S", "C"}  # A and B only derive each other
    assert productive(g, {"A"}) == {"S", "C", "A", "B"}


@pytest.mark.parametrize("unit", [False, True])
def test_ten_thousand_chain_without_recursion(unit: bool) -> None:
    # 10,000 nested nonterminals: far past Python's recursion limit (1,000 frames)
    n = 10_000
    assert n > sys.getrecursionlimit()
    g = loads(chain(n, unit=unit))  # validation included
    assert len(reachable(g)) == n + 1
    assert len(components(g)) == n + 1
    assert spectral_radius(g) == 0.0
    assert expected_expansions(g).tolist() == [1.0] * (n + 1)  # exact: no linear solve needed
    assert useful_order(g)[-1] == "S"
    assert termination_probabilities(g).tolist() == pytest.approx([1.0] * (n + 1), abs=1e-12)


def test_unit_cycle() -> None:
    assert unit_cycle(loads("S -> A [1.0]\nA -> B [0.5] | 'a' [0.5]\nB -> A [0.5] | 'b' [0.5]\n"))
    assert unit_cycle(loads("S -> S [0.5] | 'a' [0.5]\n"))  # a self-loop
    assert not unit_cycle(loads("S -> A 'x' [1.0]\nA -> S [0.5] | 'a' [0.5]\n"))  # not unit
    assert not unit_cycle(loads(chain(5_000, unit=True)))
