"""MLflow: one experiment per group (the sweep), one run per unit, found again by its key (a tag) so that every
process that trains or probes the unit continues it. Store: $MLFLOW_TRACKING_URI where set (a tracking server, for a
cluster), else sqlite:///<folder>/mlflow.db with artifacts in <folder>/mlartifacts: MLflow 3 refuses its file
store (./mlruns) unless MLFLOW_ALLOW_FILE_STORE is set, and keeps only its database stores up to date."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from trainers.locks import file_lock
from trainers.tracking.spec import TrackingSpec

KEY_TAG = "unit_key"
_BATCH = 100  # MLflow takes at most 100 params per log_batch
_PARAM_CHARS = 6000  # and a param value of at most 6000 characters


def tracking_uri(folder: Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(Path(folder) / 'mlflow.db').resolve()}"


def _flat(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """A nested config as MLflow params: dotted keys (MLflow refuses characters other than these), text values."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = prefix + re.sub(r"[^\w\-. :/]", "_", str(key))
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{name}."))
        else:
            out[name] = str(value)[:_PARAM_CHARS]
    return out


class MlflowSink:
    def __init__(self, spec: TrackingSpec) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        folder = Path(spec.folder)
        folder.mkdir(parents=True, exist_ok=True)
        local = not os.environ.get("MLFLOW_TRACKING_URI")
        # One process at a time creates the database (its tables), the experiment and the unit's run: units train
        # side by side, and two would otherwise both create them.
        with file_lock(folder / ".mlflow.lock"):
            self.client = MlflowClient(tracking_uri=tracking_uri(folder))
            experiment = self.client.get_experiment_by_name(spec.group)
            if experiment is None:
                artifacts = (folder / "mlartifacts").resolve().as_uri() if local else None
                experiment_id = self.client.create_experiment(spec.group, artifact_location=artifacts)
            else:
                experiment_id = experiment.experiment_id
                if experiment.lifecycle_stage == "deleted":
                    self.client.restore_experiment(experiment_id)
            found = self.client.search_runs([experiment_id], filter_string=f"tags.{KEY_TAG} = '{spec.run_id}'",
                                            max_results=1)
            if found:
                self.run_id = found[0].info.run_id
                self.client.update_run(self.run_id, status="RUNNING")
                return
            tags = {KEY_TAG: spec.run_id, "kind": spec.kind, **{k: str(v) for k, v in spec.tags.items()}}
            self.run_id = self.client.create_run(experiment_id, run_name=spec.name, tags=tags).info.run_id
            params = [Param(key, value) for key, value in _flat(spec.config).items()]
            for start in range(0, len(params), _BATCH):
                self.client.log_batch(self.run_id, params=params[start:start + _BATCH])

    def log(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(key, float(value), now, step)
                                                    for key, value in metrics.items()])

    def add_text(self, name: str, text: str) -> None:
        self.client.log_text(self.run_id, text, f"{name}.txt")

    def add_file(self, path: Path) -> None:
        self.client.log_artifact(self.run_id, str(path))

    def close(self, failed: bool = False) -> None:
        self.client.set_terminated(self.run_id, "FAILED" if failed else "FINISHED")
