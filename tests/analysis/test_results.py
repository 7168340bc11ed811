"""load_runs on synthetic run folders (written here following docs/architecture.md) and the
``grammarlab phases`` / ``grammarlab measures`` commands."""

from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np
import pytest

from grammarlab import load_runs
from grammarlab.analysis import run_analysis
from grammarlab.cli import main
from grammarlab.errors import GrammarlabError

GRAMMAR = "S -> A A [1.0]\nA -> 'a' [0.5] | 'b' [0.5]\n"
# ratio test/train: e0 1.0, e1 1.0, e2 1.2, e3 2.0 -> onset 2; min test 1.0 at e1 -> gen end 1
TRAIN = [2.0, 1.0, 1.0, 0.5]
TEST = [2.0, 1.0, 1.2, 1.0]


def write_run(run: Path, train=TRAIN, test=TEST, seed=0, extra_line: str = "") -> None:
    """A finished-looking run folder: config, env, metrics, data, one surprisals file."""
    (run / "data").mkdir(parents=True)
    (run / "grammar.cfg").write_text(GRAMMAR)
    (run / "config.toml").write_text(
        f'grammar = "grammars/ab.cfg"\nmodel = "tiny"\n[data]\nn_train = 2\nseed = {seed}\n'
    )
    (run / "env.json").write_text(json.dumps({"n_params": 10, "n_trainable_params": 10}))
    recs = [
        {"epoch": e, "stage": 1, "lr": 0.1, "train_loss": a, "test_loss": b, "random_loss": 3.0,
         "train_acc": 0.5, "test_acc": 0.4, "random_acc": 0.1}
        for e, (a, b) in enumerate(zip(train, test, strict=True))
    ]  # fmt: skip
    text = "".join(json.dumps(r) + "\n" for r in recs) + extra_line
    (run / "metrics.jsonl").write_text(text)
    (run / "data" / "train.txt").write_text("a a\na b\n")
    (run / "data" / "test.txt").write_text("b a\nb b\n")
    (run / "surprisals").mkdir()
    bits = np.array([[1.0, 1.0, 0.0], [0.5, 0.5, 0.0]], np.float32)
    np.savez(run / "surprisals" / "epoch_0003.npz", train_bits=bits, test_bits=bits + 1)


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
