"""Where a sweep's time went, measured (Ray start-up, units working, no unit working), and the
closing summary (students and baselines): printed, and appended to runs/<name>/sweep_log.jsonl."""

from __future__ import annotations

import json
import shlex
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from analysis.results import readout_name
from analysis.schema import FLOOR_ROLE, PRUNED_STATUS

from salt_budget.sweep.planning.plan import Plan
from salt_budget.sweep.planning.plan_table import ladder_savings, teacher_steps_summary
from salt_budget.sweep.results.store import read_results, table_path

if TYPE_CHECKING:  # Ray is imported only when a sweep runs
    from ray.tune import ResultGrid


def flagged(value: Any) -> bool:
    """A row's yes/no column that may be missing (NA: the unit does not say)."""
    return bool(value) if not pd.isna(value) else False


def say(message: str) -> None:
    print(f"[sweep] {message}", flush=True)


@dataclass
class SweepTimes:
    ray_start_s: float = 0.0
    teachers_s: float = 0.0
    teacher_train_s: float = 0.0
    teacher_steps_trained: int = 0
    teachers_idle_s: float = 0.0  # of teachers_s, with no teacher task running (launch, imports, teardown)
    students_s: float = 0.0
    student_work: dict[str, float] = field(default_factory=lambda: {"train_s": 0.0, "probe_s": 0.0})
    students_idle_s: float = 0.0  # of students_s, with no trial function running
    trials: int = 0
    concurrent_trials: int = 1
    baselines_s: float = 0.0
    baseline_work: dict[str, float] = field(default_factory=lambda: {"train_s": 0.0, "probe_s": 0.0})


def percent(value: float | None) -> str:
    """An accuracy for a progress line; a probe that did not converge has none (None or NaN)."""
    if value is None or value != value:
        return "n/a (probe not converged)"
    return f"{value:.1%}"


