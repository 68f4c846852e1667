"""Where a sweep's time went, measured (Ray start-up, units working, no unit working), and the
closing summary (students and baselines): printed, and appended to runs/<name>/sweep_log.jsonl."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from analysis.tables import FLOOR_ROLE, readout_name

from salt_budget.sweep.plan import Plan
from salt_budget.sweep.plan_table import ladder_savings, teacher_steps_summary
from salt_budget.sweep.results import read_results, table_path

if TYPE_CHECKING:  # Ray is imported only when a sweep runs
    from ray.tune import ResultGrid


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


def summarize(plan: Plan, attempted: list[str], times: SweepTimes, wall_s: float) -> int:
    """Print and log what the sweep did; 1 if an allocation it attempted or a baseline has no final row."""
    table = read_results(plan.sweep_dir)
    finals = table[(table["status"] == "ok") & table["is_final"].fillna(False)]
    final = finals[(finals["role"] == "student") & finals["allocation_id"].isin(attempted)]
    failed = sorted(set(attempted) - set(final["allocation_id"]))
    baselines = finals[finals["unit_key"].isin({unit.key for unit in plan.baselines.values()})]
    failed_baselines = sorted(set(plan.baselines) - set(baselines["allocation_id"]))
    trained, _, summed = teacher_steps_summary(plan)
    say(f"done in {wall_s:.1f} s: {len(attempted) - len(failed)} of {len(attempted)} allocations finished"
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
                f"; {row['allocation_id']} {percent(row['acc_mean'])}" + (" (collapsed)" if row["collapsed"] else "")
                for _, row in baselines.iterrows()))
    say(f"teacher steps: {trained} train this sweep's teachers, against {summed} summed over its allocations; "
        f"{times.teacher_steps_trained} trained by this run")
    for stage, counts in ladder_savings(plan).items():
        if stage != "teacher":
            say(f"{stage} steps: {counts['steps']} train this sweep's {stage}s (ladders share their trunks), against "
                f"{counts['steps_summed']} summed over its {'allocations' if stage == 'student' else 'runs'}")
    say(f"time: Ray start {times.ray_start_s:.1f} s; teachers {times.teachers_s:.1f} s (training "
        f"{times.teacher_train_s:.1f}, no task running {times.teachers_idle_s:.1f}); trials {times.students_s:.1f} s "
        f"for {times.trials}, {times.concurrent_trials} at a time (summed over trials: student training "
        f"{times.student_work['train_s']:.1f}, teacher and student probes {times.student_work['probe_s']:.1f}; "
        f"no trial running {times.students_idle_s:.1f})"
        + (f"; baselines {times.baselines_s:.1f} s (summed: training {times.baseline_work['train_s']:.1f}, probes "
           f"{times.baseline_work['probe_s']:.1f})" if plan.baselines else ""))
    record = {"finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "wall_s": wall_s, "attempted": attempted,
              "failed": failed + failed_baselines, "argv": sys.argv[1:], **vars(times)}
    with open(plan.sweep_dir / "sweep_log.jsonl", "a") as log:
        log.write(json.dumps(record) + "\n")
    return 1 if failed or failed_baselines else 0
