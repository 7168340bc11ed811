"""Sampling: determinism, derivability (brute force), exact frequencies (chi-square), derivation
log probabilities, unique/exclude/overlap, random strings, and the paper's hierarchical grammar.
"""

from __future__ import annotations

import gc
import math
import tracemalloc
from collections import Counter

import numpy as np
import pytest
from hand_grammars import SMALL, hierarchical_text
from scipy.stats import chisquare

import grammarlab.grammar.language as language_mod
import grammarlab.grammar.sample as sample_mod
from grammarlab.errors import GrammarlabError
from grammarlab.grammar.load import loads
from grammarlab.grammar.parse import Grammar
from grammarlab.grammar.sample import (
    overlap,
    overlap_report,
    random_strings,
    sample,
    sample_batches,
    sample_derivations,
    sample_ids,
)

# By hand: A B gives 0.4 * 0.5 * {c: 0.6, a c: 0.3, d: 0.1} for each of a, b;
# 'x' A gives 0.3 * 0.5 each; C gives 0.3 * {0.5, 0.2, 0.3}.
SMALL_PROBS = {
    "a c": 0.12,
    "a a c": 0.06 + 0.15,  # A B with B -> 'a' 'c', or C -> 'a' 'a' 'c'
    "a d": 0.02,
    "b c": 0.12,
    "b a c": 0.06,
    "b d": 0.02,
    "x a": 0.15 + 0.06,  # 'x' A with A -> 'a', or C -> 'x' 'a'
    "x b": 0.15,
    "y": 0.09,
}

RECURSIVE = "S -> 'a' S 'b' [0.3] | S 'c' [0.2] | 'd' [0.5]\n"

HIERARCHICAL = hierarchical_text(0.5)  # Appendix A.2 of the paper, written out by hand


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def derivations(g: Grammar, max_len: int) -> dict[tuple[str, ...], list[float]]:
    """Brute force, independent of grammarlab.grammar.sample: every leftmost derivation of a string
    of at most ``max_len`` tokens -> the list of its derivation probabilities. Forms never shrink
    (no epsilon rules), so longer forms are pruned; fine for tiny grammars without unit cycles."""
    out: dict[tuple[str, ...], list[float]] = {}
    todo = [((g.start,), (False,), 1.0)]
    while todo:
        form, is_t, p = todo.pop()
        if len(form) > max_len:
            continue
        i = next((k for k, t in enumerate(is_t) if not t), None)
        if i is None:
            out.setdefault(form, []).append(p)
            continue
        for r in g.by_lhs[form[i]]:
            todo.append(
                (
                    form[:i] + r.rhs + form[i + 1 :],
                    is_t[:i] + r.terminal_mask + is_t[i + 1 :],
                    p * r.prob,
                )
            )
    return out


def test_brute_force_matches_hand_probabilities() -> None:
    d = derivations(loads(SMALL), 5)
    got = {" ".join(s): sum(ps) for s, ps in d.items()}
    assert got.keys() == SMALL_PROBS.keys()
    for s, p in SMALL_PROBS.items():
        assert got[s] == pytest.approx(p, abs=1e-12)
    assert sum(got.values()) == pytest.approx(1.0)


def test_same_seed_same_strings_different_seed_differs() -> None:
    for text in (SMALL, RECURSIVE, HIERARCHICAL):
        g = loads(text)
        a = sample(g, 300, rng(7))
        assert a == sample(g, 300, rng(7))
        assert a == sample(loads(text), 300, rng(7))  # a fresh Grammar object (no cache)
        assert a != sample(g, 300, rng(8))


def test_every_sample_is_derivable() -> None:
    g = loads(RECURSIVE)
    strings = sample(g, 2000, rng(1))
    lengths = [len(s) for s in strings]
    assert min(lengths) == 1 and max(lengths) > 3  # variable length
    lang = derivations(g, 9)
    short = [s for s in strings if len(s) <= 9]
    assert len(short) > 1900
    assert all(s in lang for s in short)
    small = loads(SMALL)
    small_lang = derivations(small, 5)
    assert all(s in small_lang for s in sample(small, 2000, rng(2)))


