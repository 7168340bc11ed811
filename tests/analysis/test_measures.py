"""Memorization measures on hand-made inputs; expected values derived by hand in comments.

The run-folder tests use a two-letter grammar whose exact probabilities are known by hand: every
string is two tokens from {a, b}, each token 1 bit, the end certain (0 bits), so P(x) = 1/4, i.e.
2 bits.
A stand-in for grammarlab.grammar.inside returns exactly those values, so these tests do not depend
on the grammar engine; test_real_inside_agrees checks the real one when it is there.
"""

from __future__ import annotations

import itertools
import json
import math
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from grammarlab.analysis import run_analysis
from grammarlab.analysis.measures import (
    epoch_measures,
    excess_bits,
    generation_shares,
    greedy_rate,
    memu_bits,
    memu_signed_bits,
    mia_auc,
    mia_best_f1,
    mia_null,
    mia_null_sd,
    n_predicted_tokens,
    paired_difference,
    parse_generations,
    position_excess,
    string_bits,
    sustained_flag_onset,
    token_accuracy,
    uniform_string_bits,
)
from grammarlab.analysis.run_analysis import write_run_analysis
from grammarlab.errors import GrammarlabError

NAN = float("nan")
INF = float("inf")
GRAMMAR = "S -> A A [1.0]\nA -> 'a' [0.5] | 'b' [0.5]\n"
TRAIN = [("a", "a"), ("a", "b")]
TEST = [("b", "a"), ("b", "b"), ("a", "b")]
# model per-token bits (end token last); string bits train 1.0, 1.5; test 3.0, 3.0, 2.0
TRAIN_BITS = np.array([[0.5, 0.5, 0.0], [1.0, 0.5, 0.0]])
TEST_BITS = np.array([[1.0, 1.5, 0.5], [1.5, 1.0, 0.5], [1.0, 1.0, 0.0]])
G_TRAIN = np.array([2.0, 2.0])
G_TEST = np.array([2.0, 2.0, 2.0])


def test_string_bits_and_token_counts_with_padding():
    tb = np.array([[1.0, 2.0, NAN], [0.5, 0.5, 0.5], [NAN, NAN, NAN]])
    sb = string_bits(tb)
    assert sb[0] == 3.0 and sb[1] == 1.5 and math.isnan(sb[2])
    assert n_predicted_tokens(tb).tolist() == [2, 3, 0]


def test_excess_bits_mean_and_stderr():
    # test excess 1, 1, 0 -> mean 2/3; sample var ((1/3)^2*2 + (2/3)^2)/2 = 1/3
    # -> se sqrt(1/3)/sqrt(3) = 1/3
    est = excess_bits(string_bits(TEST_BITS), G_TEST)
    assert est.mean == pytest.approx(2 / 3) and est.stderr == pytest.approx(1 / 3) and est.n == 3
    # a string the grammar cannot produce is left out; one string -> no stderr
    est = excess_bits(np.array([3.0, 5.0]), np.array([2.0, INF]))
    assert est.mean == 1.0 and est.n == 1 and math.isnan(est.stderr)
    # the model finds a grammatical string impossible -> infinite KL estimate
    assert excess_bits(np.array([INF, 1.0]), np.array([2.0, 2.0])).mean == INF


def test_memu_per_string():
    # max(0, g - m): 2-1=1, 2-1.5=0.5, 2-3 -> 0, model inf -> 0, grammar inf -> NaN, NaN -> NaN
    mu = memu_bits(np.array([1.0, 1.5, 3.0, INF, 1.0, NAN]), np.array([2, 2, 2, 2, INF, 2.0]))
    assert mu[:4].tolist() == [1.0, 0.5, 0.0, 0.0]
    assert math.isnan(mu[4]) and math.isnan(mu[5])


