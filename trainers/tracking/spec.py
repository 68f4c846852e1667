"""What a tracker run is: which trackers, its stable id and names, tags and config, and where local records go."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TRACKERS = ("tensorboard", "wandb", "mlflow")
# The pip extra each tracker's library comes with (pyproject.toml).
EXTRAS = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}


@dataclass(frozen=True)
class TrackingSpec:
    """One tracker run. `run_id` is the unit's content key: every process that trains or probes the unit (a trunk
    trained in segments, a resumed run, a Ray retry) opens the same run by it instead of starting another."""

    trackers: tuple[str, ...]
    group: str  # the sweep (or experiment) the run belongs to
    run_id: str
    name: str  # display name, also the TensorBoard run folder's name
    kind: str  # teacher, student, vjepa2, any baseline kind, or "sweep"
    folder: Path  # local records: <folder>/tensorboard, <folder>/wandb, <folder>/mlflow.db
    tags: dict[str, str | int | float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def tensorboard_dir(self) -> Path:
        return Path(self.folder) / "tensorboard" / self.kind / self.name
