"""The field's formal languages (grammarlab/grammar/formal.py): probabilities of short strings and
entropies derived by hand, the languages' defining properties on samples, and the bounds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from grammarlab.cli import main
from grammarlab.errors import GrammarError, GrammarlabError
from grammarlab.grammar import formal
from grammarlab.grammar.entropy import analyze, derivational_entropy_bits, string_entropy_bits
from grammarlab.grammar.families import random_grammar
from grammarlab.grammar.inside import surprisal_bits
from grammarlab.grammar.sample import sample
from tests.brute import enumerate_strings


def _h2(p: float) -> float:
    """Binary entropy in bits."""
    return -p * math.log2(p) - (1 - p) * math.log2(1 - p)


def _p(g, text: str) -> float:
    """P(string) from the engine, the string written with one character per token."""
    return 2.0 ** -float(surprisal_bits(g, [tuple(text)])[0])


def _depth(s) -> int:
    """Deepest nesting of a bracket string (any of the pairs), -1 when not well nested."""
    opens = {o: c for o, c in formal.BRACKETS}
    stack: list[str] = []
    deepest = 0
    for t in s:
        if t in opens:
            stack.append(opens[t])
            deepest = max(deepest, len(stack))
        elif not stack or stack.pop() != t:
            return -1
    return -1 if stack else deepest


def _empty_rules_supported() -> bool:
    try:
        formal.dyck_grammar(1, 0.3, empty=True)
    except GrammarError as e:
        if "epsilon" in str(e):
            return False
        raise
    return True


needs_empty = pytest.mark.skipif(
    not _empty_rules_supported(), reason="the parser does not read empty alternatives yet"
)


# ---------------------------------------------------------------- a^n b^n


@pytest.mark.parametrize("p", [0.8, 0.5, 0.1])
def test_anbn_probabilities_are_geometric(p):
    g = formal.anbn_grammar(p)
    for n in range(1, 7):
        # n - 1 times S -> 'a' S 'b' [p], then S -> 'a' 'b' [1-p]
        assert _p(g, "a" * n + "b" * n) == pytest.approx(p ** (n - 1) * (1 - p), rel=1e-12)
    for bad in ["ab" * 2, "aab", "abb", "ba"]:
        assert _p(g, bad) == 0.0


@pytest.mark.parametrize("p", [0.8, 0.5, 0.1])
def test_anbn_entropy_is_the_geometric_entropy(p):
    # H = -sum_n p^(n-1) (1-p) log2(p^(n-1) (1-p)) = -log2(1-p) - E[n-1] log2 p
    #   = -log2(1-p) - p/(1-p) log2 p = h(p) / (1-p)
    hand = _h2(p) / (1 - p)
    g = formal.anbn_grammar(p)
    assert derivational_entropy_bits(g) == pytest.approx(hand, abs=1e-9)
    # one derivation per string, so the engine's string entropy (exact once proven, else a
    # Monte Carlo estimate whose every term is zero) is the same number
    assert analyze(g, mc_samples=200).entropy_bits == pytest.approx(hand, abs=1e-9)
    assert f"By hand: h(p) / (1-p), h the binary entropy = {hand:.9f}" in g.header
    series = -sum(
        p ** (n - 1) * (1 - p) * ((n - 1) * math.log2(p) + math.log2(1 - p)) for n in range(1, 2000)
    )
    assert hand == pytest.approx(series, abs=1e-9)


# ---------------------------------------------------------------- Dyck


@pytest.mark.parametrize("p", [0.4, 0.2])
def test_dyck1_short_strings_by_hand(p):
    # S -> P S [p] | P [1-p]; P -> '(' S ')' [p] | '(' ')' [1-p]
    q = 1 - p
    g = formal.dyck_grammar(1, p)
    assert _p(g, "()") == pytest.approx(q * q, rel=1e-12)  # S -> P, P -> ()
    assert _p(g, "()()") == pytest.approx(p * q**3, rel=1e-12)  # S -> P S, (), S -> P, ()
    assert _p(g, "(())") == pytest.approx(p * q**3, rel=1e-12)  # S -> P, (S), S -> P, ()
    assert _p(g, "(()())") == pytest.approx(p**2 * q**4, rel=1e-12)
    for bad in [")(", "(()", "())", "(]"]:
        assert _p(g, bad) == 0.0


def test_dyck2_each_pair_costs_a_factor_one_half():
    p, q = 0.3, 0.7
    g = formal.dyck_grammar(2, p)
    assert _p(g, "[]") == pytest.approx(q * q / 2, rel=1e-12)
    assert _p(g, "()[]") == pytest.approx(p * q**3 / 4, rel=1e-12)
    assert _p(g, "([])") == pytest.approx(p * q**3 / 4, rel=1e-12)
    assert _p(g, "([)]") == 0.0


def test_dyck_matches_brute_force_enumeration():
    g = formal.dyck_grammar(2, 0.35)
    brute = enumerate_strings(g, 8)
    strings = sorted(brute)
    ours = 2.0 ** -surprisal_bits(g, strings)
    np.testing.assert_allclose(ours, [brute[s] for s in strings], rtol=1e-12)
    assert all(_depth(s) > 0 for s in strings)
    # every well-nested string of length <= 8 over two pairs: Catalan(n) 2^n for n pairs
    assert len(strings) == sum(math.comb(2 * n, n) // (n + 1) * 2**n for n in range(1, 5))


def _dyck_hand_bits(k: int, p: float, empty: bool) -> float:
    # textbook form: every S node chooses one of k pairs (p/k each) or stops (1-p), and there
    # are 1/(1-2p) S nodes in expectation (2p expected S children per node)
    h0 = (_h2(p) + p * math.log2(k)) / (1 - 2 * p)
    if empty:
        return h0
    # conditioned on x != "" (P(x) / p): H = -sum_{x != ""} P/p log2(P/p)
    #   = (H0 + (1-p) log2(1-p)) / p + log2 p
    return (h0 + (1 - p) * math.log2(1 - p)) / p + math.log2(p)


@pytest.mark.parametrize(("k", "p"), [(1, 0.3), (2, 0.4), (5, 0.45)])
def test_dyck_entropy_closed_form(k, p):
    g = formal.dyck_grammar(k, p, mc_samples=50)
    hand = _dyck_hand_bits(k, p, empty=False)
    assert derivational_entropy_bits(g) == pytest.approx(hand, abs=1e-9)
    assert analyze(g, mc_samples=200).entropy_bits == pytest.approx(hand, abs=1e-9)
    # cross-check the conditioning formula on enumerated strings: the textbook distribution's
    # non-empty strings, P(x) / p, are the non-empty form's probabilities
    if k == 1:
        brute = enumerate_strings(g, 10)
        for s, prob in brute.items():
            n = len(s) // 2
            # textbook P(x) for a Dyck-1 string of n pairs: p^n (1-p)^(n+1) (n pair choices and
            # n + 1 stops), so the conditioned probability is p^(n-1) (1-p)^(n+1)
            assert prob == pytest.approx(p ** (n - 1) * (1 - p) ** (n + 1), rel=1e-12)


@needs_empty
@pytest.mark.parametrize("p", [0.4, 0.2])
def test_dyck1_textbook_form_with_the_empty_string(p):
    q = 1 - p
    g = formal.dyck_grammar(1, p, empty=True)
    assert _p(g, "") == pytest.approx(q, rel=1e-12)
    assert _p(g, "()") == pytest.approx(p * q * q, rel=1e-12)  # (S) S, both empty
    assert _p(g, "()()") == pytest.approx(p**2 * q**3, rel=1e-12)
    assert _p(g, "(())") == pytest.approx(p**2 * q**3, rel=1e-12)
    nonempty = formal.dyck_grammar(1, p)
    for s in ["()", "(())", "()(())"]:
        assert _p(nonempty, s) == pytest.approx(_p(g, s) / p, rel=1e-12)
    assert derivational_entropy_bits(g) == pytest.approx(_dyck_hand_bits(1, p, True), abs=1e-9)


@needs_empty
def test_dyck_textbook_form_depth_bound():
    g = formal.dyck_grammar(2, 0.6, depth=2, empty=True)
    strings = sample(g, 3000, np.random.default_rng(2))
    depths = [_depth(s) for s in strings]
    assert min(depths) == 0 and max(depths) == 2


def _bounded_hand_bits(k: int, p: float, depth: int) -> float:
    # S_d: a geometric number m of pairs P_d (P(m) = p^(m-1) (1-p), mean 1/(1-p)) -> h(p)/(1-p)
    # for m plus E[m] H(P_d); P_d: a pair (log2 k) nesting S_(d+1) (prob p, entropy h(p)), except
    # at the bound, where the pair is empty.
    h_s = 0.0
    for d in range(depth, 0, -1):
        h_pair = math.log2(k) if d == depth else math.log2(k) + _h2(p) + p * h_s
        h_s = _h2(p) / (1 - p) + h_pair / (1 - p)
    return h_s


@pytest.mark.parametrize(("k", "p", "depth"), [(2, 0.4, 4), (1, 0.7, 3), (3, 0.9, 1)])
def test_depth_bound_respected_by_samples_and_entropy_by_hand(k, p, depth):
    g = formal.dyck_grammar(k, p, depth=depth, mc_samples=50)
    strings = sample(g, 3000, np.random.default_rng(1))
    depths = [_depth(s) for s in strings]
    assert min(depths) >= 1  # well nested and non-empty
    assert max(depths) == depth  # the bound is reached, never passed
    hand = _bounded_hand_bits(k, p, depth)
    assert derivational_entropy_bits(g) == pytest.approx(hand, abs=1e-9)
    assert analyze(g, mc_samples=200).entropy_bits == pytest.approx(hand, abs=1e-9)


def test_depth_bound_allows_p_above_one_half_but_not_unbounded():
    formal.dyck_grammar(2, 0.6, depth=3, mc_samples=50)
    with pytest.raises(GrammarlabError, match="critical"):
        formal.dyck_grammar(2, 0.5)
    with pytest.raises(GrammarlabError, match="expected string length"):
        formal.dyck_grammar(2, 0.9, depth=60)  # finite, but (p/(1-p))^depth tokens


def test_many_pairs_are_indexed():
    g = formal.dyck_grammar(6, 0.3)
    assert set(g.terminals) == {f"{b}{i}" for i in range(1, 7) for b in "()"}
    bits = surprisal_bits(g, [("(3", ")3")])[0]
    assert 2.0**-bits == pytest.approx(0.7 * 0.7 / 6, rel=1e-12)


# ---------------------------------------------------------------- palindromes


@pytest.mark.parametrize(("l_", "p"), [(2, 0.8), (3, 0.5)])
def test_palindromes_are_marked_palindromes(l_, p):
    g = formal.palindrome_grammar(l_, p)
    mark = "abcdefghijklmnopqrstuvwxyz"[l_]
    for s in sample(g, 2000, np.random.default_rng(0)):
        assert s == s[::-1]
        assert len(s) % 2 == 1 and s[len(s) // 2] == mark and s.count(mark) == 1
    # |w| letter pairs of p/l each, then the marker (1-p)
    assert _p(g, "b" + mark + "b") == pytest.approx((p / l_) * (1 - p), rel=1e-12)
    assert _p(g, "ab" + mark + "ba") == pytest.approx((p / l_) ** 2 * (1 - p), rel=1e-12)
    assert _p(g, "ab" + mark + "ab") == 0.0


@pytest.mark.parametrize(("l_", "p"), [(2, 0.8), (3, 0.5), (1, 0.3)])
def test_palindrome_entropy_exact(l_, p):
    # |w| = m with probability p^m (1-p): h(p)/(1-p) bits; each of the E[m] = p/(1-p) letters
    # is uniform over l: log2 l bits each
    hand = (_h2(p) + p * math.log2(l_)) / (1 - p)
    g = formal.palindrome_grammar(l_, p)
    assert string_entropy_bits(g) == pytest.approx(hand, abs=1e-9)  # LL(1): proven today
    assert f"Exact entropy: {hand:.9f} bits per string" in g.header


# ---------------------------------------------------------------- expressions


def test_expression_probabilities_by_hand():
    add, mul, paren, v = 0.3, 0.2, 0.1, 3
    g = formal.expr_grammar(v, add, mul, paren)
    leaf = (1 - paren) / v  # F -> 'a'
    term = (1 - mul) * leaf  # T -> F -> 'a'
    expr = (1 - add) * term  # E -> T -> F -> 'a'
    assert _p(g, "a") == pytest.approx(expr, rel=1e-12)
    # E -> E '+' T, E -> T -> F -> a, T -> F -> b
    assert _p(g, "a+b") == pytest.approx(add * expr * term, rel=1e-12)
    # E -> T, T -> T '*' F, T -> F -> a, F -> b
    assert _p(g, "a*b") == pytest.approx((1 - add) * mul * term * leaf, rel=1e-12)
    assert _p(g, "(a)") == pytest.approx((1 - add) * (1 - mul) * paren * expr, rel=1e-12)
    for bad in ["a+", "+a", "(a", "ab"]:
        assert _p(g, bad) == 0.0


@pytest.mark.parametrize(("add", "mul", "paren"), [(0.3, 0.3, 0.2), (0.5, 0.1, 0.4)])
def test_expression_entropy_by_hand(add, mul, paren):
    v = 4
    # An E instance expands E 1/(1-add) times (geometric) and makes as many T instances; a T
    # instance expands T 1/(1-mul) times and makes as many F's; an F is '(' E ')' with
    # probability paren. E instances: I = 1 + paren I / ((1-add)(1-mul)).
    r = 1 / ((1 - add) * (1 - mul))
    inst = 1 / (1 - paren * r)
    c_e, c_t = inst / (1 - add), inst * r
    hand = c_e * _h2(add) + c_t * _h2(mul) + c_t * (_h2(paren) + (1 - paren) * math.log2(v))
    g = formal.expr_grammar(v, add, mul, paren, mc_samples=50)
    assert derivational_entropy_bits(g) == pytest.approx(hand, abs=1e-9)
    # unambiguous: the string entropy is the same (exact once proven, or a zero-variance
    # Monte Carlo estimate: no sampled string has a second derivation)
    rep = analyze(g, mc_samples=300)
    assert rep.entropy_bits == pytest.approx(hand, abs=1e-9)
    assert rep.ambiguous is not True


# ---------------------------------------------------------------- English


def test_english_pp_attachment_is_ambiguous():
    p = 0.25
    q = 1 - p
    g = formal.english_grammar(p)
    words = ("the", "man", "saw", "a", "dog", "with", "a", "telescope")
    # either derivation: NP -> Det N three times (q, 1/2 * 1/4 for the words, each), the verb
    # phrase V NP (q, saw 1/2), the PP (with 1/2), and one PP attachment (p): to the VP
    # (VP -> VP PP) or to the object (NP -> NP PP)
    one = p * q**4 * (1 / 8) ** 3 * (1 / 2) * (1 / 2)
    bits = surprisal_bits(g, [words])[0]
    assert 2.0**-bits == pytest.approx(2 * one, rel=1e-12)  # two derivations
    assert 2.0 ** -surprisal_bits(g, [words[:5]])[0] == pytest.approx(
        q * (1 / 8) * q * (1 / 2) * q * (1 / 8), rel=1e-12
    )  # "the man saw a dog": one derivation
    rep = analyze(g, mc_samples=500)
    assert rep.ambiguous is True
    # the estimate lies below the derivational entropy by many standard errors
    assert rep.entropy_bits < rep.derivational_entropy_bits - 5 * rep.entropy_stderr_bits
    assert "Estimated entropy (Monte Carlo" in g.header
    assert "witness" in g.header


# ---------------------------------------------------------------- headers, bounds, the CLI


def test_headers_are_reproducible_and_name_their_command():
    for build in (
        lambda: formal.dyck_grammar(2, 0.4, depth=3),
        lambda: formal.english_grammar(0.2, mc_samples=50, seed=7),
    ):
        assert build().to_text() == build().to_text()
    g = formal.english_grammar(0.2, mc_samples=50, seed=7)
    assert "Written by: grammarlab grammar new english -p 0.2 --mc-samples 50 --seed 7" in g.header
    assert "(Monte Carlo, 50 of 50 sampled derivations scored, seed 7)" in " ".join(
        g.header.splitlines()
    )
    # the defaults are left out of the command
    assert "Written by: grammarlab grammar new anbn -p 0.8 -o FILE" in formal.anbn_grammar().header


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: formal.dyck_grammar(0), "k must be"),
        (lambda: formal.dyck_grammar(2000), "k must be"),
        (lambda: formal.dyck_grammar(1000, 0.3, depth=8), "rules is more than"),
        (lambda: formal.dyck_grammar(2, 0.4, depth=0), "depth must be"),
        (lambda: formal.dyck_grammar(2, 1.0), "strictly between 0 and 1"),
        (lambda: formal.anbn_grammar(float("nan")), "strictly between 0 and 1"),
        (lambda: formal.palindrome_grammar(26), "alphabet_size must be"),
        (lambda: formal.expr_grammar(3, 0.5, 0.5, 0.3), "critical"),
        (lambda: formal.expr_grammar(27), "variables must be"),
        (lambda: formal.english_grammar(0.5), "critical"),
        (lambda: formal.anbn_grammar(0.5, mc_samples=1), "mc_samples must be"),
        (lambda: random_grammar(26, 10_000_000), "rules is more than"),
    ],
)
def test_sizes_and_probabilities_are_bounded(build, match):
    with pytest.raises(GrammarlabError, match=match):
        build()


@pytest.mark.parametrize(
    "args",
    [
        ["random", "--length", "10000000"],
        ["random", "--alphabet-size", "2048", "--length", "1024"],
        ["dyck", "-p", "0.6"],
        ["dyck", "-k", "5000"],
        ["expr", "--paren", "0.9"],
        ["palindrome", "--alphabet-size", "30"],
    ],
)
def test_cli_refuses_with_one_error_line(args, tmp_path, capsys):
    out = tmp_path / "g.cfg"
    assert main(["grammar", "new", *args, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "Traceback" not in err
    assert not out.exists()


def test_cli_writes_each_family(tmp_path, capsys):
    for family, build in [
        (["dyck", "-k", "3", "-p", "0.3", "--depth", "2"], formal.dyck_grammar(3, 0.3, 2)),
        (["anbn"], formal.anbn_grammar()),
        (["palindrome", "--alphabet-size", "3"], formal.palindrome_grammar(3)),
        (["expr", "--variables", "2"], formal.expr_grammar(2)),
        (["english", "-p", "0.2"], formal.english_grammar(0.2)),
    ]:
        out = tmp_path / f"{family[0]}.cfg"
        assert main(["grammar", "new", *family, "-o", str(out)]) == 0
        assert out.read_text() == build.to_text()
    assert main(["grammar", "new", "hierarchical", "-o", str(tmp_path / "h.cfg")]) == 0
    assert "p = 0.5" in (tmp_path / "h.cfg").read_text()
