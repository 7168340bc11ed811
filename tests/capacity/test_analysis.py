"""Capacity from fake run results with a known plateau, and the bits-per-parameter fit."""

import math

import numpy as np
import pytest

from grammarlab.capacity.analysis import analyse, fit_through_origin, summary
from tests.capacity.fake_records import fake, grid


def test_capacity_is_the_plateau_and_the_fit_recovers_bits_per_param():
    t = analyse(grid(3.5))
    caps = t["capacity"]
    assert list(caps["capacity_bits"]) == pytest.approx([3500, 7000, 14000])
    assert list(caps["capacity_sd"]) == pytest.approx([0, 0, 0])
    assert caps["n_plateau"].tolist() == [2, 2, 2]
    fit = t["fit"].iloc[0]
    assert fit["bits_per_param"] == pytest.approx(3.5)
    assert fit["se"] == pytest.approx(0.0, abs=1e-12)
    r = t["ratio"]
    assert r.loc[r["n_train"] == 1024, "ratio"].min() > 1.0
    assert "bits/param float32 all: 3.500" in summary(t["capacity"], t["fit"])


def test_seed_spread_and_interval():
    t = analyse(grid(2.0, jitter=0.1))
    caps = t["capacity"]
    # seeds at 0.9 and 1.1 times 2 bits/param: sd of (1.8 P, 2.2 P) is 0.2 sqrt(2) P
    assert caps["capacity_sd"].tolist() == pytest.approx(
        [0.4 * 1000 / math.sqrt(2) * p for p in (1, 2, 4)]
    )
    fit = t["fit"].iloc[0]
    assert fit["bits_per_param"] == pytest.approx(2.0)
    assert fit["ci95_low"] < 2.0 < fit["ci95_high"]
    assert fit["se"] > 0


def test_no_plateau_when_the_data_stay_below_capacity():
    t = analyse(grid(1000.0))  # capacity far above the largest dataset: all memorized
    assert t["capacity"]["n_plateau"].tolist() == [0, 0, 0]
    assert not t["fit"]["all_plateau"].iloc[0]
    assert "lower bound" in summary(t["capacity"], t["fit"])


def test_fit_through_origin_hand_values():
    f = fit_through_origin(np.array([1.0, 2.0]), np.array([1.0, 3.0]))
    assert f["slope"] == pytest.approx(7 / 5)  # sum xy / sum x^2
    resid = np.array([1 - 1.4, 3 - 2.8])
    assert f["se"] == pytest.approx(math.sqrt((resid**2).sum() / 1 / 5))
    one = fit_through_origin(np.array([2.0]), np.array([7.0]))
    assert one["slope"] == 3.5 and math.isnan(one["se"])


def test_a_runs_bits_are_its_best_measured_checkpoint():
    rec = fake("m0", "gpt_neox", 1000, 3000.0, 64, 0)
    points = [{**rec["final"], "step": 100 * (i + 1), "mem_bits": b, "mem_bits_signed": b - 5.0}
              for i, b in enumerate((100.0, 2000.0, 3100.0, 2900.0, 1200.0))]  # fmt: skip
    rec = {**rec, "curve": points, "final": points[-1]}
    row = analyse([rec])["runs"].iloc[0]
    # the measurement at step 300 (3100 bits), not the last one (a drop to 1200)
    assert (row["mem_bits"], row["mem_bits_signed"], row["best_step"]) == (3100.0, 3095.0, 300)
    assert row["mem_bits_last"] == 1200.0


def test_steps_table_reads_the_best_so_far_at_each_mark():
    rec = fake("m0", "pythia-tiny", 100, 300.0, 4, 0)
    rec["settings"]["train"] = {"max_steps": 2000}
    rec["steps"] = 1200  # stopped by the saturation rule at 1200
    points = [(400, 50.0), (800, 120.0), (1000, 90.0), (1200, 130.0)]
    rec["curve"] = [{**rec["final"], "step": s, "mem_bits": b} for s, b in points]
    t = analyse([rec])["steps"]
    # marks 500, 1000, 2000 (3000.. beyond max_steps): best of the points up to each
    assert t["step"].tolist() == [500, 1000, 2000]
    assert t["mem_bits"].tolist() == [50.0, 120.0, 130.0]  # the drop at 1000 is not a best
    assert t["stopped"].tolist() == [False, False, True]


def test_the_ceiling_is_n_h_minus_n_log2_n():
    from grammarlab.capacity.analysis import ceiling_bits

    # 64 strings of 64 bits: 4096 - 64 * 6 = 3712; 128 strings: 8192 - 128 * 7 = 7296
    assert ceiling_bits(4096.0, 64) == 3712.0 and ceiling_bits(8192.0, 128) == 7296.0
    # a model that gives each of the N strings probability 1/N exactly meets it
    h, n = 12.0, 8
    assert ceiling_bits(n * h, n) == pytest.approx(n * (h - math.log2(n)))
    t = analyse([fake("m0", "pythia-tiny", 100, 300.0, 4, 0)])["runs"]
    assert t["ceiling_bits"].tolist() == [4 * 128.0 - 8.0]
    assert t["of_ceiling"].tolist() == pytest.approx([300.0 / 504.0])
