"""The grammar's own loss per set (Eq. 1 units) against hand-derived values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from grammarlab.analysis.floors import check_against_measures, floors_of_sets, set_floor
from grammarlab.errors import GrammarlabError
from grammarlab.grammar.load import loads

# "a" has probability 1/2 (1 bit), "a b" and "b b b" 1/4 (2 bits)
GRAMMAR = "S -> 'a' [0.5] | 'a' 'b' [0.25] | 'b' 'b' 'b' [0.25]\n"


def test_set_floor_is_the_mean_over_strings_of_nats_per_predicted_token():
    # 1 bit over 2 tokens and 2 bits over 3 (end token included): ln2 (1/2 + 2/3) / 2
    assert set_floor(np.array([1.0, 2.0]), np.array([1, 2])) == pytest.approx(
        math.log(2) * 7 / 12, abs=1e-15
    )
    assert math.isnan(set_floor(np.array([]), np.array([])))
    with pytest.raises(GrammarlabError):
        set_floor(np.array([1.0]), np.array([1, 2]))


def test_floors_of_sets_with_the_exact_grammar():
    g = loads(GRAMMAR)
    f = floors_of_sets(g, [("a",), ("a", "b")], [("b", "b", "b"), ("a",)])
    assert f["grammar_train_loss"] == pytest.approx(math.log(2) * 7 / 12, abs=1e-12)
    assert f["grammar_test_loss"] == pytest.approx(math.log(2) / 2, abs=1e-12)
    assert f["floor_ratio"] == pytest.approx(6 / 7, abs=1e-12)
    assert f["grammar_train_bits_mean"] == pytest.approx(1.5, abs=1e-12)


def test_redrawn_sets_are_checked_against_the_saved_measures():
    fl = pd.DataFrame([{"run": "r", "grammar_train_bits_mean": 1.5, "grammar_test_bits_mean": 1.5}])
    good = pd.DataFrame([{"run": "r", "stage": 1, "model_train_bits_mean": 4.0,
                          "excess_train_bits": 2.5, "grammar_test_bits_mean": 1.5}])  # fmt: skip
    assert check_against_measures(fl, good) is fl
    bad = good.assign(grammar_test_bits_mean=2.5)
    with pytest.raises(GrammarlabError, match="redrawn sets"):
        check_against_measures(fl, bad)
