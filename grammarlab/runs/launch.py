"""One run from start to end: lock the folder, train (or resume), analyse, final status.

status.json moves ``running -> analysing -> done`` (or ``diverged``), and ``done`` is written
only after phases.json and measures.jsonl are; a failure anywhere gives ``failed`` with the
reason. A relaunch of a finished run whose analysis is missing or older than its metrics redoes
the analysis only. The CLI (``grammarlab train``) and the sweep executor call :func:`run`.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path

from grammarlab.analysis.run_analysis import write_run_analysis
from grammarlab.runs.folder import RunDir, Status
from grammarlab.runs.trackers import RunInfo, Trackers
from grammarlab.train.config import TrainConfig
from grammarlab.train.distributed import is_main_process, launched
from grammarlab.train.loop import train

FINISHED = ("done", "diverged")  # terminal states: a relaunch has nothing to do
EXIT_CODES = {"done": 0, "diverged": 3}  # grammarlab train's exit status (2: an error)


def run(cfg: TrainConfig, run_dir: str | Path | RunDir, *, quiet: bool = False) -> str:
    """Train, resume or finish the run of ``cfg`` in ``run_dir``; its final state (done or
    diverged). Raises GrammarlabError for a folder that is locked by another process, holds
    another run, or cannot be written (status then says failed, with the reason)."""
    folder = run_dir if isinstance(run_dir, RunDir) else RunDir(Path(run_dir))
    if launched() and not is_main_process():  # accelerate launch: rank 0 locks and analyses
        return train(cfg, folder, quiet=True)
    if not cfg.report_to or folder.trackers is not None:
        return _run(cfg, folder, quiet)
    trackers = Trackers(cfg.report_to, _info(folder))
    try:
        return _run(cfg, dataclasses.replace(folder, trackers=trackers), quiet)
    finally:
        trackers.close()


def _info(folder: RunDir) -> Callable[[], RunInfo]:
    """What the trackers name the run by, read when the first value is logged: the folder's
    name, the folder above it (a sweep's) as the project, the saved (resolved) config."""
    parent = folder.path.resolve().parent.name or "grammarlab"
    return lambda: RunInfo(folder.path, folder.path.name, parent, folder.config_values())


def _run(cfg: TrainConfig, folder: RunDir, quiet: bool) -> str:
    with folder.lock():
        before = folder.read_status()
        trained = train(cfg, folder, quiet=quiet)  # returns at once when training has ended
        if before is not None and before.state in FINISHED and folder.analysis_is_current():
            print(f"{folder}: already finished ({before.state} at epoch {before.epoch}); "
                  "nothing to do", file=sys.stderr)  # fmt: skip
            return before.state
        return analyse(folder, trained)


def analyse(folder: RunDir, trained: str) -> str:
    """Write the run's analysis (status ``analysing`` meanwhile) and its final status."""
    status = folder.read_status() or Status("analysing", None, trained=trained)
    # the message of training (a divergence), without the reason of an earlier failed analysis
    message = status.message.partition(_FAILED)[0] if status.state == "failed" else status.message
    folder.write_status(Status("analysing", status.epoch, message, trained))
    try:
        write_run_analysis(folder)
    except BaseException as e:
        why = "interrupted" if isinstance(e, KeyboardInterrupt) else f"{type(e).__name__}: {e}"
        folder.write_status(Status("failed", status.epoch, f"{message}{_FAILED}{why}", trained))
        raise
    folder.write_status(Status(trained, status.epoch, message, trained))
    return trained


_FAILED = "; analysis failed: "
