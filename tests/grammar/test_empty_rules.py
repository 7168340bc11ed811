"""Empty alternatives through the exact engine: the empty-string split (cnf.empty_free), string,
prefix and next-token probabilities and per-token surprisals on every path (regular automaton,
chart, Earley), against hand-derived values, brute-force enumeration and a brute force over the
productions nltk reads from the same text. Float64 throughout: the paths and the references
agree to rounding (rtol 1e-12 covers a few hundred float64 operations, ~1e-14 each)."""

from __future__ import annotations

import functools
import itertools
import math
from collections import defaultdict

import brute
import nltk
import numpy as np
import pytest

from grammarlab.cli import main
from grammarlab.errors import GrammarlabError
from grammarlab.grammar import entropy, inside, language, structure
from grammarlab.grammar.cnf import compile_cnf, compile_regular, empty_free
from grammarlab.grammar.inside import (
    END,
    next_token_logprobs,
    prefix_logprobs,
    string_logprobs,
    surprisal_bits,
    token_surprisals_bits,
)
from grammarlab.grammar.load import loads
from grammarlab.grammar.sample import random_strings, sample, sample_batches, sample_ids
from grammarlab.grammar.strings import parse_strings
from grammarlab.grammar.structure import empty_probabilities, nullable, unit_cycle

RTOL = 1e-12
P, Q = 0.3, 0.7
GEOMETRIC = f"S -> 'a' S [{P}] | [{Q}]\n"  # P(a^k) = P^k Q
DYCK = f"S -> '(' S ')' S [{P}] | [{Q}]\n"  # Dyck-1 with the empty string
DYCK2 = "S -> '(' S ')' S [0.2] | '[' S ']' S [0.25] | [0.55]\n"
# S -> S B with B nullable: the elimination creates the unit cycle S+ -> S+ [0.2 e(B)]
UNIT_NULL = "S -> S B [0.2] | 'a' [0.5] | [0.3]\nB -> 'b' [0.4] | [0.6]\n"
# nullable cycles (A -> B, B -> A A) and nullable symbols around terminals
MIXED_NULL = """
S -> A 'x' A [0.5] | A A [0.3] | [0.2]
A -> 'a' A [0.3] | B [0.3] | [0.4]
B -> 'b' [0.5] | A A [0.2] | [0.3]
"""
# eight nullable symbols in one right side: cut before the elimination (2^8 choices otherwise)
LONG = "S -> A A A A A A A A 'x' [1.0]\nA -> 'a' [0.5] | [0.5]\n"
# right-linear once E (empty only) is gone, with the unit cycle S+ -> A+ -> S+ (regular path)
RIGHT_UNIT = "S -> A [0.5] | 'a' S [0.3] | [0.2]\nA -> S E [1.0]\nE -> [1.0]\n"
CASES = {"geometric": GEOMETRIC, "dyck": DYCK, "dyck2": DYCK2, "unit_null": UNIT_NULL}
CASES |= {"mixed_null": MIXED_NULL, "long": LONG, "right_unit": RIGHT_UNIT}


