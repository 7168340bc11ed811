"""Semantic checks of a parsed grammar (placeholder until the validation work lands)."""

from __future__ import annotations

from grammarlab.errors import Diagnostic
from grammarlab.grammar import Grammar


def validate(grammar: Grammar, has_syntax_errors: bool = False) -> list[Diagnostic]:
    """Every semantic problem of ``grammar`` as a diagnostic (empty list: valid)."""
    if not grammar.rules and not has_syntax_errors:
        return [Diagnostic(grammar.source, None, "the grammar file has no rules")]
    return []
