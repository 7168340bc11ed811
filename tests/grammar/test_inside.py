"""Tests for grammarlab.grammar.inside against brute-force enumeration and hand-derived values."""

from __future__ import annotations

import math

import brute
import numpy as np
import pytest
from hand_grammars import MIXED, chain, hierarchical

from grammarlab.grammar import inside
from grammarlab.grammar.cnf import compile_regular
from grammarlab.grammar.inside import (
    END,
    next_token_logprobs,
    prefix_logprobs,
    string_logprobs,
    surprisal_bits,
    token_surprisals_bits,
)
from grammarlab.grammar.load import loads
from grammarlab.grammar.parse import Grammar
from grammarlab.grammar.sample import sample

GEOMETRIC = "S -> 'a' S [0.3] | 'b' [0.7]"
UNIT_CYCLE = "S -> A A [1.0]\nA -> B [0.5] | 'a' [0.5]\nB -> A [0.5] | 'b' [0.5]"


def enumerate_strings(g: Grammar, max_len: int, min_prob: float = 1e-16) -> dict:
    """Brute force (tests/brute.py), unit cycles cut below ``min_prob``."""
    return brute.enumerate_strings(g, max_len, min_prob)


def test_mixed_grammar_matches_enumeration() -> None:
    g = loads(MIXED)
    lang = enumerate_strings(g, 10)
    assert sum(lang.values()) == pytest.approx(1.0, abs=1e-12)  # finite: all mass enumerated
    strings = sorted(lang)
    got = string_logprobs(g, strings)
    np.testing.assert_allclose(got, np.log([lang[s] for s in strings]), rtol=1e-12)


def test_ambiguous_by_hand() -> None:
    # 'a b b' from MIXED: S->A B with (a)(b b) .4*.5*.4 and (a b)(b) .4*.5*.6; S->'a' C 'b' with
    # C->'b' .3*.5; S->D->A 'b' 'b' with A->'a' .2*.7*.5; S->D->C->A->... no (length 1/2).
    # Total .08 + .12 + .15 + .07 = .42
    g = loads(MIXED)
    assert string_logprobs(g, [("a", "b", "b")])[0] == pytest.approx(math.log(0.42), rel=1e-12)


@pytest.mark.parametrize("n", [0, 1, 5, 30])
def test_geometric_closed_form(n: int) -> None:
    # a^n b has exactly one derivation: 0.3^n * 0.7
    g = loads(GEOMETRIC)
    s = ("a",) * n + ("b",)
    assert string_logprobs(g, [s])[0] == pytest.approx(n * math.log(0.3) + math.log(0.7))
    # P(prefix a^n) = 0.3^n; P(prefix a^n b) = P(a^n b)
    pre = prefix_logprobs(g, [("a",) * n, s])
    np.testing.assert_allclose(pre, [n * math.log(0.3), n * math.log(0.3) + math.log(0.7)])


def test_unit_cycle_by_hand() -> None:
    # From A: P(a) = 0.5 + 0.5*0.5*P(a) -> 2/3, P(b) = 0.25 + 0.25 P(b) -> 1/3 (cycle A->B->A).
    g = loads(UNIT_CYCLE)
    got = np.exp(string_logprobs(g, [("a", "a"), ("a", "b"), ("b", "b"), ("a",), ("a",) * 3]))
    np.testing.assert_allclose(got, [4 / 9, 2 / 9, 1 / 9, 0, 0], atol=1e-15, rtol=1e-12)
    np.testing.assert_allclose(np.exp(prefix_logprobs(g, [("a",), ("b",)])), [2 / 3, 1 / 3])
    lang = enumerate_strings(g, 2, min_prob=1e-18)
    assert lang[("a", "b")] == pytest.approx(2 / 9, rel=1e-12)