@pytest.fixture(params=["fast", "chart", "earley"])
def path(request, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every exact path: the regular automaton where the grammar is right-linear, the chart
    (inside and prefix tables), and the Earley chart."""
    if request.param != "fast":
        monkeypatch.setattr(inside, "_REGULAR_FAST_PATH", False)
    monkeypatch.setattr(inside, "EARLEY_MIN_RULES", 0 if request.param == "earley" else 10**9)
    inside._CHARTS.clear()
    return request.param


def close(got, want) -> None:
    np.testing.assert_allclose(np.asarray(got, float), np.asarray(want, float), rtol=RTOL, atol=0)


def test_empty_probabilities_by_hand() -> None:
    # e = 0.2 e^2 + 0.3 for B -> B B [0.2] | [0.3] | 'b' [0.5]: the smaller root
    g = loads("S -> A B [1.0]\nA -> 'a' [0.3] | [0.7]\nB -> B B [0.2] | [0.3] | 'b' [0.5]\n")
    e_b = (1 - math.sqrt(1 - 4 * 0.2 * 0.3)) / (2 * 0.2)
    close(empty_probabilities(g), [0.7 * e_b, 0.7, e_b])
    assert nullable(g) == {"S", "A", "B"}
    close(empty_probabilities(loads(DYCK)), [Q])
    # derives no terminal: e is exactly 1, also at the critical point Newton approaches slowly
    assert empty_probabilities(loads("S -> S S [0.5] | [0.5]\n")).tolist() == [1.0]
    assert empty_probabilities(loads("S -> 'a' [1.0]\n")).tolist() == [0.0]


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_split_grammar_is_a_pcfg_without_empty_rules(name: str) -> None:
    g = loads(CASES[name])
    ef = empty_free(g)
    plus = ef.grammar
    assert plus is not None and all(r.rhs for r in plus.rules)
    assert plus.start == g.start
    for lhs, rules in plus.by_lhs.items():
        assert math.isclose(math.fsum(r.prob for r in rules), 1.0, rel_tol=0, abs_tol=1e-15), lhs
    close([math.exp(ef.log_empty) + math.exp(ef.log_rest)], [1.0])
    compile_cnf(plus)  # the closures exist (the created unit cycles have weight below 1)


def test_compiled_forms_refuse_empty_rules() -> None:
    with pytest.raises(ValueError, match="empty_free"):
        compile_cnf(loads(GEOMETRIC))
    with pytest.raises(ValueError, match="empty_free"):
        compile_regular(loads(GEOMETRIC))
    for text in (GEOMETRIC, RIGHT_UNIT):  # right-linear after the split: the automaton path
        assert compile_regular(empty_free(loads(text)).grammar) is not None


def test_geometric_by_hand(path: str) -> None:
    g = loads(GEOMETRIC)
    strings = [("a",) * k for k in range(6)]
    close(np.exp(string_logprobs(g, strings)), [P**k * Q for k in range(6)])
    close(np.exp(prefix_logprobs(g, strings)), [P**k for k in range(6)])
    assert string_logprobs(g, [("b",), ("a", "b")]).tolist() == [-math.inf, -math.inf]
    for k in range(4):
        names, logp = next_token_logprobs(g, ("a",) * k)
        assert names == ("a", END)
        close(np.exp(logp), [P, Q])
    got = token_surprisals_bits(g, strings)
    for k, bits in enumerate(got):
        close(bits, [-math.log2(P)] * k + [-math.log2(Q)])
    close(surprisal_bits(g, strings), [-math.log2(P**k * Q) for k in range(6)])


def test_dyck_by_hand(path: str) -> None:
    g = loads(DYCK)
    s = {
        (): Q,
        ("(", ")"): P * Q**2,
        ("(", "(", ")", ")"): P**2 * Q**3,
        ("(", ")", "(", ")"): P**2 * Q**3,
        ("(", "(", ")", ")", "(", ")"): P**3 * Q**4,
        ("(",): 0.0,
        (")", "("): 0.0,
    }
    close(np.exp(string_logprobs(g, list(s))), list(s.values()))
    pre = {(): 1.0, ("(",): P, ("(", ")"): P * Q, ("(", "("): P**2, (")",): 0.0}
    pre[("(", ")", "(")] = P * Q * P  # the first S inside is empty, the second starts again
    close(np.exp(prefix_logprobs(g, list(pre))), list(pre.values()))
    nxt = {(): [P, 0.0, Q], ("(",): [P, Q, 0.0], ("(", ")"): [P, 0.0, Q]}
    nxt[("(", "(", ")")] = [P, Q, 0.0]
    for prefix, want in nxt.items():
        names, logp = next_token_logprobs(g, prefix)
        assert names == ("(", ")", END)
        close(np.exp(logp), want)
    with pytest.raises(GrammarlabError, match="no string of the grammar starts with"):
        next_token_logprobs(g, (")",))
    bits = token_surprisals_bits(g, [(), ("(", ")"), (")",)])
    close(bits[0], [-math.log2(Q)])
    close(bits[1], [-math.log2(P), -math.log2(Q), -math.log2(Q)])
    assert bits[2].tolist() == [math.inf, math.inf]


def test_long_right_side_by_hand(path: str) -> None:
    """S -> A^8 'x', A -> 'a' | empty: P(a^k x) = C(8, k) / 256 (the rule is cut in two)."""
    g = loads(LONG)
    strings = [("a",) * k + ("x",) for k in range(10)]
    close(np.exp(string_logprobs(g, strings)), [math.comb(8, k) / 256 for k in range(10)])
    names, logp = next_token_logprobs(g, ())
    assert names == ("x", "a", END)
    close(np.exp(logp), [1 / 256, 255 / 256, 0.0])
    # after a^k: x when the other 8 - k symbols are all empty, given at least k non-empty
    for k in range(1, 9):
        tail = [math.comb(8, j) for j in range(k, 9)]
        names, logp = next_token_logprobs(g, ("a",) * k)
        close(np.exp(logp), [math.comb(8, k) / sum(tail), 1 - math.comb(8, k) / sum(tail), 0])


CYCLIC = ("mixed_null", "unit_null", "right_unit")  # a nonterminal derives itself without a token


@functools.cache
def reference(name: str) -> dict:
    """P(string) of every string of at most 6 tokens by leftmost brute force (exhaustive and
    exact here), or, where nullable cycles make the derivations of a string infinite, of every
    string of at most 4 tokens over the alphabet from the inside equations' fixed point."""
    g = loads(CASES[name])
    if name not in CYCLIC:
        return brute.enumerate_strings(g, 6)
    words = [w for k in range(5) for w in itertools.product(g.terminals, repeat=k)]
    return {w: brute.inside_fixed_point(g, w) for w in words}


@pytest.mark.parametrize("name", sorted(CASES))
def test_against_brute_force(name: str, path: str) -> None:
    g = loads(CASES[name])
    want = reference(name)
    strings = list(want)
    close(np.exp(string_logprobs(g, strings)), [want[s] for s in strings])
    live = [s for s in strings if want[s] > 0]
    bits = token_surprisals_bits(g, live)
    close([b.sum() for b in bits], -np.log2([want[s] for s in live]))
    for s, b in zip(live[:30], bits[:30], strict=True):  # each surprisal is a prefix ratio
        pre = prefix_logprobs(g, [s[:k] for k in range(len(s) + 1)])
        close(b[:-1], (pre[:-1] - pre[1:]) / math.log(2))
        close([np.exp(next_token_logprobs(g, s)[1]).sum()], [1.0])


def _nltk_strings(text: str, max_len: int, min_prob: float) -> dict:
    """P(string) by leftmost derivations over the productions nltk's PCFG reader makes of the
    same text: independent of grammarlab's parser and of its elimination."""
    pcfg = nltk.PCFG.fromstring(text)
    by_lhs = defaultdict(list)
    for prod in pcfg.productions():
        by_lhs[prod.lhs()].append(prod)
    out: dict[tuple, float] = defaultdict(float)
    todo = [((pcfg.start(),), 1.0)]
    while todo:
        form, p = todo.pop()
        if sum(isinstance(x, str) for x in form) > max_len or p < min_prob:
            continue
        j = next((i for i, x in enumerate(form) if not isinstance(x, str)), None)
        if j is None:
            out[form] += p
            continue
        for prod in by_lhs[form[j]]:
            todo.append((form[:j] + prod.rhs() + form[j + 1 :], p * prod.prob()))
    return dict(out)


@pytest.mark.parametrize("name", ["geometric", "dyck", "dyck2", "long"])
def test_against_nltk_productions(name: str) -> None:
    want = _nltk_strings(CASES[name], 6, 0.0)
    g = loads(CASES[name])
    strings = list(want)
    assert (() in want) == (name != "long")  # the empty string, where there is one
    close(np.exp(string_logprobs(g, strings)), [want[s] for s in strings])


def test_the_empty_string_alone(path: str) -> None:
    for text in ("S -> [1.0]\n", "S -> A A [1.0]\nA -> [1.0]\n", "S -> S S [0.5] | [0.5]\n"):
        g = loads(text)
        assert empty_free(g).grammar is None
        assert string_logprobs(g, [(), ("a",)]).tolist() == [0.0, -math.inf]
        assert prefix_logprobs(g, [(), ("a",)]).tolist() == [0.0, -math.inf]
        assert next_token_logprobs(g, ()) == ((END,), pytest.approx([0.0]))
        with pytest.raises(GrammarlabError, match="no string"):
            next_token_logprobs(g, ("a",))
        assert [b.tolist() for b in token_surprisals_bits(g, [(), ("a",)])] == [
            [0.0],
            [math.inf, math.inf],
        ]


def test_unit_cycle_through_nullable_symbols() -> None:
    assert unit_cycle(loads(UNIT_NULL))  # S -> S B with B nullable
    assert not unit_cycle(loads(DYCK))
    assert unit_cycle(loads("S -> A [0.5] | 'a' [0.5]\nA -> S E [1.0]\nE -> [1.0]\n"))
    assert not unit_cycle(loads("S -> A [0.5] | 'a' [0.5]\nA -> 'b' S [1.0]\n"))


# ---------------------------------------------------------------------------------------------
# the rest of the engine: sampling, finite languages, structure facts, entropy


def test_sampling_draws_the_empty_string_at_its_probability() -> None:
    g = loads(DYCK)
    n = 20_000
    strings = sample(g, n, np.random.default_rng(0))
    freq = sum(1 for s in strings if s == ()) / n
    assert abs(freq - Q) < 5 * math.sqrt(Q * P / n)  # 5 standard errors
    ids, lengths, logp = sample_ids(g, n, np.random.default_rng(0))
    assert lengths.tolist() == [len(s) for s in strings]  # the same draws
    assert np.all(ids[lengths == 0] == -1)
    close(logp[lengths == 0], np.full(int((lengths == 0).sum()), math.log(Q)))
    # the strings' derivation log probabilities are exact (Dyck-1 is unambiguous)
    short = [i for i, s in enumerate(strings) if len(s) <= 8][:200]
    close(logp[short], string_logprobs(g, [strings[i] for i in short]))


def test_sampling_the_empty_string_alone() -> None:
    for text in ("S -> [1.0]\n", "S -> A A [1.0]\nA -> [1.0]\n"):
        g = loads(text)
        rng = np.random.default_rng(1)
        assert sample(g, 3, rng) == [(), (), ()]
        assert sample(g, 1, rng, unique=True) == [()]
        with pytest.raises(GrammarlabError, match="only 1 distinct"):
            sample(g, 2, rng, unique=True)
        ids, lengths, logp = sample_ids(g, 4, rng)
        assert ids.shape == (4, 0) and lengths.tolist() == [0] * 4 and logp.tolist() == [0.0] * 4
        assert random_strings(g, 2, rng) == [(), ()]
        assert [n.tolist() for _, n in sample_batches(g, 3, rng)] == [[0, 0, 0]]


def test_fixed_length_sampler_with_empty_nonterminals() -> None:
    g = loads("S -> A 'x' B A [1.0]\nA -> [1.0]\nB -> 'b' [0.5] | 'c' [0.5]\n")
    got = sample(g, 50, np.random.default_rng(2))
    assert set(got) == {("x", "b"), ("x", "c")}


def test_finite_languages_with_empty_alternatives() -> None:
    g = loads("S -> A B [0.6] | [0.4]\nA -> 'a' [0.5] | [0.5]\nB -> 'a' [0.5] | [0.5]\n")
    assert language.count_derivations(g) == 5
    assert language.language(g) == {(), ("a",), ("a", "a")}
    got = entropy.enumerate_language(g)
    assert got[()] == (pytest.approx(0.4 + 0.6 * 0.25, rel=1e-15), 2)
    assert got[("a",)] == (pytest.approx(0.6 * 0.5, rel=1e-15), 2)
    assert got[("a", "a")] == (pytest.approx(0.6 * 0.25, rel=1e-15), 1)
    close([v[0] for v in got.values()], np.exp(string_logprobs(g, list(got))))
    assert structure.useful_order(loads(DYCK)) is None  # S -> ( S ) S: infinite


def test_structure_facts_of_dyck_by_hand() -> None:
    g = loads(DYCK)
    # two S per expansion with probability P: radius 2P, 1 / (1 - 2P) expansions
    close([structure.spectral_radius(g)], [2 * P])
    close(structure.expected_expansions(g), [1 / (1 - 2 * P)])
    close([entropy.expected_length(g)], [2 * P / (1 - 2 * P)])
    close(structure.termination_probabilities(g), [1.0])


def test_entropy_of_geometric_by_hand() -> None:
    """Unambiguous, so H = H_D = h(P) / Q (an expected 1/Q expansions of S, h(P) bits each);
    the Monte Carlo terms are 0 up to rounding (log P(x) through the elimination, log P(d)
    summed along the derivation), so the estimate is exact and its standard error ~1e-18."""
    g = loads(GEOMETRIC)
    h = -(P * math.log2(P) + Q * math.log2(Q)) / Q
    close([entropy.derivational_entropy_bits(g)], [h])
    report = entropy.analyze(g, mc_samples=500)
    close([report.entropy_bits, report.derivational_entropy_bits], [h, h])
    assert report.entropy_stderr_bits < 1e-12 and report.mc_samples_used == 500
    assert report.ambiguous is None  # no witness
    close([report.expected_length], [P / Q])
    assert report.min_length == 0 and report.max_length is None


def test_entropy_of_the_empty_string_alone() -> None:
    report = entropy.analyze(loads("S -> [1.0]\n"))
    assert report.entropy_bits == 0.0 and report.entropy_exact and report.n_strings == 1
    assert report.expected_length == 0.0 and report.entropy_bits_per_token is None
    assert report.min_length == report.max_length == 0
    assert entropy.string_entropy_bits(loads("S -> A A [1.0]\nA -> [1.0]\n")) == 0.0
    # critical: infinite expected derivation size, yet one string of entropy 0
    crit = entropy.analyze(loads("S -> S S [0.5] | [0.5]\n"), mc_samples=50)
    assert crit.entropy_bits == 0.0 and crit.entropy_exact and crit.ambiguous is True
    assert crit.derivational_entropy_bits == math.inf
    assert report.to_dict()["terminals"] == []


def test_monte_carlo_on_an_ambiguous_grammar_with_empty_rules() -> None:
    """Ambiguous and infinite: the estimate H_D - E[log2 P(x) - log2 P(d)] uses exact terms of
    strings sampled with their empty ones; against the enumerated truncation of the entropy."""
    g = loads("S -> A S [0.4] | [0.6]\nA -> 'a' [0.5] | [0.5]\n")  # P(a^k) by hand below
    # a^k: S expands n >= k times with k of the n A's non-empty
    # P(a^k) = sum_n 0.4^n 0.6 C(n, k) 0.5^n = 0.6 * 0.2^k / 0.8^(k+1)
    p = [0.6 * 0.2**k / 0.8 ** (k + 1) for k in range(40)]
    close(np.exp(string_logprobs(g, [("a",) * k for k in range(40)])), p)
    want = -math.fsum(x * math.log2(x) for x in p)
    report = entropy.analyze(g, mc_samples=4000, seed=3)
    assert report.ambiguous is True
    assert abs(report.entropy_bits - want) < 5 * report.entropy_stderr_bits + 1e-9


def test_cli_samples_and_scores_the_empty_string(tmp_path, capsys) -> None:
    """`grammar sample` writes the empty string as an empty line and `grammar score` reads it
    back as the empty string: -log2 Q bits."""
    gfile = tmp_path / "dyck.cfg"
    gfile.write_text(DYCK)
    out = tmp_path / "s.txt"
    assert main(["grammar", "sample", str(gfile), "-n", "200", "--seed", "1", "-o", str(out)]) == 0
    text = out.read_text()
    strings = parse_strings(text)
    assert strings == sample(loads(DYCK), 200, np.random.default_rng(1))
    assert len(text.split("\n")) == 201 and strings.count(()) == text.split("\n").count("") - 1
    capsys.readouterr()
    assert main(["grammar", "score", str(gfile), str(out)]) == 0
    got = [float(x) for x in capsys.readouterr().out.split()]
    close(got, surprisal_bits(loads(DYCK), strings))
    assert got[strings.index(())] == pytest.approx(-math.log2(Q), rel=1e-15)
    assert main(["grammar", "info", str(tmp_path / "dyck.cfg")]) == 0
    assert "min 0" in capsys.readouterr().out


def test_cli_check_reports_bad_escapes_and_numbers(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.cfg"
    bad.write_text("S -> 'a' [0.2_5] | [0.75]\nA -> '\\x' [1.0]\nB -> '\\N{nope}' [1.0]\n")
    assert main(["grammar", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for line in (1, 2, 3):
        assert f"{bad}:{line}: error:" in err


def test_unit_cycle_made_by_the_split_by_hand(path: str) -> None:
    """RIGHT_UNIT: S = 0.5 S + 0.3 'a' S + 0.2 (A -> S E, E empty), i.e. a geometric language
    with P(a) = 0.3 / 0.5 and P(end) = 0.2 / 0.5 per step, through a unit cycle of weight 0.5."""
    g = loads(RIGHT_UNIT)
    strings = [("a",) * k for k in range(5)]
    close(np.exp(string_logprobs(g, strings)), [0.6**k * 0.4 for k in range(5)])
    close(np.exp(prefix_logprobs(g, strings)), [0.6**k for k in range(5)])
    close(np.exp(next_token_logprobs(g, ("a", "a"))[1]), [0.6, 0.4])


@pytest.mark.parametrize("p", [1e-9, 1e-4, 0.49])
def test_an_empty_string_of_probability_near_one_keeps_its_digits(p: float, path: str) -> None:
    """S -> 'a' S [p] | [q] with q = 1 - p near 1: the split grammar's rules sum to 1 (the prefix
    algorithms assume a consistent grammar) because 1 - e(S) is not computed as a difference:
    1 - 0.999999999 in float64 is off by 3e-8 relative, and so would the sum be."""
    q = 1 - p
    g = loads(f"S -> 'a' S [{p!r}] | [{q!r}]\n")
    plus = empty_free(g).grammar
    assert math.fsum(r.prob for r in plus.rules) == pytest.approx(1.0, abs=1e-15)
    strings = [("a",) * k for k in range(1, 4)]
    close(np.exp(prefix_logprobs(g, strings)), [p**k * q / (1 - p) for k in range(1, 4)])
    close(np.exp(string_logprobs(g, strings)), [p**k * q for k in range(1, 4)])
    names, logp = next_token_logprobs(g, ())
    close(np.exp(logp), [p * q / (1 - p), q])


@pytest.mark.parametrize(
    ("text", "probs"),
    [
        ("S -> S [0.75] | [0.25]\n", {(): 1.0}),  # one string, a derivation per loop count
        ("S -> A 'x' [1.0]\nA -> A A [0.3] | A [0.3] | [0.4]\n", {("x",): 1.0}),
        ("S -> A 'x' [0.5] | 'y' [0.3] | [0.2]\nA -> A A [0.2] | [0.8]\n", {}),
    ],
)
def test_entropy_of_finite_languages_with_infinitely_many_derivations(text, probs) -> None:
    """Cycles that derive only the empty string: infinitely many derivations, finitely many
    strings, so the entropy is exact by enumerating the strings, and the grammar is ambiguous."""
    g = loads(text)
    if not probs:
        probs = {("x",): 0.5, ("y",): 0.3, (): 0.2}
    report = entropy.analyze(g, mc_samples=50)
    want = -math.fsum(p * math.log2(p) for p in probs.values())
    assert report.entropy_exact and report.n_strings == len(probs) and report.ambiguous is True
    assert report.n_derivations is None
    close([report.entropy_bits + 1.0], [want + 1.0])  # shifted: 0 bits has no relative scale
    assert math.isclose(entropy.string_entropy_bits(g) + 1.0, want + 1.0, rel_tol=1e-12)
