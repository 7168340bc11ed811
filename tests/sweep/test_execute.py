"""run_sweep: finished runs skipped, unfinished ones resumed, failures reported per run."""

from __future__ import annotations

import json

from grammarlab.sweep.execute import run_sweep
from grammarlab.sweep.spec import load_sweep
from tests.sweep.fake_trainer import FAIL_LR, FAKE, calls, write_sweep


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


def test_a_sweep_off_a_terminal_prints_one_line_per_finished_run(tmp_path, capsys):
    import re

    f = write_sweep(tmp_path, "n_train = [4, 8]\n")
    sw = load_sweep(f, out=tmp_path / "o")
    run_sweep(sw, target=FAKE, progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines
    for i, (line, r) in enumerate(zip(lines, sw.runs, strict=True)):
        pat = rf"\d\d:\d\d:\d\d sweep t: {i + 1}/2 runs \({r.run_id} done in \d+ s\), \d+ s"
        assert re.fullmatch(pat, line), line
    run_sweep(sw, target=FAKE, progress=True)  # all finished: nothing to report per run
    assert capsys.readouterr().err == ""