def test_impossible_strings_are_infinite() -> None:
    g = loads(MIXED)
    bits = surprisal_bits(g, [("b", "b"), ("a", "z"), (), ("a",) * 11])
    assert np.exp(-bits[0]) == 0.0 and ("b", "b") not in enumerate_strings(g, 10)
    assert np.all(np.isinf(bits)) and np.all(bits > 0)
    assert prefix_logprobs(g, [("z",)])[0] == -np.inf
    assert prefix_logprobs(g, [()])[0] == 0.0


def test_prefixes_match_enumeration() -> None:
    g = loads(MIXED)
    lang = enumerate_strings(g, 10)
    prefixes = sorted({s[:k] for s in lang for k in range(1, len(s) + 1)})
    want = [sum(p for s, p in lang.items() if s[: len(x)] == x) for x in prefixes]
    np.testing.assert_allclose(np.exp(prefix_logprobs(g, prefixes)), want, rtol=1e-12)


@pytest.mark.parametrize("prefix", [(), ("a",), ("a", "b"), ("a", "b", "b")])
def test_next_token_distribution(prefix: tuple) -> None:
    g = loads(MIXED)
    lang = enumerate_strings(g, 10)
    symbols, logp = next_token_logprobs(g, prefix)
    assert symbols[-1] == END and symbols[:-1] == g.terminals
    assert np.exp(logp).sum() == pytest.approx(1.0, abs=1e-12)
    n = len(prefix)
    total = sum(p for s, p in lang.items() if s[:n] == prefix)
    want = [sum(p for s, p in lang.items() if s[: n + 1] == (*prefix, t)) for t in g.terminals]
    want.append(lang.get(prefix, 0.0))
    np.testing.assert_allclose(np.exp(logp), np.array(want) / total, atol=1e-14, rtol=1e-12)


def test_token_surprisals_sum_to_string_surprisal() -> None:
    g = loads(MIXED)
    strings = [("a", "b", "b"), ("a", "b", "b", "a"), ("a", "a", "b", "b", "a"), ("b", "a")]
    per_token = token_surprisals_bits(g, strings)
    whole = surprisal_bits(g, strings)
    for s, t, w in zip(strings, per_token, whole, strict=True):
        assert t.shape == (len(s) + 1,)
        assert t.sum() == pytest.approx(w, rel=1e-12) if np.isfinite(w) else np.isinf(t).any()
    # geometric: each 'a' costs -log2 0.3, 'b' -log2 0.7 and the end is certain after 'b'
    t = token_surprisals_bits(loads(GEOMETRIC), [("a", "a", "b")])[0]
    np.testing.assert_allclose(t, [-math.log2(0.3)] * 2 + [-math.log2(0.7), 0.0], atol=1e-12)


def test_long_string_does_not_underflow() -> None:
    g = chain(26, 400)
    bits = surprisal_bits(g, [("a",) * 400, ("z",) * 400, ("a",) * 399])
    assert bits[0] == pytest.approx(400 * math.log2(26), rel=1e-12)
    assert bits[1] == pytest.approx(400 * math.log2(26), rel=1e-12)
    assert np.isinf(bits[2])


def test_chain_token_surprisals_uniform() -> None:
    # every letter costs log2 26 bits; after 64 letters the end is certain
    t = token_surprisals_bits(chain(26, 64), [tuple("abcdefgh" * 8)])[0]
    np.testing.assert_allclose(t, [math.log2(26)] * 64 + [0.0], atol=1e-10)


