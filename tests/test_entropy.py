"""Tests for grammarlab.entropy (hand-derived values in comments)."""

from __future__ import annotations

import math

import pytest

from grammarlab.entropy import derivational_entropy_bits
from grammarlab.grammar import loads


def h2(q: float) -> float:
    return -q * math.log2(q) - (1 - q) * math.log2(1 - q)


@pytest.mark.parametrize("q", [0.1, 0.3, 0.5, 0.9])
def test_derivational_entropy_geometric(q: float) -> None:
    # S -> 'a' S [q] | 'b' [1-q]: S is expanded 1/(1-q) times on average, each choice h(q) bits.
    g = loads(f"S -> 'a' S [{q}] | 'b' [{1 - q}]")
    assert derivational_entropy_bits(g) == pytest.approx(h2(q) / (1 - q), rel=1e-12)


def test_derivational_entropy_finite_tree() -> None:
    # S -> A A [1]; A -> 'x' [0.5] | 'y' [0.25] | 'z' [0.25]: two expansions of A, each
    # 1.5 bits -> 3 bits; S itself is deterministic (0 bits).
    g = loads("S -> A A [1.0]\nA -> 'x' [0.5] | 'y' [0.25] | 'z' [0.25]")
    assert derivational_entropy_bits(g) == pytest.approx(3.0, rel=1e-12)
