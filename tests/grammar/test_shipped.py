"""The grammars shipped in grammars/: reproducible by the CLI, readable by nltk, pinned
entropies."""

from __future__ import annotations

import math
from pathlib import Path

import nltk
import pytest

from grammarlab.cli import main
from grammarlab.grammar import entropy
from grammarlab.grammar.load import load

GRAMMARS = Path(__file__).resolve().parents[2] / "grammars"
H7_BITS = 64 * math.log2(7)  # 179.67071501168667: written with repr() in the command below


def _h2(p: float) -> float:
    """Binary entropy in bits."""
    return -p * math.log2(p) - (1 - p) * math.log2(1 - p)


# file -> (arguments of `grammarlab grammar new` before -o, hand-derived entropy in bits/string,
# tokens per string). Derivations:
# * random, l letters uniform: 64 independent positions of log2(l) bits each -> 64 log2 l.
# * random_26_H2 / _H7: 'a' oversampled so that one position carries log2 2 = 1 bit / log2 7
#   bits, the per-position entropy of the 2- / 7-letter uniform grammar -> 64 and 64 log2 7.
# * hierarchical: a derivation makes 36 binary choices (A16 once; A13, A14, A15 once each;
#   2 + 3 + 3 = 8 nonterminals of A10..A12; 3 * 8 = 24 of A7..A9), each with probabilities
#   (p, 1 - p), and every string has one derivation -> 36 h(p): p = 0.5 -> 36 bits
#   (0.5 bits/token over 72 tokens), p = 0.75 -> 29.206..., p = 0.9 -> 16.883...
SHIPPED: dict[str, tuple[list[str], float, int]] = {
    "random_2.cfg": (["random", "--alphabet-size", "2", "--length", "64"], 64 * math.log2(2), 64),
    "random_7.cfg": (["random", "--alphabet-size", "7", "--length", "64"], 64 * math.log2(7), 64),
    "random_26.cfg": (
        ["random", "--alphabet-size", "26", "--length", "64"],
        64 * math.log2(26),
        64,
    ),
    "random_26_H2.cfg": (
        ["random", "--alphabet-size", "26", "--length", "64", "--oversample", "a"]
        + ["--target-bits", "64"],
        64.0,
        64,
    ),
    "random_26_H7.cfg": (
        ["random", "--alphabet-size", "26", "--length", "64", "--oversample", "a"]
        + ["--target-bits", repr(H7_BITS)],
        H7_BITS,
        64,
    ),
    "hierarchical_p050.cfg": (["hierarchical", "-p", "0.5"], 36 * _h2(0.5), 72),
    "hierarchical_p075.cfg": (["hierarchical", "-p", "0.75"], 36 * _h2(0.75), 72),
    "hierarchical_p090.cfg": (["hierarchical", "-p", "0.9"], 36 * _h2(0.9), 72),
}


# The field's formal languages (grammarlab/grammar/formal.py): file -> (arguments of `grammarlab
# grammar new` before -o, the string entropy in bits/string derived by hand, None where there is
# no closed form). Derivations (also in tests/grammar/test_formal.py):
# * dyck2_empty, the textbook S -> (S)S | [S]S | (empty): each S node stops (1-p) or opens one of
#   k pairs (p/k each), with 1/(1-2p) S nodes expected -> H0 = (h(p) + p log2 k) / (1-2p).
# * dyck2 (no empty string) is the textbook distribution given x != "": P(x) / p, so
#   H = (H0 + (1-p) log2(1-p)) / p + log2 p.
# * dyck2_depth4: level by level from the bound up, H(S_d) = (h(p) + H(P_d)) / (1-p) with
#   H(P_D) = log2 k and H(P_d) = log2 k + h(p) + p H(S_(d+1)).
# * anbn: n geometric, P(a^n b^n) = p^(n-1) (1-p) -> h(p) / (1-p).
# * palindrome_marked: |w| = m with probability p^m (1-p), m letters of log2 l bits each ->
#   (h(p) + p log2 l) / (1-p).
# * expr: E instances I = 1 / (1 - paren / ((1-add)(1-mul))), expansions c_E = I / (1-add),
#   c_T = c_F = I / ((1-add)(1-mul)) -> c_E h(add) + c_T h(mul) + c_F (h(paren) + (1-paren)
#   log2 v).
# * english: ambiguous (PP attachment), no closed form; the header's Monte Carlo estimate lies
#   below the derivational entropy.
def _dyck_bounded_bits(k: int, p: float, depth: int) -> float:
    h_s = 0.0
    for d in range(depth, 0, -1):
        h_pair = math.log2(k) + (0.0 if d == depth else _h2(p) + p * h_s)
        h_s = (_h2(p) + h_pair) / (1 - p)
    return h_s