@pytest.mark.parametrize("p", [0.5, 0.75])
def test_hierarchical_strings(p: float) -> None:
    # 36 binary choices per derivation: 1 (A16) + 3 (A13..A15) + 8 (A10..A12: 2 + 3 + 3 children)
    # + 24 (A7..A9: 8 nodes x 3 children). Unambiguous, so with p = 0.5 each string has 36 bits;
    # with p = 0.75, a string with k first-rule choices has -(k log2 p + (36-k) log2(1-p)) bits.
    g = hierarchical(p)
    strings = sample(g, 40, np.random.default_rng(1))
    bits = surprisal_bits(g, strings)
    if p == 0.5:
        np.testing.assert_allclose(bits, 36.0, rtol=1e-12)
    else:
        k = (bits + 36 * math.log2(1 - p)) / (math.log2(1 - p) - math.log2(p))
        np.testing.assert_allclose(k, np.round(k), atol=1e-8)
        assert np.all((k >= 0) & (k <= 36))
    per_token = token_surprisals_bits(g, strings[:5])
    np.testing.assert_allclose([t.sum() for t in per_token], bits[:5], rtol=1e-12)
    assert all(t[-1] == pytest.approx(0.0, abs=1e-12) for t in per_token)  # length is fixed
    broken = list(strings[0])
    broken[0], broken[1] = broken[1], broken[0]
    assert np.isinf(surprisal_bits(g, [tuple(broken)])[0]) or broken == list(strings[0])


# --- the right-linear fast path (forward pass) against the general chart path -------------------

# Recursive, variable length, unit rules (a cycle S -> T -> S), several terminals before the
# nonterminal, terminal-only right sides of length 2 and a suffix ('b' T) shared by two rules.
REGULAR = """
S -> 'a' S [0.3] | 'b' 'c' T [0.2] | T [0.2] | 'a' 'b' [0.3]
T -> 'c' 'b' S [0.25] | S [0.25] | 'c' [0.3] | 'a' 'b' T [0.1] | 'c' 'b' T [0.1]
"""
# Two branches whose masses differ by far more than the float range before a token only the
# weak one can read: a scaled (not log-space) forward pass would lose it.
TWO_RATES = "S -> A [0.5] | B [0.5]\nA -> 'a' A [0.99] | 'c' [0.01]\nB -> 'a' B [0.01] | 'b' [0.99]"


@pytest.fixture
def general(monkeypatch: pytest.MonkeyPatch):
    """Call a function of grammarlab.grammar.inside with the right-linear fast path switched off."""

    def call(fn, *args):
        with monkeypatch.context() as m:
            m.setattr(inside, "_REGULAR_FAST_PATH", False)
            return fn(*args)

    return call


def right_linear_cases() -> list[tuple[Grammar, list[tuple[str, ...]]]]:
    cases = []
    # (TWO_RATES has strings of ~100 tokens, too long for the general prefix tables here)
    for g in [loads(REGULAR), loads(GEOMETRIC), chain(3, 6)]:
        assert compile_regular(g) is not None  # the fast path applies
        strings = [s for s in sample(g, 60, np.random.default_rng(3)) if len(s) <= 12]
        strings = list(dict.fromkeys(strings))
        bad = [s[:-1] + ("z",) for s in strings[:3]] + [s + s for s in strings[:3]]
        strings += bad + [("c", "a", "b"), ("b",), ("a",) * 9, ()]
        cases.append((g, strings))
    return cases


def test_fast_path_applies_only_to_right_linear() -> None:
    assert compile_regular(loads(MIXED)) is None  # A B, 'a' C 'b', ...
    assert compile_regular(loads(UNIT_CYCLE)) is None  # S -> A A
    assert compile_regular(hierarchical(0.5)) is None


