"""A grid's report: the tables and the summary written into the folder."""

import pandas as pd

from grammarlab.capacity.report import write_report
from tests.capacity.fake_records import grid


def test_the_summary_names_each_model_size_and_the_tables_hold_every_run(tmp_path):
    records = grid(3.5)
    text, stems = write_report(records, tmp_path, figures=False)
    assert stems == [] and not list(tmp_path.glob("*.png"))
    assert (tmp_path / "summary.txt").read_text() == text + "\n"
    rows = [ln for ln in text.splitlines() if ln.split()[:1] in (["m0"], ["m1"], ["m2"])]
    # one row per model size (and dtype), in the order of their parameters
    assert [ln.split()[:3] for ln in rows] == [
        ["m0", "float32", "1000"],
        ["m1", "float32", "2000"],
        ["m2", "float32", "4000"],
    ]
    assert "bits/param float32 all: 3.500" in text
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert sorted(runs["run_id"]) == sorted(r["run_id"] for r in records)
    caps = pd.read_csv(tmp_path / "capacity.csv")
    assert caps["capacity_bits"].tolist() == [3500.0, 7000.0, 14000.0]
    for name in ("seed_capacity", "fit", "ratio"):
        assert (tmp_path / f"{name}.csv").is_file(), name
