"""Strings as token tuples, and their one-per-line text format (tokens separated by single spaces).

Every part of grammarlab passes strings as ``tuple[str, ...]`` of terminals; files hold one string
per line. This module is the one place that converts between the two.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from grammarlab.errors import GrammarlabError

Tokens = tuple[str, ...]


def format_string(tokens: Sequence[str]) -> str:
    return " ".join(tokens)


def format_strings(strings: Iterable[Sequence[str]]) -> str:
    """One string per line, tokens separated by single spaces, trailing newline."""
    return "".join(format_string(s) + "\n" for s in strings)


def parse_strings(text: str, source: str = "<stdin>") -> list[Tokens]:
    """Read strings in the one-per-line format. Blank lines are an error (the grammar has no
    empty string), reported with their line number."""
    out: list[Tokens] = []
    lines = text.splitlines()
    for i, line in enumerate(lines, start=1):
        toks = tuple(line.split())
        if not toks:
            if i == len(lines):
                continue
            raise GrammarlabError(
                "empty line: every line must hold one string (tokens separated by spaces)",
                file=source,
                line=i,
            )
        out.append(toks)
    return out


def read_strings(path: str | Path) -> list[Tokens]:
    p = Path(path)
    try:
        return parse_strings(p.read_text(encoding="utf-8"), str(p))
    except FileNotFoundError:
        raise GrammarlabError(f"no such file: {p}", file=str(p)) from None
