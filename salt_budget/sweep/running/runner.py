"""Running a plan on Ray: the run folder, Ray start-up, teachers as Ray tasks (one per ladder), then
the students on Ray Tune (tuning.py), the baselines as Ray tasks (baselines.py) and the summary (summary.py).

Locally Ray starts in-process without a dashboard and with quiet logs; `--address HOST:PORT` (or
`auto`) joins an existing cluster, checked first so that a wrong address fails in seconds (paths are
absolute, so runs/<name> must be on storage every node sees). With --workers-per-trial W > 1 every unit
trains on W Ray Train workers (workers.py).
"""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

import yaml

from trainers.config import to_dict
from trainers.config_files import save_config

from salt_budget.sweep.running.baselines import train_baselines
from salt_budget.sweep.running.floor import probe_floors
from salt_budget.sweep.running.holder import hold, release
from salt_budget.sweep.planning.plan import Plan
from salt_budget.sweep.planning.options import PlanError
from salt_budget.sweep.planning.plan_table import plan_frame, write_plan_csv
from salt_budget.sweep.running.ray_tasks import run_as_tasks
from salt_budget.sweep.results.store import FAILED_STEP, append_rows, compile_results, read_results
from salt_budget.sweep.running.rows import failed_row
from salt_budget.sweep.running.summary import SweepTimes, covered, say, summarize, sweep_progress
from salt_budget.sweep.planning.teacher_ladders import TeacherLadders, ladders
from salt_budget.sweep.running.teachers import teachers_task
from salt_budget.sweep.running.ray_start import start_ray
from salt_budget.sweep.running.signals import NoTuneRestoreHint, Signals
from salt_budget.sweep.running.tracking import log_sweep_end
from salt_budget.sweep.running.tuning import SweepInterrupted, TuneStop, check_resume, train_students
from salt_budget.sweep.running.resources import Resources, UnitResources, unit_resources




def _differences(saved: Any, current: Any, path: str = "") -> list[str]:
    """Settings whose value differs. A key the saved file lacks is not one: the file predates that setting
    (the vjepa2 section, say), and no unit in the folder was trained with it."""
    if isinstance(saved, dict) and isinstance(current, dict):
        return [d for key in saved
                for d in _differences(saved[key], current.get(key), f"{path}.{key}" if path else key)]
    return [] if saved == current else [path]


def prepare_sweep_dir(plan: Plan, workers: int = 1) -> None:
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
    write_plan_csv(plan_frame(plan, workers), plan.sweep_dir / "plan.csv")


def _record_teacher_failure(plan: Plan, ladder: TeacherLadders, reason: str) -> None:
    """Failed rows for a ladder's unfinished teachers, unless the task already wrote its own (more precise) ones."""
    table = read_results(plan.sweep_dir)
    rows = []
    for unit in ladder.units:
        mine = table[table["unit_key"] == unit.key]
        if unit.final_checkpoint.is_file() or (mine["step"] == FAILED_STEP).any():
            continue
        rows.append(failed_row(unit, reason, sweep=plan.name, config_hash=plan.config_hash))
    append_rows(plan.sweep_dir, rows)


def train_teachers(plan: Plan, resources: UnitResources, times: SweepTimes) -> None:
    """One Ray task per ladder with something left to train; a ladder that fails for good marks its teachers."""
    groups = ladders(plan)
    todo = [ladder for ladder in groups if not all(u.final_checkpoint.is_file() for u in ladder.units)]
    done = len(groups) - len(todo)
    if done:
        say(f"{done} teacher ladder(s) already trained: reused")
    if not todo:
        return
    started, started_at = time.perf_counter(), time.time()
    intervals = []
    say(f"training {len(todo)} teacher ladder(s) ({sum(len(ladder.units) for ladder in todo)} teachers) as Ray tasks")
    for ladder, outcome, reason in run_as_tasks(teachers_task, todo, plan, cpus=resources.cpus, gpus=resources.gpus,
                                                retries=resources.max_failures,
                                                args=(resources.workers, resources.max_failures),
                                                max_concurrent=resources.slots):
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
              resources: Resources = Resources(), cpus: int | None = None) -> int:
    """Run every unit of `plan` that is not done; 0 when every allocation finished, 1 when some failed, 130 / 143
    when Ctrl-C / SIGTERM stopped it (it says how many finished and the command that continues it).
    `cpus`: the CPUs a local Ray started here may use (None: all of this machine's).

    The driver holds the sweep folder while it runs (holder.py): a second driver of the same folder is refused."""
    resources.validate()
    existed = plan.sweep_dir.exists()
    holder = hold(plan.sweep_dir, warn=say)  # first: a running sweep is reported as running, not as resumable
    try:
        check_resume(plan, resume)
        if resume:
            # The table rebuilt from the units' own rows before anything runs: a results.parquet cut by a crash
            # or a full disk is replaced, an unreadable old one refused with what to do (TableDamaged).
            from salt_budget.sweep.running.trial import reprobe_lost_students  # imports Ray

            compile_results(plan.sweep_dir)
            lost = reprobe_lost_students(plan)
            if lost:
                say(f"probed again {len(lost)} trained student(s) whose rows were lost: {', '.join(lost)}")
        return _run_held(plan, address=address, resources=resources, cpus=cpus)
    finally:
        release(holder)
        if not existed:
            try:
                plan.sweep_dir.rmdir()  # a sweep refused before it wrote anything leaves no folder behind
            except OSError:
                pass