def covered(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of (start, end) intervals: wall time during which some unit was working."""
    total, reached = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reached:
            total += end - max(start, reached)
            reached = end
    return total


def collect_trial_times(grid: ResultGrid, times: SweepTimes, started_at: float) -> None:
    """Work and idle time of the trials this process ran, from what each trial reported."""
    intervals = []
    for result in grid:
        reports = result.metrics_dataframe
        if reports is None or "entered_at" not in reports or not len(reports):
            continue
        if reports["reported_at"].max() < started_at:
            continue  # finished before a resume, in an earlier process
        times.trials += 1
        times.student_work["train_s"] += float(reports["trial_train_s"].max())
        times.student_work["probe_s"] += float(reports["trial_probe_s"].max())
        intervals.append((max(float(reports["entered_at"].min()), started_at), float(reports["reported_at"].max())))
    times.students_idle_s = times.students_s - covered([(a, b) for a, b in intervals if b > a])


@dataclass(frozen=True)
class Progress:
    """Where a sweep's students and baselines stand in its results table: finished (a final row), failed (a failed
    row, no final one) or not run. A grid plans every allocation; a search the trials it was asked for, each an
    allocation it proposed (`trials`, one entry per trial, when Tune returned them)."""

    what: str  # "allocations" or "search trials"
    planned: int
    finished: list[str]
    failed: list[str]
    not_run: int
    baselines: list[str]
    baselines_finished: list[str]
    baselines_failed: list[str]
    pruned: list[str] = field(default_factory=list)  # search trials stopped at a probe point: ran to their end

    @property
    def baselines_not_run(self) -> list[str]:
        return [b for b in self.baselines if b not in self.baselines_finished and b not in self.baselines_failed]

    @property
    def complete(self) -> bool:
        """Every planned allocation (or search trial) and baseline ran to its end, finished or failed."""
        return not self.not_run and not self.baselines_not_run

    def line(self) -> str:
        pruned = f"{len(self.pruned)} pruned, " if self.pruned else ""
        text = (f"{len(self.finished)} of {self.planned} {self.what} finished ({pruned}{len(self.failed)} failed, "
                f"{self.not_run} not run)")
        if self.baselines:
            text += (f"; baselines {len(self.baselines_finished)} of {len(self.baselines)} finished "
                     f"({len(self.baselines_failed)} failed, {len(self.baselines_not_run)} not run)")
        return text


def sweep_progress(plan: Plan, table: pd.DataFrame | None = None, trials: list[str] | None = None) -> Progress:
    """Progress of `plan` from its results table. `trials`: the allocation of each search trial Tune returned; None
    for a grid, or for a search stopped before Tune returned (its trials are then counted from the table)."""
    table = read_results(plan.sweep_dir) if table is None else table
    ok, pruned = table["status"] == "ok", table["status"] == PRUNED_STATUS
    done_keys = set(table.loc[ok & table["is_final"].fillna(False), "unit_key"])
    pruned_keys = set(table.loc[pruned, "unit_key"]) - done_keys
    failed_keys = set(table.loc[~ok & ~pruned & table["status"].notna(), "unit_key"]) - done_keys - pruned_keys

    def split(units: dict) -> tuple[list[str], list[str]]:
        return ([name for name, unit in units.items() if unit.key in done_keys],
                [name for name, unit in units.items() if unit.key in failed_keys])

    baselines_finished, baselines_failed = split(plan.baselines)
    if plan.options.search == "grid":
        finished, failed = split(plan.students)
        planned, what = len(plan.students), "allocations"
    else:
        if trials is None:  # stopped before Tune returned: the allocations with a row stand for its trials
            trials = [a for a, unit in plan.students.items() if unit.key in done_keys | failed_keys | pruned_keys]
        finished = [a for a in trials if plan.students[a].key in done_keys]
        failed = [a for a in trials if plan.students[a].key in failed_keys]
        planned, what = plan.options.trials or len(trials), "search trials"
    stopped = [a for a in trials or () if plan.students[a].key in pruned_keys]  # a grid has no search to prune
    return Progress(what, planned, finished, failed, max(0, planned - len(finished) - len(failed) - len(stopped)),
                    list(plan.baselines), baselines_finished, baselines_failed, stopped)


def continue_command(plan: Plan, argv: list[str] | None = None) -> str:
    """What to run to continue this sweep: the command that started it (salt-budget sweep, or the study that ran
    it), with --resume (a sweep folder that holds no config.yaml yet is started afresh by the same command)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] not in (["sweep"], ["study"]):  # a sweep of a study, in a process of its own
        return "run the same command again with --resume"
    started = argv[0] == "study" or (plan.sweep_dir / "config.yaml").is_file()  # a study holds its study.yaml
    if started and not any(arg == "--resume" or (len(arg) > 5 and "--resume".startswith(arg)) for arg in argv):
        argv.append("--resume")
    return shlex.join(["salt-budget", *argv])


