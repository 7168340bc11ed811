"""MLflow: one MLflow run per run folder, in the experiment named after the sweep, through an
explicit client (no global active run). The store is MLflow's own setting
(``MLFLOW_TRACKING_URI``, e.g. ``file:/path/mlruns`` or a server); the config as params."""

from __future__ import annotations

import time
from collections.abc import Mapping

from grammarlab.runs.trackers import RunInfo

PARAM_CHARS = 6000  # MLflow's limit on a param value


class MLflow:
    def __init__(self, info: RunInfo) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        self._c = MlflowClient()
        exp = self._c.get_experiment_by_name(info.project)
        exp_id = exp.experiment_id if exp else self._c.create_experiment(info.project)
        tag = {"grammarlab.folder": str(info.folder.resolve())}
        found = self._c.search_runs(
            [exp_id], f"tags.`grammarlab.folder` = '{tag['grammarlab.folder']}'", max_results=1
        )
        if found:  # a resumed run continues its MLflow run
            self._id = found[0].info.run_id
            self._c.update_run(self._id, status="RUNNING")
        else:
            self._id = self._c.create_run(exp_id, run_name=info.name, tags=tag).info.run_id
            params = [Param(k, str(v)[:PARAM_CHARS]) for k, v in sorted(info.config.items())]
            self._c.log_batch(self._id, params=params)

    def log(self, epoch: int, values: Mapping[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._c.log_batch(self._id, metrics=[Metric(k, v, now, epoch) for k, v in values.items()])

    def close(self) -> None:
        self._c.set_terminated(self._id)


def open_tracker(info: RunInfo) -> MLflow:
    return MLflow(info)