def test_frequencies_match_exact_probabilities() -> None:
    g = loads(SMALL)
    exact = {s: sum(ps) for s, ps in derivations(g, 5).items()}
    n = 20_000
    counts = Counter(sample(g, n, rng(12345)))
    keys = sorted(exact)
    obs = np.array([counts[k] for k in keys], dtype=float)
    exp = np.array([exact[k] * n for k in keys])
    assert obs.sum() == n  # nothing outside the language
    assert chisquare(obs, exp).pvalue > 1e-3


def test_recursive_frequencies_by_length() -> None:
    # S -> 'a' S 'b' [0.3] | S 'c' [0.2] | 'd' [0.5]. Each of these strings has one derivation:
    # "d" = 0.5; "a d b" = 0.3 * 0.5 = 0.15; "d c" = 0.2 * 0.5 = 0.1; the rest lumped together.
    g = loads(RECURSIVE)
    n = 20_000
    c = Counter(sample(g, n, rng(3)))
    obs = np.array([c[("d",)], c[("a", "d", "b")], c[("d", "c")], 0.0])
    exp = np.array([0.5, 0.15, 0.1, 0.0]) * n
    obs[3] = n - obs[:3].sum()
    exp[3] = n - exp[:3].sum()
    assert chisquare(obs, exp).pvalue > 1e-3


def test_derivation_logprob_is_a_derivation_of_the_string() -> None:
    g = loads(SMALL)
    d = derivations(g, 5)
    strings, logp = sample_derivations(g, 500, rng(4))
    assert logp.shape == (500,)
    for s, lp in zip(strings, logp, strict=True):
        assert any(math.isclose(lp, math.log(p), rel_tol=1e-12) for p in d[s])
    # unambiguous recursion: a^k S-expansions then 'b': log p = k log 0.3 + log 0.7 (nats)
    g2 = loads("S -> 'a' S [0.3] | 'b' [0.7]\n")
    strings, logp = sample_derivations(g2, 300, rng(5))
    for s, lp in zip(strings, logp, strict=True):
        k = len(s) - 1
        assert lp == pytest.approx(k * math.log(0.3) + math.log(0.7), rel=1e-12)


def test_hierarchical_grammar() -> None:
    g = loads(HIERARCHICAL)
    strings, logp = sample_derivations(g, 1000, rng(6))
    assert {len(s) for s in strings} == {72}
    assert set().union(*strings) <= {str(i) for i in range(1, 10)}
    # 36 binary choices per derivation: A16, three of A13-15, 8 of A10-12, 24 of A7-9
    assert np.allclose(logp, 36 * math.log(0.5))
    # triples come from the A7-A9 rules only
    triples = {s[i : i + 3] for s in strings for i in range(0, 72, 3)}
    assert {"".join(t) for t in triples} == {"312", "123", "654", "645", "987", "879"}
    assert len(set(strings)) == 1000  # 2^36 derivations, collisions essentially impossible


FIXED_LENGTH = [
    HIERARCHICAL,
    # children counts and offsets differ between rules of a level (masks, no shared offsets)
    "S -> A B [0.5] | B A [0.5]\nA -> 'a' 'b' [0.2] | C [0.8]\nC -> 'c' 'c' [0.6] | 'd' 'e' [0.4]\n"
    "B -> 'q' [1.0]\n",
    # a unit cycle (A -> B -> A): levels repeat, the fast path stops describing them
    "S -> A 'z' [1.0]\nA -> B [0.5] | 'a' [0.5]\nB -> A [0.7] | 'b' [0.3]\n",
    # unequal probabilities (alias slots used), multi-character terminals
    "S -> 'ab' A 'c' [0.3] | A A A [0.7]\nA -> 'x' [0.3] | 'yy' [0.7]\n",
]


