"""trackio (Hugging Face's local-first tracker): one trackio run per run folder, in the project
named after the sweep, stored where trackio keeps its database (``TRACKIO_DIR``, by default
under the Hugging Face cache); ``trackio show`` opens the dashboard."""

from __future__ import annotations

from collections.abc import Mapping

from grammarlab.runs.trackers import RunInfo


class Trackio:
    def __init__(self, info: RunInfo) -> None:
        import trackio

        self._run = trackio.init(
            project=info.project, name=info.name, config=dict(info.config), resume="allow",
            embed=False, auto_log_gpu=False, auto_log_cpu=False,
        )  # fmt: skip

    def log(self, epoch: int, values: Mapping[str, float]) -> None:
        self._run.log(dict(values), step=epoch)

    def close(self) -> None:
        self._run.finish()


def open_tracker(info: RunInfo) -> Trackio:
    return Trackio(info)
