"""Tests for grammarlab.grammar.unambiguity: the proofs succeed on the grammars the field
writes, never on an ambiguous grammar (checked against brute-force enumeration of derivations),
and a grammar is called ambiguous only with a witness."""

from __future__ import annotations

import functools
import math
import re
from collections import Counter

import numpy as np
import pytest

from grammarlab.cli import main
from grammarlab.grammar.entropy import analyze
from grammarlab.grammar.inside import string_logprobs
from grammarlab.grammar.load import loads
from grammarlab.grammar.parse import Grammar, Rule
from grammarlab.grammar.sample import sample_derivations
from grammarlab.grammar.unambiguity import Verdict, prove


def cfg(text: str) -> Grammar:
    """A grammar from ``A -> x y | z | `` lines (an empty alternative is an empty right side),
    each left side's alternatives equally likely: built directly, so empty rules need no parser."""
    rules = []
    for line in text.strip().splitlines():
        lhs, alts = line.split("->")
        parts = alts.split("|")
        for alt in parts:
            syms = alt.split()
            rules.append(
                Rule(
                    lhs.strip(),
                    tuple(s.strip("'") for s in syms),
                    1 / len(parts),
                    0,
                    tuple(s.startswith("'") for s in syms),
                )
            )
    return Grammar(tuple(rules))


def derivation_counts(
    g: Grammar, max_steps: int, max_tokens: int, target: tuple[str, ...] | None = None
) -> Counter:
    """Number of leftmost derivations of at most ``max_steps`` rule applications per terminal
    string of at most ``max_tokens`` tokens (leftmost derivations are in one-to-one
    correspondence with derivation trees, so a count of 2 is a true witness of ambiguity);
    with ``target``, only the derivations whose terminal prefix stays a prefix of it."""
    out: Counter = Counter()
    todo = [((g.start,), (False,), 0)]
    while todo:
        form, mask, steps = todo.pop()
        if sum(mask) > max_tokens:
            continue
        if all(mask):
            out[form] += 1
            continue
        j = mask.index(False)
        if steps == max_steps or (target is not None and form[:j] != target[:j]):
            continue
        for r in g.by_lhs.get(form[j], ()):
            if r.prob > 0:
                todo.append(
                    (
                        form[:j] + r.rhs + form[j + 1 :],
                        mask[:j] + r.terminal_mask + mask[j + 1 :],
                        steps + 1,
                    )
                )
    return out


def two_derivations(
    g: Grammar, target: tuple[str, ...], max_steps: int, start: str | None = None
) -> bool:
    """Does ``target`` have two leftmost derivations (from ``start``, default the start symbol)
    of at most ``max_steps`` rule applications?
    Counts capped at 2, memoized on (sentential form still to derive, position in target, steps
    left), with the step bound deepened one at a time so the search stops at the first success."""
    mins = dict.fromkeys(g.nonterminals, 99)  # shortest yields (99: none), to prune forms
    for _ in g.rules:  # Bellman-Ford: |rules| rounds reach the exact shortest yields
        for r in g.rules:
            if r.prob > 0:
                yields = (
                    1 if t else mins.get(x, 99) for x, t in zip(r.rhs, r.terminal_mask, strict=True)
                )
                mins[r.lhs] = min(mins[r.lhs], sum(yields))

    @functools.cache
    def count(form: tuple, i: int, steps: int) -> int:
        if not form:
            return int(i == len(target))
        (sym, term), rest = form[0], form[1:]
        if term:
            return count(rest, i + 1, steps) if i < len(target) and target[i] == sym else 0
        need = sum(1 if t else mins.get(x, 99) for x, t in form)
        if steps == 0 or need > len(target) - i:
            return 0
        total = 0
        for r in g.by_lhs.get(sym, ()):
            if r.prob > 0:
                total += count(tuple(zip(r.rhs, r.terminal_mask, strict=True)) + rest, i, steps - 1)
                if total >= 2:
                    return 2
        return total

    begin = ((start or g.start, False),)
    return any(count(begin, 0, k) >= 2 for k in range(1, max_steps + 1))


# --- the grammars the issue names are proven -----------------------------------------------