def summarize(plan: Plan, times: SweepTimes, wall_s: float, trials: list[str] | None = None,
              signum: int | None = None) -> int:
    """Print and log what the sweep did. 0 when every planned allocation and baseline finished, 1 when some failed;
    a sweep stopped by a signal (`signum`) or with units not run says so, with the command that continues it, and
    returns 128 + the signal (130 Ctrl-C, 143 SIGTERM; 1 when no signal is known)."""
    table = read_results(plan.sweep_dir)
    progress = sweep_progress(plan, table, trials)
    record = {"finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "wall_s": wall_s}
    if signum is not None or not progress.complete:
        how = f"interrupted by {signal.Signals(signum).name}" if signum is not None else "stopped"
        say(f"{how} after {wall_s:.1f} s: {progress.line()}; finished units are kept")
        say(f"continue with: {continue_command(plan)}")
        record.update({"interrupted": True, "signal": signal.Signals(signum).name if signum is not None else None,
                       "finished": progress.finished, "failed": progress.failed + progress.baselines_failed,
                       "not_run": progress.not_run, "baselines_not_run": progress.baselines_not_run,
                       "argv": sys.argv[1:], **vars(times)})
        _log(plan, record)
        return 128 + signum if signum is not None else 1
    finals = table[(table["status"] == "ok") & table["is_final"].fillna(False)]
    # A grid attempts every allocation; a search those it proposed (one may come twice).
    attempted = sorted(set(progress.finished) | set(progress.failed))
    failed = sorted(set(progress.failed))
    final = finals[finals["unit_key"].isin({plan.students[a].key for a in attempted})]
    baselines = finals[finals["unit_key"].isin({unit.key for unit in plan.baselines.values()})]
    failed_baselines = sorted(progress.baselines_failed)
    trained, _, summed = teacher_steps_summary(plan)
    say(f"done in {wall_s:.1f} s: {len(attempted) - len(failed)} of {len(attempted)} allocations finished"
        + (f", {len(progress.pruned)} more pruned by the search" if progress.pruned else "")
        + (f", FAILED: {', '.join(failed)}" if failed else "")
        + f"; {len(table)} rows in {table_path(plan.sweep_dir)}")
    machines = sorted(set(finals["machine"].dropna())) if "machine" in finals else []
    say(f"readout: {readout_name(finals)}; read on {', '.join(machines) or 'an unrecorded machine'}")
    floor = finals[finals["role"] == FLOOR_ROLE]
    if len(floor):
        say(f"random-init floor (same readout): mean accuracy {percent(floor['acc_mean'].mean())} over "
            f"{len(floor)} untrained encoder(s)")
    if final["acc_mean"].notna().any():
        best = final.loc[final["acc_mean"].idxmax()]
        say(f"best final student: {best['allocation_id']} with mean accuracy {percent(best['acc_mean'])}")
    elif len(final):
        say("best final student: none to name, no final student's probe converged")
    if plan.baselines:
        say(f"baselines: {len(baselines)} of {len(plan.baselines)} finished"
            + (f", FAILED: {', '.join(failed_baselines)}" if failed_baselines else "") + "".join(
                f"; {row['allocation_id']} {percent(row['acc_mean'])}" + (" (collapsed)" if flagged(row["collapsed"]) else "")
                for _, row in baselines.iterrows()))
    if plan.options.search != "grid":
        say(search_line(plan))  # a search's teachers are its proposals' branches: no ladder to save against
    else:
        say(f"teacher steps: {trained} train this sweep's teachers, against {summed} summed over its allocations; "
            f"{times.teacher_steps_trained} trained by this run")
        for stage, counts in ladder_savings(plan).items():
            if stage != "teacher":
                say(f"{stage} steps: {counts['steps']} train this sweep's {stage}s (ladders share their trunks), "
                    f"against {counts['steps_summed']} summed over its {'allocations' if stage == 'student' else 'runs'}")
    say(f"time: Ray start {times.ray_start_s:.1f} s; teachers {times.teachers_s:.1f} s (training "
        f"{times.teacher_train_s:.1f}, no task running {times.teachers_idle_s:.1f}); trials {times.students_s:.1f} s "
        f"for {times.trials}, {times.concurrent_trials} at a time (summed over trials: student training "
        f"{times.student_work['train_s']:.1f}, teacher and student probes {times.student_work['probe_s']:.1f}; "
        f"no trial running {times.students_idle_s:.1f})"
        + (f"; baselines {times.baselines_s:.1f} s (summed: training {times.baseline_work['train_s']:.1f}, probes "
           f"{times.baseline_work['probe_s']:.1f})" if plan.baselines else ""))
    record.update({"attempted": attempted, "failed": failed + failed_baselines, "interrupted": False,
                   "argv": sys.argv[1:], **vars(times)})
    _log(plan, record)
    return 1 if failed or failed_baselines else 0


def search_line(plan: Plan) -> str:
    """The stored study: its trials by state, its best, and how to open it."""
    from salt_budget.sweep.running.search import STUDY_FILE, load_study

    study = load_study(plan)
    states = pd.Series([trial.state.name.lower() for trial in study.trials]).value_counts()
    best = [t for t in study.trials if t.value is not None and t.state.name == "COMPLETE"]
    top = max(best, key=lambda t: t.value) if best else None
    return (f"search: study '{study.study_name}' in {plan.sweep_dir / STUDY_FILE} holds {len(study.trials)} trials ("
            + ", ".join(f"{n} {state}" for state, n in states.items()) + ")"
            + (f"; best: teacher share {top.params['teacher_share']:.4g}, accuracy {percent(top.value)}" if top else "")
            + f"; open it with: optuna-dashboard sqlite:///{plan.sweep_dir / STUDY_FILE}")


def _log(plan: Plan, record: dict) -> None:
    with open(plan.sweep_dir / "sweep_log.jsonl", "a") as log:
        log.write(json.dumps(record) + "\n")
