"""Running a plan on Ray: the run folder, Ray start-up, teachers as Ray tasks (one per ladder), then
the students on Ray Tune (tuning.py), the baselines as Ray tasks (baselines.py) and the summary (summary.py).

Locally Ray starts in-process without a dashboard and with quiet logs; `--address auto` joins an
existing cluster (paths are absolute, so runs/<name> must be on storage every node sees).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import yaml

from trainers.config import save_config, to_dict

from salt_budget.sweep.baselines import train_baselines
from salt_budget.sweep.plan import Plan, PlanError
from salt_budget.sweep.plan_table import plan_frame, write_plan_csv
from salt_budget.sweep.ray_tasks import run_as_tasks
from salt_budget.sweep.results import FAILED_STEP, append_rows, read_results
from salt_budget.sweep.rows import failed_row
from salt_budget.sweep.summary import SweepTimes, covered, say, summarize
from salt_budget.sweep.teachers import Ladder, ladders, train_ladder
from salt_budget.sweep.tuning import check_resume, train_students


@dataclass(frozen=True)
class Resources:
    cpus_per_trial: float = 1.0
    gpus_per_trial: float | None = None  # None: 1 where the Ray cluster has GPUs, else 0
    max_failures: int = 1  # retries of a failed trial or teacher task, each from its last checkpoint

    def validate(self) -> None:
        if self.cpus_per_trial <= 0:
            raise PlanError(f"--cpus-per-trial {self.cpus_per_trial:g} must be > 0")
        if self.gpus_per_trial is not None and self.gpus_per_trial < 0:
            raise PlanError(f"--gpus-per-trial {self.gpus_per_trial:g} must be >= 0 (a fraction shares a GPU)")
        if self.max_failures < 0:
            raise PlanError(f"--max-failures {self.max_failures} must be >= 0")


def _differences(saved: Any, current: Any, path: str = "") -> list[str]:
    """Settings whose value differs. A key the saved file lacks is not one: the file predates that setting
    (the vjepa2 section, say), and no unit in the folder was trained with it."""
    if isinstance(saved, dict) and isinstance(current, dict):
        return [d for key in saved
                for d in _differences(saved[key], current.get(key), f"{path}.{key}" if path else key)]
    return [] if saved == current else [path]


def prepare_sweep_dir(plan: Plan) -> None:
    """config.yaml (the experiment every unit here was trained with) and plan.csv."""
    path = plan.sweep_dir / "config.yaml"
    if path.is_file():
        changed = _differences(yaml.safe_load(path.read_text()), to_dict(plan.experiment))
        if changed:
            raise PlanError(
                f"{plan.sweep_dir} holds a sweep of another experiment config (it differs in "
                f"{', '.join(changed[:5])}); give this one another --name, or repeat the first sweep's experiment "
                f"and overrides"
            )
    save_config(plan.experiment, path)  # with the settings an older file lacks, as this sweep uses them
    write_plan_csv(plan_frame(plan), plan.sweep_dir / "plan.csv")


def _start_ray(address: str | None) -> bool:
    """ray.init unless a connection exists (a test or a notebook may have made one); True if we started it."""
    import ray

    if ray.is_initialized():
        return False
    ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    return True


def _record_teacher_failure(plan: Plan, ladder: Ladder, reason: str) -> None:
    """Failed rows for a ladder's unfinished teachers, unless the task already wrote its own (more precise) ones."""
    table = read_results(plan.sweep_dir)
    rows = []
    for unit in ladder.units:
        mine = table[table["unit_key"] == unit.key]
        if unit.final_checkpoint.is_file() or (mine["step"] == FAILED_STEP).any():
            continue
        rows.append(failed_row(unit, reason, sweep=plan.name, config_hash=plan.config_hash))
    append_rows(plan.sweep_dir, rows)


def train_teachers(plan: Plan, resources: Resources, gpus: float, times: SweepTimes) -> None:
    """One Ray task per ladder with something left to train; a ladder that fails for good marks its teachers."""
    todo = [ladder for ladder in ladders(plan) if not all(u.final_checkpoint.is_file() for u in ladder.units)]
    done = len(ladders(plan)) - len(todo)
    if done:
        say(f"{done} teacher ladder(s) already trained: reused")
    if not todo:
        return
    started, started_at = time.perf_counter(), time.time()
    intervals = []
    say(f"training {len(todo)} teacher ladder(s) ({sum(len(ladder.units) for ladder in todo)} teachers) as Ray tasks")
    for ladder, outcome, reason in run_as_tasks(train_ladder, todo, plan, cpus=resources.cpus_per_trial, gpus=gpus,
                                                retries=resources.max_failures):
        if reason is not None:
            _record_teacher_failure(plan, ladder, reason)
            say(f"teachers {ladder.name}: FAILED ({reason}); their allocations will be marked failed")
            continue
        intervals.append((outcome["started_at"], outcome["ended_at"]))
        times.teacher_steps_trained += outcome["trained_steps"]
        times.teacher_train_s += outcome["train_s"]
        steps = ", ".join(str(unit.id.steps) for unit in ladder.units)
        say(f"teachers {ladder.name} ready (T = {steps}): {outcome['trained_steps']} steps trained in "
            f"{outcome['train_s']:.1f} s")
    times.teachers_s = time.perf_counter() - started
    times.teachers_idle_s = times.teachers_s - covered([(max(a, started_at), b) for a, b in intervals])


def run_sweep(plan: Plan, *, resume: bool = False, address: str | None = None,
              resources: Resources = Resources()) -> int:
    """Run every unit of `plan` that is not done; 0 when every allocation finished, 1 when some failed."""
    from trainers.data.build import resolve_data

    resources.validate()
    check_resume(plan, resume)
    started = time.perf_counter()
    prepare_sweep_dir(plan)
    # Generate the synthetic set once, here, with every core, before trials would each wait on it.
    resolve_data(plan.experiment.data)
    times = SweepTimes()
    ray_started = time.perf_counter()
    owns_ray = _start_ray(address)
    times.ray_start_s = time.perf_counter() - ray_started
    try:
        import ray

        gpus = resources.gpus_per_trial
        if gpus is None:
            gpus = 1.0 if ray.cluster_resources().get("GPU", 0) else 0.0
        train_teachers(plan, resources, gpus, times)
        grid = train_students(plan, resources.cpus_per_trial, gpus, resources.max_failures, times)
        train_baselines(plan, resources.cpus_per_trial, gpus, resources.max_failures, times)
    except KeyboardInterrupt:
        say("interrupted: run the same command with --resume to continue; finished units are kept")
        raise
    finally:
        if owns_ray:
            import ray

            ray.shutdown()
    # The grid attempts every allocation; a search those it proposed (one may come twice).
    attempted = sorted({plan.student_for(result.config).allocation.id for result in grid if result.config})
    return summarize(plan, attempted, times, time.perf_counter() - started)
