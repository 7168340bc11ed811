"""TensorBoard: event files in the run folder's ``tensorboard/`` (``tensorboard --logdir
runs/NAME`` shows a sweep's runs side by side); the config as a text summary at step 0."""

from __future__ import annotations

import json
from collections.abc import Mapping

from grammarlab.runs.trackers import RunInfo

SUBDIR = "tensorboard"


class TensorBoard:
    def __init__(self, info: RunInfo) -> None:
        from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

        self._w = SummaryWriter(log_dir=str(info.folder / SUBDIR))
        text = json.dumps(dict(info.config), indent=2, sort_keys=True, default=str)
        self._w.add_text("config", f"```\n{text}\n```", global_step=0)

    def log(self, epoch: int, values: Mapping[str, float]) -> None:
        for k, v in values.items():
            self._w.add_scalar(k, v, global_step=epoch)
        self._w.flush()

    def close(self) -> None:
        self._w.close()


def open_tracker(info: RunInfo) -> TensorBoard:
    return TensorBoard(info)