def _expr_bits(v: int, add: float, mul: float, paren: float) -> float:
    r = 1 / ((1 - add) * (1 - mul))
    inst = 1 / (1 - paren * r)
    c_e, c_t = inst / (1 - add), inst * r
    return c_e * _h2(add) + c_t * _h2(mul) + c_t * (_h2(paren) + (1 - paren) * math.log2(v))


_DYCK0 = (_h2(0.4) + 0.4 * math.log2(2)) / (1 - 2 * 0.4)
FORMAL_SHIPPED: dict[str, tuple[list[str], float | None]] = {
    "dyck2.cfg": (
        ["dyck", "-k", "2", "-p", "0.4"],
        (_DYCK0 + 0.6 * math.log2(0.6)) / 0.4 + math.log2(0.4),
    ),  # fmt: skip
    "dyck2_empty.cfg": (["dyck", "-k", "2", "-p", "0.4", "--empty"], _DYCK0),
    "dyck2_depth4.cfg": (
        ["dyck", "-k", "2", "-p", "0.4", "--depth", "4"],
        _dyck_bounded_bits(2, 0.4, 4),
    ),
    "anbn.cfg": (["anbn", "-p", "0.8"], _h2(0.8) / 0.2),
    "palindrome_marked.cfg": (
        ["palindrome", "--alphabet-size", "2", "-p", "0.8"],
        (_h2(0.8) + 0.8) / 0.2,
    ),
    "expr.cfg": (
        ["expr", "--variables", "3", "--add", "0.3", "--mul", "0.3", "--paren", "0.2"],
        _expr_bits(3, 0.3, 0.3, 0.2),
    ),
    "english.cfg": (["english", "-p", "0.25", "--mc-samples", "20000"], None),
}


def test_every_shipped_file_is_listed():
    assert sorted(p.name for p in GRAMMARS.glob("*.cfg")) == sorted({**SHIPPED, **FORMAL_SHIPPED})


@pytest.mark.parametrize("name", sorted(FORMAL_SHIPPED))
def test_formal_file_regenerates_from_its_header_command(name, tmp_path):
    header = load(GRAMMARS / name).header
    written = [h for h in header.splitlines() if h.startswith("Written by: ")]
    assert len(written) == 1
    words = written[0].removeprefix("Written by: ").split()
    assert words[:3] == ["grammarlab", "grammar", "new"] and words[-2:] == ["-o", "FILE"]
    assert words[3:-2] == FORMAL_SHIPPED[name][0]
    out = tmp_path / name
    assert main(["grammar", *words[2:-1], str(out)]) == 0
    # An engine that proves more (an unambiguity proof: the header turns from a Monte Carlo
    # estimate into an exact entropy) changes the header: regenerate the file with the command.
    assert (GRAMMARS / name).read_bytes() == out.read_bytes(), (
        f"regenerate it: {' '.join(words[:-1])} grammars/{name}"
    )


