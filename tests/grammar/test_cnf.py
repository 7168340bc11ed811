"""The compiled forms of a grammar against hand-derived values: right sides binarized from the
right (a shared suffix gets one intermediate), terminals inside long right sides become
preterminals, unit rules closed with (I - U)^-1, the automaton of a right-linear grammar."""

from __future__ import annotations

import math

import numpy as np

from grammarlab.grammar.cnf import compile_cnf, compile_regular
from grammarlab.grammar.load import loads

# Tolerance: probabilities are exp(log p) of a few float64 operations, ~1e-16 relative.
TOL = 1e-12


def _binary(c) -> set[tuple[int, int, int, float]]:
    return {(int(a), int(b), int(d), round(math.exp(p), 12))
            for a, b, d, p in zip(c.b_lhs, c.b_left, c.b_right, c.b_logp, strict=True)}  # fmt: skip


def test_a_shared_suffix_gets_one_intermediate():
    c = compile_cnf(loads("S -> 'a' 'b' 'c' [0.5] | 'd' 'b' 'c' [0.5]\n"))
    # S, 4 preterminals, 1 intermediate X -> T_b T_c shared by both rules
    assert c.k == 6 and set(c.tid) == {"a", "b", "c", "d"}
    rules = _binary(c)
    assert len(rules) == 3
    (x,) = {a for a, _, _, p in rules if a != 0}  # the intermediate, probability 1
    assert {(a, p) for a, *_, p in rules} == {(0, 0.5), (x, 1.0)}
    assert {d for a, _, d, _ in rules if a == 0} == {x}  # both S rules end in X
    # every preterminal rewrites to its terminal with probability 1; the unknown row is -inf
    lex = np.exp(c.lex)
    assert np.allclose(lex[:-1].sum(0), 1.0, atol=TOL) and not lex[-1].any()


def test_a_lexical_rule_stays_on_its_nonterminal():
    c = compile_cnf(loads("S -> 'a' 'b' 'c' [0.5] | 'd' [0.5]\n"))
    assert c.k == 5  # S, 3 preterminals (a, b, c), 1 intermediate
    col = list(c.lex_nts).index(0)
    assert abs(math.exp(c.lex[c.tid["d"], col]) - 0.5) < TOL  # S -> 'd' itself


def test_unit_cycle_closed_by_hand():
    # U = [[0, 1/2], [1/2, 0]] -> (I - U)^-1 = (4/3) [[1, 1/2], [1/2, 1]]
    c = compile_cnf(loads("S -> A [0.5] | 'a' [0.5]\nA -> S [0.5] | 'b' [0.5]\n"))
    assert list(c.u_rows) == [0, 1]
    assert np.allclose(c.u_mat, [[4 / 3, 2 / 3], [2 / 3, 4 / 3]], atol=TOL)


def test_the_automaton_of_a_right_linear_grammar():
    rc = compile_regular(loads("S -> 'a' S [0.3] | 'b' [0.7]\n"))
    assert rc is not None and rc.k == 1  # one state (S) and the final state 1
    a, b = rc.tid["a"], rc.tid["b"]
    assert abs(math.exp(rc.in_logp[a, 0, 0]) - 0.3) < TOL  # S --a--> S
    assert abs(math.exp(rc.in_logp[b, 1, 0]) - 0.7) < TOL  # S --b--> end
    assert compile_regular(loads("S -> A A [1.0]\nA -> 'a' [1.0]\n")) is None  # not right-linear
