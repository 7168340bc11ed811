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
    """Read, parse and validate a grammar file (UTF-8; a leading byte order mark is ignored)."""
    p = Path(path)
    hint = "give the path of a grammar text file (.cfg), e.g. grammars/random_26.cfg"
    if p.is_dir():
        raise GrammarError("is a directory, not a grammar file", file=str(p), hint=hint)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GrammarError(f"no such grammar file: {p}", file=str(p), hint=hint) from None
    except UnicodeDecodeError as e:
        raise GrammarError(
            f"not a UTF-8 text file ({e.reason} at byte {e.start})", file=str(p), hint=hint
        ) from None
    except OSError as e:
        raise GrammarError(f"cannot read the grammar file: {e.strerror}", file=str(p)) from None
    return loads(text, str(p))
