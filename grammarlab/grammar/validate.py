"""Semantic checks of a parsed grammar, reporting *every* problem at once.

Checks, in the order they are reported:

1. the file has rules at all;
2. each probability lies in (0, 1];
3. the probabilities of each left side sum to 1 (within ``SUM_TOL``);
4. every bare (unquoted) symbol on a right side is defined by some rule;
5. no rule appears twice;
6. no terminal is named like a nonterminal;
7. every nonterminal is reachable from the start symbol;
8. every nonterminal derives at least one finite string (is "productive");
9. the grammar is consistent: from every reachable nonterminal, derivations end with probability 1.

An empty alternative (``A -> [p]``) is an ordinary rule with no symbols: it counts in its left
side's sum, makes its left side productive at once and ends a derivation (a termination
probability's product over no nonterminals is 1). A grammar whose only string is the empty one
(``S -> [1.0]``) is valid.

Checks that would only repeat an earlier error are skipped: the consistency check (9) needs valid
probabilities and no undefined or unproductive nonterminal; when the parser dropped lines with
syntax errors, the checks that need the whole rule set (3, 4, 7, 8, 9) are skipped. Productivity
treats undefined symbols as if they were defined, so it reports only genuine endless recursion.
"""

from __future__ import annotations

import math

from grammarlab.errors import Diagnostic
from grammarlab.grammar.parse import Grammar, Rule
from grammarlab.grammar.structure import (
    productive,
    reachable,
    spectral_radius,
    termination_probabilities,
)

SUM_TOL = 1e-6  # allowed |sum of a left side's probabilities - 1|
CONSISTENCY_TOL = 1e-9  # a termination probability below 1 - this leaks mass

_CHAIN_HINT = (
    "a rule like A -> 'a' A never stops by itself; add a terminating alternative (A -> 'a'), or, "
    "for strings of a fixed length n, write a chain: S -> A1 [1.0]; A1 -> 'a' A2 [0.5] | "
    "'b' A2 [0.5]; ...; A64 -> 'a' [0.5] | 'b' [0.5] "
    "(`grammarlab grammar new random --length 64` writes one)"
)


def validate(grammar: Grammar, has_syntax_errors: bool = False) -> list[Diagnostic]:
    """Every semantic problem of ``grammar`` as a diagnostic (empty list: valid).

    ``has_syntax_errors`` says the parser skipped some lines, so checks that need every rule are
    left out (they would report problems that fixing the syntax removes).
    """
    g = grammar
    if not g.rules:
        if has_syntax_errors:
            return []
        return [
            Diagnostic(
                g.source,
                None,
                "the grammar file has no rules",
                "write rules like: S -> 'a' S [0.5] | 'a' [0.5] (the first left side is the start)",
            )
        ]
    d: list[Diagnostic] = []
    bad_probs = _check_prob_range(g, d)
    n_before = len(d)
    if not has_syntax_errors:
        _check_sums(g, d)
    bad_sums = len(d) > n_before
    undefined = _undefined(g)
    if not has_syntax_errors:
        _report_undefined(g, undefined, d)
    _check_duplicates(g, d)
    _check_name_clash(g, d)
    if has_syntax_errors:
        return d
    _check_unreachable(g, d)
    unproductive = _check_productive(g, set(undefined), d)
    if not (bad_probs or bad_sums or undefined or unproductive):
        _check_consistent(g, d)
    return d


def _rule_text(r: Rule) -> str:
    return f"{r.lhs} -> {r.rhs_text() or '[empty]'}"


def _check_prob_range(g: Grammar, d: list[Diagnostic]) -> bool:
    bad = False
    for r in g.rules:
        if not (0.0 < r.prob <= 1.0):  # also catches nan
            bad = True
            hint = (
                "delete rules that never apply"
                if r.prob == 0.0
                else "probabilities are numbers in (0, 1], e.g. [0.25]"
            )
            d.append(
                Diagnostic(
                    g.source,
                    r.line,
                    f"probability {r.prob!r} of '{_rule_text(r)}' is outside (0, 1]",
                    hint,
                )
            )
    return bad


def _check_sums(g: Grammar, d: list[Diagnostic]) -> None:
    for lhs, rules in g.by_lhs.items():
        probs = [r.prob for r in rules]
        if not all(math.isfinite(p) for p in probs):
            continue  # already reported as out of range
        total = math.fsum(probs)
        if abs(total - 1.0) > SUM_TOL:
            lines = sorted({r.line for r in rules})
            where = f"line {lines[0]}" if len(lines) == 1 else f"lines {_join(lines)}"
            d.append(
                Diagnostic(
                    g.source,
                    rules[0].line,
                    f"the probabilities of the {len(rules)} rule(s) for {lhs} sum to "
                    f"{total:.12g}, not 1 (off by {total - 1.0:+.3g})",
                    f"make the probabilities of {lhs} ({where}) add up to 1",
                )
            )


def _undefined(g: Grammar) -> dict[str, list[int]]:
    """Bare symbols used on a right side but never defined -> lines where they are used."""
    out: dict[str, list[int]] = {}
    for r in g.rules:
        for b in r.nonterminals:
            if b not in g.by_lhs:
                lines = out.setdefault(b, [])
                if r.line not in lines:
                    lines.append(r.line)
    return out


