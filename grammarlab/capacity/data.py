"""Training and test strings of one capacity run, with their exact grammar surprisal in bits.

The grammar is :func:`grammarlab.grammar.families.random_grammar` (uniform): every string has
exactly ``L log2 V`` bits of surprisal (L letters of probability 1/V each, then the end token,
certain after L letters: 0 bits). We take each string's surprisal from the grammar engine
(:func:`grammarlab.grammar.inside.surprisal_bits`) and check it against that closed form, so a
change in either shows up as an error rather than as a shifted capacity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from grammarlab.errors import GrammarlabError
from grammarlab.grammar.families import random_grammar
from grammarlab.grammar.inside import surprisal_bits
from grammarlab.grammar.parse import Grammar
from grammarlab.grammar.sample import sample
from grammarlab.grammar.strings import Tokens

# Agreement of engine and closed form, in bits per string: the engine sums L log-probabilities
# in float64 (relative error ~1e-16 each), so 1e-9 bits is far above its rounding for any L here.
_EXACT_TOL_BITS = 1e-9


def uniform_string_bits(alphabet_size: int, length: int) -> float:
    """Closed-form surprisal of any string of the uniform random grammar: L log2 V bits."""
    return length * math.log2(alphabet_size)


@lru_cache(maxsize=8)
def uniform_grammar(alphabet_size: int, length: int) -> Grammar:
    """The uniform random grammar over the first ``alphabet_size`` letters, strings of
    ``length`` letters (cached: it is frozen)."""
    return random_grammar(alphabet_size, length)


@dataclass(frozen=True)
class CapacityData:
    """One run's strings: ``train`` (distinct) and ``test`` (distinct, disjoint from train), and
    the exact grammar surprisal of each in bits per string (end token included)."""

    train: list[Tokens]
    test: list[Tokens]
    train_bits: np.ndarray
    test_bits: np.ndarray

    @property
    def dataset_bits(self) -> float:
        """Total information of the training set under the grammar, in bits."""
        return float(self.train_bits.sum())


def grammar_bits(g: Grammar, strings: list[Tokens], expected: float | None = None) -> np.ndarray:
    """Exact surprisal (bits per string) of ``strings`` under ``g`` from the grammar engine;
    with ``expected``, checked to equal it for every string."""
    bits = surprisal_bits(g, strings)
    if expected is not None and len(bits):
        worst = float(np.max(np.abs(bits - expected)))
        if not worst <= _EXACT_TOL_BITS:
            raise GrammarlabError(
                f"internal: grammar surprisal differs from the closed form {expected!r} bits by "
                f"{worst!r} bits"
            )
    return bits


def make_data(alphabet_size: int, length: int, n_train: int, n_test: int, seed: int):
    """Draw ``n_train`` distinct training strings and ``n_test`` distinct fresh ones from the
    uniform grammar. The strings are a pure function of (V, L, n_train, n_test, seed)."""
    g = uniform_grammar(alphabet_size, length)
    rng = np.random.default_rng([seed, n_train, 7919])  # 7919: tags the data stream
    train = sample(g, n_train, rng, unique=True)
    test = sample(g, n_test, rng, unique=True, exclude=train)
    exact = uniform_string_bits(alphabet_size, length)
    return CapacityData(train, test, grammar_bits(g, train, exact), grammar_bits(g, test, exact))
