"""The slurm executor's trust boundary: nothing is unpickled on the submitting side (outcomes
come back as grammarlab's own JSON), and a submitit folder others could write is refused."""

from __future__ import annotations

import pytest

from grammarlab.errors import GrammarlabError
from grammarlab.sweep.jobs import Job, Outcome
from grammarlab.sweep.slurm import RunTask, check_folder, outcome_path, read_outcome
from tests.sweep.test_slurm import main, write_sweep


def test_a_sweep_through_submitit_reads_no_pickle_when_it_collects(tmp_path, capsys,
                                                                  monkeypatch):  # fmt: skip
    import submitit.core.utils as utils

    def refuse(*a, **k):
        raise AssertionError("the submitting process unpickled a file")

    monkeypatch.setattr(utils, "pickle_load", refuse)  # in this process only: tasks are others
    assert main([str(write_sweep(tmp_path, seeds="[0]")), "--out", str(tmp_path / "runs")]) == 0
    assert "runs: 1 done" in capsys.readouterr().err
    assert len(list((tmp_path / "runs" / "slurm" / "outcomes").glob("*.json"))) == 1


def test_the_outcome_is_json_and_a_missing_or_foreign_one_is_none(tmp_path):
    job = Job("entropy=2/seed=0", str(tmp_path / "r"), str(tmp_path / "c.toml"),
              target="tests.sweep.test_slurm_trust:says_done")  # fmt: skip
    folder = tmp_path / "outcomes"
    assert read_outcome(folder, job) is None  # the task died before writing one
    task = RunTask(gpus=0, outcomes=str(folder))
    out = task(job)
    assert read_outcome(folder, job) == out
    other = Job("seed=1", job.run_dir, job.config_path)
    outcome_path(folder, other.run_id).write_text(outcome_path(folder, job.run_id).read_text())
    assert read_outcome(folder, other) is None  # another run's outcome under its name
    outcome_path(folder, job.run_id).write_text('{"run_id": "entropy=2/seed=0", "state": 3, '
                                                '"error": null, "seconds": 0}')  # fmt: skip
    assert read_outcome(folder, job) is None
    assert isinstance(out, Outcome) and out.state == "done"


def says_done(config_path: str, run_dir: str) -> str:
    """A job target that trains nothing."""
    return "done"


def test_a_slurm_folder_others_can_write_is_refused(tmp_path):
    folder = tmp_path / "slurm"
    check_folder(folder)  # created private (umask permitting)
    folder.chmod(0o777)
    with pytest.raises(GrammarlabError, match="can be written by other users"):
        check_folder(folder)
    folder.chmod(0o755)
    check_folder(folder)
