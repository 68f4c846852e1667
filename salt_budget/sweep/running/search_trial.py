"""One trial of the optuna search: the proposal's teacher (trained here, as a branch of its size's search trunk, under
the teacher's lock: the first trial that needs it trains it, a later one finds it), then its student one probe point
at a time: train to the point, probe, report, and ask whether to go on (search.py: optuna's MedianPruner against the
stored study). A trial it stops gets a row with status "pruned"; its probed checkpoints keep their rows.

A restarted trial (a retry, --resume) does only what is missing, as a grid's trial does: training continues from the
last checkpoint, rows already in the table are reported again instead of probed, and a trial already pruned stops at
the same point.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from analysis.schema import PRUNED_STATUS

from salt_budget.sweep.planning.plan import Plan
from salt_budget.sweep.planning.units import StudentUnit
from salt_budget.sweep.results.store import append_rows, read_results
from salt_budget.sweep.running.rows import pruned_row
from salt_budget.sweep.running.search import prune_reason
from salt_budget.sweep.running.teachers import probe_teacher
from salt_budget.sweep.running.tracking import record_probe_row
from salt_budget.sweep.running.trial import REPORTED, _check_teacher, _plain, _probe_row, _teacher_accuracy
from salt_budget.sweep.running.unit_run import run_unit, train_unit
from salt_budget.sweep.running.workers import Workers


def _teacher(student: StudentUnit, plan: Plan, workers: Workers, max_failures: int) -> dict[str, float]:
    """Train the proposal's teacher where it is missing and probe it where it has no row: here, or on Ray Train
    workers (rank 0 probes), under the teacher's lock (run_unit), which its other trials wait on."""
    teacher, ladder = student.teacher, plan.teacher_ladders[student.teacher.id]

    def work(unit: Any, plan: Plan, rank: int | None) -> dict[str, float]:
        spent = {"trial_train_s": train_unit(unit, ladder, plan, rank)["train_s"], "trial_probe_s": 0.0}
        if rank in (None, 0):
            spent["trial_probe_s"] = probe_teacher(unit, plan)
        return spent

    return run_unit(work, teacher, plan, run_dir=teacher.run_dir, trunk_dir=ladder.trunk.run_dir,
                    name=f"teacher-{teacher.key[:12]}", workers=workers, max_failures=max_failures)


def _segment(student: StudentUnit, step: int, plan: Plan, workers: Workers, max_failures: int
             ) -> tuple[dict[str, Any], float]:
    """Train the student to `step` and probe its checkpoint there (rank 0 on workers): the row and the training
    seconds."""
    ladder = plan.student_ladders[student.allocation.id]

    def work(unit: Any, plan: Plan, rank: int | None) -> dict[str, Any]:
        spent = train_unit(unit, ladder, plan, rank, stop_at=step)["train_s"]
        if rank not in (None, 0):
            return {"train_s": spent}
        row = _probe_row(unit, step, plan)
        record_probe_row(plan, unit, row)
        return {"train_s": spent, "row": row}

    done = run_unit(work, student, plan, run_dir=student.run_dir, trunk_dir=student.run_dir,
                    name=f"student-{student.key[:12]}", workers=workers, max_failures=max_failures)
    return done["row"], done["train_s"]


def search_trial(student: StudentUnit, plan: Plan, report: Callable[[dict[str, Any]], None],
                 workers: Workers = Workers(), max_failures: int = 0) -> str | None:
    """The trial's work; the reason it was pruned, or None when its student ran to its end."""
    entered = time.time()
    spent = _teacher(student, plan, workers, max_failures)
    _check_teacher(student)
    values: dict[int, float] = {}
    steps = student.checkpoint_steps
    for point, step in enumerate(steps, start=1):
        table = read_results(plan.sweep_dir)
        mine = table[table["unit_key"] == student.key]
        done = mine[(mine["step"] == step) & (mine["status"] == "ok")]
        if len(done):
            row = done.iloc[-1].to_dict()
        else:
            row, train_s = _segment(student, step, plan, workers, max_failures)
            spent["trial_train_s"] += train_s
            spent["trial_probe_s"] += row["probe_wall_s"]
            table = read_results(plan.sweep_dir)
        values[point] = _plain(row.get("acc_mean"))
        reason = None
        if point < len(steps):
            was_pruned = mine[mine["status"] == PRUNED_STATUS]
            if len(was_pruned):  # an earlier attempt stopped here: the next point has no row
                went_on = ((mine["step"] == steps[point]) & (mine["status"] == "ok")).any()
                reason = None if went_on else str(was_pruned["reason"].iloc[-1])
            else:
                reason = prune_reason(plan, values)
                if reason:
                    append_rows(plan.sweep_dir, [pruned_row(student, reason, sweep=plan.name,
                                                            config_hash=plan.config_hash)])
        metrics = {key: _plain(row.get(key)) for key in REPORTED}
        report({**metrics, "probe_point": point, "pruned": 1.0 if reason else 0.0,
                "teacher_acc_mean": _teacher_accuracy(student, table), **spent, "entered_at": entered,
                "reported_at": time.time()})
        if reason:
            return reason
    return None


def run_search_trial(config: dict[str, Any], plan: Plan, workers: Workers = Workers(), max_failures: int = 0) -> None:
    """The Ray Tune function trainable of a search (bound to the plan with tune.with_parameters)."""
    from ray import tune

    search_trial(plan.student_for(config), plan, tune.report, workers, max_failures)