@pytest.mark.parametrize("name", sorted(FORMAL_SHIPPED))
def test_formal_file_entropy_matches_hand_derivation(name):
    _, bits = FORMAL_SHIPPED[name]
    g = load(GRAMMARS / name)
    header = " ".join(g.header.splitlines())
    h_d = entropy.derivational_entropy_bits(g)
    rep = entropy.analyze(g, mc_samples=500)
    if bits is None:  # ambiguous: the estimate is below the derivational entropy
        assert rep.ambiguous is True and "witness" in header
        assert rep.entropy_bits < h_d - 5 * rep.entropy_stderr_bits
        assert "derivational entropy (exact, an upper bound" in header.lower()
        assert f"{h_d:.9f} bits per derivation" in header
        return
    # unambiguous: string entropy = derivational entropy = the closed form, whether the engine
    # proves it (exact) or estimates it (every Monte Carlo term is zero)
    assert h_d == pytest.approx(bits, abs=1e-9)
    assert rep.entropy_bits == pytest.approx(bits, abs=1e-9)
    if rep.entropy_exact:
        assert f"Exact entropy: {bits:.9f} bits per string" in header
    else:
        assert "Estimated entropy (Monte Carlo" in header
        assert f"{bits:.6f} +- 0.000000 bits per string" in header


def test_formal_headers_cite_their_source():
    for name, source in [
        ("dyck2.cfg", "Chomsky and Schutzenberger"),
        ("expr.cfg", "Aho, Sethi and Ullman"),
        ("anbn.cfg", "non-regular"),
        ("english.cfg", "attachment ambiguity"),
    ]:
        assert source in " ".join(load(GRAMMARS / name).header.splitlines()), name


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_file_is_what_grammar_new_writes(name, tmp_path):
    args, _, _ = SHIPPED[name]
    out = tmp_path / name
    assert main(["grammar", "new", *args, "-o", str(out)]) == 0
    assert (GRAMMARS / name).read_bytes() == out.read_bytes()
    # The header names the command that wrote the file.
    assert f"Written by: grammarlab grammar new {' '.join(args)} -o FILE" in load(out).header


@pytest.mark.parametrize("name", sorted({**SHIPPED, **FORMAL_SHIPPED}))
def test_shipped_file_loads_in_nltk(name):
    # No terminal of these grammars contains '#', so everything after one is a comment.
    lines = (line.split("#")[0].strip() for line in (GRAMMARS / name).read_text().splitlines())
    g = nltk.PCFG.fromstring("\n".join(line for line in lines if line))
    ours = load(GRAMMARS / name)
    assert len(g.productions()) == len(ours.rules)
    assert str(g.start()) == ours.start


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_header_entropy_matches_hand_derivation(name):
    _, bits, tokens = SHIPPED[name]
    header = load(GRAMMARS / name).header
    assert (
        f"Exact entropy: {bits:.9f} bits per string, {bits / tokens:.9f} bits per token" in header
    )


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_exact_string_entropy(name):
    _, bits, _ = SHIPPED[name]
    assert abs(entropy.string_entropy_bits(load(GRAMMARS / name)) - bits) < 1e-6


def test_pinned_values_spelled_out():
    # The formulas above evaluate to the numbers quoted in grammars/README.md.
    assert SHIPPED["hierarchical_p050.cfg"][1] == 36.0
    assert SHIPPED["hierarchical_p075.cfg"][1] == pytest.approx(29.206012480529, abs=1e-9)
    assert SHIPPED["hierarchical_p090.cfg"][1] == pytest.approx(16.883841369214, abs=1e-9)
    assert SHIPPED["random_26.cfg"][1] == pytest.approx(300.828141961030, abs=1e-9)


def test_grammar_check_accepts_all_shipped(capsys):
    files = sorted(str(p) for p in GRAMMARS.glob("*.cfg"))
    assert main(["grammar", "check", *files]) == 0
    assert f"{len(SHIPPED) + len(FORMAL_SHIPPED)} grammar file(s) valid" in capsys.readouterr().err


def test_headers_cite_the_paper_by_title():
    title = "Rethinking memorization in LLMs: on learning by rote vs. with understanding"
    for path in [*(GRAMMARS / name for name in SHIPPED), GRAMMARS / "README.md"]:
        text = " ".join(line.lstrip("# ") for line in path.read_text().splitlines())
        assert title in text, path
        assert "seed 0" not in text, path
