"""The saturation criterion on synthetic curves of memorized bits."""

import numpy as np

from grammarlab.capacity.config import SaturationSpec
from grammarlab.capacity.saturation import is_saturated, saturated_at

RULE = SaturationSpec(window=2, rel_tol=0.05, min_steps=300)


def steps(n):
    return [100 * (i + 1) for i in range(n)]


def test_rising_then_flat_saturates_when_the_best_stops_rising():
    bits = [100, 400, 700, 1000, 1000, 1000, 1000, 1000]
    # best so far: 100 400 700 1000 1000 1000 ...; j=4: 1000 vs best up to j-2 (700) -> grew 300
    # > 50; j=5: 1000 vs best up to 3 (1000) -> 0
    assert saturated_at(steps(8), bits, RULE) == 5


def test_steady_growth_never_saturates():
    assert saturated_at(steps(30), list(np.linspace(10, 3000, 30)), RULE) is None


def test_a_curve_at_zero_is_not_a_plateau():
    assert saturated_at(steps(10), [0.0] * 10, RULE) is None


def test_min_steps_holds_back_an_early_flat_start():
    flat = [500.0] * 6
    rule = SaturationSpec(window=2, rel_tol=0.05, min_steps=550)
    assert saturated_at(steps(6), flat, rule) == 5  # steps 100..600: first with step >= 550
    assert not is_saturated(steps(4), flat[:4], rule)


def test_noisy_plateau_saturates_but_one_low_point_in_growth_does_not():
    growth = [100, 300, 500, 450, 900, 1100, 1300]  # a dip at index 3
    assert saturated_at(steps(7), growth, RULE) is None
    noisy = [1000, 1020, 990, 1010, 1000, 1015]
    assert saturated_at(steps(6), noisy, RULE) == 3


def test_a_spike_down_during_growth_does_not_end_the_run():
    # measured shape: growing ~10% per evaluation, one loss spike halves the total, it recovers
    spiky = [500, 550, 605, 300, 700, 770, 850]
    assert saturated_at(steps(7), spiky, RULE) is None
    # the same spike on a plateau: saturated two evaluations after the best stopped rising
    flat = [1000, 1000, 500, 1000, 1000, 1000]
    assert saturated_at(steps(6), flat, RULE) == 3
