"""A run's analysis on a small fake run folder with known answers: the untrained and uniform
baselines, signed memU, the membership-inference flag's null band and its sustained onset, and
the number of lengths a grammar derives (the uniform baseline's length factor)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from grammarlab.analysis.run_analysis import _with_mia_onset, length_count, write_run_analysis
from grammarlab.grammar.load import loads

NAN = math.nan
L3 = math.log2(3)
# Lengths 1, 2, 3 over {a, b}: bits a = 1, "a b" = 2, "b b b" = 2 (exact: probabilities 1/2, 1/4)
GRAMMAR = "S -> 'a' [0.5] | 'a' 'b' [0.25] | 'b' 'b' 'b' [0.25]\n"
TRAIN = [("a",), ("a", "b")]
TEST = [("b", "b", "b"), ("a",)]
# model surprisals (bits per predicted token, end token included, NaN padding); string sums:
# epoch 0 (untrained): train 2, 3; test 4, 2. epoch 1: train 0.5, 1.5; test 4.5, 1
BITS = {
    0: {"train": [[1, 1, NAN, NAN], [1, 1, 1, NAN]], "test": [[1, 1, 1, 1], [1, 1, NAN, NAN]]},
    1: {"train": [[0.25, 0.25, NAN, NAN], [0.5, 0.5, 0.5, NAN]],
        "test": [[1, 1, 1, 1.5], [0.5, 0.5, NAN, NAN]]},
}  # fmt: skip


def write_run(run: Path, grammar: str = GRAMMAR, epochs: tuple[int, ...] = (0, 1)) -> Path:
    """A finished run's folder as runs/folder.py lays it out (no model: the analysis reads only
    metrics, data, surprisals and the grammar's copy)."""
    (run / "data").mkdir(parents=True)
    (run / "surprisals").mkdir()
    (run / "grammar.cfg").write_text(grammar)
    (run / "env.json").write_text(json.dumps({"n_params": 4, "n_trainable_params": 4}))
    rows = [{"epoch": e, "stage": 1, "lr": 1e-3, "train_loss": 2.0 / (1 + e), "test_loss": 2.0,
             "train_acc": 0.5, "test_acc": 0.5} for e in (0, 1)]  # fmt: skip
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for name, strings in (("train", TRAIN), ("test", TEST)):
        (run / "data" / f"{name}.txt").write_text("".join(" ".join(s) + "\n" for s in strings))
    for e in epochs:
        arrays = {f"{k}_bits": np.array(v, np.float32) for k, v in BITS[e].items()}
        np.savez(run / "surprisals" / f"epoch_{e:04d}.npz", **arrays)
    return run


def measures(run: Path) -> dict[int, dict]:
    write_run_analysis(run)
    lines = (run / "measures.jsonl").read_text().splitlines()
    return {r["epoch"]: r for r in map(json.loads, lines)}


# every surprisal above is a multiple of 1/4 (exact in float32), so sums and differences are
# exact; log2(3) enters through float64 arithmetic only: 1e-12 is far above its rounding
EXACT = 1e-12


def test_baselines_signed_memu_and_their_columns(tmp_path):
    rows = measures(write_run(tmp_path / "run"))
    r0, r1 = rows[0], rows[1]
    # vs the untrained model (epoch 0): train (0.5 - 2, 1.5 - 3) = -1.5 each, stderr 0;
    # test (4.5 - 4, 1 - 2) -> mean -0.25, stderr |0.5 - -1| / 2 = 0.75 (sd 1.0607 / sqrt 2)
    assert r1["excess_train_bits_vs_untrained"] == pytest.approx(-1.5, abs=EXACT)
    assert r1["excess_train_bits_vs_untrained_stderr"] == pytest.approx(0.0, abs=EXACT)
    assert r1["excess_test_bits_vs_untrained"] == pytest.approx(-0.25, abs=EXACT)
    assert r1["excess_test_bits_vs_untrained_stderr"] == pytest.approx(0.75, abs=EXACT)
    assert r0["excess_train_bits_vs_untrained"] == 0.0  # the baseline against itself
    # the untrained model's own excess over the grammar: test (4 - 2, 2 - 1) -> 1.5
    assert r1["untrained_excess_test_bits"] == pytest.approx(1.5, abs=EXACT)
    assert r1["untrained_excess_train_bits"] == pytest.approx(1.0, abs=EXACT)  # (1 + 1) / 2
    # uniform over {a, b} and the 3 lengths: L + log2 3 bits; train (1, 2) -> (1 + l3, 2 + l3)
    assert r1["excess_train_bits_vs_uniform"] == pytest.approx(-0.5 - L3, abs=EXACT)
    # test (3 + l3, 1 + l3) against (4.5, 1): mean (1.5 - l3 - l3) / 2
    assert r1["excess_test_bits_vs_uniform"] == pytest.approx((1.5 - 2 * L3) / 2, abs=EXACT)
    assert r1["uniform_excess_train_bits"] == pytest.approx(L3, abs=EXACT)  # (l3 + l3) / 2
    assert r1["uniform_excess_test_bits"] == pytest.approx((1 + 2 * L3) / 2, abs=EXACT)
    # signed memU = grammar - model: train (1 - 0.5, 2 - 1.5); test (2 - 4.5, 1 - 1)
    assert r1["memU_train_bits_signed_total"] == pytest.approx(1.0, abs=EXACT)
    assert r1["memU_train_bits_signed_mean"] == pytest.approx(0.5, abs=EXACT)
    assert r1["memU_test_bits_signed_total"] == pytest.approx(-2.5, abs=EXACT)
    assert r1["memU_test_bits_signed_mean"] == pytest.approx(-1.25, abs=EXACT)
    assert r1["memU_test_bits_total"] == 0.0  # clipped (Morris et al.): never negative


