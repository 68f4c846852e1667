"""One Ray Tune trial = one allocation: probe its teacher (the first trial that needs it does, under the
teacher's lock), train the student against the frozen teacher, probe the student at its kept
checkpoints, append a row per checkpoint and report each through tune.report. On --workers-per-trial
Ray Train workers the student trains first and rank 0 then probes the teacher and the student.

With --student-schedule wsd the students of one teacher at several budgets form a ladder (ladder.py): the
trial of a shorter student extends the shared trunk as far as its branch point (or finds it there), then
trains its own cool-down; its checkpoints before the branch point are the trunk's.

A trial restarted by Tune (a retry, or `--resume` after a crash) does only what is missing: the
student trainer continues from its last checkpoint, and checkpoints that already have a row are
reported from the table instead of being probed again.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import pandas as pd
from ray import tune

from trainers.locks import file_lock
from salt_budget.sweep.planning.plan import Plan
from salt_budget.sweep.results.store import read_results
from salt_budget.sweep.running.rows import student_row
from salt_budget.sweep.running.teachers import probe_teacher
from salt_budget.sweep.running.tracking import record_probe_row
from salt_budget.sweep.planning.units import StudentUnit
from salt_budget.sweep.running.unit_run import UNIT_LOCK, run_unit, train_unit
from salt_budget.sweep.running.workers import Workers

# Row columns a trial reports to Tune (progress table, searcher), besides its timing.
REPORTED = ("step", "acc_mean", "loss_smoothed", "flops_total", "rankme")


class TeacherMissing(RuntimeError):
    """The allocation's teacher has no final checkpoint: its training failed (see its failed row)."""


def _plain(value: Any) -> float:
    """Tune wants plain numbers; a row read back from the table holds numpy scalars and pd.NA. A missing value
    (a probe that did not converge) is NaN, not None: OptunaSearch passes the metric to optuna, which refuses
    None and records a trial whose value is NaN as failed, so the search learns nothing from it."""
    return float("nan") if value is None or pd.isna(value) else float(value)


def _teacher_accuracy(student: StudentUnit, table: pd.DataFrame) -> float | None:
    rows = table[(table["unit_key"] == student.teacher.key) & (table["status"] == "ok")]
    return float(rows["acc_mean"].iloc[-1]) if len(rows) else None


def probe_result(checkpoint: Path, plan: Plan, seed: int) -> dict[str, Any]:
    """The probe of a checkpoint of a student or baseline run; one that finished just before a crash (its
    result saved in the run's probes/) is not run again."""
    from trainers.probe.checkpoints import probe_checkpoint

    saved = checkpoint.parent.parent / "probes" / f"{checkpoint.stem}.json"
    if saved.is_file():
        return json.loads(saved.read_text())
    return probe_checkpoint(checkpoint, plan.experiment.data, plan.experiment.probe, seed=seed, progress=False)[0]


def _probe_row(student: StudentUnit, step: int, plan: Plan) -> dict[str, Any]:
    started = time.perf_counter()
    checkpoint = plan.student_ladders[student.allocation.id].checkpoint(student, step)
    result = probe_result(checkpoint, plan, student.allocation.seed)
    return student_row(student, checkpoint, step, result, sweep=plan.name, config_hash=plan.config_hash,
                       probe_s=time.perf_counter() - started)


def _train(student: StudentUnit, plan: Plan, rank: int | None = None) -> float:
    """Train the student (or finish it), and its ladder's trunk as far as it needs; the seconds spent."""
    return train_unit(student, plan.student_ladders[student.allocation.id], plan, rank)["train_s"]


def _check_teacher(student: StudentUnit) -> None:
    teacher = student.teacher
    if not teacher.final_checkpoint.is_file():
        raise TeacherMissing(
            f"teacher {teacher.id.size} x {teacher.id.steps} steps ({teacher.key}) has no final checkpoint: its "
            f"training failed; see its failed row in results.parquet"
        )


def _probe_teacher(student: StudentUnit, plan: Plan, spent: dict[str, float]) -> None:
    """Once for all its students: the first trial probes, the others wait on the lock and find its row."""
    with file_lock(student.teacher.run_dir / ".lock"):
        spent["trial_probe_s"] += probe_teacher(student.teacher, plan)


