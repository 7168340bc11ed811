"""Finite languages: how many derivations a grammar has, every string it derives, and whether it
has enough distinct strings for a request (used by ``sample(..., unique=True)``).

Only grammars whose useful nonterminals have no cycle (see
:func:`grammarlab.grammar.structure.useful_order`) have finite languages. Both walk the
nonterminals children first, without recursion; the enumeration is exhaustive, so it is meant for
small languages.
"""

from __future__ import annotations

import math
from collections.abc import Set
from itertools import product

from grammarlab.errors import GrammarlabError
from grammarlab.grammar.parse import Grammar
from grammarlab.grammar.strings import Tokens
from grammarlab.grammar.structure import useful_order

ENUMERATE_LIMIT = 100_000  # enumerate a finite language with at most this many derivations


def count_derivations(g: Grammar) -> int | None:
    """Exact number of derivations from the start symbol (an upper bound on the number of
    distinct strings), or None when it is infinite."""
    order = useful_order(g)
    if order is None:
        return None
    count: dict[str, int] = {}
    for a in order:  # children first; a useless nonterminal derives nothing
        count[a] = sum(math.prod(count.get(b, 0) for b in r.nonterminals) for r in g.by_lhs[a])
    return count.get(g.start, 0)


def language(g: Grammar) -> set[Tokens]:
    """Every string of a finite grammar (no useful cycle). Cost grows with the number of
    derivations; meant for small languages (see :func:`count_derivations`)."""
    order = useful_order(g)
    if order is None:
        raise GrammarlabError("the grammar's language is infinite", file=g.source)
    strings: dict[str, set[Tokens]] = {}
    for a in order:  # children first; a useless nonterminal derives nothing
        out: set[Tokens] = set()
        for r in g.by_lhs[a]:
            parts = [
                {(s,)} if is_t else strings.get(s, set())
                for s, is_t in zip(r.rhs, r.terminal_mask, strict=True)
            ]
            out.update(sum(combo, ()) for combo in product(*parts))
        strings[a] = out
    return strings.get(g.start, set())


def check_distinct(g: Grammar, n: int, exclude: Set[Tokens] = frozenset()) -> None:
    """Raise :class:`GrammarlabError` when a finite grammar surely has fewer than ``n`` distinct
    strings outside ``exclude``: exactly, by enumeration, when it has at most ENUMERATE_LIMIT
    derivations, else against its number of derivations (an upper bound). Infinite languages
    always pass."""
    count = count_derivations(g)
    if count is None:
        return
    if count <= ENUMERATE_LIMIT:
        lang = language(g)
        avail = len(lang - exclude)
        if n > avail:
            extra = f", {len(lang) - avail} of them excluded" if avail < len(lang) else ""
            raise GrammarlabError(
                f"asked for {n} distinct strings but the grammar has only {len(lang)} "
                f"distinct strings{extra}",
                file=g.source,
                hint=f"ask for at most {avail}",
            )
    elif n > count:
        raise GrammarlabError(
            f"asked for {n} distinct strings but the grammar has at most {count:,} "
            "(its number of derivations)",
            file=g.source,
            hint=f"ask for at most {count:,}",
        )
