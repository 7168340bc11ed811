"""The uniform random grammar's exact surprisal: engine vs closed form, and the run's strings."""

import itertools
import math

import numpy as np
import pytest

from grammarlab.capacity.data import (
    grammar_bits,
    make_data,
    uniform_grammar,
    uniform_string_bits,
)
from grammarlab.errors import GrammarlabError


@pytest.mark.parametrize(("v", "n"), [(2, 1), (3, 4), (16, 32), (26, 64), (2048, 3)])
def test_engine_equals_closed_form(v, n):
    g = uniform_grammar(v, n)
    rng = np.random.default_rng(0)
    strings = [tuple(rng.choice(list(g.terminals), size=n)) for _ in range(20)]
    bits = grammar_bits(g, strings)
    # float64 sums of n log-probabilities: 1e-9 bits is orders above their rounding (~1e-13)
    assert np.allclose(bits, n * math.log2(v), rtol=0, atol=1e-9)
    assert uniform_string_bits(v, n) == pytest.approx(n * math.log2(v), abs=1e-12)


def test_every_string_of_a_small_grammar_has_the_same_bits_and_they_sum_to_one():
    g = uniform_grammar(3, 4)
    strings = list(itertools.product(g.terminals, repeat=4))
    bits = grammar_bits(g, strings, expected=uniform_string_bits(3, 4))
    assert len(strings) == 81
    # total probability of the language is 1 (no mass left for other lengths: end costs 0 bits)
    assert float(np.sum(2.0**-bits)) == pytest.approx(1.0, abs=1e-12)


def test_grammar_bits_refuses_a_wrong_closed_form():
    g = uniform_grammar(4, 3)
    with pytest.raises(GrammarlabError, match="closed form"):
        grammar_bits(g, [("a", "b", "c")], expected=3 * math.log2(5))


def test_make_data_distinct_disjoint_and_seeded():
    d = make_data(4, 6, 30, 20, seed=3)
    assert len(set(d.train)) == 30 and len(set(d.test)) == 20
    assert not set(d.train) & set(d.test)
    assert d.dataset_bits == pytest.approx(30 * 12.0, abs=1e-9)
    again = make_data(4, 6, 30, 20, seed=3)
    assert again.train == d.train and again.test == d.test
    assert make_data(4, 6, 30, 20, seed=4).train != d.train