@pytest.mark.parametrize("text", FIXED_LENGTH)
def test_fast_path_equals_general_path(text: str) -> None:
    # the fixed-length fast path draws the same numbers in the same order as the general one
    # and adds the same log probabilities in the same order
    g = loads(text)
    t = sample_mod._tables(g)
    assert t.fixed is not None
    size = t.fixed.length
    out, lp_fast, lp_general = np.empty(500 * size, dtype=np.int32), np.zeros(500), np.zeros(500)
    sample_mod._derive_fixed(g, t, rng(9), out, lp_fast)
    ids, lengths = sample_mod._derive_general(g, t, 500, rng(9), lp_general)
    assert np.array_equal(out, ids) and np.all(lengths == size)
    assert np.array_equal(lp_fast, lp_general)


def test_level_tables_of_the_hierarchical_grammar() -> None:
    # By hand: levels S; A16; {A13, A14, A15}; {A10, A11, A12}; {A7, A8, A9}. Every rule has
    # probability 0.5 except S -> A16, so all alias slots keep their rule ("plain").
    levels = sample_mod._tables(loads(HIERARCHICAL)).fixed.levels
    assert len(levels) == 5
    assert [lv.alts for lv in levels] == [1.0, 2.0, 2.0, 2.0, 2.0]
    assert all(lv.plain for lv in levels)
    assert [lv.n_k for lv in levels] == [1, 3, None, 3, 0]  # A13 has 2 children, A14/A15 3
    assert list(levels[3].n_off) == [0, 3, 6]  # A7, A8, A9 are 3 long, in any order
    # nodes per sample 1, 1, 3, then unknown to this analysis; log 0.5 summed per level
    assert [lv.single for lv in levels] == [True, True, False, False, False]
    assert levels[1].logp == math.log(0.5) and levels[2].logp == 3 * math.log(0.5)
    assert levels[3].logp is None
    # the last level writes 3 terminals at offsets 0, 1, 2 of positions that are multiples of 3
    assert levels[4].t_k == 3 and levels[4].block and not levels[3].block


def reference_sample(g: Grammar, n: int, r: np.random.Generator) -> list[tuple[str, ...]]:
    """The draw contract in plain Python: breadth-first, one level at a time, one uniform per
    nonterminal in level order; slot = first rule + floor(u * rules), kept if the fraction is
    below the slot's keep probability, else its alias. Only the alias tables come from the
    module (their frequencies are tested above)."""
    t = sample_mod._tables(g)
    rules = [rule for a in g.nonterminals for rule in g.by_lhs[a]]
    first = {a: int(t.first_rule[i]) for i, a in enumerate(g.nonterminals)}
    roots = [[g.start, []] for _ in range(n)]
    level = roots
    while level:
        nxt = []
        for node, u in zip(level, r.random(len(level)), strict=True):
            x = u * len(g.by_lhs[node[0]])
            slot = first[node[0]] + int(x)
            rule = rules[slot if x - int(x) < t.alias_prob[slot] else t.alias_rule[slot]]
            for s, is_t in zip(rule.rhs, rule.terminal_mask, strict=True):
                node[1].append(s if is_t else [s, []])
            nxt += [c for c in node[1] if isinstance(c, list)]
        level = nxt

    def tokens(node: list) -> list[str]:
        return [y for c in node[1] for y in ([c] if isinstance(c, str) else tokens(c))]

    return [tuple(tokens(root)) for root in roots]


@pytest.mark.parametrize("text", [SMALL, RECURSIVE, *FIXED_LENGTH])
def test_same_strings_as_the_reference(text: str) -> None:
    g = loads(text)
    assert sample(g, 400, rng(21)) == reference_sample(g, 400, rng(21))


