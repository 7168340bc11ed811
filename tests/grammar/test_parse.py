"""The grammar-file parser: notation, comments, continuation lines, header, round trip through
to_text (and through nltk), and syntax errors with their line numbers."""

from __future__ import annotations

import nltk
import pytest

from grammarlab.grammar.load import loads
from grammarlab.grammar.parse import format_prob, parse

TEXT = """\
# A small grammar.
# Second header line.

S -> A B [0.5]   # a comment after a rule
   | 'x' [0.5]
# a comment on its own line
A -> 'a#b' [0.25] | "it's" [0.75]
B -> 'b' [1.0]
"""


def test_rules_symbols_and_start() -> None:
    g = loads(TEXT, "t.cfg")
    assert g.start == "S"
    assert g.nonterminals == ("S", "A", "B")
    assert g.terminals == ("x", "a#b", "it's", "b")
    assert [(r.lhs, r.rhs, r.prob, r.line) for r in g.rules] == [
        ("S", ("A", "B"), 0.5, 4),
        ("S", ("x",), 0.5, 5),  # the continuation line keeps its own line number
        ("A", ("a#b",), 0.25, 7),  # '#' inside quotes is not a comment
        ("A", ("it's",), 0.75, 7),
        ("B", ("b",), 1.0, 8),
    ]
    assert g.rules[0].terminal_mask == (False, False)
    assert g.rules[1].terminal_mask == (True,)


def test_header_capture() -> None:
    g = loads(TEXT)
    assert g.header == "A small grammar.\nSecond header line."
    assert loads("S -> 'a' [1.0]\n# not a header\n").header == ""


def test_left_side_spread_over_lines() -> None:
    g = loads("S -> A [1.0]\nA -> 'a' [0.5]\nA -> 'b' [0.25]\n| 'c' [0.25]\n")
    assert [r.rhs for r in g.by_lhs["A"]] == [("a",), ("b",), ("c",)]
    assert g.nonterminals == ("S", "A")


def test_to_text_round_trip() -> None:
    g = loads(TEXT)
    text = g.to_text()
    g2 = loads(text)
    strip = [(r.lhs, r.rhs, r.prob, r.terminal_mask) for r in g.rules]
    assert [(r.lhs, r.rhs, r.prob, r.terminal_mask) for r in g2.rules] == strip
    assert g2.header == g.header
    assert g2.to_text() == text  # a fixed point


def test_to_text_probabilities_exact() -> None:
    # 1/3 and 2/3 survive the trip as the same floats, written without exponents
    g = loads("S -> 'a' [0.3333333333333333] | 'b' [0.6666666666666666]\n")
    assert [r.prob for r in loads(g.to_text()).rules] == [1 / 3, 2 / 3]
    assert format_prob(1e-5) == "0.00001"


def test_nltk_reads_to_text() -> None:
    g = loads(TEXT)
    body = "\n".join(ln for ln in g.to_text().splitlines() if not ln.startswith("#"))
    pcfg = nltk.PCFG.fromstring(body)
    assert str(pcfg.start()) == "S"
    got = sorted(
        (str(p.lhs()), tuple(str(s) for s in p.rhs()), p.prob()) for p in pcfg.productions()
    )
    want = sorted((r.lhs, r.rhs, r.prob) for r in g.rules)
    assert got == want


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("S -> 'a' [1.0]\nA -> 'b'\n", 2, "has no probability"),  # missing probability
        ("S -> 'a' | 'b' [1.0]\n", 1, "no probability before '|'"),
        ("S -> A [1.0]\nA -> 'a [1.0]\n", 2, "unterminated quote"),
        ("S -> 'a' [0.5x]\n", 1, "is not a number"),  # bad number
        ("S -> 'a' [1.0]\nA 'b' [1.0]\n", 2, "expected 'NONTERMINAL -> ...'"),  # missing arrow
        ("S -> A [1.0]\nA -> [1.0]\n", None, None),  # an empty alternative is a rule
        ("S -> 'a' [0.2_5] | 'b' [0.75]\n", 1, "[0.2_5] is not a number"),  # not 0.25
        ("S -> 'a' [0x1] | 'b' [0.75]\n", 1, "is not a number"),
        ("S -> 'a' [inf]\n", 1, "is not a number"),
        ("S -> 'a' [1.0]\nA -> '\\x' [1.0]\n", 2, "truncated"),  # no traceback
        ("S -> '\\xZZ' [1.0]\n", 1, "bad escape"),
        ("S -> '\\N{NO SUCH CHARACTER}' [1.0]\n", 1, "unknown Unicode character name"),
        ("S -> '\\N{' [1.0]\n", 1, "bad escape"),
        ("S -> '\\q' [1.0]\n", 1, "unknown escape '\\q'"),
        ("S -> '\\n' [1.0]\n", 1, "contains whitespace"),  # an escape that decodes to space
        ("S -> 'a' [0.5] [0.5]\n", 1, "text after the probability"),
        ("S -> 'a' [1.0]\n\n| 'b' [0.5]\n", None, None),  # valid continuation after a blank
        ("| 'b' [1.0]\n", 1, "must continue a rule"),
        ("S -> 'a b' [1.0]\n", 1, "contains whitespace"),
        ("S -> 'a' [0.5\n", 1, "unterminated probability"),
    ],
)
def test_syntax_errors_with_lines(text: str, line: int | None, words: str | None) -> None:
    _g, diags = parse(text, "s.cfg")
    if words is None:
        assert diags == []
        return
    assert len(diags) == 1, diags
    assert diags[0].line == line
    assert words in diags[0].message
    assert diags[0].format().startswith(f"s.cfg:{line}: error: ")


