"""Reading a grammar: every syntax and validation problem raised at once; file errors (missing,
a folder, not UTF-8) name the file; a byte order mark is ignored."""

from __future__ import annotations

import pytest

from grammarlab.errors import GrammarError
from grammarlab.grammar.load import load, loads


def test_all_syntax_errors_reported_at_once() -> None:
    text = "S -> A [1.0]\nA -> 'a [1.0]\nB 'b' [1.0]\nA -> 'a' [0.5x]\n"
    with pytest.raises(GrammarError) as e:
        loads(text, "m.cfg")
    assert [d.line for d in e.value.diagnostics] == [2, 3, 4]
    assert "m.cfg:3: error:" in str(e.value)


def test_file_problems_name_the_file_and_a_byte_order_mark_is_ignored(tmp_path) -> None:
    f = tmp_path / "g.cfg"
    f.write_bytes(b"\xef\xbb\xbfS -> 'a' [0.5] | 'b' [0.5]\n")
    g = load(f)
    assert g.start == "S" and g.terminals == ("a", "b")
    for path, words in [
        (tmp_path / "nope.cfg", "no such grammar file"),
        (tmp_path, "is a directory, not a grammar file"),
    ]:
        with pytest.raises(GrammarError, match=words) as e:
            load(path)
        assert str(e.value).startswith(f"{path}: error: ")
    f.write_bytes(b"S -> '\xff' [1.0]\n")
    with pytest.raises(GrammarError, match="not a UTF-8 text file") as e:
        load(f)
    assert "byte 6" in str(e.value)


def test_validation_problems_are_raised_with_the_syntax_ones() -> None:
    with pytest.raises(GrammarError) as e:
        loads("S -> A [1.0]\nA -> 'a' [0.7]\n", "v.cfg")  # A's probabilities sum to 0.7
    assert [d.line for d in e.value.diagnostics] == [2]
    assert str(e.value).startswith("v.cfg:2: error: ")
