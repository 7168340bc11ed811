"""Reading a grammar: parse the text, then validate it, and raise every problem at once."""

from __future__ import annotations

from pathlib import Path

from grammarlab.errors import GrammarError
from grammarlab.grammar.parse import Grammar, parse
from grammarlab.grammar.validate import validate


def loads(text: str, source: str = "<string>") -> Grammar:
    """Parse and validate grammar text; raise :class:`GrammarError` listing every problem."""
    grammar, diags = parse(text, source)
    diags = diags + validate(grammar, has_syntax_errors=bool(diags))
    if diags:
        raise GrammarError(diagnostics=diags)
    return grammar


def load(path: str | Path) -> Grammar:
    """Read, parse and validate a grammar file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GrammarError(f"no such grammar file: {p}", file=str(p)) from None
    except UnicodeDecodeError as e:
        raise GrammarError(f"not a UTF-8 text file ({e.reason})", file=str(p)) from None
    return loads(text, str(p))
