"""Tests for grammarlab.grammar.earley: the incremental chart against the from-scratch chart path
of grammarlab.grammar.inside on seeded random grammars, and the memory guards."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hand_grammars import MIXED

from grammarlab.errors import GrammarlabError
from grammarlab.grammar import earley, inside
from grammarlab.grammar.inside import (
    END,
    next_token_logprobs,
    prefix_logprobs,
    string_logprobs,
    token_surprisals_bits,
)
from grammarlab.grammar.load import loads
from grammarlab.grammar.parse import Grammar
from grammarlab.grammar.sample import sample

# Log probabilities here are sums of at most a few hundred float64 log-space terms of size
# <= 50 nats, so the two paths' different summation orders differ by ~1e-13 nats; 1e-9 is four
# orders of magnitude above that and far below any real disagreement (a missing derivation).
ATOL = 1e-9


def random_grammar(seed: int, n_nt: int = 5) -> Grammar:
    """A recursive, ambiguous grammar with every rule shape: lexical, unit (cycles possible),
    binary, terminals mixed with nonterminals and right sides of length 3. Subcritical: each
    nonterminal's first alternative is a single terminal of probability >= 0.4."""
    rng = np.random.default_rng(seed)
    terms = ["'a'", "'b'", "'c'"]
    lines = []
    for i in range(n_nt):
        nt = [f"N{j}" for j in range(n_nt)]
        alts = [[str(rng.choice(terms))]]
        nxt = f"N{(i + 1) % n_nt}"  # every nonterminal reachable
        shapes = ["t N", "N N", "N", "N t", "t N t", "N t N", "t t"]
        for shape in rng.choice(shapes, size=int(rng.integers(2, 4)), replace=False):
            alts.append(
                [str(rng.choice(terms)) if x == "t" else str(rng.choice(nt)) for x in shape.split()]
            )
        alts[1] = [nxt if not s.startswith("'") else s for s in alts[1]]
        if nxt not in alts[1]:
            alts[1].append(nxt)
        w = rng.dirichlet(np.ones(len(alts) - 1)) * 0.6
        probs = [0.4, *w]
        lines.append(
            f"N{i} -> "
            + " | ".join(f"{' '.join(a)} [{p:.17g}]" for a, p in zip(alts, probs, strict=True))
        )
    return loads("\n".join(lines))


def strings_of(g: Grammar, seed: int) -> list[tuple[str, ...]]:
    got = [s for s in sample(g, 80, np.random.default_rng(seed)) if len(s) <= 9]
    got = list(dict.fromkeys(got))
    bad = [s[:-1] + ("z",) for s in got[:3]] + [("c", "c", "c", "a", "b", "a", "c")]
    return got + bad + [("a",), ()]


@pytest.fixture
def paths(monkeypatch: pytest.MonkeyPatch):
    """Call a function of grammarlab.grammar.inside on the Earley or on the chart path."""

    def call(path: str, fn, *args):
        with monkeypatch.context() as m:
            m.setattr(inside, "_REGULAR_FAST_PATH", False)
            m.setattr(inside, "EARLEY_MIN_RULES", 0 if path == "earley" else 10**9)
            return fn(*args)

    return call


