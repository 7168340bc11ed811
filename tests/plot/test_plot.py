"""Figures from synthetic sweeps: every kind writes PNG, PDF and the CSV it drew, whose content
matches the tables; missing inputs skip a figure with a note."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import grammarlab.sweep.tables as sweep_tables_mod
from grammarlab.plot.registry import PLOTS, plot_all

GRAMMARS = {"low": 10.0, "high": 40.0}  # name -> entropy (bits/string), injected below


def write_run(run: Path, grammar: str, n: int, seed: int, sequential: bool = False) -> None:
    """A finished run whose train and test losses part after epoch n // 2."""
    run.mkdir(parents=True)
    (run / "grammar.cfg").write_text(f"# {grammar}\nS -> 'a' [1.0]\n")
    (run / "config.toml").write_text(
        f'grammar = "/x/{grammar}.cfg"\nn_train = {n}\nseed = {seed}\n[model]\npreset = "p"\n'
    )
    recs, ps = [], []
    for e in range(21):
        tr = 2.0 / (1 + 0.2 * e) + 0.01 * seed
        te = tr if e < n // 2 else 2.0 / (1 + 0.2 * (n // 2)) + 0.05 * (e - n // 2)
        r = {"epoch": e, "stage": 1 + (sequential and e > 10), "lr": 0.1, "train_loss": tr,
             "test_loss": te, "random_loss": 3.0, "train_acc": 0.5, "test_acc": 0.4,
             "random_acc": 0.1}  # fmt: skip
        if sequential:
            r["d1_loss"], r["d2_loss"] = tr if e <= 10 else te, te if e <= 10 else tr
        recs.append(r)
        for i in range(n):
            gb = 5.0 + i
            ps.append({"epoch": e, "dataset": "train", "index": i, "model_bits": gb - 0.1 * e,
                       "grammar_bits": gb, "memU_bits": 0.1 * e * i / n})  # fmt: skip
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    meas = [{"epoch": e, "excess_test_bits": 3.0 - 0.1 * e, "memU_train_bits_total": 0.5 * e,
             "mia_auc": 0.5 + 0.02 * e, "mia_null_lo": 0.3, "mia_null_hi": 0.7,
             "gen_grammatical_share": 1.0 - 0.04 * e if e in (0, 20) else None,
             "gen_copy_share": 0.04 * e if e in (0, 20) else None,
             "grammar_test_bits_mean": 8.0, "excess_test_bits_per_token": (3.0 - 0.1 * e) / 4}
            for e in range(21)]  # fmt: skip
    (run / "measures.jsonl").write_text("".join(json.dumps(r) + "\n" for r in meas))
    pd.DataFrame(ps).to_csv(run / "per_string.csv", index=False)
    (run / "status.json").write_text('{"state": "done", "epoch": 20}')


@pytest.fixture
def sweep(tmp_path, monkeypatch):
    # entropy by grammar name (the header comment) instead of the entropy engine
    monkeypatch.setattr(sweep_tables_mod, "_entropy_of_text",
                        lambda text, src, notes: GRAMMARS[text.split()[1]])  # fmt: skip
    root = tmp_path / "sw"
    for g in GRAMMARS:
        for n in (4, 8):
            for s in (0, 1):
                write_run(root / f"{g}-n{n}-s{s}", g, n, s)
    return root


def files_ok(out: Path, stem: str) -> pd.DataFrame:
    for ext in ("png", "pdf", "csv"):
        assert (out / f"{stem}.{ext}").stat().st_size > 0, f"{stem}.{ext}"
    return pd.read_csv(out / f"{stem}.csv")


def test_all_figures_of_a_sweep(sweep, tmp_path):
    out = tmp_path / "fig"
    written, notes = plot_all(sweep, out)
    assert "fig4_sequential_forgetting" not in written
    assert any(n.startswith("fig4 skipped") for n in notes)
    # no sequential runs, no per_position rows in the sweep tables
    assert any(n.startswith("position_heatmap skipped") for n in notes)
    assert len(written) == len(PLOTS) - 2
    for stem in written:
        files_ok(out, stem)
    fig2 = files_ok(out, "fig2_train_test_by_n")
    # 8 runs x 21 epochs x (train, test)
    assert len(fig2) == 8 * 21 * 2 and set(fig2.dataset) == {"train", "test"}
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
    mia = files_ok(out, "mia_auc_null_band")
    assert set(mia.mia_null_hi) == {0.7} and len(mia) == 8 * 21
    gen = files_ok(out, "generations_valid_share")
    assert sorted(gen.epoch.unique()) == [0, 20]  # only the epochs that sampled
    f5 = files_ok(out, "fig5_entropy_sweep")
    # floor: 8 bits x ln 2 / 4 predicted tokens = 1.386 nats/token (exact: one length)
    assert np.allclose(f5.entropy_floor_nats_per_token, 8 * np.log(2) / 4)
    ps = files_ok(out, "memorized_bits_per_string")
    assert set(ps.when) == {"at memorization onset", "last epoch"}
    last = ps[ps.when == "last epoch"]
    assert len(last) == 2 * 2 * (4 + 8) and (last.epoch == 20).all()
    f3 = files_ok(out, "fig3_same_loss_rote_vs_understanding")
    # level = train loss of n = 8 at its onset (epoch 5): 2 / (1 + 0.2 * 5) + mean(0, 0.01)
    assert f3.level_nats_per_token.iloc[0] == pytest.approx(1.0 + 0.005)


