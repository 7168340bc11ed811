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


def test_every_shipped_file_is_listed():
    assert sorted(p.name for p in GRAMMARS.glob("*.cfg")) == sorted(SHIPPED)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_file_is_what_grammar_new_writes(name, tmp_path):
    args, _, _ = SHIPPED[name]
    out = tmp_path / name
    assert main(["grammar", "new", *args, "-o", str(out)]) == 0
    assert (GRAMMARS / name).read_bytes() == out.read_bytes()
    # The header names the command that wrote the file.
    assert f"Written by: grammarlab grammar new {' '.join(args)} -o FILE" in load(out).header


@pytest.mark.parametrize("name", sorted(SHIPPED))
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
    assert f"{len(SHIPPED)} grammar file(s) valid" in capsys.readouterr().err


def test_headers_cite_the_paper_by_title():
    title = "Rethinking memorization in LLMs: on learning by rote vs. with understanding"
    for path in [*GRAMMARS.glob("*.cfg"), GRAMMARS / "README.md"]:
        text = " ".join(line.lstrip("# ") for line in path.read_text().splitlines())
        assert title in text, path
        assert "seed 0" not in text, path