# LR(0) automata counted by hand (states of the augmented grammar S' -> S):
# a^n b^n: {S'->.S, S->.aSb, S->.ab}, {S'->S.}, {S->a.Sb, S->a.b, S->.aSb, S->.ab},
#   {S->aS.b}, {S->ab.}, {S->aSb.} -> 6; a^k: {S'->.S, S->.aS, S->.a}, {S'->S.},
#   {S->a.S, S->a., S->.aS, S->.a}, {S->aS.} -> 4.
PROVEN = {
    "a^n b^n": ("S -> 'a' S 'b' | 'a' 'b'", "proven: LALR(1), no conflict (6 states)"),
    "a^k": ("S -> 'a' S | 'a'", "proven: LALR(1), no conflict (4 states)"),
    # LL(1) thanks to the end-of-string lookahead: S -> (empty) is predicted by FOLLOW(S)
    "Dyck-2 with the empty rule": (
        "S -> '(' S ')' S | '[' S ']' S | ",
        "proven: LL(1), no unit cycle",
    ),
    "Dyck-2 without it": (
        "S -> P S | P\nP -> '(' ')' | '(' S ')' | '[' ']' | '[' S ']'",
        "proven: LALR(1)",
    ),
    "left-recursive expressions": (
        "E -> E '+' T | T\nT -> T '*' F | F\nF -> '(' E ')' | 'x'",
        "proven: LALR(1), no conflict (12 states)",  # the dragon book's 12 LR(0) states
    ),
    "marked palindromes": ("S -> 'a' S 'a' | 'b' S 'b' | 'c'", "proven: LL(1), no unit cycle"),
    # LR(1) but not LALR(1): merging the two states {A -> c., B -> c.} mixes d and e
    "LR(1), not LALR(1)": (
        "S -> 'a' A 'd' | 'b' B 'd' | 'a' B 'e' | 'b' A 'e' | 'x' S\nA -> 'c'\nB -> 'c'",
        "proven: LR(1), no conflict",
    ),
    # fixed lengths with a nonterminal of length 0 (not LL(1): both alternatives start 'a')
    "fixed lengths, empty part": (
        "S -> A 'a' 'b' | 'a' 'c'\nA -> ",
        "proven: fixed lengths, disjoint alternatives",
    ),
}


@pytest.mark.parametrize("name", sorted(PROVEN))
def test_proven(name: str) -> None:
    text, reason = PROVEN[name]
    g = cfg(text)
    v = prove(g)
    assert v.ambiguous is False and v.reason.startswith(reason), v.reason
    counts = derivation_counts(g, 9, 8)
    assert counts and max(counts.values()) == 1


def test_lalr_conflict_is_named_before_lr1_proves() -> None:
    v = prove(cfg(PROVEN["LR(1), not LALR(1)"][0]))
    assert v.reason.startswith("proven: LR(1)")
    v2 = prove(cfg(PROVEN["LR(1), not LALR(1)"][0]), lr_budget=10, witness_budget=0)
    assert v2.ambiguous is None and "budget of 10 item visits exceeded" in v2.reason


# --- ambiguous grammars are never proven, and come with a witness ----------------------------

AMBIGUOUS = {
    "S S": ("S -> S S | 'a'", ("a", "a", "a")),
    "E + E": ("E -> E '+' E | 'x'", ("x", "+", "x", "+", "x")),
    "dangling else": (
        "S -> 'if' 'c' 't' S | 'if' 'c' 't' S 'e' S | 'x'",
        ("if", "c", "t", "if", "c", "t", "x", "e", "x"),
    ),
    "two rules, one string": ("S -> A | B\nA -> 'x'\nB -> 'x'", ("x",)),
    "two empty parts": ("S -> A B\nA -> 'a' | \nB -> 'a' | ", ("a",)),
    "same string, fixed lengths": ("S -> A 'a' | 'a' A\nA -> ", ("a",)),
    "two empty derivations": ("S -> A | \nA -> ", ()),
}


@pytest.mark.parametrize("name", sorted(AMBIGUOUS))
def test_ambiguous_with_a_witness_string(name: str) -> None:
    text, witness = AMBIGUOUS[name]
    g = cfg(text)
    v = prove(g)
    assert v.ambiguous is True and v.reason.startswith("witness: ")
    shown = "the empty string" if not witness else f"the string '{' '.join(witness)}'"
    assert shown in v.reason
    # the witness is the shortest string with two derivations, checked by brute force
    counts = derivation_counts(g, 9, len(witness))
    assert counts[witness] >= 2
    assert all(c == 1 for s, c in counts.items() if len(s) < len(witness))