def test_sequential_and_single_run(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep_tables_mod, "_entropy_of_text", lambda text, src, notes: 10.0)
    write_run(tmp_path / "seq", "low", 8, 0, sequential=True)
    out = tmp_path / "fig"
    written, notes = plot_all(tmp_path / "seq", out, kinds=["fig4", "fig1", "fig3"])
    assert written == ["fig4_sequential_forgetting", "fig1_losses_accuracy_memorization"]
    f4 = files_ok(out, "fig4_sequential_forgetting")
    assert set(f4.dataset) == {"d1", "d2", "test"}
    f1 = files_ok(out, "fig1_losses_accuracy_memorization")
    assert f1.memorization_loss_clipped.between(0, 1).all()
    assert np.isclose(f1.memorization_acc.dropna(), 0.1).all()
    assert any("fig3 skipped" in n for n in notes)


def test_unknown_kind_is_a_user_error(sweep, tmp_path):
    from grammarlab.errors import GrammarlabError

    with pytest.raises(GrammarlabError, match="unknown plot kind"):
        plot_all(sweep, tmp_path / "f", kinds=["nope"])


def test_censored_events_are_flagged_not_averaged(tmp_path, monkeypatch):
    from grammarlab.plot.common import mean_phases
    from grammarlab.sweep.tables import collect

    monkeypatch.setattr(sweep_tables_mod, "_entropy_of_text", lambda text, src, notes: 10.0)
    # train = test at every epoch, both falling: onset never reached, minimum at the last epoch
    for s in (0, 1):
        run = tmp_path / "sw" / f"r{s}"
        write_run(run, "low", 4, s)
        recs = [{"epoch": e, "train_loss": 2.0 / (1 + e), "test_loss": 2.0 / (1 + e)}
                for e in range(21)]  # fmt: skip
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    ph = mean_phases(collect(tmp_path / "sw"))
    row = ph.iloc[0]
    assert row.memorization_onset_censored and row.generalization_end_censored
    assert row.memorization_onset_n_observed == 0 and row.memorization_onset_n_runs == 2
    assert row.generalization_end_epoch == 20  # drawn at the last epoch, as censored
    written, _ = plot_all(tmp_path / "sw", tmp_path / "fig", kinds=["phases_vs", "fig2"])
    assert "phases_vs_entropy_and_n" in written


def test_grammar_palette_one_palette_per_family():
    import seaborn as sns

    from grammarlab.plot.common import grammar_palette

    df = pd.DataFrame({"grammar": ["random_l2", "random_l26", "hierarchical_p0.5"],
                       "entropy_bits": [64.0, 300.0, 36.0]})  # fmt: skip
    pal = grammar_palette(df)
    # families sorted by name: hierarchical -> Blues, random -> Oranges; shades by entropy
    assert pal["hierarchical_p0.5"] == sns.color_palette("Blues", 2)[1]
    assert pal["random_l2"] == sns.color_palette("Oranges", 3)[1]
    assert pal["random_l26"] == sns.color_palette("Oranges", 3)[2]


def test_position_heatmap_from_per_position_rows(tmp_path):
    from types import SimpleNamespace

    from grammarlab.plot.measures import position_heatmap

    rows = [{"grammar": "g", "n_train": 8, "epoch": e, "dataset": ds, "position": p,
             "excess_bits": float(p - e), "run": "r"}
            for e in range(3) for p in range(4) for ds in ("train", "test")]  # fmt: skip
    t = SimpleNamespace(per_position=pd.DataFrame(rows))
    assert position_heatmap(t, tmp_path) == ["excess_by_position"]
    d = files_ok(tmp_path, "excess_by_position")
    assert set(d.dataset) == {"test"} and len(d) == 12
