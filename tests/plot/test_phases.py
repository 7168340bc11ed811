"""Phase figures: the phase diagram, the phases against entropy and n, memorized bits per string."""

from __future__ import annotations

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


def test_phase_diagram_draws_the_floor_corrected_onset(sweep, tmp_path):
    from dataclasses import replace

    from grammarlab.plot.phases import phase_diagram
    from grammarlab.sweep.tables import collect

    t = collect(sweep)
    ph = t.phases.assign(floor_corrected_onset_epoch=7, floor_corrected_onset_censored=False)
    (stem,) = phase_diagram(replace(t, phases=ph), tmp_path)
    d = files_ok(tmp_path, stem)
    assert set(d["floor_corrected_onset_epoch"].dropna()) == {7}
