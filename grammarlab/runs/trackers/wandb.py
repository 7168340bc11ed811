"""Weights & Biases: one W&B run per run folder, its id derived from the folder's path so that a
resumed run continues the same W&B run. Where it logs is W&B's own settings (``WANDB_MODE``:
``offline`` writes under ``WANDB_DIR`` without a network; online needs ``wandb login``)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from grammarlab.runs.trackers import RunInfo


class WandB:
    def __init__(self, info: RunInfo) -> None:
        import wandb

        rid = hashlib.sha256(str(info.folder.resolve()).encode()).hexdigest()[:16]
        self._run = wandb.init(
            project=info.project, name=info.name, id=rid, resume="allow",
            config=dict(info.config), reinit="create_new",
        )  # fmt: skip
        self._run.define_metric("epoch")
        self._run.define_metric("*", step_metric="epoch")  # plot against epochs, not calls

    def log(self, epoch: int, values: Mapping[str, float]) -> None:
        # W&B's own step must grow, and the measures come after the last epoch: epochs are
        # an axis of their own (define_metric above)
        self._run.log({**values, "epoch": epoch})

    def close(self) -> None:
        self._run.finish()


def open_tracker(info: RunInfo) -> WandB:
    return WandB(info)
