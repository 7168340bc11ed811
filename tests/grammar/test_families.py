"""The paper's grammar families: rules, probabilities, entropy in the header, errors."""

from __future__ import annotations

import math
import re

import pytest

from grammarlab.errors import GrammarlabError
from grammarlab.grammar.entropy import string_entropy_bits
from grammarlab.grammar.families import alphabet, hierarchical_grammar, random_grammar
from grammarlab.grammar.inside import surprisal_bits
from grammarlab.grammar.load import loads
from grammarlab.grammar.parse import Grammar, format_prob

# Appendix A.2 of the paper, written out by hand as (lhs, right side) in the paper's order.
PAPER_HIERARCHICAL = """
S -> A16
A16 -> A15 A14 A13 | A13 A15 A14
A13 -> A11 A12 | A12 A11
A14 -> A11 A10 A12 | A10 A11 A12
A15 -> A12 A11 A10 | A11 A12 A10
A10 -> A7 A9 A8 | A9 A8 A7
A11 -> A8 A7 A9 | A7 A8 A9
A12 -> A8 A9 A7 | A9 A7 A8
A7 -> 3 1 2 | 1 2 3
A8 -> 6 5 4 | 6 4 5
A9 -> 9 8 7 | 8 7 9
"""


def _h2(p: float) -> float:
    """Binary entropy in bits."""
    return -p * math.log2(p) - (1 - p) * math.log2(1 - p)


def _header_bits(g: Grammar) -> tuple[float, float]:
    m = re.search(r"Exact entropy: ([\d.]+) bits per string, ([\d.]+) bits per token", g.header)
    assert m, g.header
    return float(m.group(1)), float(m.group(2))


def _yield_lengths(g: Grammar, sym: str, memo: dict | None = None) -> set[int]:
    """Possible string lengths derived from ``sym`` (the grammar is acyclic)."""
    memo = {} if memo is None else memo
    if sym in memo:
        return memo[sym]
    out: set[int] = set()
    for r in g.by_lhs[sym]:
        parts = [
            _yield_lengths(g, s, memo) if not t else {1}
            for s, t in zip(r.rhs, r.terminal_mask, strict=True)
        ]
        total = {0}
        for p in parts:
            total = {a + b for a in total for b in p}
        out |= total
    memo[sym] = out
    return out


def test_hierarchical_rules_match_appendix():
    g = hierarchical_grammar(0.5)
    expected = []
    for line in PAPER_HIERARCHICAL.strip().splitlines():
        lhs, alts = line.split(" -> ")
        expected += [(lhs, tuple(a.split())) for a in alts.split(" | ")]
    assert [(r.lhs, r.rhs) for r in g.rules] == expected
    assert len(g.rules) == 21
    assert g.terminals and set(g.terminals) == {str(i) for i in range(1, 10)}
    assert all(
        t == s.isdigit() for r in g.rules for s, t in zip(r.rhs, r.terminal_mask, strict=True)
    )
    assert _yield_lengths(g, "S") == {72}


@pytest.mark.parametrize("p", [0.5, 0.75, 0.9, 0.3])
def test_hierarchical_probabilities_and_entropy(p):
    g = hierarchical_grammar(p)
    text = g.to_text()
    back = loads(text)
    for lhs, rules in back.by_lhs.items():
        if lhs == "S":
            assert [r.prob for r in rules] == [1.0]
            continue
        assert rules[0].prob == p
        assert abs(rules[0].prob + rules[1].prob - 1.0) < 1e-12
    # 36 binary choices per derivation (1 + 3 + 8 + 24), each with entropy h(p).
    per_string, per_token = _header_bits(g)
    assert per_string == pytest.approx(36 * _h2(p), abs=1e-8)
    assert per_token == pytest.approx(36 * _h2(p) / 72, abs=1e-8)
    assert f"grammarlab grammar new hierarchical -p {p}" in g.header


def test_hierarchical_complement_is_a_clean_decimal():
    assert "[0.1]" in hierarchical_grammar(0.9).to_text()
    assert "0.0999" not in hierarchical_grammar(0.9).to_text()


