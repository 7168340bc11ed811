"""Entropy control: tuned grammars hit the target exactly, measured on the re-parsed text."""

from __future__ import annotations

import math
import re

import pytest

from grammarlab.cli import main
from grammarlab.errors import GrammarlabError
from grammarlab.grammar import entropy
from grammarlab.grammar.families import hierarchical_grammar, random_grammar
from grammarlab.grammar.header import header_fields
from grammarlab.grammar.load import load, loads
from grammarlab.grammar.tune import MC_TOL_SE, MonteCarloBudget, tune


def _h2(p: float) -> float:
    """Binary entropy in bits."""
    return -p * math.log2(p) - (1 - p) * math.log2(1 - p)


def _reparsed_bits(g) -> float:
    """Exact string entropy of the grammar as it ships: its text, parsed back."""
    return entropy.string_entropy_bits(loads(g.to_text()))


def _first_probs(g) -> set[float]:
    return {g.by_lhs[a][0].prob for a in g.nonterminals if a != "S"}


@pytest.mark.parametrize(
    ("p", "method", "target"),
    [(0.5, "skew", 20.0), (0.75, "temper", 20.0), (0.75, "temper", 33.0), (0.75, "skew", 10.0)],
)
def test_hierarchical_round_trip(p, method, target):
    tuned = tune(hierarchical_grammar(p), target, method=method)
    assert abs(_reparsed_bits(tuned) - target) < 1e-6
    # Both methods keep every nonterminal's two rules at the same (p', 1 - p'), so the entropy is
    # 36 h(p') (36 binary choices per derivation): an independent check of the probabilities.
    (p1,) = _first_probs(tuned)
    assert abs(36 * _h2(p1) - target) < 1e-6


def test_temper_beta_zero_is_uniform():
    # 36 bits is the maximum (p' = 1/2 everywhere), reached exactly at beta = 0.
    tuned = tune(hierarchical_grammar(0.9), 36.0, method="temper")
    assert _first_probs(tuned) == {0.5}
    assert "beta = 0;" in tuned.header


@pytest.mark.parametrize(("method", "toward"), [("temper", None), ("skew", "b"), ("skew", None)])
def test_random_round_trip(method, toward):
    base = random_grammar(3, length=6, oversample="a", oversample_prob=0.5)
    target = 7.0  # below 6 * H(0.5, 0.25, 0.25) = 9 bits
    tuned = tune(base, target, method=method, toward=toward)
    assert abs(_reparsed_bits(tuned) - target) < 1e-6
    a1 = tuned.by_lhs["A1"]
    # Independent check: 6 identical positions, each of entropy -sum p log2 p.
    per_pos = -sum(r.prob * math.log2(r.prob) for r in a1)
    assert abs(6 * per_pos - target) < 1e-6
    if toward == "b":
        assert a1[1].prob > max(a1[0].prob, a1[2].prob)


def test_skew_first_alternative_is_the_papers_p():
    # lam = 0.5 on p = 0.5 gives p' = 0.5 * 0.5 + 0.5 * 1 = 0.75, entropy 36 h(0.75).
    tuned = tune(hierarchical_grammar(0.5), 36 * _h2(0.75), method="skew")
    (p1,) = _first_probs(tuned)
    assert abs(p1 - 0.75) < 1e-7
    lam = float(re.search(r"lam = ([\d.]+);", tuned.header).group(1))
    assert abs(lam - 0.5) < 1e-7


def test_skew_toward_a_matches_random_family():
    # Uniform 26 letters, length 8; oversampling 'a' both ways must give the same q.
    target = 8.0
    tuned = tune(random_grammar(26, length=8), target, method="skew", toward="a")
    family = random_grammar(26, length=8, oversample="a", target_bits=target)
    assert [r.rhs for r in tuned.rules] == [r.rhs for r in family.rules]
    for a, b in zip(tuned.rules, family.rules, strict=True):
        assert a.prob == pytest.approx(b.prob, rel=1e-8)
    assert tuned.by_lhs["A1"][0].prob > 0.8