def test_membership_null_band_and_onset_in_phases(tmp_path):
    run = write_run(tmp_path / "run")
    r1 = measures(run)[1]
    # scores -bits/token: members (-0.25, -0.5) vs non-members (-1.125, -0.5): U = 1 + 0.5 + 1
    # of 4 pairs -> AUC 0.875. With 2 x 2 strings the exact null of U: the one-sided p-value
    # of U >= 3.5 is P(U = 4) = 1/6, never below 0.05: not flagged at this size
    assert r1["mia_auc"] == pytest.approx(0.875, abs=EXACT)
    assert r1["mia_null_method"] == "exact"
    assert r1["mia_pvalue"] == pytest.approx(1 / 6, abs=EXACT)
    assert r1["mia_memorized"] is False
    assert r1["mia_null_lo"] <= 0.5 <= r1["mia_null_hi"]
    assert "mia_ref_pvalue" in r1 and "mia_ref_memorized" in r1
    phases = json.loads((run / "phases.json").read_text())
    assert phases["mia_memorization_onset_epoch"] is None
    assert phases["mia_memorization_onset_censored"] is True


def test_without_epoch_0_there_is_no_untrained_baseline(tmp_path):
    r1 = measures(write_run(tmp_path / "run", epochs=(1,)))[1]
    assert "excess_test_bits_vs_untrained" not in r1
    assert "excess_test_bits_vs_uniform" in r1


def test_unbounded_lengths_have_no_uniform_baseline(tmp_path):
    # the same strings, but lengths 1, 2, 3, ...: no uniform distribution over the lengths
    grammar = "S -> 'a' [0.5] | 'a' 'b' [0.25] | 'b' 'b' 'b' [0.125] | 'b' S [0.125]\n"
    r1 = measures(write_run(tmp_path / "run", grammar=grammar))[1]
    assert "excess_test_bits_vs_uniform" not in r1 and "uniform_excess_test_bits" not in r1
    assert "excess_test_bits_vs_untrained" in r1


def test_sustained_mia_onset_from_the_rows():
    def onset(flags):
        rows = [{"epoch": e, "mia_memorized": f} for e, f in enumerate(flags)]
        out = _with_mia_onset({"x": 1}, rows)
        assert out["x"] == 1
        return out["mia_memorization_onset_epoch"], out["mia_memorization_onset_censored"]

    assert onset([False, True, None, True]) == (1, False)  # a missing flag does not break it
    assert onset([True, False, True, True]) == (2, False)  # sustained: from the last rise
    assert onset([True, False]) == (None, True)  # off at the last epoch: censored
    assert _with_mia_onset({}, [{"epoch": 0}])["mia_memorization_onset_censored"] is False


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("S -> A A [1.0]\nA -> 'a' [0.5] | 'b' [0.5]\n", 1),  # fixed length 2
        (GRAMMAR, 3),  # 1, 2, 3
        ("S -> A A [0.5] | 'c' [0.5]\nA -> 'a' [0.5] | 'a' 'a' [0.5]\n", 4),  # 1; 2, 3, 4
        ("S -> 'a' S [0.5] | 'a' [0.5]\n", None),  # 1, 2, 3, ...: unbounded
        ("S -> A [1.0]\nA -> B [0.5] | 'a' [0.5]\nB -> A [1.0]\n", 1),  # a unit cycle adds none
    ],
)
def test_length_count(text, count):
    assert length_count(loads(text)) == count


def test_grammar_floors_and_floor_corrected_onset_in_phases(tmp_path):
    # train "a" (1 bit over 2 predicted tokens), "a b" (2 bits over 3): G_train = ln2 (1/2 + 2/3)/2
    # test "b b b" (2 bits over 4), "a" (1 over 2): G_test = ln2 / 2 -> G_test / G_train = 6/7.
    # Raw ratio test/train 1, 2 -> onset 1; corrected 7/6, 7/3 -> onset 0
    run = write_run(tmp_path / "run")
    write_run_analysis(run)
    ph = json.loads((run / "phases.json").read_text())
    ln2 = math.log(2)
    assert ph["grammar_train_loss"] == pytest.approx(ln2 * 7 / 12, abs=1e-12)
    assert ph["grammar_test_loss"] == pytest.approx(ln2 / 2, abs=1e-12)
    assert ph["floor_ratio"] == pytest.approx(6 / 7, abs=1e-12)
    assert (ph["memorization_onset_epoch"], ph["floor_corrected_onset_epoch"]) == (1, 0)
    assert ph["stopped"] is False  # no status: taken as finished


def test_a_run_that_has_not_finished_is_marked_stopped(tmp_path):
    from grammarlab.runs.folder import RunDir, Status

    run = write_run(tmp_path / "run")
    RunDir(run).write_status(Status("running", 1))
    write_run_analysis(run)
    assert json.loads((run / "phases.json").read_text())["stopped"] is True
    RunDir(run).write_status(Status("analysing", 1, trained="done"))
    write_run_analysis(run)
    assert json.loads((run / "phases.json").read_text())["stopped"] is False