@pytest.mark.parametrize("text", [SMALL, RECURSIVE, HIERARCHICAL])
def test_sample_ids(text: str) -> None:
    g = loads(text)
    ids, lengths, logp = sample_ids(g, 300, rng(3))
    strings, logp2 = sample_derivations(g, 300, rng(3))
    assert ids.dtype == np.int32 and ids.shape == (300, max(len(s) for s in strings))
    assert lengths.tolist() == [len(s) for s in strings]
    assert np.array_equal(logp, logp2)
    for row, n_tok, s in zip(ids, lengths, strings, strict=True):
        assert tuple(g.terminals[i] for i in row[:n_tok]) == s
        assert np.all(row[n_tok:] == -1)
    empty = sample_ids(g, 0, rng(3))
    assert empty[0].shape[0] == 0 and empty[1].shape == empty[2].shape == (0,)


def test_sample_ids_padding_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sample_mod, "MAX_PADDED", 10)
    with pytest.raises(GrammarlabError, match="padded") as e:
        sample_ids(loads(RECURSIVE), 20, rng(0))  # 20 strings of length >= 1: over 10 cells
    assert "sample()" in str(e.value)


def test_garbage_collector_state_is_restored() -> None:
    g = loads(HIERARCHICAL)
    assert gc.isenabled()
    sample(g, 10, rng(0))
    assert gc.isenabled()
    gc.disable()
    try:
        sample(g, 10, rng(0))
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_unique_and_exclude() -> None:
    g = loads(SMALL)
    lang = {tuple(k.split()) for k in SMALL_PROBS}
    all9 = sample(g, 9, rng(0), unique=True)
    assert len(all9) == 9 and set(all9) == lang
    excluded = [("a", "c"), ("y",), ("x", "b"), ("not", "in", "language")]
    got = sample(g, 6, rng(0), unique=True, exclude=excluded)
    assert len(set(got)) == 6 and not set(got) & set(excluded)
    many = sample(g, 2000, rng(0), exclude=excluded)
    assert len(many) == 2000 and not set(many) & set(excluded)
    assert len(set(many)) == 6  # duplicates allowed without unique


def test_too_many_unique() -> None:
    g = loads(SMALL)
    with pytest.raises(GrammarlabError, match="only 9 distinct strings"):
        sample(g, 10, rng(0), unique=True)
    with pytest.raises(GrammarlabError, match="3 of them excluded"):
        sample(g, 7, rng(0), unique=True, exclude=[("a", "c"), ("y",), ("x", "b")])


def test_too_many_unique_by_count(monkeypatch: pytest.MonkeyPatch) -> None:
    # strings of length 3 over {a, b}: 8 derivations; without enumeration the count is the bound
    g = loads(
        "S -> 'a' A [0.5] | 'b' A [0.5]\nA -> 'a' B [0.5] | 'b' B [0.5]\nB -> 'a' [0.5] | 'b' [0.5]"
    )
    monkeypatch.setattr(language_mod, "ENUMERATE_LIMIT", 4)
    with pytest.raises(GrammarlabError, match="at most 8"):
        sample(g, 9, rng(0), unique=True)
    assert len(set(sample(g, 8, rng(0), unique=True))) == 8


def test_too_many_unique_infinite_gives_up() -> None:
    # infinite language, but a^k b has probability 0.01^k 0.99: a few hundred thousand draws
    # find only a handful of distinct strings
    g = loads("S -> 'a' S [0.01] | 'b' [0.99]\n")
    with pytest.raises(GrammarlabError, match="found only"):
        sample(g, 50, rng(0), unique=True)


def test_runaway_recursion(monkeypatch: pytest.MonkeyPatch) -> None:
    g = loads("S -> S S [0.5] | 'a' [0.5]\n")  # critical: infinite expected length
    monkeypatch.setattr(sample_mod, "MAX_NODES", 2_000)
    with pytest.raises(GrammarlabError, match="sampling stopped") as e:
        sample(g, 1000, rng(0))
    assert "recursive rules" in str(e.value)


def test_overlap() -> None:
    a = [("x",), ("y",), ("x",), ("z",)]
    b = [("x",), ("w",)]
    assert overlap(a, b) == 2  # both copies of ("x",)
    assert overlap(b, a) == 1
    rep = overlap_report(train=b, test=a)
    assert rep["n_test_in_train"] == 2
    assert rep["test_in_train_fraction"] == 0.5
    assert rep["n_shared_distinct"] == 1
    assert rep["n_test_distinct"] == 3


