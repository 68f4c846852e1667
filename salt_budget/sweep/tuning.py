"""The students on Ray Tune: one trial per allocation (grid) or per proposal (OptunaSearch), its
resources, retries, progress table and one line per finished trial; Tuner.restore for --resume."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainers.config import config_hash

from salt_budget.sweep.plan import Plan, PlanError
from salt_budget.sweep.results import append_rows
from salt_budget.sweep.rows import failed_row
from salt_budget.sweep.summary import SweepTimes, collect_trial_times, percent, say

if TYPE_CHECKING:  # Ray is imported only when a sweep runs
    from ray.tune import Callback, ResultGrid, TuneConfig

    from salt_budget.sweep.runner import UnitResources


def _callback(plan: Plan) -> Callback:
    from ray import tune

    class SweepCallback(tune.Callback):
        """One line per finished trial, and a failed row for a trial that fails for good."""

        def on_trial_complete(self, iteration, trials, trial, **info):
            student = plan.student_for(trial.config)
            result = trial.last_result or {}
            teacher = result.get("teacher_acc_mean")
            say(f"{student.allocation.id}: done, student acc {percent(result.get('acc_mean'))}"
                + (f" (teacher {percent(teacher)})" if teacher is not None else "")
                + f", FLOPs {result.get('flops_total') or float('nan'):.3g}")

        def on_trial_error(self, iteration, trials, trial, **info):
            student = plan.student_for(trial.config)
            error_file = Path(trial.error_file) if trial.error_file else None
            lines = error_file.read_text().strip().splitlines() if error_file and error_file.is_file() else []
            reason = lines[-1][:500] if lines else "the trial's worker died (see the Ray logs)"
            append_rows(plan.sweep_dir, [failed_row(student, reason, sweep=plan.name, config_hash=plan.config_hash)])
            say(f"{student.allocation.id}: FAILED after {trial.num_failures} attempt(s): {reason}")

    return SweepCallback()


def _experiment_dir(plan: Plan) -> Path:
    """The Tune experiment of this set of students: the same request finds it again with --resume."""
    keys = sorted(student.key for student in plan.students.values())
    name = config_hash({"students": keys, "search": plan.options.search, "trials": plan.options.trials}, length=8)
    return plan.sweep_dir / "ray" / f"students-{name}"


def check_resume(plan: Plan, resume: bool) -> None:
    """--resume continues a sweep that exists; without it, a sweep that exists is not started over."""
    from ray import tune

    if resume and not (plan.sweep_dir / "config.yaml").is_file():
        raise PlanError(f"--resume: {plan.sweep_dir} holds no sweep to continue (it has no config.yaml); check "
                        f"--name and runs_dir, or drop --resume to start this sweep")
    experiment_dir = _experiment_dir(plan)
    if not resume and tune.Tuner.can_restore(experiment_dir):
        raise PlanError(f"{experiment_dir} holds this sweep already: add --resume to continue it "
                        f"(finished units are not trained again)")


def _search(plan: Plan, slots: int) -> tuple[dict[str, Any], TuneConfig]:
    """(param_space, TuneConfig) for the grid or the Optuna search."""
    from ray import tune

    if plan.options.search == "grid":
        # The limit matters for trials of several workers, which hold nothing themselves (runner.unit_resources).
        return ({"allocation": tune.grid_search(list(plan.students))},
                tune.TuneConfig(reuse_actors=True, max_concurrent_trials=slots))
    import optuna
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    trials = plan.options.trials
    # TPE needs a few random trials before it models anything; with a small K, spend at most half of them so.
    sampler = optuna.samplers.TPESampler(seed=plan.experiment.seed, n_startup_trials=max(1, min(10, trials // 2)))
    searcher = ConcurrencyLimiter(OptunaSearch(sampler=sampler), max_concurrent=slots)
    allocations = plan.allocations
    space = {"teacher_size": tune.choice(sorted({a.teacher_size for a in allocations})),
             "teacher_steps": tune.choice(sorted({a.teacher_steps for a in allocations}))}
    return space, tune.TuneConfig(search_alg=searcher, num_samples=trials, metric="acc_mean", mode="max",
                                  reuse_actors=True)


def train_students(plan: Plan, resources: UnitResources, times: SweepTimes) -> ResultGrid:
    """Fit the Tune experiment of the plan's students, or restore a stopped one and finish it."""
    from ray import tune
    from ray.tune import CLIReporter

    from salt_budget.sweep.trial import run_trial

    # The classic reporter prints one compact status table at a time; the newer one a box per trial event.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    slots = times.concurrent_trials = resources.slots
    # A trial of several workers only waits for them; Tune wants some resource, so it holds one byte of memory.
    held = {"cpu": resources.cpus, "gpu": resources.gpus} if resources.cpus or resources.gpus else {"cpu": 0,
                                                                                                    "memory": 1}
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, plan=plan, workers=resources.workers, max_failures=resources.max_failures),
        held)
    experiment_dir = _experiment_dir(plan)
    started, started_at = time.perf_counter(), time.time()
    if tune.Tuner.can_restore(experiment_dir):
        say(f"resuming the Tune experiment {experiment_dir}")
        tuner = tune.Tuner.restore(str(experiment_dir), trainable=trainable, resume_errored=True)
    else:
        parameters = ["allocation"] if plan.options.search == "grid" else ["teacher_size", "teacher_steps"]
        reporter = CLIReporter(
            parameter_columns=parameters, max_report_frequency=30, max_column_length=40,
            metric_columns={"step": "step", "acc_mean": "acc", "teacher_acc_mean": "teacher acc",
                            "loss_smoothed": "loss"},
        )
        space, tune_config = _search(plan, slots)
        run_config = tune.RunConfig(
            name=experiment_dir.name, storage_path=str(experiment_dir.parent), callbacks=[_callback(plan)],
            progress_reporter=reporter, verbose=1,
            failure_config=tune.FailureConfig(max_failures=resources.max_failures),
        )
        tuner = tune.Tuner(trainable, param_space=space, tune_config=tune_config, run_config=run_config)
    grid = tuner.fit()
    times.students_s = time.perf_counter() - started
    if grid.num_terminated + grid.num_errors < len(grid):  # Tune caught a Ctrl-C, saved its state and returned
        raise KeyboardInterrupt
    collect_trial_times(grid, times, started_at)
    return grid
