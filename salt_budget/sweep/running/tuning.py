"""The students on Ray Tune: one trial per allocation (grid) or per proposal (OptunaSearch), its
resources, retries, progress table and one line per finished trial; Tuner.restore for --resume."""

from __future__ import annotations

import importlib
import os
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainers.config import config_hash

from salt_budget.sweep.planning.plan import Plan
from salt_budget.sweep.planning.options import PlanError
from salt_budget.sweep.results.store import append_rows
from salt_budget.sweep.running.rows import failed_row
from salt_budget.sweep.running.summary import SweepTimes, collect_trial_times, percent, say

if TYPE_CHECKING:  # Ray is imported only when a sweep runs
    from ray.tune import Callback, ResultGrid, TuneConfig

    from salt_budget.sweep.running.resources import UnitResources


class SweepInterrupted(KeyboardInterrupt):
    """A signal that stops the sweep: SIGTERM (a scheduler, `kill`) handled as Ctrl-C is."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class TuneStop:
    """How a signal stops this process's fit.

    Ctrl-C: Tune's SIGINT handler stops the trials, saves the experiment's state and returns, as it does when every
    trial is done; `caught` tells the two apart, even when the signal came as the last trial finished. Tune
    installs its handler when the fit starts (and puts back the one it replaced when it fires); the sweep's callback
    wraps it at the fit's first step, in the driver's main thread.

    SIGTERM (`terminate`): the fit stops at its next step, without Tune's clean-up. A scheduler sends SIGTERM to
    every process of the job, Ray's own too, and Tune's clean-up would wait on them until Ray ends the process (exit
    1, a minute later, nothing said). The experiment's state is the one Tune saved last; the trials not done are
    continued by --resume from their own checkpoints."""

    def __init__(self) -> None:
        self.caught = False
        self.terminate = False
        self._wrapped = False

    def at_step(self) -> None:
        """At each step of the fit (the sweep's callback): wrap Tune's handler once, stop on a SIGTERM."""
        self.wrap_tune_handler()
        if self.terminate:
            raise SweepInterrupted(signal.SIGTERM)

    def wrap_tune_handler(self) -> None:
        if self._wrapped or threading.current_thread() is not threading.main_thread():
            return
        self._wrapped = True
        tune_handler = signal.getsignal(signal.SIGINT)
        if not callable(tune_handler) or tune_handler is signal.default_int_handler:
            return  # no handler of Tune's (TUNE_DISABLE_SIGINT_HANDLER=1): Ctrl-C raises KeyboardInterrupt

        def on_sigint(signum: int, frame: Any) -> None:
            self.caught = True
            tune_handler(signum, frame)

        signal.signal(signal.SIGINT, on_sigint)


# The fit running in this process. The callback finds it here: Tune pickles the callback with the experiment,
# and Tuner.restore runs the unpickled one.
_current_stop: TuneStop | None = None


def running_fit() -> TuneStop | None:
    """The fit of this process whose steps the sweep's callback sees, if one runs."""
    return _current_stop if _current_stop is not None and _current_stop._wrapped else None


def _callback(plan: Plan) -> Callback:
    from ray import tune

    class SweepCallback(tune.Callback):
        """One line per finished trial, and a failed row for a trial that fails for good."""

        def on_step_begin(self, iteration, trials, **info):
            # This process's module, also from a callback that Tuner.restore unpickled.
            stop = importlib.import_module("salt_budget.sweep.running.tuning")._current_stop
            if stop is not None:
                stop.at_step()

        def on_trial_complete(self, iteration, trials, trial, **info):
            student = plan.student_for(trial.config)
            result = trial.last_result or {}
            teacher = result.get("teacher_acc_mean")
            if result.get("pruned"):
                say(f"{student.allocation.id}: pruned by the search at probe point {result.get('probe_point')} "
                    f"(step {result.get('step')}), student acc {percent(result.get('acc_mean'))} there")
                return
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

    if plan.options.search == "optuna":
        from salt_budget.sweep.running.search import check_stored_study

        check_stored_study(plan, resume)
    if resume and not (plan.sweep_dir / "config.yaml").is_file():
        raise PlanError(f"--resume: {plan.sweep_dir} holds no sweep to continue (it has no config.yaml); check "
                        f"--name and runs_dir, or drop --resume to start this sweep")
    experiment_dir = _experiment_dir(plan)
    if not resume and tune.Tuner.can_restore(experiment_dir):
        raise PlanError(f"{experiment_dir} holds this sweep already: add --resume to continue it "
                        f"(finished units are not trained again)")


def _search(plan: Plan, slots: int) -> tuple[dict[str, Any], TuneConfig]:
    """(param_space, TuneConfig) for the grid or the Optuna search (search.py)."""
    from ray import tune

    if plan.options.search == "grid":
        # The limit matters for trials of several workers, which hold nothing themselves (runner.unit_resources).
        return ({"allocation": tune.grid_search(list(plan.students))},
                tune.TuneConfig(reuse_actors=True, max_concurrent_trials=slots))
    from salt_budget.sweep.running.search import METRIC, searcher, trials_left

    return {}, tune.TuneConfig(search_alg=searcher(plan, slots), num_samples=trials_left(plan), metric=METRIC,
                               mode="max", reuse_actors=True)


def train_students(plan: Plan, resources: UnitResources, times: SweepTimes, stop: TuneStop | None = None
                   ) -> ResultGrid | None:
    """Fit the Tune experiment of the plan's students, or restore a stopped one and finish it. `stop.caught` says
    afterwards whether a signal stopped the fit (the trials not done are then left for --resume). None: a search
    with nothing left to propose."""
    global _current_stop
    from ray import tune
    from ray.tune import CLIReporter

    if plan.options.search == "grid":
        from salt_budget.sweep.running.trial import run_trial
    else:  # a proposal: probed, and pruned, point by point
        from salt_budget.sweep.running.search_trial import run_search_trial as run_trial

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
    tuner = None
    if tune.Tuner.can_restore(experiment_dir):
        say(f"resuming the Tune experiment {experiment_dir}")
        try:
            tuner = tune.Tuner.restore(str(experiment_dir), trainable=trainable, resume_errored=True)
        except (ModuleNotFoundError, AttributeError) as error:
            # Saved by a salt-budget whose modules had other paths: its pickled state cannot be read. Nothing is
            # lost by starting the experiment afresh: every trained unit is found by its key, its rows in the table.
            aside = experiment_dir.with_name(f"{experiment_dir.name}.unreadable-{int(time.time())}")
            experiment_dir.rename(aside)
            say(f"the Tune experiment was saved by another version of salt-budget ({type(error).__name__}: {error}); "
                f"set aside as {aside.name}, started afresh: trained units are kept and not trained again")
    if tuner is None:
        from salt_budget.sweep.planning.search_space import search_sizes

        parameters = (["allocation"] if plan.options.search == "grid" else
                      ["teacher_share", *(["teacher_size"] if len(search_sizes(plan)) > 1 else [])])
        reporter = CLIReporter(
            parameter_columns=parameters, max_report_frequency=30, max_column_length=40,
            metric_columns={"step": "step", "acc_mean": "acc", "teacher_acc_mean": "teacher acc",
                            "loss_smoothed": "loss"},
        )
        space, tune_config = _search(plan, slots)
        if tune_config.num_samples == 0:  # a resumed search whose stored study holds its --trials already
            say(f"the search's study holds {plan.options.trials} finished trials already: none to propose")
            times.students_s = time.perf_counter() - started
            return None
        run_config = tune.RunConfig(
            name=experiment_dir.name, storage_path=str(experiment_dir.parent), callbacks=[_callback(plan)],
            progress_reporter=reporter, verbose=1,
            failure_config=tune.FailureConfig(max_failures=resources.max_failures),
        )
        tuner = tune.Tuner(trainable, param_space=space, tune_config=tune_config, run_config=run_config)
    _current_stop = stop or TuneStop()
    try:
        grid = tuner.fit()  # on Ctrl-C Tune stops the trials, saves its state and returns: see TuneStop
    finally:
        _current_stop = None
    times.students_s = time.perf_counter() - started
    collect_trial_times(grid, times, started_at)
    return grid