def test_fast_path_equals_general_path(general) -> None:
    for g, strings in right_linear_cases():
        fast, slow = string_logprobs(g, strings), general(string_logprobs, g, strings)
        assert np.isneginf(fast).any() and np.isfinite(fast).sum() >= 5
        np.testing.assert_array_equal(np.isneginf(fast), np.isneginf(slow))
        np.testing.assert_allclose(fast[np.isfinite(slow)], slow[np.isfinite(slow)], atol=1e-9)
        prefixes = sorted({s[:k] for s in strings for k in range(len(s) + 1)})
        fast, slow = prefix_logprobs(g, prefixes), general(prefix_logprobs, g, prefixes)
        np.testing.assert_array_equal(np.isneginf(fast), np.isneginf(slow))
        np.testing.assert_allclose(fast[np.isfinite(slow)], slow[np.isfinite(slow)], atol=1e-9)
        fast_t, slow_t = (
            token_surprisals_bits(g, strings),
            general(token_surprisals_bits, g, strings),
        )
        for s, f, w in zip(strings, fast_t, slow_t, strict=True):
            assert f.shape == (len(s) + 1,)
            np.testing.assert_allclose(f, w, atol=1e-9)
        for p in prefixes[:: max(1, len(prefixes) // 8)]:
            if np.isfinite(prefix_logprobs(g, [p])[0]):
                sym, lp = next_token_logprobs(g, p)
                assert np.exp(lp).sum() == pytest.approx(1.0, abs=1e-12)
                np.testing.assert_allclose(lp, general(next_token_logprobs, g, p)[1], atol=1e-9)


def test_fast_path_unit_rules_by_hand() -> None:
    # REGULAR after 'b c': in T (0.2). T reads a token itself with P 0.75, or goes T -> S (0.25);
    # S reads with P 0.8 or goes S -> T (0.2). Per visit of T: next 'c' ends (0.3) or reads 'c' 'b'
    # (0.25 + 0.1); 'a' from T: 0.1; from S: 'a' 0.3 + 0.3. Visits: T 1/(1 - 0.25*0.2) = 1/0.95,
    # S 0.25/0.95. So P(next = 'a') = (0.1 + 0.25*0.6)/0.95, 'c' = 0.65/0.95, 'b' = 0.25*0.2/0.95.
    g = loads(REGULAR)
    sym, lp = next_token_logprobs(g, ("b", "c"))
    want = {"a": 0.25 / 0.95, "b": 0.05 / 0.95, "c": 0.65 / 0.95, END: 0.0}
    np.testing.assert_allclose(np.exp(lp), [want[s] for s in sym], rtol=1e-12)


def test_fast_path_log_space_two_rates(general) -> None:
    # a^200 b only through B: 0.5 * 0.01^200 * 0.99 (about 1e-400, far below the float range)
    g = loads(TWO_RATES)
    s = ("a",) * 200 + ("b",)
    want = math.log(0.5) + 200 * math.log(0.01) + math.log(0.99)
    assert string_logprobs(g, [s])[0] == pytest.approx(want, rel=1e-12)
    assert general(string_logprobs, g, [s])[0] == pytest.approx(want, rel=1e-12)
    t = token_surprisals_bits(g, [s])[0]
    assert t[-2] > 1000 and t.sum() == pytest.approx(-want / math.log(2), rel=1e-12)


def test_fast_path_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    # tiny memory budget: one string per batch, same answers, in the caller's order
    g = loads(REGULAR)
    strings = sample(g, 30, np.random.default_rng(5)) + [(), ("z",)]
    whole = string_logprobs(g, strings)
    monkeypatch.setattr(inside, "_CHART_BYTES", 1)
    np.testing.assert_array_equal(string_logprobs(g, strings), whole)
    assert whole[-2] == whole[-1] == -np.inf and token_surprisals_bits(g, [()])[0][0] == np.inf


def test_a_plain_text_in_place_of_tokens_is_refused():
    from grammarlab.errors import GrammarlabError
    from grammarlab.grammar import inside as _inside
    from grammarlab.grammar.load import loads as _loads

    g = _loads("S -> '(' S ')' S [0.4] | [0.6]\n")
    for call in (
        lambda: _inside.surprisal_bits(g, ["( ) $"]),
        lambda: _inside.string_logprobs(g, "( )"),
        lambda: _inside.prefix_logprobs(g, [("(",), "("]),
        lambda: _inside.next_token_logprobs(g, "( "),
        lambda: _inside.token_surprisals_bits(g, ["( )"]),
    ):
        with pytest.raises(GrammarlabError, match="where a sequence of tokens was expected"):
            call()
    assert _inside.surprisal_bits(g, ["( )".split()])[0] < float("inf")
