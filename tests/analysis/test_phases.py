"""Phase detector on hand-made curves; every expected value is derived by hand in a comment."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from grammarlab.analysis.phases import (
    Curves,
    detect_phases,
    format_event,
    generalization_end,
    mean_curves,
    memorization_onset,
    memorization_score,
    memorization_score_acc,
    phases_over_seeds,
    summarize_event,
)
from grammarlab.errors import GrammarlabError

NAN = float("nan")
INF = float("inf")


def curves(train, test, **kw) -> Curves:
    return Curves(epoch=np.arange(len(train)), train_loss=train, test_loss=test, **kw)


# A Fig.-2-like run. ratio test/train per epoch:
# e0 3.0/3.0=1.00, e1 2.5/2.4=1.042, e2 2.2/2.0=1.10 (first crossing), e3 2.0/1.95=1.026 (falls
# back), e4 1.9/1.7=1.118, e5 1.85/1.4=1.32, e6 1.9/1.0=1.9, e7 2.1/0.5=4.2.
# Above 1.05 at e2 and from e4 on -> first crossing 2, onset 4. Min test loss 1.85 at e5 -> end of
# generalization 5; onset 4 < 5 -> overlap.
TRAIN = [3.0, 2.4, 2.0, 1.95, 1.7, 1.4, 1.0, 0.5]
TEST = [3.0, 2.5, 2.2, 2.0, 1.9, 1.85, 1.9, 2.1]


def test_single_run_phases():
    p = detect_phases(curves(TRAIN, TEST))
    assert p.memorization_first_crossing_epoch == 2
    assert p.memorization_onset_epoch == 4
    assert p.generalization_end_epoch == 5
    assert p.min_test_loss == pytest.approx(1.85)
    assert p.test_loss_at_onset == pytest.approx(1.9)
    assert p.overlap is True
    # final score 1 - 0.5/2.1 = 0.7619...; the max is the same (train keeps falling, test rising)
    assert p.final_memorization_score == pytest.approx(1 - 0.5 / 2.1)
    assert p.max_memorization_score == pytest.approx(1 - 0.5 / 2.1)
    assert p.sequential is False and p.forgetting_epoch is None
    d = p.to_dict()
    json.dumps(d, allow_nan=False)
    for key in (
        "memorization_onset_epoch",
        "memorization_first_crossing_epoch",
        "generalization_end_epoch",
        "min_test_loss",
        "overlap",
        "threshold",
        "regeneralization_epoch",
        "d1_plateau_first_epoch",
        "d1_plateau_last_epoch",
        "d1_plateau_count",
        "forgetting_epoch",
    ):
        assert key in d


def test_threshold_changes_onset():
    # with threshold 1.2 the ratios above are e5 1.32, e6, e7 -> onset 5 = first crossing;
    # 5 < 5 is false -> no overlap
    p = detect_phases(curves(TRAIN, TEST), threshold=1.2)
    assert (p.memorization_onset_epoch, p.memorization_first_crossing_epoch) == (5, 5)
    assert p.overlap is False


def test_never_memorizes_and_falls_back_at_end():
    # ratio 1.0, 1.1, 1.0: crosses at e1 but is below at the last epoch -> onset None, first 1
    onset, first = memorization_onset(np.arange(3), [2.0, 2.0, 2.0], [2.0, 2.2, 2.0])
    assert (onset, first) == (None, 1)
    # test == train everywhere: never above
    p = detect_phases(curves([2.0, 1.5, 1.2], [2.0, 1.5, 1.2]))
    assert p.memorization_onset_epoch is None and p.memorization_first_crossing_epoch is None
    assert p.generalization_end_epoch == 2  # monotone decrease: min at the last epoch
    assert p.overlap is False
    assert p.test_loss_at_onset is None


def test_flat_curves_first_minimum_wins():
    # all equal -> ties everywhere -> first epoch; ratio 1 never above 1.05
    p = detect_phases(curves([1.0] * 4, [1.0] * 4))
    assert p.generalization_end_epoch == 0
    assert p.memorization_onset_epoch is None
    assert generalization_end(np.array([3, 4, 5]), [1.0, 0.5, 0.5]) == (4, 0.5)


def test_noisy_curve_onset_is_after_last_dip():
    # ratio: 1.0, 1.1, 1.0, 1.1, 1.0, 1.1, 1.1 -> last epoch below is e4 -> onset e5, first e1
    train = [1.0] * 7
    test = [1.0, 1.1, 1.0, 1.1, 1.0, 1.1, 1.1]
    assert memorization_onset(np.arange(7), train, test) == (5, 1)


def test_non_finite_epochs_are_skipped():
    # e3 (NaN) and e4 (inf) are skipped; remaining ratios e0 1.0, e1 1.0, e2 1.1, e5 1.2 -> onset
    # e2 (the skipped epochs neither break nor start the run); min test over finite = 1.0 at e0
    train = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    test = [1.0, 1.0, 1.1, NAN, INF, 1.2]
    assert memorization_onset(np.arange(6), train, test) == (2, 2)
    assert generalization_end(np.arange(6), test) == (0, 1.0)
    # a trailing NaN epoch: "to the end" is to the last finite epoch -> still onset 2
    assert memorization_onset(np.arange(4), [1, 1, 1, NAN], [1.0, 1.0, 1.1, 1.0]) == (2, 2)
    # only non-finite values: nothing can be said
    assert memorization_onset(np.arange(2), [NAN, NAN], [1.0, 1.0]) == (None, None)
    assert generalization_end(np.arange(2), [NAN, INF]) == (None, None)


def test_zero_train_loss_counts_as_above():
    # test > 1.05 * 0 is true for any positive test loss (no division by zero)
    assert memorization_onset(np.arange(2), [1.0, 0.0], [1.0, 0.3]) == (1, 1)


def test_single_epoch_and_empty_input():
    p = detect_phases(curves([2.0], [2.2]))  # ratio 1.1 at the only epoch
    assert (p.memorization_onset_epoch, p.generalization_end_epoch) == (0, 0)
    assert p.overlap is False and p.n_epochs == 1
    with pytest.raises(GrammarlabError):
        curves([], [])
    with pytest.raises(GrammarlabError):
        Curves.from_records([])
    with pytest.raises(GrammarlabError):
        Curves(epoch=[0, 1], train_loss=[1.0], test_loss=[1.0, 2.0])
    with pytest.raises(GrammarlabError):
        mean_curves([])


def test_memorization_scores():
    # 1 - 1/2 = 0.5; 1 - 2/1 = -1 (reported negative, not clipped); test 0 -> NaN; NaN -> NaN
    s = memorization_score([1.0, 2.0, 1.0, NAN], [2.0, 1.0, 0.0, 1.0])
    assert s[0] == pytest.approx(0.5) and s[1] == pytest.approx(-1.0)
    assert math.isnan(s[2]) and math.isnan(s[3])
    a = memorization_score_acc([0.9, 0.5, NAN], [0.6, 0.5, 0.1])
    assert a[0] == pytest.approx(0.3) and a[1] == 0.0 and math.isnan(a[2])


def test_from_records_unsorted_and_nulls():
    recs = [
        {"epoch": 1, "train_loss": 1.0, "test_loss": 1.2, "train_acc": 0.5, "test_acc": 0.4},
        {"epoch": 0, "train_loss": 2.0, "test_loss": None, "train_acc": 0.1, "test_acc": 0.1},
    ]
    c = Curves.from_records(recs)
    assert c.epoch.tolist() == [0, 1]
    assert math.isnan(c.test_loss[0]) and c.train_acc[1] == 0.5
    # e0 skipped (null) -> onset e1 (1.2 > 1.05); min test at e1
    p = detect_phases(c)
    assert (p.memorization_onset_epoch, p.generalization_end_epoch) == (1, 1)
    with pytest.raises(GrammarlabError):
        Curves.from_records([{"epoch": 0, "train_loss": 1.0}])


def test_mean_curve_over_seeds():
    # seed A: train 2,1,0.5 test 2,1.5,1.6 ; seed B: train 2,1,0.5 test 2,1.1,1.0 (+ epoch 3)
    # mean on common epochs 0..2: train 2,1,0.5 ; test 2, 1.3, 1.3
    # A: ratio 1, 1.5, 3.2 -> onset 1; min test 1.5 at e1
    # B: ratio 1, 1.1, 2.0 -> onset 1 (epoch 3 ratio 1.0/1.0 = 1 -> B alone: None); min 1.0 at e2/e3
    # mean: ratio 1, 1.3, 2.6 -> onset 1; min 1.3 at e1 (first on ties with e2)
    a = curves([2.0, 1.0, 0.5], [2.0, 1.5, 1.6])
    b = curves([2.0, 1.0, 0.5, 1.0], [2.0, 1.1, 1.0, 1.0])
    per, mean = phases_over_seeds([a, b])
    assert per[0].memorization_onset_epoch == 1 and per[0].generalization_end_epoch == 1
    assert per[1].memorization_onset_epoch is None and per[1].generalization_end_epoch == 2
    assert mean.n_epochs == 3
    assert mean.memorization_onset_epoch == 1 and mean.generalization_end_epoch == 1
    assert mean.min_test_loss == pytest.approx(1.3)


def test_mean_curve_breaks_on_nan():
    # seed B has NaN at epoch 1 -> mean test NaN at e1 -> skipped; mean test 2.0, -, 1.0 -> min e2
    a = curves([2.0, 1.0, 0.5], [2.0, 0.9, 1.0])
    b = curves([2.0, 1.0, 0.5], [2.0, NAN, 1.0])
    m = mean_curves([a, b])
    assert math.isnan(m.test_loss[1]) and m.test_loss[2] == 1.0
    assert detect_phases(m).generalization_end_epoch == 2


def sequential_curves() -> Curves:
    # Stage 1 = epochs 0..4 (train on D1), stage 2 = epochs 5..11 (train on D2).
    # epoch   0    1    2    3    4  |  5    6    7    8    9    10   11
    # test   3.0  2.0  1.8  1.9  2.2 | 2.0  1.7  1.6  1.62 1.8  2.0  2.3
    # d1     3.0  1.9  1.5  1.0  0.5 | 1.2  1.65 1.63 1.66 1.85 2.05 2.3
    # d2     3.0  2.0  1.8  1.9  2.2 | 2.0  1.5  1.2  0.9  0.6  0.4  0.2
    test = [3.0, 2.0, 1.8, 1.9, 2.2, 2.0, 1.7, 1.6, 1.62, 1.8, 2.0, 2.3]
    d1 = [3.0, 1.9, 1.5, 1.0, 0.5, 1.2, 1.65, 1.63, 1.66, 1.85, 2.05, 2.3]
    d2 = [3.0, 2.0, 1.8, 1.9, 2.2, 2.0, 1.5, 1.2, 0.9, 0.6, 0.4, 0.2]
    train = d1[:5] + d2[5:]
    stage = [1] * 5 + [2] * 7
    return curves(train, test, stage=stage, d1_loss=d1, d2_loss=d2)


def test_sequential_run():
    p = detect_phases(sequential_curves())
    assert p.sequential is True
    # stage 1 only: ratio test/d1 = 1, 1.053, 1.2, 1.9, 4.4 -> all above from e1 -> onset 1 and
    # first crossing 1; min test in stage 1 is 1.8 at e2 -> overlap (1 < 2)
    assert p.memorization_onset_epoch == 1 and p.memorization_first_crossing_epoch == 1
    assert p.generalization_end_epoch == 2 and p.overlap is True
    # stage 2 min test 1.6 at e7 -> re-generalization 7
    assert p.regeneralization_epoch == 7 and p.regeneralization_test_loss == pytest.approx(1.6)
    # plateau: |d1 - 1.6| <= 0.08 -> e6 (1.65), e7 (1.63), e8 (1.66); e9 1.85 no -> 6..8, 3 epochs
    assert (p.d1_plateau_first_epoch, p.d1_plateau_last_epoch, p.d1_plateau_count) == (6, 8, 3)
    # forgetting: |d1 - test| <= 0.05 test per stage-2 epoch:
    # e5 0.8>0.1 no; e6 0.05<=0.085 yes; e7 .03<=.08 yes; e8 .04<=.081 yes; e9 .05<=.09 yes;
    # e10 .05<=.1 yes; e11 0 yes -> stays from e6
    assert p.forgetting_epoch == 6
    # stage-2 onset on d2: ratios e5 1.0, e6 1.13, ... all above from e6 -> 6
    assert p.stage2_memorization_onset_epoch == 6


def test_sequential_not_forgotten():
    # D1 stays memorized in stage 2 (d1 far below test at the end) -> forgetting None, no plateau
    c = sequential_curves()
    d1 = c.d1_loss.copy()
    d1[5:] = 0.1
    p = detect_phases(Curves(c.epoch, c.train_loss, c.test_loss, stage=c.stage, d1_loss=d1))
    assert p.forgetting_epoch is None
    assert p.d1_plateau_count == 0 and p.d1_plateau_first_epoch is None
    assert p.regeneralization_epoch == 7


# ----------------------------------------------------------------------------- censoring


def test_generalization_end_still_falling_is_right_censored():
    # test falls at every epoch (min at the last epoch 4) -> end of generalization censored >=4;
    # ratios 1.0, 1.1, 1.2, 1.25, 1.33 -> onset 1 observed, but no overlap is claimed
    p = detect_phases(curves([2.0, 1.0, 0.5, 0.4, 0.3], [2.0, 1.1, 0.6, 0.5, 0.4]))
    assert p.generalization_end_epoch == 4 and p.generalization_end_censored is True
    assert p.memorization_onset_epoch == 1 and p.memorization_onset_censored is False
    assert p.overlap is False and p.overlap_censored is True
    d = p.to_dict()
    assert format_event(d, "generalization_end") == ">=4"
    assert format_event(d, "memorization_onset") == "1"


def test_onset_not_reached_is_censored_and_observed_events_print_plainly():
    # ratio 1 everywhere -> onset censored (>E, E = 3); min test 1.0 at e2 then up -> observed
    p = detect_phases(curves([2.0, 1.5, 1.0, 1.2], [2.0, 1.5, 1.0, 1.2]))
    assert p.memorization_onset_epoch is None and p.memorization_onset_censored is True
    assert p.generalization_end_epoch == 2 and p.generalization_end_censored is False
    assert p.overlap is False and p.overlap_censored is False
    assert format_event(p.to_dict(), "memorization_onset") == ">3"
    assert format_event(p.to_dict(), "generalization_end") == "2"
    # a single-stage run has no forgetting: "-"
    assert format_event(p.to_dict(), "forgetting") == "-"
    # a table row (CSV floats, NaN, string flags) formats the same
    row = {"memorization_onset_epoch": float("nan"), "memorization_onset_censored": "True",
           "stage1_last_epoch": 3.0, "generalization_end_epoch": 2.0,
           "generalization_end_censored": "False"}  # fmt: skip
    assert format_event(row, "memorization_onset") == ">3"
    assert format_event(row, "generalization_end") == "2"


def test_summarize_event_counts_censored_seeds_and_never_averages_them():
    rows = [
        {"memorization_onset_epoch": 4, "memorization_onset_censored": False,
         "stage1_last_epoch": 9},
        {"memorization_onset_epoch": 6, "memorization_onset_censored": False,
         "stage1_last_epoch": 9},
        {"memorization_onset_epoch": None, "memorization_onset_censored": True,
         "stage1_last_epoch": 9},
    ]  # fmt: skip
    s = summarize_event(rows, "memorization_onset")
    # observed 4 and 6: mean 5, sample std sqrt(((4-5)^2 + (6-5)^2) / 1) = sqrt(2)
    assert (s.n_runs, s.n_observed, s.n_censored) == (3, 2, 1)
    assert s.mean == 5.0 and s.std == pytest.approx(math.sqrt(2))
    assert s.label() == "5.0 +/- 1.4 (2 of 3 seeds observed; 1 censored >9)"
    none = summarize_event(rows[2:], "memorization_onset")
    assert none.n_observed == 0 and math.isnan(none.mean)
    assert none.label() == ">9 (0 of 1 seeds observed; 1 censored >9)"
    with pytest.raises(GrammarlabError, match="unknown event"):
        summarize_event(rows, "nope")


# ----------------------------------------------------------------------------- stage switch


def test_stage_switch_shock_and_first_within_vs_forgetting():
    p = detect_phases(sequential_curves())
    # D1 at the last stage-1 epoch (e4) 0.5, at the first stage-2 epoch (e5) 1.2: +0.7 in one step;
    # test 2.2 -> 2.0: -0.2
    assert p.switch_d1_loss_before == 0.5 and p.switch_d1_loss_after == 1.2
    assert p.switch_d1_change == pytest.approx(0.7)
    assert p.switch_test_change == pytest.approx(-0.2)
    # D1 first within 5% of test at e6, and stays so: forgetting 6, observed
    assert p.d1_first_within_epoch == 6 and p.forgetting_epoch == 6
    assert p.forgetting_censored is False
    # stage-2 test min 1.6 at e7, before the last epoch 11: observed
    assert p.regeneralization_censored is False
    assert p.stage2_memorization_onset_censored is False
    assert format_event(p.to_dict(), "forgetting") == "6"


def test_forgetting_that_leaves_and_returns_is_dated_from_its_return():
    # D1 within 5% of test at e6, then below it (re-memorized) at e7, e8, within again from e9:
    # first within 6, but forgetting (stays within to the end) only from 9
    c = sequential_curves()
    d1 = c.d1_loss.copy()
    d1[7], d1[8] = 1.2, 1.2  # |1.2 - 1.6| = 0.4 > 0.08; |1.2 - 1.62| > 0.081
    p = detect_phases(Curves(c.epoch, c.train_loss, c.test_loss, stage=c.stage, d1_loss=d1,
                             d2_loss=c.d2_loss))  # fmt: skip
    assert p.d1_first_within_epoch == 6 and p.forgetting_epoch == 9


def test_sequential_events_per_seed_over_seeds():
    # seed 0 forgets (e6); seed 1 keeps D1 memorized (censored at the last epoch 11)
    c = sequential_curves()
    d1 = c.d1_loss.copy()
    d1[5:] = 0.1
    kept = Curves(c.epoch, c.train_loss, c.test_loss, stage=c.stage, d1_loss=d1, d2_loss=c.d2_loss)
    per, _ = phases_over_seeds([c, kept])
    s = summarize_event([p.to_dict() for p in per], "forgetting")
    assert (s.n_observed, s.n_censored, s.mean) == (1, 1, 6.0)
    assert s.label() == "6.0 (1 of 2 seeds observed; 1 censored >11)"
    assert per[1].forgetting_censored is True and per[1].d1_first_within_epoch is None


def test_floor_corrected_onset_by_hand():
    from grammarlab.analysis.phases import floor_corrected_onset

    ep = np.arange(4)
    train = np.array([1.0, 1.0, 1.0, 1.0])
    test = np.array([1.0, 1.1, 1.2, 1.3])
    # raw ratio 1.0, 1.1, 1.2, 1.3 -> onset 1; test set 10% harder for the grammar itself:
    # corrected 0.909, 1.0, 1.091, 1.182 -> onset 2
    assert floor_corrected_onset(ep, train, test, 1.0) == 1
    assert floor_corrected_onset(ep, train, test, 1.1) == 2
    assert floor_corrected_onset(ep, train, test, 1.3) is None
    with pytest.raises(GrammarlabError):
        floor_corrected_onset(ep, train, test, 0.0)
    ph = detect_phases(Curves(epoch=ep, train_loss=train, test_loss=test), floor_ratio=1.1)
    assert (ph.memorization_onset_epoch, ph.floor_corrected_onset_epoch) == (1, 2)
    assert ph.floor_ratio == 1.1 and ph.floor_corrected_onset_censored is False


def test_forgetting_share_by_hand():
    from grammarlab.analysis.phases import forgetting_share

    # advantage 1.0 - 0.2 = 0.8; then 0.6 (1/4 lost), 0.2 (3/4), 0 (all)
    got = forgetting_share(np.array([0.4, 0.8, 1.0]), np.array([1.0, 1.0, 1.0]), 0.2, 1.0)
    assert got == pytest.approx([0.25, 0.75, 1.0])
    assert np.isnan(forgetting_share(np.array([1.0]), np.array([1.0]), 1.0, 0.9)).all()
