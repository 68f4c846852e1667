"""What one Ray Train unit costs before it trains: an empty two-worker TorchTrainer.fit inside a Tune trial,
timed per trial (benchmarks/scale_out.md). Run from the repository root:

    python benchmarks/ray_train_overhead.py                                   # Ray Train's defaults
    RAY_TRAIN_HEALTH_CHECK_INTERVAL_S=0.2 python benchmarks/ray_train_overhead.py
"""

import tempfile
import time

import ray
import ray.train
from ray import tune
from ray.train import RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer


def _nothing(config):
    ray.train.report({"rank": ray.train.get_context().get_world_rank()})


def _trial(config):
    started = time.perf_counter()
    TorchTrainer(_nothing, scaling_config=ScalingConfig(num_workers=2, resources_per_worker={"CPU": 1}),
                 run_config=RunConfig(name=f"empty{config['trial']}", storage_path=config["storage"])).fit()
    tune.report({"fit_s": time.perf_counter() - started})


if __name__ == "__main__":
    storage = tempfile.mkdtemp()
    ray.init(num_cpus=2, include_dashboard=False)
    # The trial holds one byte of memory, as a sweep's trial of several workers does (salt_budget/sweep/running/tuning.py).
    grid = tune.Tuner(tune.with_resources(_trial, {"cpu": 0, "memory": 1}),
                      param_space={"trial": tune.grid_search([1, 2]), "storage": storage},
                      tune_config=tune.TuneConfig(max_concurrent_trials=1),
                      run_config=tune.RunConfig(storage_path=storage, name="overhead", verbose=0)).fit()
    print("empty two-worker fit per trial:", ", ".join(f"{r.metrics['fit_s']:.1f} s" for r in grid))