def test_random_strings() -> None:
    g = loads(RECURSIVE)
    n = 4000
    rs = random_strings(g, n, rng(11))
    grammar_strings = sample(g, n, rng(11))
    # lengths are those of grammar strings drawn with the same rng first
    assert [len(s) for s in rs] == [len(s) for s in grammar_strings]
    tokens = Counter(t for s in rs for t in s)
    assert set(tokens) <= set(g.terminals)
    obs = np.array([tokens[t] for t in g.terminals], dtype=float)
    assert chisquare(obs).pvalue > 1e-3  # uniform over the alphabet
    assert rs != grammar_strings


def test_zero_and_negative() -> None:
    g = loads(SMALL)
    assert sample(g, 0, rng(0)) == []
    strings, logp = sample_derivations(g, 0, rng(0))
    assert strings == [] and logp.shape == (0,)
    with pytest.raises(GrammarlabError):
        sample(g, -1, rng(0))


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        # multi-character terminals, fixed length (fast path) and variable length (general path)
        ("S -> 'ab' 'c' [0.5] | 'c' '12' [0.5]\n", {("ab", "c"), ("c", "12")}),
        ("S -> 'ab' [0.5] | 'c' '12' [0.5]\n", {("ab",), ("c", "12")}),
        ("S -> 'a' [0.5] | 'b' 'c' [0.5]\n", {("a",), ("b", "c")}),  # one-character tokens
    ],
)
def test_tokens_come_back_whole(text: str, lang: set) -> None:
    got = sample(loads(text), 200, rng(0))
    assert set(got) == lang
    assert all(isinstance(s, tuple) and all(isinstance(x, str) for x in s) for s in got)


@pytest.mark.parametrize("text", [SMALL, RECURSIVE, HIERARCHICAL])
def test_sample_batches_are_the_strings_of_sample(text: str) -> None:
    g = loads(text)
    n = sample_mod.BATCH + 1_000  # at least two batches
    batches = list(sample_batches(g, n, rng(5)))
    assert len(batches) >= 2 and all(len(lengths) <= sample_mod.BATCH for _, lengths in batches)
    strings = [
        tuple(g.terminals[i] for i in ids[e - k : e])
        for ids, lengths in batches
        for e, k in zip(np.cumsum(lengths).tolist(), lengths.tolist(), strict=True)
    ]
    assert strings == sample(g, n, rng(5))
    with pytest.raises(GrammarlabError, match=">= 0"):
        sample_batches(g, -1, rng(0))  # refused at the call, not at the first batch


def test_sample_batches_memory_does_not_grow_with_n() -> None:
    # Peak traced memory (numpy reports its buffers to tracemalloc) while consuming 8 batches
    # stays that of about one batch; keeping all 8 would need 8 times as much.
    g = loads(HIERARCHICAL)
    peaks = []
    for n_batches in (1, 8):
        tracemalloc.start()
        for ids, _ in sample_batches(g, n_batches * sample_mod.BATCH, rng(0)):
            del ids
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 1.5 * peaks[0]


def test_a_seed_may_be_an_int_or_a_generator():
    from grammarlab.errors import GrammarlabError
    from grammarlab.grammar.load import loads as _loads
    from grammarlab.grammar.sample import sample as _sample

    g = _loads("S -> 'a' S [0.5] | 'b' [0.5]\n")
    assert _sample(g, 20, 7) == _sample(g, 20, np.random.default_rng(7)) == _sample(g, 20, 7)
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    _sample(g, 5, a), _sample(g, 5, b)
    assert _sample(g, 5, a) == _sample(g, 5, b)  # a Generator's stream goes on in step
    assert _sample(g, 5, a) != _sample(g, 5, 7)  # ... while an int starts a new one
    for bad in ("7", -1, 1.5, True):
        with pytest.raises(GrammarlabError, match="seed must be an int >= 0 or a numpy"):
            _sample(g, 3, bad)