def _report_undefined(g: Grammar, undefined: dict[str, list[int]], d: list[Diagnostic]) -> None:
    for sym, lines in undefined.items():
        also = f" (also used on line {_join(lines[1:])})" if len(lines) > 1 else ""
        d.append(
            Diagnostic(
                g.source,
                lines[0],
                f"undefined nonterminal {sym}{also}",
                f"if {sym} is a terminal, quote it: '{sym}'; otherwise add a rule {sym} -> ...",
            )
        )


def _check_duplicates(g: Grammar, d: list[Diagnostic]) -> None:
    first: dict[tuple, Rule] = {}
    for r in g.rules:
        key = (r.lhs, r.rhs, r.terminal_mask)
        if key in first:
            d.append(
                Diagnostic(
                    g.source,
                    r.line,
                    f"duplicate rule '{_rule_text(r)}' (first on line {first[key].line})",
                    "delete one copy and put the combined probability on the other",
                )
            )
        else:
            first[key] = r


def _check_name_clash(g: Grammar, d: list[Diagnostic]) -> None:
    reported: set[str] = set()
    for r in g.rules:
        for s, is_term in zip(r.rhs, r.terminal_mask, strict=True):
            if is_term and s in g.by_lhs and s not in reported:
                reported.add(s)
                d.append(
                    Diagnostic(
                        g.source,
                        r.line,
                        f"terminal '{s}' has the same name as the nonterminal {s} "
                        f"(defined on line {g.by_lhs[s][0].line})",
                        "rename one of them; a token named like a nonterminal is easy to misread "
                        "and tools that ignore quoting would confuse the two",
                    )
                )


def _check_unreachable(g: Grammar, d: list[Diagnostic]) -> None:
    reach = reachable(g)
    for nt in g.nonterminals:
        if nt not in reach:
            d.append(
                Diagnostic(
                    g.source,
                    g.by_lhs[nt][0].line,
                    f"nonterminal {nt} is unreachable from the start symbol {g.start}",
                    f"use {nt} in a rule reachable from {g.start} (the first rule's left side is "
                    "the start symbol) or delete its rules",
                )
            )


def _check_productive(g: Grammar, undefined: set[str], d: list[Diagnostic]) -> list[str]:
    """Report nonterminals that never derive a finite string. Those on a cycle of such
    nonterminals are the cause; the others only depend on them."""
    prod = productive(g, undefined)
    bad = [nt for nt in g.nonterminals if nt not in prod]
    uses = {a: {b for r in g.by_lhs[a] for b in r.nonterminals if b in bad} for a in bad}
    for nt in bad:
        if _on_cycle(nt, uses):
            d.append(
                Diagnostic(
                    g.source,
                    g.by_lhs[nt][0].line,
                    f"the derivation never ends: every rule for {nt} produces {nt} again "
                    f"(or another nonterminal that never ends), so {nt} derives no finite string",
                    _CHAIN_HINT,
                )
            )
        else:
            causes = sorted(uses[nt])
            d.append(
                Diagnostic(
                    g.source,
                    g.by_lhs[nt][0].line,
                    f"{nt} derives no finite string: every rule for {nt} uses "
                    f"{_join(causes)}, whose derivation never ends",
                    f"fix {_join(causes)} (see its own error)",
                )
            )
    return bad


def _on_cycle(start: str, uses: dict[str, set[str]]) -> bool:
    seen: set[str] = set()
    todo = list(uses[start])
    while todo:
        a = todo.pop()
        if a == start:
            return True
        if a not in seen:
            seen.add(a)
            todo.extend(uses[a])
    return False


def _check_consistent(g: Grammar, d: list[Diagnostic]) -> None:
    """Report reachable nonterminals whose derivations end with probability below 1.

    Newton's method is accurate to about sqrt(machine epsilon) ~ 1e-8 at a critical grammar
    (spectral radius of the mean matrix exactly 1, e.g. S -> S S [0.5] | 'a' [0.5]), so a small
    shortfall there is rounding. With every nonterminal productive, derivations end with
    probability 1 exactly when the spectral radius of the reachable part is <= 1 (branching
    processes), so that radius decides and q says how much leaks."""
    reach = reachable(g)
    rho = spectral_radius(g, within=reach)
    if rho <= 1.0 + CONSISTENCY_TOL:
        return
    q = termination_probabilities(g)
    keep = [i for i, nt in enumerate(g.nonterminals) if nt in reach]
    for i in keep:
        nt, qa = g.nonterminals[i], float(q[i])
        if qa >= 1.0 - CONSISTENCY_TOL:
            continue
        d.append(
            Diagnostic(
                g.source,
                g.by_lhs[nt][0].line,
                f"inconsistent probabilities: a derivation from {nt} ends with probability "
                f"{qa:.10g}; the other {1.0 - qa:.4g} of the probability mass leaks into "
                "derivations that never end",
                "make the recursive rules less likely: on average an expansion may produce at "
                f"most one copy of the recursive nonterminals (here the mean matrix has spectral "
                f"radius {rho:.10g} > 1); e.g. S -> S S [p] | 'a' [1-p] needs p <= 0.5",
            )
        )


def _join(items: list) -> str:
    return ", ".join(str(x) for x in items)