def test_position_excess():
    # test rows minus grammar [1, 1, 0]: pos0 (0 + .5 + 0)/3 = 1/6; pos1 (.5 + 0 + 0)/3 = 1/6;
    # pos2 (.5 + .5 + 0)/3 = 1/3; padding column 3 -> NaN
    padded = np.hstack([TEST_BITS, np.full((3, 1), NAN)])
    g = [np.array([1.0, 1.0, 0.0])] * 3
    pe = position_excess(padded, g)
    assert pe[:3] == pytest.approx([1 / 6, 1 / 6, 1 / 3]) and math.isnan(pe[3])
    # a row recording 3 positions for a string with 2 (L+1 = 2) is an error
    with pytest.raises(GrammarlabError):
        position_excess(TEST_BITS[:1], [np.array([1.0, 0.0])])
    # strings the grammar cannot produce are skipped: only the first row counts
    pe = position_excess(TEST_BITS[:2], [np.array([1.0, 1.0, 0.0]), np.array([INF, 1.0, 0.0])])
    assert pe == pytest.approx([0.0, 0.5, 0.5])


def test_mia_auc_ties_count_half():
    # pairs (member, non-member): (1,2) 0, (1,0) 1, (2,2) 0.5, (2,0) 1 -> 2.5 / 4
    assert mia_auc(np.array([1.0, 2.0]), np.array([2.0, 0.0])) == pytest.approx(0.625)
    assert mia_auc(np.array([3.0]), np.array([1.0, 2.0])) == 1.0
    assert mia_auc(np.array([0.0]), np.array([1.0, 2.0])) == 0.0
    assert math.isnan(mia_auc(np.array([]), np.array([1.0])))


def _auc_pairs(a, b):
    return np.mean([(x > y) + 0.5 * (x == y) for x in a for y in b])


def test_mia_auc_hand_values_and_many_ties():
    assert mia_auc([3, 2], [1, 2]) == 0.875  # 3 wins, 1 tie of 4 pairs
    assert mia_auc([1, 1], [1, 1]) == 0.5
    assert mia_auc([5], [1, 2, 3]) == 1.0
    assert mia_auc([0], [1, 2, 3]) == 0.0
    assert math.isnan(mia_auc([], [1.0]))
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 5, 40), rng.integers(0, 5, 30)  # many ties
    assert mia_auc(a, b) == pytest.approx(_auc_pairs(a, b), abs=1e-12)


def test_mia_null_sd():
    assert mia_null_sd(1, 1) == pytest.approx(0.5)
    assert mia_null_sd(100, 100) == pytest.approx(math.sqrt(201 / 120000))


def test_mia_best_f1():
    # thresholds 2: TP1 FP1 -> 2/(1+1+2) = .5; 1: TP2 FP1 -> 4/5 = .8; 0: TP2 FP2 -> 4/6
    assert mia_best_f1(np.array([1.0, 2.0]), np.array([2.0, 0.0])) == pytest.approx(0.8)
    # members all below non-members: best is predicting everyone, 2*1/(2*1+2) = .5
    assert mia_best_f1(np.array([0.0]), np.array([1.0, 2.0])) == pytest.approx(0.5)


def test_recollection_measures():
    assert greedy_rate(np.array([True, False, False, True])) == 0.5
    # padding (NaN bits) positions do not count: 2 of 3 recorded positions correct
    corr = np.array([[True, False, False], [True, False, True]])
    bits = np.array([[0.1, 0.2, NAN], [0.1, NAN, NAN]])
    assert token_accuracy(corr, bits) == pytest.approx(2 / 3)


def test_generation_shares():
    text = "a a\na b\nb b\na\n<invalid>\nc c\n"
    samples = parse_generations(text)
    assert samples[4] is None and samples[0] == ("a", "a")
    assert parse_generations("a\n\n<invalid>\n") == [("a",), (), None]  # the empty string
    gram = np.array([True, True, True, False, False, False])
    # 6 samples: grammatical 3/6; copies of train ("a a", "a b") 2/6; novel ("b b") 1/6
    s = generation_shares(samples, gram, TRAIN)
    assert s["gen_n"] == 6
    assert s["gen_grammatical_share"] == pytest.approx(0.5)
    assert s["gen_copy_share"] == pytest.approx(1 / 3)
    assert s["gen_novel_share"] == pytest.approx(1 / 6)


