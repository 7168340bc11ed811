"""grammarlab.load_runs: one loader for a run folder, a sweep folder and a folder of saved tables
(the same tables, with each run's exact grammar entropy)."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

import grammarlab
from grammarlab.analysis.tables import Tables, load_runs
from grammarlab.sweep import tables as sweep_tables
from grammarlab.sweep.tables import aggregate
from tests.analysis.run_folders import write_run

ID_COLS = ["run", "grammar", "family", "label", "entropy_bits", "entropy_quantity",
           "entropy_se_bits", "n_train", "seed", "model"]  # fmt: skip


def _three_folders(tmp_path):
    """A run folder, a sweep folder of two runs (seeds 0 and 1) and the sweep's saved tables
    copied elsewhere, curves and measures gzipped as experiments/results/ keeps them."""
    runs = [tmp_path / "one", tmp_path / "sweep" / "s0", tmp_path / "sweep" / "s1"]
    for seed, run in zip((0, 0, 1), runs, strict=True):
        write_run(run, seed=seed)
        (run / "measures.jsonl").write_text(
            '{"epoch": 3, "excess_test_bits": 0.5, "memU_train_bits_total": 1.5}\n'
        )
    aggregate(tmp_path / "sweep")
    saved = tmp_path / "results"
    saved.mkdir()
    shutil.copy(tmp_path / "sweep" / "phases.csv", saved / "phases.csv")
    for name in ("curves", "measures"):
        df = pd.read_csv(tmp_path / "sweep" / f"{name}.csv")
        df.to_csv(saved / f"{name}.csv.gz", index=False)
    return tmp_path / "one", tmp_path / "sweep", saved


def test_one_loader_gives_the_same_tables_for_runs_sweeps_and_saved_tables(tmp_path):
    one, sweep, saved = _three_folders(tmp_path)
    t1, ts, tv = (grammarlab.load_runs(p) for p in (one, sweep, saved))
    assert all(isinstance(t, Tables) for t in (t1, ts, tv))
    # the sweep's two runs differ in their seed only: that config key is kept as a column
    assert [c for c in ts.phases.columns if c.startswith("config.")] == ["config.data.seed"]
    for name in ("curves", "phases", "measures"):
        a, b, c = (getattr(t, name) for t in (t1, ts, tv))
        assert list(b.columns) == list(c.columns)  # saved = as written
        assert [x for x in b.columns if not x.startswith("config.")] == list(a.columns)
        assert all(col in a.columns for col in ID_COLS)
    assert list(ts.phases.columns[: len(ID_COLS)]) == ID_COLS
    pd.testing.assert_frame_equal(tv.phases, pd.read_csv(sweep / "phases.csv"))
    assert len(t1.curves) == 12 and len(ts.curves) == len(tv.curves) == 24
    assert t1.metrics is t1.curves  # the name a run folder's metrics.jsonl gives them
    # the sweep's former loader names are the same functions
    assert sweep_tables.collect is load_runs and sweep_tables.SweepTables is Tables
    ph = ts.phases.set_index("run")
    assert ph.loc["s1", "seed"] == 1 and ph.loc["s0", "model"] == "tiny"
    assert set(ph.n_train) == {2} and set(ph.grammar) == {"ab"}


def test_entropy_bits_is_the_grammar_exact_entropy(tmp_path):
    """S -> A A, A -> 'a' | 'b' at 1/2 each: four strings of probability 1/4, so H = 2 bits per
    string exactly, in every table and in the saved tables read back."""
    one, sweep, saved = _three_folders(tmp_path)
    for p in (one, sweep, saved):
        t = load_runs(p)
        for df in (t.curves, t.phases, t.measures):
            if df.empty:
                continue
            assert df.entropy_bits.tolist() == pytest.approx([2.0] * len(df), abs=1e-12)
            assert set(df.entropy_quantity) == {"string"} and (df.entropy_se_bits == 0).all()
        assert t.phases.entropy_bits.notna().all()


def test_family_and_label_from_the_grammar_file_name(tmp_path):
    one, _, _ = _three_folders(tmp_path)
    ph = load_runs(one).phases.iloc[0]
    # no grammars.json and no header: the family and label come from the file name "ab"
    assert ph.label == "ab" and isinstance(ph.family, str) and ph.family
