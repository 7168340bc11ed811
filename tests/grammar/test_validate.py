"""Semantic checks: one bad file per kind of error (message and line), several errors at once,
valid recursive grammars, and the exit codes of `grammarlab grammar check`."""

from __future__ import annotations

from pathlib import Path

import pytest

from grammarlab.cli import main
from grammarlab.errors import GrammarError
from grammarlab.grammar.load import load, loads
from grammarlab.grammar.parse import parse
from grammarlab.grammar.validate import validate

BAD = Path(__file__).resolve().parents[1] / "data" / "bad"


def diags_of(path: Path) -> list:
    g, syntax = parse(path.read_text(), str(path))
    assert syntax == []  # these files are syntactically fine; the problems are semantic
    return validate(g, has_syntax_errors=False)


def diags_text(text: str) -> list:
    g, syntax = parse(text, "t.cfg")
    return syntax + validate(g, has_syntax_errors=bool(syntax))


# file -> (line, words that must appear in the message)
CASES = {
    "empty.cfg": (None, ["no rules"]),
    "prob_range.cfg": (2, ["probability 0.0", "outside (0, 1]"]),
    "prob_sum.cfg": (3, ["for A sum to 0.9", "not 1"]),
    "undefined.cfg": (1, ["undefined nonterminal b"]),
    "duplicate.cfg": (3, ["duplicate rule", "first on line 1"]),
    "name_clash.cfg": (1, ["terminal 'A'", "same name as the nonterminal A"]),
    "unreachable.cfg": (2, ["B is unreachable"]),
    "inconsistent.cfg": (1, ["inconsistent", "leaks"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_error_per_file(name: str) -> None:
    line, words = CASES[name]
    diags = diags_of(BAD / name)
    assert len(diags) == 1, [d.format() for d in diags]
    d = diags[0]
    assert d.line == line
    assert d.file == str(BAD / name)
    for w in words:
        assert w in d.message
    assert d.hint  # every error says how to fix it
    assert d.format().startswith(f"{BAD / name}:{line}: error: " if line else f"{BAD / name}: ")


def test_hints_for_undefined_and_sum() -> None:
    (d,) = diags_of(BAD / "undefined.cfg")
    assert "quote it: 'b'" in d.hint
    (d,) = diags_of(BAD / "prob_sum.cfg")
    assert "lines 3, 4" in d.hint  # the rules of A are spread over two lines


def test_papers_random_grammar_never_ends() -> None:
    # S -> A; A -> 'a' A | 'b' A has no terminating rule: A is the cause (its own error, with
    # the chain hint), S only depends on it.
    diags = diags_of(BAD / "unproductive.cfg")
    by_line = {d.line: d for d in diags}
    assert sorted(by_line) == [2, 3]
    cause = by_line[3]
    assert "never ends" in cause.message and "A" in cause.message
    assert "A1 -> 'a' A2" in cause.hint and "A64 -> 'a'" in cause.hint
    assert "uses A" in by_line[2].message


def test_inconsistent_reports_q_and_leak() -> None:
    # S -> S S [0.6] | 'a' [0.4]: q = 0.6 q^2 + 0.4 has roots 1 and 2/3; the least is 2/3, so
    # 1/3 of the mass leaks. Mean matrix [[1.2]]: spectral radius 1.2.
    (d,) = diags_of(BAD / "inconsistent.cfg")
    assert "0.6666666667" in d.message
    assert "0.3333" in d.message
    assert "1.2 > 1" in d.hint


def test_inconsistent_nested() -> None:
    # A -> A A A [0.4] | 'a' [0.6]: q = 0.4 q^3 + 0.6; dividing out (q - 1) leaves
    # 0.4 q^2 + 0.4 q - 0.6 = 0, q = (-1 + sqrt(7)) / 2 = 0.8228756555. Both S and A leak.
    diags = diags_text("S -> A [1.0]\nA -> A A A [0.4] | 'a' [0.6]\n")
    assert [d.line for d in diags] == [1, 2]
    assert all("0.8228756555" in d.message for d in diags)


def test_several_errors_all_reported() -> None:
    diags = diags_of(BAD / "several.cfg")
    got = sorted((d.line, d.message.split()[0]) for d in diags)
    # line 2: A's probabilities sum to 1.1; line 3: B's sum to 2 (B defined twice);
    # line 4: duplicate of line 3; line 5: undefined c, unreachable C.
    msgs = [d.message for d in diags]
    assert any("for A sum to 1.1" in m for m in msgs)
    assert any("for B sum to 2" in m for m in msgs)
    assert any("duplicate" in m and "first on line 3" in m for m in msgs)
    assert any("undefined nonterminal c" in m for m in msgs)
    assert any("C is unreachable" in m for m in msgs)
    assert [line for line, _ in got] == [2, 3, 4, 5, 5]
    # consistency is skipped when probabilities are wrong: no "inconsistent" noise
    assert not any("inconsistent" in m for m in msgs)


def test_syntax_and_semantic_errors_together() -> None:
    text = "S -> A [1.0]\nA -> 'a' [1.5]\nB -> 'b' 0.5]\nA -> 'a' [1.5]\n"
    diags = diags_text(text)
    lines = sorted(d.line for d in diags)
    # line 3: syntax; lines 2 and 4: out of range; line 4: duplicate. Sums, undefined and
    # reachability are skipped: a dropped line could have fixed them.
    assert lines == [2, 3, 4, 4]
    assert not any("sum to" in d.message for d in diags)


def test_only_syntax_errors_is_not_empty() -> None:
    diags = diags_text("S 'a' [1.0]\n")
    assert len(diags) == 1 and "expected 'NONTERMINAL" in diags[0].message


@pytest.mark.parametrize(
    "text",
    [
        "S -> S S [0.5] | 'a' [0.5]\n",  # critical: q = 1, the mean matrix has radius exactly 1
        "S -> 'a' S [0.5] | 'a' [0.5]\n",  # geometric lengths
        "S -> A [1.0]\nA -> B [0.5] | 'a' [0.5]\nB -> A [1.0]\n",  # unit cycle with an exit
        "S -> 'x' S 'y' [0.3] | S S [0.2] | 'z' [0.5]\n",  # radius 0.7
        "S -> A B [1.0]\nA -> 'a' [0.3333333] | 'b' [0.6666667]\nB -> 'c' [1]\n",  # sum off 1e-8
    ],
)
def test_valid_recursive_grammars(text: str) -> None:
    assert diags_text(text) == []
    loads(text)  # does not raise


def test_loads_raises_with_every_diagnostic() -> None:
    with pytest.raises(GrammarError) as e:
        load(BAD / "several.cfg")
    assert len(e.value.diagnostics) == 5
    assert f"{BAD / 'several.cfg'}:2: error:" in str(e.value)


def test_nan_probability_is_not_a_number() -> None:
    diags = diags_text("S -> 'a' [nan]\n")
    assert len(diags) == 1 and "is not a number" in diags[0].message and diags[0].line == 1


def test_cli_check_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "ok.cfg"
    f.write_text("S -> 'a' S [0.5] | 'a' [0.5]\n")
    assert main(["grammar", "check", str(f)]) == 0
    err = capsys.readouterr().err
    assert "1 grammar file(s) valid" in err


@pytest.mark.parametrize("name", sorted(CASES) + ["several.cfg", "unproductive.cfg"])
def test_cli_check_invalid(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["grammar", "check", str(BAD / name)])
    out, err = capsys.readouterr()
    assert rc != 0
    assert out == ""
    assert "error:" in err and str(BAD / name) in err
    assert "Traceback" not in err


def test_cli_check_mixed_and_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ok = tmp_path / "ok.cfg"
    ok.write_text("S -> 'a' [1.0]\n")
    rc = main(["grammar", "check", str(ok), str(BAD / "undefined.cfg"), str(tmp_path / "no.cfg")])
    err = capsys.readouterr().err
    assert rc != 0
    assert "2 of 3 grammar file(s) invalid" in err
    assert "no such grammar file" in err
    assert f"{BAD / 'undefined.cfg'}:1: error: undefined nonterminal b" in err


@pytest.mark.parametrize(
    "text",
    [
        "S -> [1.0]\n",  # the language is the empty string alone
        "S -> '(' S ')' S [0.4] | [0.6]\n",  # Dyck-1 with the empty string
        "S -> S S [0.5] | [0.5]\n",  # critical; derives only the empty string
        "S -> S [0.5] | [0.5]\n",  # a unit self-loop with an empty exit
        "S -> A B [1.0]\nA -> [1.0]\nB -> 'b' [0.5] | [0.5]\n",
        "S -> 'a' S [0.4] | [0.6]\n",
    ],
)
def test_valid_grammars_with_empty_alternatives(text: str) -> None:
    assert diags_text(text) == []


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("S -> 'a' S [0.4]\n| [0.7]\n", 1, "sum to 1.1"),
        ("S -> [0.5] | 'a' [0.25]\nS -> [0.25]\n", 2, "duplicate rule 'S -> [empty]'"),
        ("S -> 'a' [1.0]\nA -> [1.0]\n", 2, "A is unreachable"),
        ("S -> S S [0.6] | [0.4]\n", 1, "ends with probability 0.6666666667"),  # q = 2/3
        ("S -> A [0.5] | [0.5]\nA -> A 'a' [1.0]\n", 2, "the derivation never ends"),
        ("S -> 'a' [1.0] | [0]\n", 1, "probability 0.0 of 'S -> [empty]'"),
    ],
)
def test_errors_with_empty_alternatives(text: str, line: int, words: str) -> None:
    diags = diags_text(text)
    assert len(diags) == 1, diags
    assert diags[0].line == line and words in diags[0].message, diags[0].format()
