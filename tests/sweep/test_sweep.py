"""Sweep expansion, run ids, skip/resume, executors and the aggregated tables, on a fake trainer
that writes synthetic run folders (docs/architecture.md layout)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from grammarlab.errors import GrammarlabError
from grammarlab.sweep.execute import run_sweep
from grammarlab.sweep.spec import expand, load_sweep
from grammarlab.sweep.tables import aggregate, summary_table
from grammarlab.train.config import dumps_config, load_config

# Two independent uniform binary choices: 4 strings of probability 1/4 -> H = 2 bits exactly.
AB = "S -> A A [1.0]\nA -> 'a' [0.5] | 'b' [0.5]\n"
FAKE = "test_sweep:fake_train"
FAIL_LR = 0.0123  # the fake trainer raises for this lr


def fake_train(config_path: str, run_dir: str) -> str:
    """A stand-in for grammarlab.train.loop: resumes from the last epoch in metrics.jsonl and writes
    train/test losses whose divergence starts later for larger n (onset = n_train // 2)."""
    cfg = load_config(config_path)
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    with open(run / "calls.txt", "a") as f:
        f.write("call\n")
    if cfg.lr == FAIL_LR:
        raise RuntimeError("boom")
    (run / "config.toml").write_text(dumps_config(cfg))
    (run / "grammar.cfg").write_text(Path(cfg.grammar).read_text())
    metrics = run / "metrics.jsonl"
    done = len(metrics.read_text().splitlines()) if metrics.exists() else 0
    stop = cfg.epochs + 1 if not (run / "stop_early").exists() else 2
    with open(metrics, "a") as f:
        for e in range(done, stop):
            train = 2.0 / (1 + e)
            test = train if e < cfg.n_train // 2 else train * (1.0 + 0.1 * e)
            f.write(json.dumps({"epoch": e, "stage": 1, "lr": cfg.lr, "train_loss": train,
                                "test_loss": test, "random_loss": 3.0, "train_acc": 0.5,
                                "test_acc": 0.4, "random_acc": 0.1}) + "\n")  # fmt: skip
    state = "done" if stop == cfg.epochs + 1 else "running"
    (run / "status.json").write_text(json.dumps({"state": state, "epoch": stop - 1}))
    if state == "done":
        rows = [{"epoch": e, "excess_test_bits": 5.0 - e, "memU_train_bits_total": float(e)}
                for e in range(cfg.epochs + 1)]  # fmt: skip
        (run / "measures.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return state


def write_sweep(tmp_path: Path, grid: str, base_extra: str = "") -> Path:
    (tmp_path / "ab.cfg").write_text(AB)
    f = tmp_path / "s.toml"
    f.write_text(f'name = "t"\n[base]\ngrammar = "ab.cfg"\nepochs = 6\n{base_extra}\n'
                 f"[base.model]\npreset = \"pythia-tiny\"\n[grid]\n{grid}")  # fmt: skip
    return f


def ids(sweep) -> list[str]:
    return [r.run_id for r in sweep.runs]


def test_grid_is_cartesian_product_with_dotted_and_table_values(tmp_path):
    f = write_sweep(tmp_path, 'n_train = [8, 64]\nseed = [0, 1, 2]\n"model.hidden_size" = [32]\n'
                              'lora = [{rank = 0}, {rank = 4}]\n')  # fmt: skip
    sw = load_sweep(f, out=tmp_path / "out")
    assert len(sw.runs) == 2 * 3 * 1 * 2
    got = {(r.config.n_train, r.config.seed, r.config.lora.rank) for r in sw.runs}
    assert got == {(n, s, k) for n in (8, 64) for s in (0, 1, 2) for k in (0, 4)}
    assert all(r.config.model.hidden_size == 32 and r.config.epochs == 6 for r in sw.runs)
    assert all(r.config.model.preset == "pythia-tiny" for r in sw.runs)  # table merged, kept
    assert len(set(ids(sw))) == 12 and all(r.run_dir.parent == tmp_path / "out" for r in sw.runs)
    # readable part: the varying axes only (hidden_size has one value)
    first = sw.runs[0].run_id
    assert first.startswith("n8-s0-") and "hidden_size" not in first


def test_derived_family_grammars(tmp_path):
    spec = {"base": {"epochs": 3}, "derive": [{"family": "hierarchical", "p": [0.5, 0.9]},
            {"family": "random", "alphabet_size": [2, 7], "length": 4}]}  # fmt: skip
    sw = expand(spec, tmp_path / "sw")
    files = sorted(p.name for p in (tmp_path / "sw" / "grammars").glob("*.cfg"))
    assert files == ["hierarchical_p0.5.cfg", "hierarchical_p0.9.cfg",
                     "random_l2.cfg", "random_l7.cfg"]  # fmt: skip
    assert len(sw.runs) == 4
    assert {Path(r.config.grammar).name for r in sw.runs} == set(files)
    assert "0.9" in (tmp_path / "sw" / "grammars" / "hierarchical_p0.9.cfg").read_text()


def test_derived_entropy_targets(tmp_path):
    from grammarlab.grammar.entropy import analyze
    from grammarlab.grammar.load import load

    (tmp_path / "ab.cfg").write_text(AB)
    # tempering keeps a uniform grammar uniform; skewing lowers its 2 bits
    derive = [{"grammar": "ab.cfg", "entropy_bits": [1.0, 1.5], "method": "skew"}]
    spec = {"base": {"epochs": 3}, "derive": derive}
    sw = expand(spec, tmp_path / "sw", base_dir=tmp_path)
    assert len(sw.runs) == 2
    for r, target in zip(sw.runs, (1.0, 1.5), strict=True):
        assert Path(r.config.grammar).parent == tmp_path / "sw" / "grammars"
        bits = analyze(load(r.config.grammar)).to_dict()["entropy_bits"]
        assert abs(bits - target) < 1e-4


def test_run_ids_stable_and_sensitive(tmp_path):
    f = write_sweep(tmp_path, "n_train = [8, 64]\n")
    a = ids(load_sweep(f, out=tmp_path / "o"))
    assert a == ids(load_sweep(f, out=tmp_path / "o"))  # stable
    # an explicit default gives the same resolved config, hence the same id
    f2 = write_sweep(tmp_path, "n_train = [8, 64]\n", base_extra="seed = 0")
    assert ids(load_sweep(f2, out=tmp_path / "o")) == a
    for extra in ("lr = 0.002", "n_random = 3", "seed = 5"):  # any config value
        f3 = write_sweep(tmp_path, "n_train = [8, 64]\n", base_extra=extra)
        b = ids(load_sweep(f3, out=tmp_path / "o"))
        assert all(x != y for x, y in zip(a, b, strict=True)), extra
    # grammar content: edit the file -> new ids; same text elsewhere -> same ids
    f = write_sweep(tmp_path, "n_train = [8, 64]\n")
    (tmp_path / "ab.cfg").write_text(AB.replace("[0.5] | 'b' [0.5]", "[0.25] | 'b' [0.75]"))
    assert all(x != y for x, y in zip(a, ids(load_sweep(f, out=tmp_path / "o")), strict=True))
    (tmp_path / "ab.cfg").write_text(AB)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "ab.cfg").write_text(AB)
    f.write_text(f.read_text().replace('"ab.cfg"', '"sub/ab.cfg"'))
    assert ids(load_sweep(f, out=tmp_path / "o")) == a


def test_bad_grid_is_a_user_error(tmp_path):
    with pytest.raises(GrammarlabError, match="non-empty list"):
        load_sweep(write_sweep(tmp_path, "n_train = 8\n"), out=tmp_path / "o")
    with pytest.raises(GrammarlabError, match="n_train"):
        load_sweep(write_sweep(tmp_path, "n_train = [0]\n"), out=tmp_path / "o")


def calls(run_dir: Path) -> int:
    p = run_dir / "calls.txt"
    return len(p.read_text().splitlines()) if p.exists() else 0


def test_skip_finished_resume_unfinished_and_failures(tmp_path):
    f = write_sweep(tmp_path, f"n_train = [4, 8]\nlr = [0.003, {FAIL_LR}]\n")
    sw = load_sweep(f, out=tmp_path / "o")
    by = {(r.config.n_train, r.config.lr): r for r in sw.runs}
    # a run that stopped after epoch 1 (unfinished)
    unfinished = by[(8, 0.003)].run_dir
    unfinished.mkdir(parents=True)
    (unfinished / "stop_early").touch()
    out = run_sweep(sw, target=FAKE, progress=False)
    states = {o.run_id: o.state for o in out}
    assert states[by[(4, 0.003)].run_id] == "done"
    assert states[unfinished.name] == "running"
    assert states[by[(4, FAIL_LR)].run_id] == "failed"
    assert "boom" in next(o.error for o in out if o.state == "failed")
    # relaunch: the finished run is skipped, the unfinished one resumes from its last epoch
    (unfinished / "stop_early").unlink()
    out = run_sweep(sw, target=FAKE, progress=False)
    assert calls(by[(4, 0.003)].run_dir) == 1
    assert calls(unfinished) == 2
    epochs = [
        json.loads(x)["epoch"] for x in (unfinished / "metrics.jsonl").read_text().splitlines()
    ]
    assert epochs == list(range(7))
    assert {o.state for o in out if o.run_id == unfinished.name} == {"done"}


def test_parallel_executor(tmp_path):
    f = write_sweep(tmp_path, f"n_train = [2, 4, 6]\nlr = [0.003, {FAIL_LR}]\n")
    sw = load_sweep(f, out=tmp_path / "o")
    out = run_sweep(sw, executor="parallel", workers=2, target=FAKE, progress=False)
    assert [o.run_id for o in out] == ids(sw)  # grid order
    assert sorted(o.state for o in out) == ["done"] * 3 + ["failed"] * 3


def test_aggregate_tables(tmp_path):
    f = write_sweep(tmp_path, "n_train = [4, 8]\nseed = [0, 1]\n")
    sw = load_sweep(f, out=tmp_path / "o")
    run_sweep(sw, target=FAKE, progress=False)
    t = aggregate(sw.root)
    curves = pd.read_csv(sw.root / "curves.csv")
    # 4 runs x 7 epochs (0..6) x 3 datasets
    assert len(curves) == 4 * 7 * 3
    for col in ("run", "epoch", "dataset", "loss", "acc", "grammar", "entropy_bits", "n_train"):
        assert col in curves.columns
    ph = pd.read_csv(sw.root / "phases.csv")
    assert len(ph) == 4
    need = ["grammar", "entropy_bits", "n_train", "seed", "memorization_onset_epoch",
            "generalization_end_epoch", "min_test_loss", "min_excess_test_bits",
            "final_memU_train_bits_total"]  # fmt: skip
    assert all(c in ph.columns for c in need)
    # fake curves: onset at n//2 (test > 1.05 train from then on); excess 5 - e, min at e = 6
    onsets = sorted(zip(ph.n_train, ph.memorization_onset_epoch, strict=True))
    assert onsets == [(4, 2), (4, 2), (8, 4), (8, 4)]
    assert (ph.min_excess_test_bits == -1.0).all() and (ph.final_memU_train_bits_total == 6).all()
    assert set(ph.grammar) == {"ab"}
    if not t.phases.entropy_bits.isna().all():  # the entropy engine is there
        assert ph.entropy_bits.tolist() == pytest.approx([2.0] * 4)
    assert len(pd.read_csv(sw.root / "measures.csv")) == 4 * 7
    text = summary_table(t.phases)
    assert "onset" in text and len(text.splitlines()) == 5


def test_cli_sweep(tmp_path, monkeypatch, capsys):
    from grammarlab.cli import main

    f = write_sweep(tmp_path, "n_train = [4]\n")
    assert main(["sweep", str(f), "--out", str(tmp_path / "o"), "--dry-run"]) == 0
    assert "1 run" in capsys.readouterr().out
    assert main(["sweep", str(tmp_path / "missing.toml")]) == 2
    capsys.readouterr()
    assert main(["sweep", str(f), "--out", str(tmp_path / "o"), "--executor", "nope"]) == 2
    err = capsys.readouterr().err
    assert "error: unknown executor 'nope'" in err and "gpus" in err and "Traceback" not in err


def test_summary_table_prints_censored_events_as_censored():
    # run a: both events observed; b: onset never reached by epoch 30 and the test loss still
    # falling at 30 (generalization end censored); c: an old phases row without censoring flags
    rows = [
        {"grammar": "a", "entropy_bits": 1.0, "n_train": 8, "memorization_onset_epoch": 12.0,
         "memorization_onset_censored": False, "generalization_end_epoch": 7.0,
         "generalization_end_censored": False, "stage1_last_epoch": 30, "last_epoch": 30},
        {"grammar": "b", "entropy_bits": 2.0, "n_train": 8, "memorization_onset_epoch": None,
         "memorization_onset_censored": True, "generalization_end_epoch": 30.0,
         "generalization_end_censored": True, "stage1_last_epoch": 30, "last_epoch": 30},
        {"grammar": "c", "entropy_bits": 3.0, "n_train": 8, "memorization_onset_epoch": None,
         "generalization_end_epoch": 99.0, "last_epoch": 99},
    ]  # fmt: skip
    lines = summary_table(pd.DataFrame(rows)).splitlines()
    cells = [line.split() for line in lines[1:]]
    assert lines[0].split()[:5] == ["grammar", "H", "bits", "n", "onset"]
    assert cells[0][:5] == ["a", "1", "8", "12", "7"]
    assert cells[1][:5] == ["b", "2", "8", ">30", ">=30"]
    assert cells[2][:5] == ["c", "3", "8", ">99", ">=99"]


def test_per_position_rows_and_new_measure_summaries(tmp_path):
    f = write_sweep(tmp_path, "n_train = [4, 8]\n")
    sw = load_sweep(f, out=tmp_path / "o")
    run_sweep(sw, target=FAKE, progress=False)
    for k, r in enumerate(sw.runs):  # the analysis files the fake trainer does not write
        pp = pd.DataFrame({"epoch": [0, 0, 1], "dataset": ["test"] * 3, "position": [0, 1, 0],
                           "excess_bits": [k, k + 0.5, k + 1.0]})  # fmt: skip
        pp.to_csv(r.run_dir / "per_position.csv", index=False)
        rows = [{"epoch": e, "excess_test_bits": 5.0 - e, "mia_auc": 0.5 + 0.1 * e,
                 "mia_pvalue": 0.5 / (1 + e), "memU_train_bits_signed_total": e - 3.0,
                 "excess_test_bits_vs_untrained": -e - k, "uniform_excess_test_bits": 7.0}
                for e in range(4)]  # fmt: skip
        (r.run_dir / "measures.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    t = aggregate(sw.root)
    pp = pd.read_csv(sw.root / "per_position.csv")
    assert len(pp) == len(t.per_position) == 6
    assert {"run", "grammar", "n_train"} <= set(pp.columns)
    by_n = pp.groupby("n_train").excess_bits.sum().to_dict()
    assert by_n == {4: 0 + 0.5 + 1, 8: 1 + 1.5 + 2}  # run k = 0 has n = 4, run 1 n = 8
    ph = t.phases.sort_values("n_train")
    assert ph.final_mia_auc.tolist() == pytest.approx([0.8, 0.8])  # epoch 3 (exact in binary)
    assert ph.max_mia_auc.tolist() == pytest.approx([0.8, 0.8])
    assert ph.final_mia_pvalue.tolist() == [0.125, 0.125]
    assert ph.final_memU_train_bits_signed_total.tolist() == [0.0, 0.0]
    assert ph.min_excess_test_bits_vs_untrained.tolist() == [-3.0, -4.0]
    assert ph.uniform_excess_test_bits.tolist() == [7.0, 7.0]
    assert ph.min_excess_test_bits_vs_uniform.isna().all()  # not in these measures