def close(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_array_equal(np.isneginf(a), np.isneginf(b))
    np.testing.assert_array_equal(np.isposinf(a), np.isposinf(b))
    ok = np.isfinite(b)
    np.testing.assert_allclose(a[ok], b[ok], rtol=0, atol=ATOL)


@pytest.mark.parametrize("seed", range(6))
def test_earley_equals_chart_path_on_random_grammars(paths, seed: int) -> None:
    g = random_grammar(seed)
    strings = strings_of(g, seed)
    got = paths("earley", string_logprobs, g, strings)
    assert np.isfinite(got).sum() >= 5 and np.isneginf(got).any()
    close(got, paths("chart", string_logprobs, g, strings))
    prefixes = sorted({s[:k] for s in strings for k in range(len(s) + 1)})
    close(
        paths("earley", prefix_logprobs, g, prefixes), paths("chart", prefix_logprobs, g, prefixes)
    )
    fast = paths("earley", token_surprisals_bits, g, strings)
    slow = paths("chart", token_surprisals_bits, g, strings)
    for s, f, w in zip(strings, fast, slow, strict=True):
        assert f.shape == (len(s) + 1,)
        close(f, w)


@pytest.mark.parametrize("seed", range(3))
def test_next_token_from_chart_equals_ratio_of_prefixes(paths, seed: int) -> None:
    # P(a | x) = P(prefix x a) / P(prefix x), P(end | x) = P(x) / P(prefix x), from scratch
    g = random_grammar(seed)
    for s in strings_of(g, seed)[:12]:
        for k in range(len(s) + 1):
            x = s[:k]
            base = paths("chart", prefix_logprobs, g, [x])[0]
            if not np.isfinite(base):
                with pytest.raises(GrammarlabError, match="no string of the grammar starts"):
                    next_token_logprobs(g, x)
                break
            sym, lp = next_token_logprobs(g, x)
            assert sym[-1] == END
            ext = paths("chart", prefix_logprobs, g, [(*x, t) for t in g.terminals])
            end = paths("chart", string_logprobs, g, [x])[0] if x else -np.inf
            close(lp, np.r_[ext, end] - base)
            # 1e-12: a sum of four probabilities each accurate to ~1e-15
            assert np.exp(lp).sum() == pytest.approx(1.0, abs=1e-12)


def test_chart_is_persistent_and_shared() -> None:
    # extending one chart by two different tokens gives two independent charts; the parent
    # is unchanged, and walking the same path again gives bit-identical numbers
    g = loads(MIXED)
    root = earley.PrefixChart(g)
    a = root.advance("a")
    ab, aa = a.advance("b"), a.advance("a")
    ba = root.advance("b").advance("a")  # 'b' is a whole string: nothing follows it
    assert len(root) == 0 and len(a) == 1 and len(ab) == len(aa) == 2
    assert root.prefix_logprob == 0.0 and root.string_logprob == -math.inf
    again = earley.PrefixChart(g).advance("a").advance("b")
    assert again.prefix_logprob == ab.prefix_logprob
    np.testing.assert_array_equal(again.next_token_logprobs(), ab.next_token_logprobs())
    assert ab.prefix_logprob == pytest.approx(prefix_logprobs(g, [("a", "b")])[0], abs=ATOL)
    assert aa.prefix_logprob == pytest.approx(prefix_logprobs(g, [("a", "a")])[0], abs=ATOL)
    assert ba.prefix_logprob == prefix_logprobs(g, [("b", "a")])[0] == -math.inf
    assert np.all(np.isneginf(ba.next_token_logprobs()))
    assert root.advance("zzz").prefix_logprob == -math.inf  # unknown token


def test_trie_reuses_shared_prefixes_and_keeps_order() -> None:
    g = random_grammar(1)
    strings = strings_of(g, 1)
    shuffled = [strings[i] for i in np.random.default_rng(0).permutation(len(strings))]
    one = {s: earley.trie_logprobs(g, [s])[0] for s in strings}
    for s, got in zip(shuffled, earley.trie_logprobs(g, shuffled + shuffled[:3]), strict=False):
        np.testing.assert_array_equal(got, one[s])  # same operations, same bits
        assert got.shape == (len(s) + 2,)


def test_underflow_free_deep_probability(paths) -> None:
    # S -> 'a' S [0.01] | 'b' A [0.01] | A A [0.98] ... : a^300 b costs 300 log 0.01, far below
    # the float range (1e-600), on the Earley path as on the chart path
    g = loads("S -> 'a' S [0.01] | 'b' [0.01] | A A [0.98]\nA -> 'c' [1.0]")
    s = ("a",) * 300 + ("b",)
    want = 301 * math.log(0.01)
    assert paths("earley", string_logprobs, g, [s])[0] == pytest.approx(want, rel=1e-12)
    bits = paths("earley", token_surprisals_bits, g, [s])[0]
    assert bits.sum() == pytest.approx(-want / math.log(2), rel=1e-12)


def test_chart_path_refuses_huge_strings_before_allocating(paths) -> None:
    # 100,000 tokens on a recursive grammar: the chart path's tables would need ~100 GiB
    g = loads("S -> S S [0.4] | 'a' [0.6]")
    long = [("a",) * 3, ("a",) * 100_000]
    with pytest.raises(GrammarlabError, match=r"string 1 \(length 100000\).*GiB"):
        paths("chart", string_logprobs, g, long)


def test_earley_refuses_charts_over_the_item_bound(monkeypatch: pytest.MonkeyPatch, paths) -> None:
    g = loads("S -> S S [0.4] | 'a' [0.6]")
    monkeypatch.setattr(earley, "MAX_ITEMS", 500)
    assert np.isfinite(paths("earley", string_logprobs, g, [("a",) * 10])[0])
    with pytest.raises(GrammarlabError, match=r"string 1 \(length 400\).*500"):
        paths("earley", string_logprobs, g, [("a",) * 10, ("a",) * 400])


def test_chart_cache_evicts_by_bytes_least_recent_leaves_first() -> None:
    g = random_grammar(2)
    long = max(strings_of(g, 2), key=len)
    big = earley.ChartCache(10**9)
    big.chart(g, long)
    assert len(big) == len(long) + 1  # every prefix of the path, the empty one included
    assert big.nbytes == sum(n.nbytes for n in big._lru)
    per = big.nbytes / len(big)
    small = earley.ChartCache(int(3.5 * per))  # room for about three charts
    small.chart(g, long)  # the query's own path stays even when over the bound
    assert len(small) == len(long) + 1
    small.chart(g, ("b",))  # now everything older than ('b',) and its root may go
    assert small.nbytes <= small.max_bytes or len(small) == 2
    kept = {len(n.chart) for n in small._lru}
    assert 0 in kept and 1 in kept and len(small) < len(long) + 1
    # the nodes left form a trie: every kept chart's parent is kept too
    for n in small._lru:
        assert n.parent is None or n.parent in small._lru
    assert small.nbytes == sum(n.nbytes for n in small._lru)


def test_cached_next_token_answers_equal_recomputed_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    # a cache of a few charts evicts along the way; its answers are the same bits as those
    # of charts built from scratch and of an unbounded cache
    g = random_grammar(0)
    monkeypatch.setattr(inside, "_REGULAR_FAST_PATH", False)
    monkeypatch.setattr(inside, "EARLEY_MIN_RULES", 0)
    strings = [s for s in strings_of(g, 0) if s and np.isfinite(string_logprobs(g, [s])[0])]
    queries = [s[:k] for s in strings for k in range(len(s) + 1)] * 2
    fresh = [earley.PrefixChart(g) for _ in queries]
    want = []
    for ch, q in zip(fresh, queries, strict=True):
        for tok in q:
            ch = ch.advance(tok)
        want.append(ch.next_token_logprobs())
    for cap in (2_000, 10**9):
        monkeypatch.setattr(inside, "_CHARTS", earley.ChartCache(cap))
        for q, w in zip(queries, want, strict=True):
            np.testing.assert_array_equal(next_token_logprobs(g, q)[1], w)
        assert inside._CHARTS.nbytes <= cap or len(inside._CHARTS) <= max(map(len, queries)) + 1


@pytest.mark.parametrize("seed", range(3))
def test_dense_closure_equals_the_sparse_one(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    # a column's left-corner closure summed term by term (sparse rows) or by one dense numpy
    # pass: two summation orders of the same few log terms, equal to ~1e-15 relative
    g = random_grammar(seed)
    strings = [s for s in strings_of(g, seed) if s]
    sparse = earley.trie_logprobs(g, strings)
    monkeypatch.setattr(earley, "_DENSE_TERMS", 0)
    dense = earley.trie_logprobs(g, strings)
    for a, b in zip(sparse, dense, strict=True):
        np.testing.assert_array_equal(np.isneginf(a), np.isneginf(b))
        ok = np.isfinite(a)
        np.testing.assert_allclose(a[ok], b[ok], rtol=1e-12, atol=0)
