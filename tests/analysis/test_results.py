"""load_runs on synthetic run folders (tests/analysis/run_folders.py); the ``grammarlab phases``
and ``grammarlab measures`` commands are tested in tests/cli/test_analysis.py."""

from __future__ import annotations

import json

import pytest

from grammarlab import load_runs
from grammarlab.errors import GrammarlabError
from tests.analysis.run_folders import write_run


def test_load_runs_single_run(tmp_path):
    write_run(tmp_path / "r1")
    t = load_runs(tmp_path / "r1")
    # 4 epochs x 3 datasets (train, test, random)
    assert len(t.metrics) == 12
    assert set(t.metrics.dataset) == {"train", "test", "random"}
    for col in ("run", "epoch", "stage", "dataset", "loss", "acc", "grammar", "entropy_bits",
                "n_train", "seed", "model"):  # fmt: skip
        assert col in t.metrics.columns
    row = t.metrics[(t.metrics.epoch == 2) & (t.metrics.dataset == "test")].iloc[0]
    assert row.loss == 1.2 and row.acc == 0.4 and row.run == "r1"
    assert row.grammar == "ab" and row.n_train == 2 and row.seed == 0 and row.model == "tiny"
    assert len(t.phases) == 1
    ph = t.phases.iloc[0]
    assert ph.phases_source == "computed"
    assert ph.memorization_onset_epoch == 2 and ph.generalization_end_epoch == 1
    assert t.measures.empty and any("measures" in n for n in t.notes)


def test_load_runs_folder_of_runs_and_unfinished(tmp_path):
    write_run(tmp_path / "sweep" / "s0", seed=0)
    # a run being written: half a line at the end, no phases.json, no measures.jsonl
    write_run(tmp_path / "sweep" / "s1", seed=1, extra_line='{"epoch": 4, "train_lo')
    # a run that has started but recorded nothing
    (tmp_path / "sweep" / "s2").mkdir()
    (tmp_path / "sweep" / "s2" / "metrics.jsonl").write_text("")
    (tmp_path / "sweep" / "s0" / "phases.json").write_text(
        json.dumps({"memorization_onset_epoch": 7, "generalization_end_epoch": 1})
    )
    (tmp_path / "sweep" / "s0" / "measures.jsonl").write_text(
        '{"epoch": 3, "memU_train_bits_total": 1.5}\n'
    )
    t = load_runs(tmp_path / "sweep")
    assert sorted(set(t.metrics.run)) == ["s0", "s1"]
    assert len(t.metrics) == 24  # the half-written line is ignored
    ph = t.phases.set_index("run")
    assert ph.loc["s0", "phases_source"] == "phases.json"
    assert ph.loc["s0", "memorization_onset_epoch"] == 7  # read, not recomputed
    assert ph.loc["s1", "memorization_onset_epoch"] == 2
    assert list(t.measures.run) == ["s0"] and t.measures.memU_train_bits_total.iloc[0] == 1.5
    assert any(n.startswith("s2") for n in t.notes)
    assert set(t.measures.seed) == {0}


def test_load_runs_user_errors(tmp_path):
    with pytest.raises(GrammarlabError, match="no run found"):
        load_runs(tmp_path)
    with pytest.raises(GrammarlabError, match="no such folder"):
        load_runs(tmp_path / "missing")