def _probe_and_report(student: StudentUnit, plan: Plan, report: Callable[[dict[str, Any]], None],
                      spent: dict[str, float], entered: float) -> None:
    """Probe each student checkpoint that has no row yet, and report every checkpoint's row."""
    for step in student.checkpoint_steps:
        table = read_results(plan.sweep_dir)
        done = table[(table["unit_key"] == student.key) & (table["step"] == step) & (table["status"] == "ok")]
        if len(done):
            row = done.iloc[-1].to_dict()
        else:
            row = _probe_row(student, step, plan)
            spent["trial_probe_s"] += row["probe_wall_s"]
            table = record_probe_row(plan, student, row)
        metrics = {key: _plain(row.get(key)) for key in REPORTED}
        report({**metrics, "teacher_acc_mean": _teacher_accuracy(student, table), **spent,
                "entered_at": entered, "reported_at": time.time()})


def _student_work(student: StudentUnit, plan: Plan, rank: int | None,
                  report: Callable[[dict[str, Any]], None] = lambda metrics: None,
                  entered: float | None = None) -> dict[str, float]:
    """Train, then probe the teacher and the student's checkpoints and write the rows: alone (rank None), or as
    one Ray Train worker: every rank trains, rank 0 alone probes (after training: the other ranks would wait in
    a collective)."""
    entered = entered or time.time()
    spent = {"trial_train_s": 0.0, "trial_probe_s": 0.0}
    if rank is None:
        _probe_teacher(student, plan, spent)  # first: a teacher keeps its row when its students fail
    spent["trial_train_s"] = _train(student, plan, rank)
    if rank == 0:
        _probe_teacher(student, plan, spent)
    if rank in (None, 0):
        _probe_and_report(student, plan, report, spent, entered)
    return spent


def train_and_probe(student: StudentUnit, plan: Plan, report: Callable[[dict[str, Any]], None]) -> None:
    """The work of a trial in one process, callable without Ray: `report(metrics)` once per student
    checkpoint, with the seconds this call spent training and probing (a resumed trial skips what is done)."""
    entered = time.time()
    _check_teacher(student)
    run_unit(lambda unit, plan, rank: _student_work(unit, plan, rank, report, entered), student, plan,
             run_dir=student.run_dir, trunk_dir=plan.student_ladders[student.allocation.id].trunk.run_dir, name="")


def run_trial(config: dict[str, Any], plan: Plan, workers: Workers = Workers(), max_failures: int = 0) -> None:
    """The Ray Tune function trainable (bound to the plan with tune.with_parameters). With several workers
    the trial starts them (Ray Train), waits, and reports the rows their rank 0 wrote."""
    student = plan.student_for(config)
    if not workers.distributed:
        train_and_probe(student, plan, tune.report)
        return
    entered = time.time()
    _check_teacher(student)
    spent = run_unit(_student_work, student, plan, run_dir=student.run_dir,
                     trunk_dir=plan.student_ladders[student.allocation.id].trunk.run_dir,
                     name=f"student-{student.key[:12]}", workers=workers, max_failures=max_failures)
    spent = {"trial_train_s": 0.0, "trial_probe_s": 0.0, **spent}
    with file_lock(student.run_dir / UNIT_LOCK):
        _probe_and_report(student, plan, tune.report, spent, entered)  # reads the rows back; probes nothing


def reprobe_lost_students(plan: Plan) -> list[str]:
    """Probe, here, the students that finished training but have no rows (a results table lost or damaged and not
    rescued): Tune's restored experiment counts their trials as done and would never run them again. Nothing
    trains here: only students whose final checkpoint exists. Their allocation ids."""
    table = read_results(plan.sweep_dir)
    done = set(table.loc[table["status"] == "ok", "unit_key"])
    lost = [student for student in plan.students.values()
            if student.key not in done and plan.student_ladders[student.allocation.id].is_trained(student)]
    for student in lost:
        train_and_probe(student, plan, lambda metrics: None)
    return [student.allocation.id for student in lost]