def _run_held(plan: Plan, *, address: str | None, resources: Resources, cpus: int | None) -> int:
    started = time.perf_counter()
    signals, sigint = Signals(), signal.getsignal(signal.SIGINT)
    try:
        return _run_units(plan, address, resources, cpus, started, signals)
    finally:
        if signals.main:
            signal.signal(signal.SIGINT, sigint)  # Python's again, not Tune's nor the one _run_units leaves
        signals.restore()


def _run_units(plan: Plan, address: str | None, resources: Resources, cpus: int | None, started: float,
               signals: Signals) -> int:
    from trainers.probe.sets import prepare_data

    times = SweepTimes()
    tune_logger, hint_filter = logging.getLogger("ray.tune.tune"), NoTuneRestoreHint()
    trials: list[str] | None = None
    stopped_by: int | None = None
    owns_ray = False
    try:
        signals.install()
        owns_ray = start_ray(address, cpus)  # first: a cluster that cannot be reached leaves nothing behind
        signals.install()  # again: ray.init sets its own
        tune_logger.addFilter(hint_filter)
        times.ray_start_s = time.perf_counter() - started
        import ray

        units = unit_resources(resources, ray.cluster_resources())
        prepare_sweep_dir(plan, units.workers.count)
        # Generate the synthetic set once, here, with every core, before trials would each wait on it; and read
        # every clip list now, so that a wrong path or label fails before hours of training.
        for line in prepare_data(plan.experiment.data, plan.experiment.probe):
            say(line)
        if units.workers.distributed:
            say(f"each unit trains on {units.workers.count} Ray Train workers ({units.workers.cpus:g} CPU, "
                f"{units.workers.gpus:g} GPU each); {units.slots} unit(s) at a time")
        if plan.options.search == "grid":  # a search's trials train the teachers they propose
            train_teachers(plan, units, times)
        probe_floors(plan, units)
        stop, sigint = TuneStop(), signal.getsignal(signal.SIGINT)
        try:
            train_students(plan, units, times, stop)
        finally:
            if signals.main:
                signal.signal(signal.SIGINT, sigint)  # Tune leaves its handler installed after a fit it did not stop
        if plan.options.search != "grid":
            from salt_budget.sweep.running.search import study_allocations

            trials = study_allocations(plan)  # this run's trials and those a resumed study finished before
        # Tune caught a Ctrl-C (or the SIGTERM passed on to it), stopped the trials and returned. It returns with
        # trials not done only so: Tune's handler also fires on SIGUSR1, or may not have been wrapped (an
        # experiment saved by an older version of this code, whose callback does not wrap it).
        if stop.caught or signals.signum is not None or sweep_progress(plan, trials=trials).not_run:
            raise SweepInterrupted(signals.signum or signal.SIGINT)
        train_baselines(plan, units, times)
    except KeyboardInterrupt as interrupt:
        stopped_by = getattr(interrupt, "signum", None) or signals.signum or signal.SIGINT
    finally:
        # While Ray shuts down and the summary is written, a Ctrl-C (or a SIGTERM, passed on to it) is noted, not
        # raised: the summary then says the sweep was interrupted, with what finished.
        signals.note_from_now()
        try:
            if owns_ray:
                import ray

                ray.shutdown()
        finally:
            tune_logger.removeFilter(hint_filter)
    if signals.late and stopped_by is None:
        stopped_by = signals.signum or signals.late[0]
    compile_results(plan.sweep_dir)  # no unit writes now: results.parquet holds every unit's rows
    code = summarize(plan, times, time.perf_counter() - started, trials, stopped_by)
    if stopped_by is None:  # a stopped sweep ends at once; its run is logged when it finishes
        log_sweep_end(plan, code)
    return code