def test_witness_inside_a_sentence() -> None:
    # A's 'y' has two derivations (1 token); the start's shortest witness has 3
    v = prove(cfg("S -> 'x' 'x' A\nA -> B | C\nB -> 'y'\nC -> 'y'"))
    assert v.ambiguous is True
    assert v.reason.startswith("witness: A derives the string 'y' (1 token) in 2+ ways")


@pytest.mark.parametrize(
    "text",
    ["S -> A | 'x'\nA -> S | 'y'", "S -> S A | 'x'\nA -> 'y' | ", "S -> A\nA -> A | 'a'"],
)
def test_derivation_cycle_is_a_witness(text: str) -> None:
    # A =>+ A (through unit rules, or a rule whose other symbols are nullable): every string
    # through A has infinitely many derivations
    v = prove(cfg(text))
    assert v.ambiguous is True and "=>+" in v.reason and "derivation cycle" in v.reason


@pytest.mark.parametrize(
    "text",
    [
        "S -> 'a' S 'a' | 'b' S 'b' | 'a' | 'b'",  # odd palindromes: unambiguous, not LR(k)
        "S -> A 'a'\nA -> 'a' | ",  # unambiguous, a conflict on 'a' (LR(2))
    ],
)
def test_unambiguous_without_a_proof_stays_unknown(text: str) -> None:
    g = cfg(text)
    v = prove(g)
    assert v.ambiguous is None
    assert "conflict" in v.reason and "no witness among strings of up to 12 tokens" in v.reason
    assert max(derivation_counts(g, 13, 12).values()) == 1


def test_zero_probability_and_useless_rules_are_left_out() -> None:
    # the rules that would make 'a' ambiguous have probability 0 or use an unproductive U
    g = Grammar(
        (
            Rule("S", ("a",), 1.0, 0, (True,)),
            Rule("S", ("A",), 0.0),
            Rule("S", ("U",), 0.0),
            Rule("A", ("a",), 1.0, 0, (True,)),
            Rule("U", ("a", "U"), 1.0, 0, (True, False)),
        )
    )
    assert prove(g).ambiguous is False
    assert prove(Grammar((Rule("S", ("S",), 1.0),))).ambiguous is None  # derives nothing


WITNESS = re.compile(r"witness: (?:(\w+) derives )?(the empty string|the string '([^']*)')")


def random_grammar(rng: np.random.Generator) -> Grammar:
    """Up to 3 nonterminals over {a, b}, up to 3 distinct alternatives each of 0-3 symbols."""
    nts = ["S", "A", "B"][: int(rng.integers(1, 4))]
    symbols = nts + ["a", "b"]
    rules = []
    for lhs in nts:
        alts = {
            tuple(str(rng.choice(symbols)) for _ in range(int(rng.choice([0, 1, 1, 2, 2, 3]))))
            for _ in range(int(rng.integers(1, 4)))
        }
        for rhs in sorted(alts):
            rules.append(Rule(lhs, rhs, 1 / len(alts), 0, tuple(s in "ab" for s in rhs)))
    return Grammar(tuple(rules))


def test_random_grammars_against_brute_force() -> None:
    # proven => no string with two derivations among derivations of up to 8 steps; a witness
    # string => brute force finds two derivations of it
    rng = np.random.default_rng(0)
    tally: Counter = Counter()
    for _ in range(1000):
        g = random_grammar(rng)
        v = prove(g)
        counts = derivation_counts(g, 9, 6)
        tally[v.ambiguous] += 1
        if v.ambiguous is False:
            assert all(c == 1 for c in counts.values()), (g.to_text(), v)
        elif v.ambiguous is True:
            m = WITNESS.match(v.reason)
            assert m or "derivation cycle" in v.reason, v.reason
            if m:
                words = tuple((m.group(3) or "").split())
                assert two_derivations(g, words, 24, m.group(1)), (g.to_text(), v)
                tally["string"] += 1
        else:
            assert v.reason.startswith("unknown: ")
    # both sides of the check are exercised
    assert tally[False] > 200 and tally[True] > 200 and tally["string"] > 100