def test_epoch_measures_hand_example():
    out = epoch_measures(
        {"train": TRAIN_BITS, "test": TEST_BITS}, {"train": G_TRAIN, "test": G_TEST}, "train",
        n_params=3, n_trainable_params=1,
    )  # fmt: skip
    # memU train 1 + 0.5 = 1.5 bits, mean .75; per param 1.5/3, per trainable 1.5/1
    assert out["memU_train_bits_total"] == pytest.approx(1.5)
    assert out["memU_train_bits_mean"] == pytest.approx(0.75)
    assert out["memU_bits_per_param"] == pytest.approx(0.5)
    assert out["memU_bits_per_trainable_param"] == pytest.approx(1.5)
    assert out["memU_test_bits_mean"] == 0.0  # test strings all above the grammar's 2 bits
    # excess test 2/3 bits/string over 3 predicted tokens -> 2/9 bits/token; train -0.75
    assert out["excess_test_bits"] == pytest.approx(2 / 3)
    assert out["excess_test_bits_per_token"] == pytest.approx(2 / 9)
    assert out["excess_train_bits"] == pytest.approx(-0.75)
    # loss scores -bits/token: train -1/3, -1/2 ; test -1, -1, -2/3 -> separated: AUC 1, F1 1
    assert out["mia_auc"] == 1.0 and out["mia_f1"] == 1.0
    assert out["mia_f1_trivial"] == pytest.approx(4 / 7)
    # reference scores -(m - g): train 1, .5 ; test -1, -1, 0 -> AUC 1
    assert out["mia_auc_ref"] == 1.0


# ------------------------------------------------------------------ run folder with a stand-in


def fake_inside() -> types.ModuleType:
    """Exact probabilities of GRAMMAR: two tokens of {a, b}, 1 bit each, end 0 bits."""

    def ok(s):
        return len(s) == 2 and set(s) <= {"a", "b"}

    mod = types.ModuleType("grammarlab.grammar.inside")
    mod.surprisal_bits = lambda g, ss: np.array([2.0 if ok(s) else INF for s in ss])
    mod.token_surprisals_bits = lambda g, ss: [
        np.array([1.0, 1.0, 0.0]) if ok(s) else np.full(len(s) + 1, INF) for s in ss
    ]
    return mod


def write_run(run: Path, metrics: list[dict], data: dict, npz: dict[int, dict], gens=None):
    """A run folder following docs/architecture.md."""
    (run / "data").mkdir(parents=True)
    (run / "grammar.cfg").write_text(GRAMMAR)
    (run / "env.json").write_text(json.dumps({"n_params": 3, "n_trainable_params": 1}))
    (run / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))
    for name, strings in data.items():
        (run / "data" / f"{name}.txt").write_text("".join(" ".join(s) + "\n" for s in strings))
    (run / "surprisals").mkdir()
    for epoch, arrays in npz.items():
        np.savez(run / "surprisals" / f"epoch_{epoch:04d}.npz", **arrays)
    if gens:
        (run / "generations").mkdir()
        for epoch, text in gens.items():
            (run / "generations" / f"epoch_{epoch:04d}.txt").write_text(text)


def metric(epoch, train, test, **kw):
    return {"epoch": epoch, "stage": kw.pop("stage", 1), "lr": 1e-3, "train_loss": train,
            "test_loss": test, "train_acc": 0.5, "test_acc": 0.5, **kw}  # fmt: skip


def arrays(train_bits, test_bits, train_name="train", extra=None):
    out = {
        f"{train_name}_bits": train_bits.astype(np.float32),
        f"{train_name}_correct": np.array([[True, True, False], [True, False, False]]),
        f"{train_name}_greedy_match": np.array([True, False]),
        "test_bits": test_bits.astype(np.float32),
        "test_correct": np.zeros(test_bits.shape, bool),
        "test_greedy_match": np.zeros(len(test_bits), bool),
    }
    out.update(extra or {})
    return out


