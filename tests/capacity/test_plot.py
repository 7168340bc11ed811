"""The capacity figures: each is written with the CSV of the numbers it draws."""

import numpy as np
import pandas as pd
import pytest

from grammarlab.capacity.analysis import analyse
from grammarlab.capacity.plot import plot_all
from tests.capacity.fake_records import BITS_PER_STRING, grid


def test_the_figures_csvs_hold_the_numbers_given(tmp_path):
    per_param = 3.5
    tables = analyse(grid(per_param))
    stems = plot_all(tables, tmp_path)
    assert stems == ["capacity_memorized", "capacity_vs_params", "capacity_test_loss",
                     "capacity_mia"]  # fmt: skip
    for stem in stems:
        for ext in ("png", "pdf", "csv"):
            assert (tmp_path / f"{stem}.{ext}").stat().st_size > 0, (stem, ext)

    mem = pd.read_csv(tmp_path / "capacity_memorized.csv")
    # the fake runs memorize min(dataset bits, 3.5 bits per parameter): 3 model sizes x 2 seeds
    # x 5 dataset sizes. pytest.approx (1e-6 relative) only absorbs float64 rounding of the
    # tables' means and ratios, some 10 orders of magnitude below it.
    assert len(mem) == 3 * 2 * 5
    assert mem["dataset_bits"].tolist() == (mem["n_train"] * BITS_PER_STRING).tolist()
    expected = np.minimum(mem["dataset_bits"], per_param * mem["n_params"])
    assert mem["mem_bits"].tolist() == pytest.approx(expected.tolist())

    caps = pd.read_csv(tmp_path / "capacity_vs_params.csv")
    assert caps["capacity_bits"].tolist() == pytest.approx((per_param * caps["n_params"]).tolist())

    mia = pd.read_csv(tmp_path / "capacity_mia.csv")
    ratio = mia["dataset_bits"] / (per_param * mia["n_params"])
    assert mia["ratio"].tolist() == pytest.approx(ratio.tolist())
    # the fake AUC: 1 while everything fits, 0.5 + 0.5 / ratio beyond the capacity
    assert mia["auc"].tolist() == pytest.approx([1.0 if r <= 1 else 0.5 + 0.5 / r for r in ratio])


def test_no_runs_no_figures(tmp_path):
    assert plot_all(analyse([]), tmp_path) == []
    assert not list(tmp_path.iterdir())
