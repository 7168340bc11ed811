"""Tuning and derived grammars with empty alternatives and with escaped terminals: the tuned text
keeps its empty alternatives and terminals, and its exact entropy (by enumeration here: the
unambiguity proofs do not read empty right sides yet) is on target."""

from __future__ import annotations

import math

import pytest

from grammarlab.grammar import entropy
from grammarlab.grammar.load import loads
from grammarlab.grammar.tune import TOL_BITS, tune
from grammarlab.sweep.spec import derive_grammars

# finite, with the empty string (both A empty) and two derivations of "a" and of "b"
OPTIONAL = "S -> A A [0.7] | 'c' [0.3]\nA -> 'a' [0.5] | 'b' [0.3] | [0.2]\n"
# terminals that need escapes in the file: a backslash, non-ASCII, both quotes, unprintable
ESCAPED = (
    "S -> 'a\\\\b' S2 [0.5] | '\\u00e9\\u0041' [0.25] | \"it's\" [0.125] | 'q\\x00' [0.125]\n"
    "S2 -> 'x' [0.6] | [0.4]\n"
)


def _shape(g) -> list:
    return [(r.lhs, r.rhs, r.terminal_mask) for r in g.rules]


def test_entropy_of_optional_by_hand() -> None:
    g = loads(OPTIONAL)
    p = {(): 0.7 * 0.04, ("c",): 0.3}
    for x, px in (("a", 0.5), ("b", 0.3)):
        p[(x,)] = 0.7 * 2 * px * 0.2  # x then empty, or empty then x
        for y, py in (("a", 0.5), ("b", 0.3)):
            p[(x, y)] = 0.7 * px * py
    assert math.isclose(sum(p.values()), 1.0, rel_tol=1e-15)
    want = -math.fsum(v * math.log2(v) for v in p.values())
    assert math.isclose(entropy.string_entropy_bits(g), want, rel_tol=1e-12)
    report = entropy.analyze(g)
    assert report.entropy_exact and report.ambiguous is True and report.n_strings == len(p)
    assert report.min_length == 0 and report.max_length == 2


@pytest.mark.parametrize(("method", "target"), [("temper", 2.0), ("skew", 1.0), ("temper", 2.7)])
def test_tune_keeps_empty_alternatives(method: str, target: float) -> None:
    g = loads(OPTIONAL, "optional.cfg")
    tuned = tune(g, target, method=method)
    assert _shape(tuned) == _shape(g)  # the empty alternative is still there, in its place
    assert any(not r.rhs and r.prob > 0 for r in tuned.rules)
    assert abs(entropy.string_entropy_bits(tuned) - target) <= TOL_BITS
    again = loads(tuned.to_text())
    assert _shape(again) == _shape(g) and again.probs.tolist() == tuned.probs.tolist()


def test_tune_round_trips_escaped_terminals() -> None:
    g = loads(ESCAPED, "escaped.cfg")
    assert g.terminals == ("a\\b", "\u00e9A", "it's", "q\x00", "x")
    tuned = tune(g, 1.5, method="temper")
    assert tuned.terminals == g.terminals  # no backspace, no mangled accent
    assert _shape(loads(tuned.to_text())) == _shape(g)
    assert abs(entropy.string_entropy_bits(tuned) - 1.5) <= TOL_BITS


def test_derived_grammars_with_empty_alternatives(tmp_path) -> None:
    (tmp_path / "optional.cfg").write_text(OPTIONAL)
    d = {"grammar": "optional.cfg", "entropy_bits": [1.5, 2.5], "name": "opt"}
    derived = derive_grammars(d, tmp_path / "derived", tmp_path, "sweep.toml")
    assert len(derived) == 2
    for item, target in zip(derived, (1.5, 2.5), strict=True):
        g = loads(item.text)
        assert _shape(g) == _shape(loads(OPTIONAL))
        assert abs(entropy.string_entropy_bits(g) - target) <= TOL_BITS