def test_out_of_reach_names_range():
    with pytest.raises(GrammarlabError) as e:
        tune(hierarchical_grammar(0.5), 40.0, method="skew")
    m = re.search(r"reachable range \[([\d.e-]+), ([\d.e-]+)\] bits", str(e.value))
    assert m, str(e.value)
    # skew lam = 1 is deterministic (0 bits), lam = 0 leaves 36 bits.
    assert float(m.group(1)) == pytest.approx(0.0, abs=1e-9)
    assert float(m.group(2)) == pytest.approx(36.0, abs=1e-9)
    # Tempering a grammar whose rules are all 50/50 changes nothing: range [36, 36].
    with pytest.raises(GrammarlabError, match=r"reachable range \[36.0, 36.0\]"):
        tune(hierarchical_grammar(0.5), 20.0, method="temper")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "skew", "toward": "z"}, "toward='z' is not a terminal"),
        ({"method": "temper", "toward": "1"}, "applies to method 'skew' only"),
        ({"method": "anneal"}, "unknown method"),
        ({"method": "skew", "target_bits": -1.0}, "finite number >= 0"),
    ],
)
def test_bad_arguments(kwargs, message):
    kwargs = {"target_bits": 20.0, **kwargs}
    with pytest.raises(GrammarlabError, match=re.escape(message)):
        tune(hierarchical_grammar(0.5), **kwargs)


def test_ambiguous_grammar_is_refused():
    # 'a' 'a' 'a' has two derivations and the language is infinite (no enumeration): the string
    # entropy can only be estimated, so exact control is impossible.
    g = loads("S -> S S [0.3] | 'a' [0.7]\n")
    with pytest.raises(GrammarlabError, match="exactly computable") as e:
        tune(g, 1.0, method="temper")
    hint = e.value.diagnostics[0].hint  # names the other target quantities, flag and sweep key
    assert "--entropy derivational" in hint and "--entropy monte-carlo" in hint
    assert 'entropy = "derivational"' in hint


# S -> S S [p] | 'a' [q] | 'b' [r] is ambiguous ('a a a' has two trees) with an infinite
# language: no exact string entropy. Its derivational entropy by hand: S is expanded
# c = 1 / (1 - 2p) times per derivation (each expansion of S S adds two), each a choice of
# entropy h(p, q, r), so H_D = h(p, q, r) / (1 - 2p) bits per derivation.
AMBIGUOUS = "S -> S S [0.3] | 'a' [0.3] | 'b' [0.4]\n"


def _hand_derivational_bits(g) -> float:
    p, q, r = (rule.prob for rule in g.rules)
    return -sum(x * math.log2(x) for x in (p, q, r)) / (1 - 2 * p)


@pytest.mark.parametrize(("method", "target"), [("temper", 3.0), ("skew", 5.0)])
def test_derivational_target_on_an_ambiguous_grammar(method, target):
    g = loads(AMBIGUOUS)
    with pytest.raises(GrammarlabError):
        entropy.string_entropy_bits(g)  # the default quantity is refused
    tuned = tune(g, target, method=method, quantity="derivational")
    back = loads(tuned.to_text())
    assert abs(entropy.derivational_entropy_bits(back) - target) < 1e-6
    assert abs(_hand_derivational_bits(back) - target) < 1e-6  # independent of the engine
    f = header_fields(tuned.to_text())
    assert f.entropy == "derivational" and abs(f.entropy_bits - target) < 1e-6
    assert f.entropy_se_bits is None
    assert "an upper bound of the string" in tuned.header
    assert "--entropy derivational" in tuned.header


def test_monte_carlo_target_within_its_standard_error():
    g = loads(AMBIGUOUS)
    budget = MonteCarloBudget(samples=2000, seed=3)
    tuned = tune(g, 3.0, quantity="monte-carlo", mc=budget)
    f = header_fields(tuned.to_text())
    assert f.entropy == "monte-carlo" and f.entropy_se_bits > 0
    # the stated estimate is within MC_TOL_SE standard errors of the target ...
    assert abs(f.entropy_bits - 3.0) <= MC_TOL_SE * f.entropy_se_bits + 1e-9
    # ... and is the engine's estimate of the shipped text with the same seed and budget
    back = loads(tuned.to_text())
    rep = entropy.analyze(back, mc_samples=2000, seed=3, mc_seconds=math.inf)
    assert rep.entropy_bits == pytest.approx(f.entropy_bits, abs=1e-9)
    assert rep.entropy_stderr_bits == pytest.approx(f.entropy_se_bits, rel=1e-5)
    # an independent estimate (another seed, more samples) agrees with the target within the
    # search tolerance plus 3 standard errors of the difference of the two estimates
    other = entropy.analyze(back, mc_samples=20_000, seed=11, mc_seconds=math.inf)
    se = math.hypot(f.entropy_se_bits, other.entropy_stderr_bits)
    assert abs(other.entropy_bits - 3.0) <= MC_TOL_SE * f.entropy_se_bits + 3 * se
    # the string entropy is below the derivational entropy (an upper bound): 'a a a' is ambiguous
    assert f.entropy_bits < entropy.derivational_entropy_bits(back) - 3 * f.entropy_se_bits
    assert "--entropy monte-carlo --mc-samples 2000 --seed 3" in tuned.header


