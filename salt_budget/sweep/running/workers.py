"""Units on several data-parallel workers (`--workers-per-trial W`): the Ray Train glue.

A unit (a student trial, a teacher ladder, a baseline run) of W > 1 workers is one Ray Train
`TorchTrainer` started by the unit's Tune trial or Ray task, which then only waits: it holds no CPU or
GPU itself. Ray Train starts the process group (gloo on CPUs, NCCL on GPUs) and sets RANK, WORLD_SIZE
and LOCAL_RANK, so the workers run the trainers' own data-parallel path, the one `torchrun` uses:
each rank trains on its shard of the clip order and one flat all-reduce per step averages the
gradients (trainers/distributed.py says why that and not DistributedDataParallel). Rank 0 alone
writes checkpoints, metrics and results rows.

The run folder is the storage every node must see (a shared file system): the workers read and write
the unit's run directory there, Ray Train keeps its own state under <sweep>/ray/train, and a worker
group restarted after a failure, on any node, continues from the unit's last checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from trainers.atomic import write_text

_OUTCOME_FILE = ".workers-outcome.json"  # rank 0's return value, read back by the unit's driver


@dataclass(frozen=True)
class Workers:
    """The data-parallel workers of one unit and the resources of each."""

    count: int = 1
    cpus: float = 1.0
    gpus: float = 0.0

    @property
    def distributed(self) -> bool:
        return self.count > 1


Work = Callable[[Any, Any, int], "dict[str, Any] | None"]


def _worker_loop(config: dict[str, Any]) -> None:
    """What each Ray Train worker runs: `work(unit, plan, rank)`; rank 0's return value goes to a file."""
    import ray.train
    import torch

    context = ray.train.get_context()
    rank = context.get_world_rank()
    # Ray sets no thread count for a worker of fractional CPUs; without one torch takes every core of the node.
    torch.set_num_threads(max(1, int(config["cpus"])))
    run_dir: Path = config["run_dir"]
    outcome = config["work"](config["unit"], config["plan"], rank)
    if rank == 0:
        write_text(run_dir / _OUTCOME_FILE, json.dumps(outcome or {}))


def run_on_workers(work: Work, unit: Any, plan: Any, *, run_dir: Path, name: str, workers: Workers,
                   max_failures: int) -> dict[str, Any]:
    """`work(unit, plan, rank)` on each of `workers.count` Ray Train workers; returns rank 0's result.

    A worker that dies or raises stops the group; Ray Train starts a new one up to `max_failures` times
    and `work` continues from the unit's last checkpoint. When none is left, RuntimeError with the reason."""
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    outcome = run_dir / _OUTCOME_FILE
    run_dir.mkdir(parents=True, exist_ok=True)
    outcome.unlink(missing_ok=True)
    resources = {"CPU": workers.cpus, **({"GPU": workers.gpus} if workers.gpus else {})}
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={"work": work, "unit": unit, "plan": plan, "run_dir": run_dir, "cpus": workers.cpus},
        scaling_config=ScalingConfig(num_workers=workers.count, use_gpu=bool(workers.gpus),
                                     resources_per_worker=resources),
        run_config=RunConfig(name=name, storage_path=str(plan.sweep_dir / "ray" / "train"),
                             failure_config=FailureConfig(max_failures=max_failures)),
    )
    try:
        trainer.fit()
    except Exception as error:  # TrainingFailedError wraps the first worker's error; keep its last line
        lines = str(error).strip().splitlines()
        raise RuntimeError(f"{workers.count} Ray Train workers failed: {lines[-1][:400] if lines else error!r}") from None
    return json.loads(outcome.read_text()) if outcome.is_file() else {}
