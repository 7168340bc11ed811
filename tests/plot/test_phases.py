"""Phase figures: the phase diagram (with the floor-corrected onset), the phases against entropy
and n, memorized bits per string, the forgetting share of sequential runs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.plot.synthetic import files_ok


def test_phase_figures_of_a_sweep(all_figures):
    out = all_figures.out
    pd_ = files_ok(out, "phase_diagram")
    assert pd_.score.between(0, 1).all()
    # at e = n//2 test = 2/(1 + 0.2 n/2) <= train (ratio <= 1); from e = n//2 + 1 on the test
    # loss grows by 0.05/epoch while train falls: ratio > 1.05, so onset = n//2 + 1 (both seeds)
    onset = pd_.groupby("n_train").memorization_onset_epoch.first().to_dict()
    assert onset == {4: 3, 8: 5}
    assert set(pd_.entropy_bits) == {10.0, 40.0}
    pv = files_ok(out, "phases_vs_entropy_and_n")
    assert len(pv) == 2 * 2 * 2  # (grammar, n) x 2 phases
    # the test loss keeps rising after the onset, so every end of generalization is observed
    assert not pv.censored.any()
    mb = files_ok(out, "memorized_bits_vs_epoch")
    assert len(mb) == 8 * 21  # one row per run and epoch, as in measures.jsonl
    assert (mb.memU_train_bits_total == 0.5 * mb.epoch).all()  # exact in binary: e / 2
    ps = files_ok(out, "memorized_bits_per_string")
    assert set(ps.when) == {"at memorization onset", "last epoch"}
    last = ps[ps.when == "last epoch"]
    assert len(last) == 2 * 2 * (4 + 8) and (last.epoch == 20).all()


def test_phase_diagram_draws_the_floor_corrected_onset(sweep):
    from dataclasses import replace

    from grammarlab.plot.phases import phase_diagram
    from grammarlab.sweep.tables import collect

    t = collect(sweep)
    ph = t.phases.assign(floor_corrected_onset_epoch=7, floor_corrected_onset_censored=False)
    ph["status"] = ["running" if n == ph.n_train.min() else "done" for n in ph.n_train]
    d = phase_diagram(replace(t, phases=ph)).grammarlab_data
    assert set(d["floor_corrected_onset_epoch"].dropna()) == {7}
    # the smaller n's runs all stopped early: their onset is drawn as provisional, apart
    small = d[d.n_train == ph.n_train.min()]
    assert small["provisional_onset_epoch"].notna().all()
    assert d[d.n_train != ph.n_train.min()]["provisional_onset_epoch"].isna().all()


def test_forgetting_share_figure():
    import pandas as pd

    from grammarlab.plot.phases import forgetting

    # end of stage 1: test 1.0, d1 0.2 (advantage 0.8); stage 2: d1 0.6, 1.0 -> 1/2, 1 lost
    rows = []
    for s in (0, 1):
        for e, st, d1, te in (
            (0, 1, 1.0, 1.1),
            (1, 1, 0.2, 1.0),
            (2, 2, 0.6, 1.0),
            (3, 2, 1.0, 1.0),
        ):
            for ds, v in (("d1", d1), ("test", te), ("train", d1)):
                rows.append({"run": f"r{s}", "grammar": "g", "seed": s, "n_train": 8,
                             "epoch": e, "stage": st, "dataset": ds, "loss": v})  # fmt: skip
    t = SimpleNamespace(curves=pd.DataFrame(rows))
    d = forgetting(t).grammarlab_data
    assert list(d[d.run == "r0"].share_lost) == pytest.approx([0.5, 1.0])