def test_write_run_analysis(tmp_path, monkeypatch):
    monkeypatch.setattr(run_analysis, "inside", fake_inside())
    run = tmp_path / "run"
    write_run(
        run,
        [metric(0, 2.0, 2.0), metric(1, 1.0, 2.2)],
        {"train": TRAIN, "test": TEST, "random": [("a", "c")]},
        {0: arrays(TEST_BITS[:2], TEST_BITS), 1: arrays(TRAIN_BITS, TEST_BITS,
         extra={"random_bits": np.array([[3.0, 3.0, 1.0]], np.float32)})},
        gens={1: "a a\nb b\n<invalid>\n"},
    )  # fmt: skip
    write_run_analysis(run)
    phases = json.loads((run / "phases.json").read_text())
    # ratio 2.2/1.0 at e1 only -> onset 1; min test 2.0 at e0
    assert phases["memorization_onset_epoch"] == 1 and phases["generalization_end_epoch"] == 0
    rows = [json.loads(x) for x in (run / "measures.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1]
    r1 = rows[1]
    # as in test_epoch_measures_hand_example (float32 round trip of exact binary fractions)
    assert r1["memU_train_bits_total"] == pytest.approx(1.5)
    assert r1["memU_bits_per_param"] == pytest.approx(0.5)
    assert r1["excess_test_bits"] == pytest.approx(2 / 3)
    assert r1["grammar_test_bits_mean"] == 2.0  # every string of the grammar has 2 bits
    assert r1["mia_auc"] == 1.0 and r1["mia_auc_ref"] == 1.0
    assert r1["greedy_extraction_rate_train"] == 0.5 and r1["greedy_extraction_rate_test"] == 0.0
    assert r1["token_acc_train"] == pytest.approx(0.5) and r1["token_acc_test"] == 0.0
    # generations: "a a" copy, "b b" novel, invalid -> 2/3 grammatical, 1/3 copy, 1/3 novel
    assert r1["gen_grammatical_share"] == pytest.approx(2 / 3)
    assert r1["gen_copy_share"] == pytest.approx(1 / 3)
    assert r1["gen_novel_share"] == pytest.approx(1 / 3)
    # epoch 0 model = test-like on train strings: train bits 3, 3 -> memU 0
    assert rows[0]["memU_train_bits_total"] == 0.0 and "gen_n" not in rows[0]
    ps = pd.read_csv(run / "per_string.csv")
    assert list(ps.columns) == [
        "epoch", "dataset", "index", "model_bits", "grammar_bits", "memU_bits", "greedy_match"
    ]  # fmt: skip
    # epochs 0, 1: 2 train + 3 test; epoch 1 also 1 random string
    assert len(ps) == 2 * 5 + 1
    e1 = ps[(ps.epoch == 1) & (ps.dataset == "train")]
    assert e1.memU_bits.tolist() == [1.0, 0.5]
    rnd = ps[ps.dataset == "random"].iloc[0]
    assert rnd.grammar_bits == INF and math.isnan(rnd.memU_bits)
    pp = pd.read_csv(run / "per_position.csv")
    t1 = pp[(pp.epoch == 1) & (pp.dataset == "test")].sort_values("position")
    assert t1.excess_bits.tolist() == pytest.approx([1 / 6, 1 / 6, 1 / 3])
    assert set(pp.dataset) == {"train", "test"}  # no per-position for random strings


def test_write_run_analysis_sequential(tmp_path, monkeypatch):
    monkeypatch.setattr(run_analysis, "inside", fake_inside())
    run = tmp_path / "seq"
    d2 = [("b", "a"), ("b", "b")]
    m = [metric(0, 2, 2, d1_loss=2, d2_loss=2), metric(1, 1, 2, d1_loss=1, d2_loss=2),
         metric(2, 1, 2, stage=2, d1_loss=2, d2_loss=1)]  # fmt: skip
    # stage 2 epoch: the model fits D2 (TRAIN_BITS) and has forgotten D1 (3 bits each)
    a2 = arrays(TEST_BITS[:2], TEST_BITS, "train", {"train2_bits": TRAIN_BITS})
    write_run(
        run,
        m,
        {"train": TRAIN, "train2": d2, "test": TEST},
        {1: arrays(TRAIN_BITS, TEST_BITS), 2: a2},
    )
    write_run_analysis(run)
    rows = {
        r["epoch"]: r
        for r in map(json.loads, (run / "measures.jsonl").read_text().split("\n")[:-1])
    }
    assert rows[1]["members"] == "d1" and rows[2]["members"] == "d2"
    # epoch 2: members D2 with bits 1, 1.5 -> memU total 1.5; D1 at 3 bits -> memU_d1 0
    assert rows[2]["memU_train_bits_total"] == pytest.approx(1.5)
    assert rows[2]["memU_d1_bits_mean"] == 0.0
    # epoch 1 (stage 1): D1 is the members, memU_d1 = memU_train mean (1 + .5)/2; no D2 surprisals
    assert rows[1]["memU_d1_bits_mean"] == rows[1]["memU_train_bits_mean"] == pytest.approx(0.75)
    assert "memU_d2_bits_mean" not in rows[1]
    assert rows[2]["greedy_extraction_rate_d1"] == 0.5
    ps = pd.read_csv(run / "per_string.csv")
    assert set(ps.dataset) == {"d1", "d2", "test"}
    phases = json.loads((run / "phases.json").read_text())
    assert phases["sequential"] is True and "forgetting_epoch" in phases


def test_run_analysis_needs_grammar(tmp_path, monkeypatch):
    monkeypatch.setattr(run_analysis, "inside", fake_inside())
    run = tmp_path / "r"
    write_run(
        run, [metric(0, 1, 1)], {"train": TRAIN, "test": TEST}, {0: arrays(TRAIN_BITS, TEST_BITS)}
    )
    (run / "grammar.cfg").unlink()
    with pytest.raises(GrammarlabError, match="grammar.cfg"):
        write_run_analysis(run)


def test_real_inside_agrees():
    from grammarlab.grammar import inside
    from grammarlab.grammar.load import loads

    g = loads(GRAMMAR)
    fake = fake_inside()
    strings = TRAIN + [("a", "c")]
    assert np.allclose(inside.surprisal_bits(g, strings), fake.surprisal_bits(g, strings))
    for a, b in zip(
        inside.token_surprisals_bits(g, TRAIN), fake.token_surprisals_bits(g, TRAIN), strict=True
    ):
        assert np.allclose(a, b)


def test_per_string_pieces_become_one_table_with_na_where_no_greedy_match():
    from grammarlab.analysis.run_analysis import PER_STRING, _concat

    pieces = [
        {"epoch": 0, "dataset": "train", "index": np.arange(2), "model_bits": np.array([1.0, 2.0]),
         "grammar_bits": np.array([0.5, 0.5]), "memU_bits": np.array([0.0, 1.5]),
         "greedy_match": np.array([True, False])},
        {"epoch": 1, "dataset": "test", "index": np.arange(1), "model_bits": np.array([3.0]),
         "grammar_bits": np.array([1.0]), "memU_bits": np.array([np.nan]), "greedy_match": None},
    ]  # fmt: skip
    t = _concat(pieces, PER_STRING)
    assert list(t.columns) == PER_STRING and len(t) == 3
    assert t.epoch.tolist() == [0, 0, 1] and t.dataset.tolist() == ["train", "train", "test"]
    assert t.model_bits.tolist() == [1.0, 2.0, 3.0]
    assert bool(t.greedy_match.iloc[0])
    assert not bool(t.greedy_match.iloc[1]) and pd.isna(t.greedy_match.iloc[2])
    assert _concat([], PER_STRING).empty


# ------------------------------------------------------------------ the AUC's null distribution


def brute_u_counts(n1: int, n2: int) -> np.ndarray:
    """Arrangements of n1 members among n1 + n2 distinct ranks, counted by U (pairs member >
    non-member): every subset of ranks is equally likely under H0."""
    counts = np.zeros(n1 * n2 + 1)
    for members in itertools.combinations(range(n1 + n2), n1):
        rest = [r for r in range(n1 + n2) if r not in members]
        counts[sum(m > r for m in members for r in rest)] += 1
    return counts


@pytest.mark.parametrize("n1,n2", [(1, 1), (2, 2), (3, 4), (4, 3), (5, 6)])
def test_exact_null_of_u_matches_enumeration(n1, n2):
    from grammarlab.analysis.measures import _u_pmf

    counts = brute_u_counts(n1, n2)
    pmf = _u_pmf(min(n1, n2), max(n1, n2))
    # probabilities are sums of ~C(11, 5) = 462 terms of size ~1e-3: 1e-12 is far above rounding
    np.testing.assert_allclose(pmf, counts / counts.sum(), atol=1e-12)


def test_null_band_and_pvalue_by_hand():
    # n1 = n2 = 2: U = 0..4 with counts 1, 1, 2, 1, 1 (of 6). cdf 1/6, 2/6, 4/6, 5/6, 1:
    # the 2.5% quantile is U = 0 (cdf 1/6 >= .025), the 97.5% one U = 4 -> band [0, 1];
    # AUC 1 (U = 4): p = 1/6; AUC 0.75 (U = 3): p = 2/6; AUC 0.625 (a tie, U = 2.5): P(U >= 3)
    n = mia_null(2, 2, 1.0)
    assert (n.lo, n.hi, n.method) == (0.0, 1.0, "exact")
    assert n.pvalue == pytest.approx(1 / 6)
    assert mia_null(2, 2, 0.75).pvalue == pytest.approx(2 / 6)
    assert mia_null(2, 2, 0.625).pvalue == pytest.approx(2 / 6)
    assert math.isnan(mia_null(0, 3, 0.5).lo)


def test_null_band_narrows_with_n_and_flags_the_issue_example():
    # 8 members vs 32 non-members: chance AUCs up to ~0.73 (the demo's 0.40-0.66 at epoch 0 are
    # inside); 64 vs 32 at AUC 0.79 is far outside (sd of the AUC under H0:
    # sqrt((64 + 32 + 1) / (12 * 64 * 32)) = 0.0628, 4.6 sd above 0.5)
    small, large = mia_null(8, 32, 0.66), mia_null(64, 32, 0.79)
    assert small.lo < 0.40 and 0.66 < small.hi
    assert small.pvalue > 0.05
    assert large.hi - large.lo < small.hi - small.lo
    assert large.pvalue < 1e-5


def test_normal_approximation_agrees_with_exact(monkeypatch):
    import grammarlab.analysis.measures as m

    exact = mia_null(30, 30, 0.62)
    monkeypatch.setattr(m, "EXACT_MAX_CELLS", 0)
    approx = mia_null(30, 30, 0.62)
    assert approx.method == "normal"
    # the U distribution of 30 vs 30 is close to normal; the exact band sits on a grid of 1/900
    # and its quantiles differ from the normal ones by a few grid steps: 0.01 covers that
    assert approx.lo == pytest.approx(exact.lo, abs=0.01)
    assert approx.hi == pytest.approx(exact.hi, abs=0.01)
    assert approx.pvalue == pytest.approx(exact.pvalue, abs=0.01)


def test_sustained_flag_onset():
    e = np.arange(6)
    assert sustained_flag_onset(e, [0, 1, 0, 1, 1, 1]) == 3
    assert sustained_flag_onset(e, [0, 1, 1, 1, 1, 0]) is None  # off at the end: censored
    assert sustained_flag_onset(e, [0, 1, NAN, 1, 1, 1]) == 1  # NaN epochs skipped


def test_baselines_and_signed_memu():
    # uniform over 26 letters, one length: 64 log2 26 = 300.83 bits; two lengths add 1 bit
    assert uniform_string_bits(np.array([64]), 26)[0] == pytest.approx(64 * math.log2(26))
    assert uniform_string_bits(np.array([2]), 2, n_lengths=2)[0] == pytest.approx(3.0)
    with pytest.raises(GrammarlabError):
        uniform_string_bits(np.array([2]), 0)
    d = paired_difference(np.array([1.0, 3.0, INF]), np.array([2.0, 2.0, 1.0]))
    # differences -1, +1 (the inf string left out): mean 0, stderr sqrt(2)/sqrt(2) = 1
    assert (d.mean, d.stderr, d.n) == (0.0, pytest.approx(1.0), 2)
    np.testing.assert_array_equal(memu_signed_bits(np.array([1.0, 3.0, INF]), np.full(3, 2.0)),
                                  [1.0, -1.0, NAN])  # fmt: skip


def test_epoch_measures_null_band_signed_memu_and_baselines():
    untrained = {"train": np.array([4.0, 4.0]), "test": np.array([4.0, 4.0, 4.0])}
    uniform = {"train": np.array([2.0, 2.0]), "test": np.array([2.0, 2.0, 2.0])}
    out = epoch_measures(
        {"train": TRAIN_BITS, "test": TEST_BITS}, {"train": G_TRAIN, "test": G_TEST}, "train",
        untrained_bits=untrained, uniform_bits=uniform,
    )  # fmt: skip
    # signed memU: train 2 - 1 + 2 - 1.5 = 1.5 (= clipped); test -1 - 1 + 0 = -2, mean -2/3
    assert out["memU_train_bits_signed_total"] == pytest.approx(1.5)
    assert out["memU_test_bits_signed_total"] == pytest.approx(-2.0)
    assert out["memU_test_bits_signed_mean"] == pytest.approx(-2 / 3)
    # vs untrained: test (3 + 3 + 2)/3 - 4 = -4/3; vs uniform: 8/3 - 2 = 2/3 (uniform = grammar)
    assert out["excess_test_bits_vs_untrained"] == pytest.approx(-4 / 3)
    assert out["excess_test_bits_vs_uniform"] == pytest.approx(2 / 3)
    assert out["untrained_excess_test_bits"] == pytest.approx(2.0)
    assert out["uniform_excess_test_bits"] == 0.0
    # AUC 1 with 2 vs 3: U = 6 of 6, p = 1 / C(5, 2) = 0.1 -> not flagged at 5%
    assert out["mia_pvalue"] == pytest.approx(0.1) and out["mia_memorized"] is False
    assert out["mia_null_method"] == "exact"
    assert out["mia_ref_pvalue"] == pytest.approx(0.1)


def test_band_top_is_the_flag_threshold_by_hand():
    # n1 = n2 = 3: U = 0..9 with counts 1, 1, 2, 3, 3, 3, 3, 2, 1, 1 of 20. P(U >= 9) = 1/20 =
    # 0.05 (flagged), P(U >= 8) = 2/20: the one-sided band ends at U = 8, AUC 8/9
    n = mia_null(3, 3, 1.0)
    assert n.hi == pytest.approx(8 / 9) and n.lo == pytest.approx(1 / 9)
    assert n.pvalue == pytest.approx(1 / 20)
    assert mia_null(3, 3, 8 / 9).pvalue == pytest.approx(2 / 20)


@pytest.mark.parametrize("n1,n2", [(3, 3), (5, 7), (8, 32)])
def test_flag_and_band_are_one_test_exact(n1, n2):
    # every attainable AUC, ties (half-integer U) included: flagged exactly above the band
    cells = n1 * n2
    for twice_u in range(2 * cells + 1):
        auc = twice_u / (2 * cells)
        null = mia_null(n1, n2, auc)
        assert (null.pvalue <= 0.05) == (auc > null.hi), (auc, null)


def test_flag_and_band_are_one_test_normal(monkeypatch):
    import grammarlab.analysis.measures as m

    monkeypatch.setattr(m, "EXACT_MAX_CELLS", 0)
    for auc in np.linspace(0.4, 0.9, 501):
        null = mia_null(64, 32, float(auc))
        if abs(auc - null.hi) > 1e-9:  # the boundary itself is flagged (p = alpha)
            assert (null.pvalue <= 0.05) == (auc > null.hi)
