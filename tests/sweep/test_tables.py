"""The aggregated sweep tables (curves, phases, measures, per position) and the summary table."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from grammarlab.sweep.execute import run_sweep
from grammarlab.sweep.spec import load_sweep
from grammarlab.sweep.tables import aggregate, collect, summary_table
from tests.sweep.fake_trainer import FAKE, write_sweep


def test_aggregate_tables(tmp_path):
    f = write_sweep(tmp_path, "n_train = [4, 8]\nseed = [0, 1]\n")
    sw = load_sweep(f, out=tmp_path / "o")
    run_sweep(sw, target=FAKE, progress=False)
    t = aggregate(sw.root)
    curves = pd.read_csv(sw.root / "curves.csv")
    # 4 runs x 7 epochs (0..6) x 3 datasets
    assert len(curves) == 4 * 7 * 3
    for col in ("run", "epoch", "dataset", "loss", "acc", "grammar", "entropy_bits", "n_train"):
        assert col in curves.columns
    ph = pd.read_csv(sw.root / "phases.csv")
    assert len(ph) == 4
    need = ["grammar", "entropy_bits", "n_train", "seed", "memorization_onset_epoch",
            "generalization_end_epoch", "min_test_loss", "min_excess_test_bits",
            "final_memU_train_bits_total"]  # fmt: skip
    assert all(c in ph.columns for c in need)
    # fake curves: onset at n//2 (test > 1.05 train from then on); excess 5 - e, min at e = 6
    onsets = sorted(zip(ph.n_train, ph.memorization_onset_epoch, strict=True))
    assert onsets == [(4, 2), (4, 2), (8, 4), (8, 4)]
    assert (ph.min_excess_test_bits == -1.0).all() and (ph.final_memU_train_bits_total == 6).all()
    assert set(ph.grammar) == {"ab"}
    if not t.phases.entropy_bits.isna().all():  # the entropy engine is there
        assert ph.entropy_bits.tolist() == pytest.approx([2.0] * 4)
    assert len(pd.read_csv(sw.root / "measures.csv")) == 4 * 7
    text = summary_table(t.phases)
    assert "onset" in text and len(text.splitlines()) == 5


def test_saved_tables_read_back_like_the_runs_they_came_from(tmp_path):
    """experiments/results/ keeps only the small tables (curves and measures gzipped): collect
    (and so `grammarlab report`) reads such a folder like the run folders it was written from."""
    f = write_sweep(tmp_path, "n_train = [4, 8]\n")
    sw = load_sweep(f, out=tmp_path / "o")
    run_sweep(sw, target=FAKE, progress=False)
    t = aggregate(sw.root)
    saved = tmp_path / "results"
    saved.mkdir()
    t.phases.to_csv(saved / "phases.csv", index=False)
    t.curves.to_csv(saved / "curves.csv.gz", index=False)
    back = collect(saved)
    pd.testing.assert_frame_equal(back.phases, pd.read_csv(sw.root / "phases.csv"))
    pd.testing.assert_frame_equal(back.curves, pd.read_csv(sw.root / "curves.csv"))
    assert back.measures.empty and back.notes == ()  # measures: optional for the report
    (saved / "curves.csv.gz").unlink()
    assert any("no saved curves.csv" in n for n in collect(saved).notes)
    with pytest.raises(Exception, match="no run found"):  # neither runs nor saved tables
        collect(tmp_path / "o" / "configs")


def test_summary_table_prints_censored_events_as_censored():
    # run a: both events observed; b: onset never reached by epoch 30 and the test loss still
    # falling at 30 (generalization end censored); c: an old phases row without censoring flags
    rows = [
        {"grammar": "a", "entropy_bits": 1.0, "n_train": 8, "memorization_onset_epoch": 12.0,
         "memorization_onset_censored": False, "generalization_end_epoch": 7.0,
         "generalization_end_censored": False, "stage1_last_epoch": 30, "last_epoch": 30},
        {"grammar": "b", "entropy_bits": 2.0, "n_train": 8, "memorization_onset_epoch": None,
         "memorization_onset_censored": True, "generalization_end_epoch": 30.0,
         "generalization_end_censored": True, "stage1_last_epoch": 30, "last_epoch": 30},
        {"grammar": "c", "entropy_bits": 3.0, "n_train": 8, "memorization_onset_epoch": None,
         "generalization_end_epoch": 99.0, "last_epoch": 99},
    ]  # fmt: skip
    lines = summary_table(pd.DataFrame(rows)).splitlines()
    cells = [line.split() for line in lines[1:]]
    assert lines[0].split()[:5] == ["grammar", "H", "bits", "n", "onset"]
    assert cells[0][:5] == ["a", "1", "8", "12", "7"]
    assert cells[1][:5] == ["b", "2", "8", ">30", ">=30"]
    assert cells[2][:5] == ["c", "3", "8", ">99", ">=99"]


def test_per_position_rows_and_new_measure_summaries(tmp_path):
    f = write_sweep(tmp_path, "n_train = [4, 8]\n")
    sw = load_sweep(f, out=tmp_path / "o")
    run_sweep(sw, target=FAKE, progress=False)
    for k, r in enumerate(sw.runs):  # the analysis files the fake trainer does not write
        pp = pd.DataFrame({"epoch": [0, 0, 1], "dataset": ["test"] * 3, "position": [0, 1, 0],
                           "excess_bits": [k, k + 0.5, k + 1.0]})  # fmt: skip
        pp.to_csv(r.run_dir / "per_position.csv", index=False)
        rows = [{"epoch": e, "excess_test_bits": 5.0 - e, "mia_auc": 0.5 + 0.1 * e,
                 "mia_pvalue": 0.5 / (1 + e), "memU_train_bits_signed_total": e - 3.0,
                 "excess_test_bits_vs_untrained": -e - k, "uniform_excess_test_bits": 7.0}
                for e in range(4)]  # fmt: skip
        (r.run_dir / "measures.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    t = aggregate(sw.root)
    pp = pd.read_csv(sw.root / "per_position.csv")
    assert len(pp) == len(t.per_position) == 6
    assert {"run", "grammar", "n_train"} <= set(pp.columns)
    by_n = pp.groupby("n_train").excess_bits.sum().to_dict()
    assert by_n == {4: 0 + 0.5 + 1, 8: 1 + 1.5 + 2}  # run k = 0 has n = 4, run 1 n = 8
    ph = t.phases.sort_values("n_train")
    assert ph.final_mia_auc.tolist() == pytest.approx([0.8, 0.8])  # epoch 3 (exact in binary)
    assert ph.max_mia_auc.tolist() == pytest.approx([0.8, 0.8])
    assert ph.final_mia_pvalue.tolist() == [0.125, 0.125]
    assert ph.final_memU_train_bits_signed_total.tolist() == [0.0, 0.0]
    assert ph.min_excess_test_bits_vs_untrained.tolist() == [-3.0, -4.0]
    assert ph.uniform_excess_test_bits.tolist() == [7.0, 7.0]
    assert ph.min_excess_test_bits_vs_uniform.isna().all()  # not in these measures