def test_large_grammar_stays_within_budget() -> None:
    # 1,000 nonterminals, A_i -> A_i 'x_i' | 'y_i' A_{i+1} | 'y_i' (left recursion: not LL(1);
    # A_i derives y_i (A_{i+1})? x_i*, unambiguous as each level has its own x_i): LALR(1)
    # proves it, and a tiny budget gives "unknown"
    n = 1000
    lines = [f"A{i} -> A{i} 'x{i}' | 'y{i}' A{i + 1} | 'y{i}'" for i in range(n)]
    lines.append(f"A{n} -> 'z'")
    g = cfg("\n".join(lines))
    v = prove(g)
    assert v.ambiguous is False and v.reason.startswith("proven: LALR(1), no conflict")
    v = prove(g, lr_budget=1000, witness_budget=0)
    assert v.ambiguous is None and "exceeded" in v.reason


# --- through the entropy report and the CLI -------------------------------------------------


def h2(q: float) -> float:
    return -q * math.log2(q) - (1 - q) * math.log2(1 - q)


def test_exact_entropy_of_an_bn(tmp_path, capsys) -> None:
    # S -> 'a' S 'b' [q] | 'a' 'b' [1-q]: n is geometric, H = h(q) / (1 - q) bits per string
    q = 0.4
    text = f"S -> 'a' S 'b' [{q}] | 'a' 'b' [{1 - q}]\n"
    r = analyze(loads(text))
    assert r.entropy_exact and r.ambiguous is False
    assert r.ambiguity_reason == "proven: LALR(1), no conflict (6 states)"
    assert r.entropy_bits == pytest.approx(h2(q) / (1 - q), rel=1e-12)
    path = tmp_path / "anbn.cfg"
    path.write_text(text)
    assert main(["grammar", "info", str(path)]) == 0
    assert (
        "ambiguous         no (proven: LALR(1), no conflict (6 states))" in capsys.readouterr().out
    )


def test_report_carries_the_witness() -> None:
    r = analyze(loads("E -> E '+' E [0.3] | 'x' [0.7]"), mc_samples=200, mc_seconds=5)
    assert r.ambiguous is True and not r.entropy_exact
    assert r.ambiguity_reason == "witness: the string 'x + x + x' (5 tokens) has 2+ derivations"


def test_dyck_with_the_empty_rule_through_the_parser(tmp_path, capsys) -> None:
    # S -> '(' S ')' S [0.2] | '[' S ']' S [0.2] | [0.6]: mean matrix 2 * 0.4 = 0.8, so S is
    # expanded 1 / (1 - 0.8) = 5 times, each choice h = -(0.4 log2 0.2 + 0.6 log2 0.6) bits
    text = "S -> '(' S ')' S [0.2] | '[' S ']' S [0.2] | [0.6]\n"
    g = loads(text)
    r = analyze(g)
    h = -(0.4 * math.log2(0.2) + 0.6 * math.log2(0.6))
    assert r.ambiguous is False and r.ambiguity_reason == "proven: LL(1), no unit cycle"
    assert r.entropy_exact and r.entropy_bits == pytest.approx(5 * h, rel=1e-12)
    # unambiguous: every sampled string's exact probability is its one derivation's (float64)
    strings, logp_d = sample_derivations(g, 300, np.random.default_rng(0))
    np.testing.assert_allclose(string_logprobs(g, strings), logp_d, rtol=1e-12, atol=1e-12)
    path = tmp_path / "dyck.cfg"
    path.write_text(text)
    assert main(["grammar", "info", str(path)]) == 0
    assert "ambiguous         no (proven: LL(1), no unit cycle)" in capsys.readouterr().out


def test_finite_ambiguous_grammar_with_an_empty_rule() -> None:
    # S -> A A; A -> 'a' [0.5] | [0.5]: '' 1/4, 'a' 1/2 (two derivations: either A), 'a a' 1/4,
    # so H = 1.5 bits per string while the derivations carry 2 bits
    g = loads("S -> A A [1.0]\nA -> 'a' [0.5] | [0.5]")
    assert prove(g) == Verdict(True, "witness: the string 'a' (1 token) has 2+ derivations")
    r = analyze(g)
    assert r.entropy_exact and r.ambiguous is True and r.entropy_method == "exact: enumeration"
    assert r.entropy_bits == pytest.approx(1.5, rel=1e-12)
    assert r.derivational_entropy_bits == pytest.approx(2.0, rel=1e-12)
