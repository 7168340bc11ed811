"""The report's statistics against hand-derived values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from grammarlab.analysis.stats import (
    binom_tail,
    compare,
    direction,
    median_interval,
    median_over_seeds,
    paired_differences,
    point,
    sign_test,
    significant,
    spearman,
)

INF = math.inf


def test_compare_orders_only_disjoint_intervals():
    assert compare(point(1), point(2)) == 1
    assert compare(point(2), point(1)) == -1
    assert compare(point(1), point(1)) == 0
    assert compare(point(5), (101, INF)) == 1  # censored >100: after every observed epoch
    assert compare((101, INF), (101, INF)) is None  # two censored: unknown, not a tie
    assert compare(point(100), (100, INF)) is None  # >=100 may be 100


def test_binomial_tails_by_hand():
    assert binom_tail(5, 5) == pytest.approx(1 / 32)
    assert binom_tail(4, 5) == pytest.approx(6 / 32)
    assert binom_tail(3, 3) == pytest.approx(1 / 8)
    assert binom_tail(0, 0) == 1.0


def test_sign_test_counts_ties_and_unknowns_apart():
    pairs = [(point(1), point(2))] * 5 + [(point(1), point(1)), ((101, INF), (101, INF))]
    t = sign_test(pairs)
    assert (t.n_up, t.n_down, t.n_ties, t.n_unknown) == (5, 0, 1, 1)
    assert t.p_up == pytest.approx(1 / 32) and t.p_down == 1.0
    assert direction(t) == 1
    assert direction(sign_test([(point(1), point(2))] * 3)) == 0  # 1/8 > 0.05


def test_median_over_seeds_even_counts_and_censoring():
    assert median_over_seeds([point(10), point(35)]) == (22.5, 22.5)
    assert median_over_seeds([point(10), point(20), (101, INF)]) == (20, 20)
    lo, hi = median_over_seeds([point(10), (101, INF)])
    assert lo == 55.5 and hi == INF  # not a point: censored
    assert median_over_seeds([]) is None


def test_paired_differences_and_bootstrap_interval():
    d = paired_differences([(point(1), point(4)), (point(2), (10, INF))])
    assert d == [(3, 3), (8, INF)]
    e = median_interval([1.0, 1.0, 1.0])
    assert (e.median, e.lo, e.hi, e.n) == (1.0, 1.0, 1.0, 3)
    e = median_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    assert e.median == 3.0 and 1.0 <= e.lo <= 3.0 <= e.hi <= 5.0
    assert median_interval([1.0, 2.0, 3.0]) == median_interval([1.0, 2.0, 3.0])  # fixed seed
    assert median_interval(d).bounded


def test_spearman_matches_scipy_and_ranks_censored_last():
    x = [1, 1, 1, 2, 2, 2, 3, 3, 3]
    y = [9, 8, 7, 6, 5, 4, 3, 2, 1]
    c = spearman(x, y, -1)
    ref = spearmanr(x, y, alternative="less")
    assert c.rho == pytest.approx(ref.statistic) and c.p == pytest.approx(ref.pvalue)
    assert c.lo <= c.rho <= c.hi and significant(c) == 1
    # censored onsets rank after every observed one and tie among themselves
    cens = spearman([1, 1, 2, 2], [INF, INF, 3, 4], -1)
    ref = spearmanr([1, 1, 2, 2], [5, 5, 3, 4])
    assert cens.rho == pytest.approx(ref.statistic)
    # the opposite direction is significant against the claim
    assert significant(spearman(x, y[::-1], -1)) == -1
    # no spread: undefined, never significant
    flat = spearman(x, [2.0] * 9, -1)
    assert math.isnan(flat.rho) and significant(flat) == 0


def test_rho_interval_by_hand():
    from grammarlab.analysis.stats import rho_interval

    # rho 0.5, n 12: var (1 + 0.125) / 9 = 0.125, atanh(0.5) = 0.5493 +- 1.96 * 0.3536
    lo, hi = rho_interval(0.5, 12)
    assert lo == pytest.approx(math.tanh(0.549306 - 1.959964 * math.sqrt(0.125)), abs=1e-6)
    assert hi == pytest.approx(math.tanh(0.549306 + 1.959964 * math.sqrt(0.125)), abs=1e-6)
    assert rho_interval(1.0, 9) == (1.0, 1.0)
    assert all(np.isnan(rho_interval(0.3, 3)))