@pytest.mark.parametrize(
    ("text", "rules"),
    [
        ("S -> 'a' S [0.4] | [0.6]\n", [(("a", "S"), 0.4), ((), 0.6)]),
        ("S -> [0.6] | 'a' S [0.4]\n", [((), 0.6), (("a", "S"), 0.4)]),  # empty first
        ("S -> 'a' [0.3] | [0.3] | 'b' [0.4]\n", [(("a",), 0.3), ((), 0.3), (("b",), 0.4)]),
        ("S -> 'a' S [0.4]\n   | [0.6]\n", [(("a", "S"), 0.4), ((), 0.6)]),  # continuation
        ("S -> [1.0]\n", [((), 1.0)]),  # the language is the empty string alone
    ],
)
def test_empty_alternatives(text: str, rules: list) -> None:
    g = loads(text)
    assert [(r.rhs, r.prob) for r in g.rules] == rules
    empty = [r for r in g.rules if not r.rhs]
    assert all(r.terminal_mask == () and r.nonterminals == () for r in empty)
    assert all(r.rhs_text() == "" for r in empty)
    again = loads(g.to_text())  # writes the empty alternative as a probability alone
    assert [(r.lhs, r.rhs, r.prob, r.terminal_mask) for r in again.rules] == [
        (r.lhs, r.rhs, r.prob, r.terminal_mask) for r in g.rules
    ]
    assert "|  [" not in g.to_text() and "->  [" not in g.to_text()


@pytest.mark.parametrize(
    "text",
    [
        "S -> '(' S ')' S [0.4] | [0.6]\n",
        "S -> [0.6] | '(' S ')' S [0.4]\n",
        "S -> '(' S ')' S [0.3] | A [0.1] | [0.6]\nA -> [0.5] | 'a' A [0.5]\n",
        "S -> [1.0]\n",
    ],
)
def test_empty_alternatives_agree_with_nltk(text: str) -> None:
    """nltk's PCFG.fromstring is the notation's reference: the same productions (an empty right
    side for a probability alone) from the same text, and from what to_text writes."""

    def nltk_rules(t: str) -> list:
        pcfg = nltk.PCFG.fromstring(t)
        return sorted(
            (str(p.lhs()), tuple(str(x) for x in p.rhs()), p.prob()) for p in pcfg.productions()
        )

    g = loads(text)
    ours = sorted((r.lhs, r.rhs, r.prob) for r in g.rules)
    assert nltk_rules(text) == ours
    assert nltk_rules(g.to_text()) == ours


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'a\\\\b'", "a\\b"),  # an escaped backslash: a, backslash, b (never a backspace)
        ("'a\\b'", "a\b"),  # a Python escape: a, backspace
        ("'\\u00e9\\u0041'", "\u00e9A"),
        ("'\u00e9\\u0041'", "\u00e9A"),  # a non-ASCII character next to an escape
        ("'\\N{LATIN SMALL LETTER E WITH ACUTE}'", "\u00e9"),
        ("'\\x41\\x00'", "A\x00"),
        ("'it\\'s'", "it's"),
        ('"it\'s"', "it's"),
        ("'say \"hi\"'".replace(" ", "_"), 'say_"hi"'),
        ("'both\\'\"'", "both'\""),
        ("'#'", "#"),
        ("'\u4e2d\U0001f600'", "\u4e2d\U0001f600"),
        ("'\\U0001f600\\u200b'", "\U0001f600\u200b"),  # unprintable zero-width space
    ],
)
def test_terminal_escapes_round_trip(literal: str, value: str) -> None:
    g = loads(f"S -> {literal} S2 [1.0]\nS2 -> 'z' [1.0]\n")
    assert g.rules[0].rhs[0] == value
    text = g.to_text()
    assert loads(text).rules[0].rhs[0] == value  # written back, read back: the same token
    assert loads(loads(text).to_text()).to_text() == text


@pytest.mark.parametrize("text", ["S -> '(' S ')' S [0.4] |\n", "S -> 'a' [0.5] | | 'b' [0.5]\n"])
def test_an_empty_alternative_without_probability_says_how_to_write_one(text: str) -> None:
    _g, diags = parse(text, "s.cfg")
    assert len(diags) == 1 and diags[0].line == 1
    assert "has no probability" in diags[0].message
    assert "its probability alone" in diags[0].hint
