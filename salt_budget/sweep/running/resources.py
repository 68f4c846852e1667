"""What one unit of a sweep may hold (a Tune trial or a Ray task, or its Ray Train workers), as asked on the command
line and as resolved against the Ray cluster."""

from __future__ import annotations

from dataclasses import dataclass

from salt_budget.sweep.planning.options import PlanError
from salt_budget.sweep.running.workers import Workers


@dataclass(frozen=True)
class Resources:
    cpus_per_trial: float = 1.0
    gpus_per_trial: float | None = None  # None: 1 where the Ray cluster has GPUs, else 0
    max_failures: int = 1  # retries of a failed trial or teacher task, each from its last checkpoint
    workers_per_trial: int = 1  # > 1: every unit trains on that many Ray Train workers (workers.py)
    cpus_per_worker: float = 1.0
    gpus_per_worker: float | None = None  # None: 1 where the Ray cluster has GPUs, else 0

    def validate(self) -> None:
        if self.cpus_per_trial <= 0:
            raise PlanError(f"--cpus-per-trial {self.cpus_per_trial:g} must be > 0")
        if self.gpus_per_trial is not None and self.gpus_per_trial < 0:
            raise PlanError(f"--gpus-per-trial {self.gpus_per_trial:g} must be >= 0 (a fraction shares a GPU)")
        if self.max_failures < 0:
            raise PlanError(f"--max-failures {self.max_failures} must be >= 0")
        if self.workers_per_trial < 1:
            raise PlanError(f"--workers-per-trial {self.workers_per_trial} must be >= 1 (1: one process per unit)")
        if self.cpus_per_worker <= 0:
            raise PlanError(f"--cpus-per-worker {self.cpus_per_worker:g} must be > 0")
        if self.gpus_per_worker is not None and self.gpus_per_worker < 0:
            raise PlanError(f"--gpus-per-worker {self.gpus_per_worker:g} must be >= 0")
        if self.workers_per_trial == 1 and (self.cpus_per_worker != 1.0 or self.gpus_per_worker is not None):
            raise PlanError("--cpus-per-worker / --gpus-per-worker apply with --workers-per-trial W > 1; one process "
                            "per unit takes --cpus-per-trial / --gpus-per-trial")


@dataclass(frozen=True)
class UnitResources:
    """What a unit's own process holds (a Tune trial or Ray task), its workers, and how many units fit at once."""

    cpus: float
    gpus: float
    workers: Workers
    slots: int
    max_failures: int


def unit_resources(resources: Resources, cluster: dict[str, float]) -> UnitResources:
    """Resolve the GPU defaults against the cluster and count the units that fit. With several workers the
    unit's process only waits for them, so it holds nothing and the workers' resources set the slots."""
    has_gpus = bool(cluster.get("GPU", 0))
    if resources.workers_per_trial > 1:
        gpus = resources.gpus_per_worker if resources.gpus_per_worker is not None else float(has_gpus)
        workers = Workers(resources.workers_per_trial, resources.cpus_per_worker, gpus)
        need_cpus, need_gpus = workers.count * workers.cpus, workers.count * workers.gpus
        cpus, gpus = 0.0, 0.0
    else:
        workers = Workers()
        cpus = need_cpus = resources.cpus_per_trial
        gpus = need_gpus = (resources.gpus_per_trial if resources.gpus_per_trial is not None else float(has_gpus))
    if need_cpus > cluster.get("CPU", 0) or need_gpus > cluster.get("GPU", 0):
        raise PlanError(
            f"one unit needs {need_cpus:g} CPU(s) and {need_gpus:g} GPU(s) but the Ray cluster has "
            f"{cluster.get('CPU', 0):g} and {cluster.get('GPU', 0):g}: ask for fewer workers or resources per "
            f"unit, or add nodes"
        )
    slots = int(cluster.get("CPU", 0) // need_cpus)
    if need_gpus:
        slots = min(slots, int(cluster.get("GPU", 0) // need_gpus))
    return UnitResources(cpus, gpus, workers, max(1, slots), resources.max_failures)
