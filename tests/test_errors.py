"""User-facing errors: ``FILE:LINE: error: MESSAGE`` with an indented hint, every diagnostic
listed, a config error keeps the key at fault."""

from __future__ import annotations

import pytest

from grammarlab.errors import ConfigError, Diagnostic, GrammarError, GrammarlabError


def test_a_diagnostic_names_where_what_and_the_fix():
    assert Diagnostic("g.cfg", 3, "bad rule").format() == "g.cfg:3: error: bad rule"
    assert Diagnostic("g.cfg", None, "empty", hint="add a rule").format() == (
        "g.cfg: error: empty\n  hint: add a rule"
    )


def test_the_message_comes_first_then_the_diagnostics():
    later = [Diagnostic("a.cfg", 1, "one"), Diagnostic("a.cfg", 2, "two")]
    e = GrammarError("first", file="a.cfg", line=9, diagnostics=later)
    assert [d.line for d in e.diagnostics] == [9, 1, 2]
    assert str(e).splitlines() == [
        "a.cfg:9: error: first", "a.cfg:1: error: one", "a.cfg:2: error: two",
    ]  # fmt: skip
    assert isinstance(e, GrammarlabError)
    assert str(GrammarlabError("no file given")) == "grammarlab: error: no file given"


def test_config_error_keeps_its_key_and_an_empty_error_is_refused():
    e = ConfigError("lr must be > 0", key="lr", file="c.toml", hint="lr = 0.001")
    assert e.key == "lr" and str(e) == "c.toml: error: lr must be > 0\n  hint: lr = 0.001"
    assert ConfigError("x").key is None
    with pytest.raises(ValueError, match="needs a message"):
        GrammarlabError()
