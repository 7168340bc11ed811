"""Jobs and the local executors: the process pool keeps grid order and reports each run's state."""

from __future__ import annotations

from grammarlab.sweep.execute import run_sweep
from grammarlab.sweep.jobs import Job, run_job, run_state
from grammarlab.sweep.spec import load_sweep
from grammarlab.train.config import dumps_config
from tests.sweep.fake_trainer import FAIL_LR, FAKE, ids, write_sweep


def test_parallel_executor(tmp_path):
    f = write_sweep(tmp_path, f"n_train = [2, 4, 6]\nlr = [0.003, {FAIL_LR}]\n")
    sw = load_sweep(f, out=tmp_path / "o")
    out = run_sweep(sw, executor="parallel", workers=2, target=FAKE, progress=False)
    assert [o.run_id for o in out] == ids(sw)  # grid order
    assert sorted(o.state for o in out) == ["done"] * 3 + ["failed"] * 3


def test_run_job_turns_an_exception_into_a_failed_outcome(tmp_path):
    f = write_sweep(tmp_path, f"lr = [0.003, {FAIL_LR}]\n")
    sw = load_sweep(f, out=tmp_path / "o")
    good, bad = sw.runs
    cfg = tmp_path / "c.toml"
    cfg.write_text(dumps_config(bad.config))
    out = run_job(Job(bad.run_id, str(bad.run_dir), str(cfg), FAKE))
    assert (out.state, out.error) == ("failed", "RuntimeError: boom")
    assert run_state(bad.run_dir) is None  # the fake trainer raised before writing a status
    cfg.write_text(dumps_config(good.config))
    out = run_job(Job(good.run_id, str(good.run_dir), str(cfg), FAKE))
    assert out.state == "done" and out.error is None and run_state(good.run_dir) == "done"
