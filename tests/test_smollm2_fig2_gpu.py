"""experiments/smollm2_fig2_gpu.py: the Fig. 2 SmolLM2 grid for one GPU window, checked on the CPU
in its reduced mode (a tiny model, 3 epochs) and with budgets that leave runs out."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

from grammarlab.sweep.spec import expand

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "smollm2_fig2_gpu.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("smollm2_fig2_gpu", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_full_grid_is_fig2_with_smollm2_three_seeds_100_epochs(script, tmp_path):
    sweep = expand(script.spec(reduced=False), tmp_path, base_dir=SCRIPT.parent, name="x")
    runs = sweep.runs
    assert len(runs) == 2 * 2 * 3  # grammars x n x seeds
    cfgs = [r.config for r in runs]
    assert {c.model.preset for c in cfgs} == {"smollm2-135m-instruct"}
    assert {c.epochs for c in cfgs} == {100} and {c.lr for c in cfgs} == {1e-4}
    assert sorted({c.n_train for c in cfgs}) == [8, 64]
    assert sorted({c.seed for c in cfgs}) == [0, 1, 2]
    assert {Path(dict(r.point)["grammar"]).stem for r in runs} == {
        "random_l26",
        "hierarchical_p0.5",
    }
    # seed-major order: the first 8 runs are seeds 0 and 1 of all four cells
    order = script.seed_major(runs)
    first = order[:8]
    assert {r.config.seed for r in first} == {0, 1}
    assert {(Path(dict(r.point)["grammar"]).stem, r.config.n_train) for r in first[:4]} == {
        ("random_l26", 8), ("random_l26", 64), ("hierarchical_p0.5", 8),
        ("hierarchical_p0.5", 64)}  # fmt: skip


def test_reduced_mode_runs_the_grid_and_writes_the_tables(script, tmp_path, capsys):
    out, results = tmp_path / "runs", tmp_path / "results"
    argv = ["--reduced", "--seeds", "0", "--out", str(out), "--results", str(results)]
    assert script.main(argv) == 0
    assert "4 run(s) done, 0 failed, 0 left" in capsys.readouterr().out
    for name in ("curves.csv.gz", "phases.csv", "measures.csv.gz", "per_string.csv.gz"):
        assert (results / name).is_file(), name
    phases = pd.read_csv(results / "phases.csv")
    assert sorted(zip(phases["grammar"], phases["n_train"], strict=True)) == [
        ("hierarchical_p0.5", 8), ("hierarchical_p0.5", 64), ("random_l26", 8),
        ("random_l26", 64)]  # fmt: skip
    assert set(phases["status"]) == {"done"}
    measures = pd.read_csv(results / "measures.csv.gz")
    assert measures["run"].nunique() == 4 and measures["memU_train_bits_total"].notna().all()
    curves = pd.read_csv(results / "curves.csv.gz")
    assert curves.groupby("run")["epoch"].max().tolist() == [3] * 4  # epochs 0..3 of each run
    for run in phases["run"]:  # surprisals of every epoch kept
        assert len(list((out / run / "surprisals").glob("epoch_*.npz"))) == 4
    plan = json.loads((results / "budget.json").read_text())
    assert len(plan["done"]) == 4 and plan["left"] == [] and plan["reduced"] is True

    # a second window: every run is finished, nothing is redone
    assert script.main(argv) == 0
    plan = json.loads((results / "budget.json").read_text())
    assert [d["seconds"] for d in plan["done"]] == [None] * 4


def test_a_budget_too_small_leaves_runs_and_states_their_cost(script, tmp_path, capsys):
    out, results = tmp_path / "runs", tmp_path / "results"
    argv = ["--reduced", "--seeds", "0", "1", "--out", str(out), "--results", str(results),
            "--budget-s", "10", "--run-estimate-s", "20"]  # fmt: skip
    assert script.main(argv) == 0
    plan = json.loads((results / "budget.json").read_text())
    assert plan["done"] == [] and len(plan["left"]) == 8
    assert plan["left_cost_s"] == 8 * 20.0
    assert plan["tables"] == [] and not (results / "phases.csv").exists()
    assert "0 run(s) done, 0 failed, 8 left (estimated 160 s more" in capsys.readouterr().out


def test_the_budget_stops_once_the_measured_time_per_run_no_longer_fits(script, tmp_path):
    """A fake clock: each run 'takes' 30 s, so a 70 s budget starts runs at 0 and 30 s (left
    70 and 40 >= 30) but not at 60 s (left 10)."""
    sweep = expand(script.spec(reduced=True, seeds=(0,)), tmp_path, base_dir=SCRIPT.parent,
                   name="x")  # fmt: skip
    now = [0.0]
    ran = []

    def fake_run_sweep(s, **kw):
        from grammarlab.sweep.jobs import Outcome

        now[0] += 30.0
        ran.append(s.runs[0].run_id)
        return [Outcome(s.runs[0].run_id, "done", None, 30.0)]

    import grammarlab.sweep.execute as ex

    real = ex.run_sweep
    ex.run_sweep = fake_run_sweep
    try:
        plan = script.run_within_budget(sweep, 70.0, 5.0, clock=lambda: now[0])
    finally:
        ex.run_sweep = real
    assert len(ran) == 2 and [d["run_id"] for d in plan["done"]] == ran
    assert len(plan["left"]) == 2 and plan["seconds_per_run"] == 30.0
    assert plan["left_cost_s"] == 60.0


def test_a_bad_budget_is_one_error_line(script, tmp_path, capsys):
    assert script.main(["--reduced", "--budget-s", "-1", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--budget-s must be >= 0" in err and "Traceback" not in err