def test_target_quantity_and_budget_are_checked():
    with pytest.raises(GrammarlabError, match="unknown entropy quantity"):
        tune(hierarchical_grammar(0.5), 20.0, method="skew", quantity="renyi")
    with pytest.raises(GrammarlabError, match="samples must be an integer >= 2"):
        MonteCarloBudget(samples=1)


def test_the_base_grammars_family_carries_over():
    g = loads("# family: toy\n# label: the base\n" + AMBIGUOUS)
    f = header_fields(tune(g, 3.0, quantity="derivational").to_text())
    assert f.family == "toy" and f.label is None  # the label names the base grammar only
    # a malformed field in the base header is quoted, not read: the tune still works
    bad = tune(loads("# entropy: renyi\n" + AMBIGUOUS), 3.0, quantity="derivational")
    assert header_fields(bad.to_text()).entropy == "derivational"


def test_a_derivational_target_on_an_unambiguous_grammar_is_its_string_entropy():
    # on an unambiguous grammar the three quantities agree: a derivational target is also the
    # exact string entropy, which the header states
    tuned = tune(hierarchical_grammar(0.5), 25.0, method="skew", quantity="derivational")
    assert abs(_reparsed_bits(tuned) - 25.0) < 1e-6
    stated = re.search(r"String entropy: ([\d.]+) bits per string \(exact\)", tuned.header)
    assert stated and abs(float(stated.group(1)) - 25.0) < 1e-6


def test_ambiguous_but_enumerable_grammar_is_tuned_exactly():
    # 'x' has two derivations, so string entropy (by enumeration) < derivational entropy; skewing
    # toward the first alternatives must hit the string entropy, not the derivational one.
    g = loads("S -> A [0.5] | B [0.5]\nA -> 'x' [0.5] | 'y' [0.5]\nB -> 'x' [0.5] | 'z' [0.5]\n")
    assert entropy.string_entropy_bits(g) == pytest.approx(1.5)  # P(x) = 1/2, P(y) = P(z) = 1/4
    tuned = tune(g, 1.0, method="skew")
    assert abs(entropy.string_entropy_bits(loads(tuned.to_text())) - 1.0) < 1e-6
    assert entropy.derivational_entropy_bits(tuned) > 1.0 + 1e-3


def test_cli_tune(tmp_path, capsys):
    base = tmp_path / "h.cfg"
    base.write_text(hierarchical_grammar(0.5).to_text())
    out = tmp_path / "t.cfg"
    rc = main(
        ["grammar", "tune", str(base), "--target-bits", "25", "--method", "skew", "-o", str(out)]
    )
    assert rc == 0
    tuned = load(out)
    assert abs(entropy.string_entropy_bits(tuned) - 25.0) < 1e-6
    assert f"Tuned from {base}" in tuned.header
    assert "--method skew" in tuned.header
    rc = main(["grammar", "tune", str(base), "--target-bits", "99", "-o", str(tmp_path / "x.cfg")])
    assert rc == 2
    assert "reachable range [36.0, 36.0]" in capsys.readouterr().err
    assert not (tmp_path / "x.cfg").exists()


def test_cli_tune_monte_carlo(tmp_path):
    base = tmp_path / "amb.cfg"
    base.write_text(AMBIGUOUS)
    out = tmp_path / "t.cfg"
    argv = ["grammar", "tune", str(base), "--target-bits", "3", "-o", str(out)]
    assert main(argv) == 2 and not out.exists()  # the default quantity: exact or refused
    assert main([*argv, "--entropy", "monte-carlo", "--mc-samples", "2000", "--seed", "1"]) == 0
    f = header_fields(out.read_text(), str(out))
    assert f.entropy == "monte-carlo"
    assert abs(f.entropy_bits - 3.0) <= MC_TOL_SE * f.entropy_se_bits + 1e-9