@pytest.mark.parametrize("p", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_hierarchical_rejects_bad_p(p):
    with pytest.raises(GrammarlabError, match="between 0 and 1"):
        hierarchical_grammar(p)


def test_random_uniform_structure():
    g = random_grammar(3, length=5)
    assert g.start == "S" and g.by_lhs["S"][0].rhs == ("A1",)
    assert len(g.rules) == 1 + 5 * 3
    assert g.terminals == ("a", "b", "c")
    assert [r.rhs for r in g.by_lhs["A2"]] == [("a", "A3"), ("b", "A3"), ("c", "A3")]
    assert [r.rhs for r in g.by_lhs["A5"]] == [("a",), ("b",), ("c",)]
    assert all(r.prob == 1 / 3 for r in g.rules[1:])
    assert _yield_lengths(g, "S") == {5}
    # Uniform over 3 letters at 5 positions: 5 log2 3 bits per string, log2 3 per token.
    per_string, per_token = _header_bits(g)
    assert per_string == pytest.approx(5 * math.log2(3), abs=1e-8)
    assert per_token == pytest.approx(math.log2(3), abs=1e-8)
    assert "grammarlab grammar new random --alphabet-size 3 --length 5 -o FILE" in g.header


def test_random_default_length_is_64():
    g = random_grammar(2)
    assert _yield_lengths(g, "S") == {64}
    assert _header_bits(g)[0] == pytest.approx(64.0, abs=1e-8)


def test_random_oversample_prob():
    g = random_grammar(4, length=3, oversample="b", oversample_prob=0.7)
    probs = {r.rhs[0]: r.prob for r in g.by_lhs["A2"]}
    assert probs == pytest.approx({"a": 0.1, "b": 0.7, "c": 0.1, "d": 0.1})
    # Per position: -0.7 log2 0.7 - 3 * 0.1 log2 0.1.
    h = -0.7 * math.log2(0.7) - 3 * 0.1 * math.log2(0.1)
    assert _header_bits(g)[0] == pytest.approx(3 * h, abs=1e-8)


@pytest.mark.parametrize(
    ("l_", "n", "target"), [(26, 64, 64.0), (26, 64, 64 * math.log2(7)), (3, 4, 0.5), (5, 7, 1e-3)]
)
def test_random_target_bits_survives_text(l_, n, target):
    g = random_grammar(l_, length=n, target_bits=target)
    back = loads(g.to_text())
    first = back.by_lhs["A1"]
    q, r = first[0].prob, first[1].prob
    assert first[0].rhs[0] == "a" and q > 1 / l_
    assert all(x.prob == r for x in first[1:])
    # Every position is an independent letter: n * (-q log2 q - (l-1) r log2 r) bits.
    bits = n * (-q * math.log2(q) - (l_ - 1) * r * math.log2(r))
    assert abs(bits - target) < 1e-6
    assert f"--oversample a --target-bits {format_prob(target)} -o FILE" in g.header


def test_random_target_at_maximum_is_uniform():
    g = random_grammar(4, length=2, target_bits=4.0)
    assert all(r.prob == 0.25 for r in g.rules[1:])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alphabet_size": 27, "symbols": "letters"}, "alphabet_size must be an integer 1..26"),
        ({"alphabet_size": 0}, "alphabet_size must be an integer 1..65536"),
        ({"alphabet_size": 65537}, "alphabet_size must be an integer 1..65536"),
        ({"alphabet_size": 3, "symbols": "digits"}, "symbols must be one of auto, letters"),
        ({"alphabet_size": 30, "oversample": "a", "oversample_prob": 0.5}, "not in the alphabet"),
        ({"alphabet_size": 2.0}, "alphabet_size must be an integer"),
        ({"alphabet_size": 3, "length": 0}, "length must be an integer >= 1"),
        ({"alphabet_size": 3, "oversample_prob": 1.0}, "strictly between 0 and 1"),
        ({"alphabet_size": 3, "oversample_prob": 0.0}, "strictly between 0 and 1"),
        ({"alphabet_size": 3, "oversample": "d", "oversample_prob": 0.5}, "not in the alphabet"),
        ({"alphabet_size": 3, "oversample": "a"}, "needs oversample_prob or target_bits"),
        ({"alphabet_size": 3, "oversample_prob": 0.5, "target_bits": 1.0}, "not both"),
        ({"alphabet_size": 1, "oversample_prob": 0.5}, "at least 2 letters"),
    ],
)
def test_random_errors(kwargs, message):
    with pytest.raises(GrammarlabError, match=re.escape(message)):
        random_grammar(**kwargs)


@pytest.mark.parametrize("target", [0.0, -1.0, 64 * math.log2(26) + 0.01, float("inf")])
def test_random_target_out_of_reach_names_range(target):
    with pytest.raises(GrammarlabError) as e:
        random_grammar(26, target_bits=target)
    text = str(e.value)
    assert "out of reach" in text
    assert f"(0, {64 * math.log2(26)!r}]" in text


def test_alphabet_names():
    assert alphabet(3) == ("a", "b", "c") == alphabet(3, "letters")
    assert alphabet(26)[-1] == "z"
    # beyond 26 symbols "auto" switches to indexed names, all of them distinct
    assert alphabet(27) == tuple(f"t{i}" for i in range(27))
    assert alphabet(3, "indexed") == ("t0", "t1", "t2")
    assert len(set(alphabet(2048))) == 2048 and alphabet(2048)[-1] == "t2047"


def test_random_grammar_of_2048_symbols_is_exact_through_the_engine():
    # Morris et al.'s vocabulary; length 3 keeps it small (6,145 rules) without changing what is
    # checked: every position is an independent uniform choice of one of 2048 symbols.
    g = random_grammar(2048, length=3)
    back = loads(g.to_text())  # what ships is the text
    assert back.terminals == alphabet(2048)
    assert len(back.rules) == 1 + 3 * 2048
    exact = 3 * math.log2(2048)  # 33 bits per string
    assert _header_bits(g) == pytest.approx((exact, exact / 3), abs=1e-8)
    # the engine's entropy (derivational = string entropy: one derivation per string) and the
    # inside algorithm's surprisal of single strings, in float64: 1e-9 bits is far above rounding
    assert string_entropy_bits(back) == pytest.approx(exact, abs=1e-9)
    bits = surprisal_bits(back, [("t0", "t2047", "t5"), ("t7", "t7", "t1000")])
    assert bits == pytest.approx([exact, exact], abs=1e-9)
    assert "--alphabet-size 2048 --length 3 -o FILE" in g.header
    assert "3 symbols over the alphabet t0..t2047" in " ".join(g.header.split())


def test_random_oversample_indexed_defaults_to_first_symbol():
    g = random_grammar(40, length=2, oversample_prob=0.5)
    probs = {r.rhs[0]: r.prob for r in g.by_lhs["A1"]}
    assert probs["t0"] == 0.5 and probs["t39"] == pytest.approx(0.5 / 39, rel=1e-15)


def test_random_indexed_small_alphabet_says_so_in_its_command():
    g = random_grammar(3, length=2, symbols="indexed")
    assert g.terminals == ("t0", "t1", "t2")
    assert "--alphabet-size 3 --length 2 --symbols indexed -o FILE" in g.header
