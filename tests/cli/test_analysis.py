"""grammarlab phases / grammarlab measures on synthetic run folders: JSON and tables, censored
events, one-line user errors, files written, torn metrics lines refused."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest

from grammarlab import load_runs
from grammarlab.analysis import run_analysis
from grammarlab.cli import main
from tests.analysis.run_folders import write_run


def test_cli_phases_json_single_and_several(tmp_path, capsys):
    write_run(tmp_path / "runs" / "a", seed=0)
    # seed 1: ratio 1, 1, 1.0, 1.1 -> onset 3; min test .55 at e3
    write_run(
        tmp_path / "runs" / "b", train=[2.0, 1.0, 1.0, 0.5], test=[2.0, 1.0, 1.0, 0.55], seed=1
    )
    assert main(["phases", str(tmp_path / "runs" / "a"), "--json"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert one["memorization_onset_epoch"] == 2 and one["generalization_end_epoch"] == 1
    assert "forgetting_epoch" in one and one["forgetting_epoch"] is None
    assert main(["phases", str(tmp_path / "runs"), "--json"]) == 0
    both = json.loads(capsys.readouterr().out)
    assert both["n_runs"] == 2 and set(both["runs"]) == {"a", "b"}
    assert both["runs"]["b"]["memorization_onset_epoch"] == 3
    # mean: train 2, 1, 1, .5 ; test 2, 1, 1.1, .775 -> ratios 1, 1, 1.1, 1.55 -> onset 2;
    # min test .775 at e3
    assert both["mean"]["memorization_onset_epoch"] == 2
    assert both["mean"]["generalization_end_epoch"] == 3
    # a higher threshold moves the onset: 1.5 -> only e3 (2.0) above for run a
    assert main(["phases", str(tmp_path / "runs" / "a"), "--json", "--threshold", "1.5"]) == 0
    assert json.loads(capsys.readouterr().out)["memorization_onset_epoch"] == 3
    # readable output names every run and the mean
    assert main(["phases", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "mean of 2" in out and "onset" in out


def test_cli_phases_table_prints_censored_events_and_the_seed_summary(tmp_path, capsys):
    write_run(tmp_path / "runs" / "a", seed=0)  # onset 2, generalization end 1: observed
    # b: onset 3; the test loss is lowest at the last epoch 3: generalization end censored >=3
    write_run(
        tmp_path / "runs" / "b", train=[2.0, 1.0, 1.0, 0.5], test=[2.0, 1.0, 1.0, 0.55], seed=1
    )
    assert main(["phases", str(tmp_path / "runs")]) == 0
    lines = {ln.split()[0]: ln.split() for ln in capsys.readouterr().out.splitlines()[1:]}
    header = lines["run"]
    onset, gen_end = header.index("onset"), header.index("gen_end")
    assert lines["a"][onset] == "2" and lines["a"][gen_end] == "1"
    assert lines["b"][onset] == "3" and lines["b"][gen_end] == ">=3"
    mean = " ".join(lines["mean"])
    # onset: both seeds observed (2, 3): mean 2.5, sample sd 0.707; gen end: only seed a (1)
    assert "2.5 +/- 0.7 (2 of 2 seeds observed)" in mean
    assert "1.0 (1 of 2 seeds observed; 1 censored >=3)" in mean


def test_cli_phases_table_sequential_columns(tmp_path, capsys):
    run = tmp_path / "seq"
    write_run(run)
    # stage 1: epochs 0-3 (D1 = train); stage 2 from epoch 4: D1's loss jumps from 0.5 to 1.5
    # in the first stage-2 update, then comes back within 5 % of the test loss at epoch 5
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    for r in recs:
        r["d1_loss"] = r["train_loss"]
    recs += [{"epoch": 4, "stage": 2, "lr": 0.1, "train_loss": 0.8, "test_loss": 1.3,
              "d1_loss": 1.5, "d2_loss": 0.8},
             {"epoch": 5, "stage": 2, "lr": 0.1, "train_loss": 0.6, "test_loss": 1.2,
              "d1_loss": 1.2, "d2_loss": 0.6}]  # fmt: skip
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert main(["phases", str(run)]) == 0
    rows = [ln.split() for ln in capsys.readouterr().out.splitlines()[1:]]
    cells = dict(zip(rows[0], rows[1], strict=True))
    assert cells["d1_within"] == "5"  # |1.2 - 1.2| <= 5 % of 1.2; epoch 4: |1.5 - 1.3| is not
    assert cells["switch_d1"] == "1"  # 1.5 - 0.5 nats/token
    assert cells["forget"] == "5"  # within from epoch 5 to the last epoch: observed


def test_cli_user_errors_no_traceback(tmp_path, capsys):
    assert main(["phases", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no run found" in err and "Traceback" not in err
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "metrics.jsonl").write_text("")
    assert main(["measures", str(tmp_path / "r")]) == 2
    assert "no epochs" in capsys.readouterr().err


def test_cli_measures_writes_files(tmp_path, capsys, monkeypatch):
    # stand-in for the grammar engine: every string of {a,b}^2 has 2 bits, tokens 1, 1, end 0
    fake = types.ModuleType("grammarlab.grammar.inside")
    fake.surprisal_bits = lambda g, ss: np.array([2.0] * len(ss))
    fake.token_surprisals_bits = lambda g, ss: [np.array([1.0, 1.0, 0.0]) for _ in ss]
    monkeypatch.setattr(run_analysis, "inside", fake)
    write_run(tmp_path / "r")
    assert main(["measures", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "memU_train_bits_total" in out
    for f in ("phases.json", "measures.jsonl", "per_string.csv", "per_position.csv"):
        assert (tmp_path / "r" / f).is_file()
    t = load_runs(tmp_path / "r")
    # train bits 2 and 1 vs grammar 2 -> memU 0 + 1 = 1 bit over 10 parameters
    assert t.measures.memU_train_bits_total.iloc[0] == pytest.approx(1.0)
    assert t.measures.memU_bits_per_param.iloc[0] == pytest.approx(0.1)
    assert t.phases.phases_source.iloc[0] == "phases.json"


def test_a_torn_metrics_line_is_never_dropped_silently(tmp_path, capsys):
    write_run(tmp_path / "r", extra_line='{"epoch": 4, "train_lo')
    assert main(["measures", str(tmp_path / "r")]) == 2  # the analysis refuses, naming the line
    err = capsys.readouterr().err
    assert f"{tmp_path / 'r' / 'metrics.jsonl'}:5: error: broken metrics line" in err
    with pytest.warns(UserWarning, match=r"metrics.jsonl:5: incomplete last line"):
        t = load_runs(tmp_path / "r")  # tables of a run being written: left out, with a note
    assert any("metrics.jsonl:5" in n for n in t.notes)
    with pytest.warns(UserWarning, match=r"metrics.jsonl:5"):
        assert main(["phases", str(tmp_path / "r"), "--json"]) == 0


def test_cli_data_exports_a_run_s_sets_with_exact_surprisals(tmp_path, capsys):
    run = tmp_path / "run"
    write_run(run)
    assert main(["data", str(run)]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(r["set"], r["text"]) for r in rows] == [
        ("test", "b a"), ("test", "b b"), ("train", "a a"), ("train", "a b")
    ]  # fmt: skip
    assert all(r["surprisal_bits"] == pytest.approx(2.0, abs=1e-12) for r in rows)  # 1/4 each
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    out = tmp_path / "sets.parquet"
    assert main(["data", str(run), "--format", "parquet", "-o", str(out)]) == 0
    df = pd.read_parquet(out)
    assert list(df.columns) == ["set", "text", "tokens", "length", "surprisal_bits"]
    assert df["text"].tolist() == [r["text"] for r in rows]
    assert main(["data", str(run), "-o", str(run / "metrics.jsonl")]) == 2  # a run's own file
    assert main(["data", str(tmp_path)]) == 2  # no data sets
    assert "no data sets" in capsys.readouterr().err
