"""Experiment trackers: a run's per-epoch values copied to TensorBoard, W&B, MLflow or trackio.

metrics.jsonl stays the record (the analysis reads only it); a tracker is a view for the tools
researchers already watch, as transformers' ``report_to``. Each tracker is one small module
behind :class:`Tracker`, imported only when a run asks for it (each library is an optional
extra: ``pip install grammarlab[trackers]``). The run folder feeds them: every epoch line it
appends to metrics.jsonl and, after the analysis, every epoch of measures.jsonl.

Epochs redone after a crash (those after the last checkpoint) reach a tracker twice; the
tracker keeps both points, metrics.jsonl only the recomputed one.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from grammarlab.errors import GrammarlabError

# name (a report_to value: train.config.TRACKERS) -> (module here, the pip package it needs)
TRACKERS: dict[str, tuple[str, str]] = {
    "tensorboard": ("tensorboard", "tensorboard"),
    "wandb": ("wandb", "wandb"),
    "mlflow": ("mlflow", "mlflow-skinny"),
    "trackio": ("trackio", "trackio"),
}


class Tracker(Protocol):
    """What a tracker does; ``values`` are plain floats keyed like metrics.jsonl's fields."""

    def log(self, epoch: int, values: Mapping[str, float]) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class RunInfo:
    """What a tracker names a run by: ``name`` (the run folder's name), ``project`` (the folder
    above it: a sweep's name) and the resolved config as dotted keys."""

    folder: Path
    name: str
    project: str
    config: Mapping[str, Any]


def numeric(record: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The finite numbers of a metrics or measures record (booleans as 0/1; the epoch key and
    texts dropped), keys prefixed with ``prefix``."""
    out: dict[str, float] = {}
    for k, v in record.items():
        if k == "epoch" or v is None or isinstance(v, str):
            continue
        if isinstance(v, bool | int | float) and math.isfinite(float(v)):
            out[prefix + k] = float(v)
    return out


def check_names(names: Sequence[str], key: str = "report_to") -> tuple[str, ...]:
    """``names`` validated against :data:`TRACKERS` (a config error names the key)."""
    bad = [n for n in names if n not in TRACKERS]
    if bad:
        raise GrammarlabError(
            f"{key}: unknown tracker {bad[0]!r}",
            hint=f"choose from {', '.join(TRACKERS)}",
        )
    return tuple(dict.fromkeys(names))


class Trackers:
    """The trackers of one run, fed together, opened at the first value logged (so a relaunch
    that has nothing to compute opens none, and each gets the run's resolved config, which the
    run folder holds only once training has started); ``close`` is safe to call twice."""

    def __init__(self, names: Sequence[str], info: Callable[[], RunInfo]) -> None:
        self._names, self._info = check_names(names), info
        self._open: list[Tracker] | None = None

    def log(self, epoch: int, values: Mapping[str, float]) -> None:
        if self._open is None:
            self._open = open_trackers(self._names, self._info())
        for t in self._open:
            t.log(epoch, values)

    def close(self) -> None:
        while self._open:
            self._open.pop().close()


def open_trackers(names: Sequence[str], info: RunInfo) -> list[Tracker]:
    """Open the trackers ``names`` for a run; a missing library is a one-line error saying
    which extra installs it."""
    opened: list[Tracker] = []
    try:
        for name in check_names(names):
            module, package = TRACKERS[name]
            try:
                mod = importlib.import_module(f"{__name__}.{module}")
                opened.append(mod.open_tracker(info))
            except ImportError as e:
                raise GrammarlabError(
                    f"report_to = {name!r} needs the package {package!r} ({e})",
                    hint=f"pip install 'grammarlab[trackers]' (or pip install {package})",
                ) from None
    except BaseException:
        for t in reversed(opened):
            t.close()
        raise
    return opened
