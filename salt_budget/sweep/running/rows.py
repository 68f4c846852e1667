"""One results row per (encoder, checkpoint), from what a unit left on disk: its metrics.jsonl, the
checkpoint's loop state (cumulative FLOPs and training wall time) and the probe result."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from analysis.probe_columns import probe_columns
from analysis.schema import COLLAPSE_STD, PRUNED_STATUS, SCHEMA_VERSION
from trainers.checkpoint import load_checkpoint
from trainers.provenance import PROVENANCE_FILE

from salt_budget.sweep.planning.ladder import BRANCH_FILE
from salt_budget.sweep.results.store import FAILED_STEP
from salt_budget.sweep.planning.units import Allocation, BaselineUnit, StudentUnit, TeacherUnit
_MASK_COLUMNS = ("context_ratio", "target_ratio", "raw_target_ratio")


def _metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.is_file() else []


def history(run_dir: Path, upto: int) -> list[dict[str, Any]]:
    """Logged steps up to `upto`; a cool-down branch's history starts with its trunk's."""
    rows = []
    branch = run_dir / BRANCH_FILE
    if branch.is_file():
        parent = json.loads(branch.read_text())
        rows = history(Path(parent["trunk_dir"]), min(parent["step"], upto))
    return rows + [row for row in _metrics(run_dir) if row["step"] <= upto]


def training_summary(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """Final and smoothed loss (mean of the last 10% of logged losses), the mean mask ratios and, for a stage
    that logs it (the V-JEPA 2 baseline), target_std over the same last 10%."""
    if not rows:
        return {"loss_final": None, "loss_smoothed": None, "target_std": None, **{c: None for c in _MASK_COLUMNS}}
    tail = rows[-max(1, math.ceil(0.1 * len(rows))):]
    stds = [row["target_std"] for row in tail if "target_std" in row]
    summary: dict[str, float | None] = {
        "loss_final": rows[-1]["loss"],
        "loss_smoothed": sum(row["loss"] for row in tail) / len(tail),
        "target_std": sum(stds) / len(stds) if stds else None,
    }
    for column in _MASK_COLUMNS:
        values = [row[column] for row in rows if column in row]
        summary[column] = sum(values) / len(values) if values else None
    return summary


def _started_by(run_dir: Path) -> list[dict[str, Any]]:
    """The processes that trained a run (provenance.jsonl), a cool-down branch's trunk included."""
    branch = run_dir / BRANCH_FILE
    trunk = _started_by(Path(json.loads(branch.read_text())["trunk_dir"])) if branch.is_file() else []
    path = run_dir / PROVENANCE_FILE
    return trunk + ([json.loads(line) for line in path.read_text().splitlines() if line] if path.is_file() else [])


def training_provenance(run_dir: Path) -> dict[str, str | None]:
    """Where a run was trained: every machine and thread count that worked on it, in order, once each."""
    started = _started_by(run_dir)

    def distinct(key: str) -> str | None:
        values = list(dict.fromkeys(str(line[key]) for line in started if key in line))
        return "; ".join(values) or None

    return {"train_machine": distinct("machine"), "train_threads": distinct("threads"),
            "train_cpu_capability": distinct("cpu_capability")}


def loop_state(checkpoint: Path) -> dict[str, Any]:
    return load_checkpoint(checkpoint)["loop"]


def common_columns(sweep: str, config_hash: str) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "sweep": sweep, "config_hash": config_hash,
            "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _teacher_columns(teacher: TeacherUnit) -> dict[str, Any]:
    return {"teacher_key": teacher.key, "teacher_size": teacher.id.size, "teacher_steps": teacher.id.steps,
            "teacher_schedule": teacher.cfg.optim.schedule, "seed": teacher.id.seed}


def _allocation_columns(allocation: Allocation) -> dict[str, Any]:
    return {"allocation_id": allocation.id, "budget": allocation.budget_value, "budget_kind": allocation.budget_kind,
            "teacher_share": allocation.teacher_share,
            "student_size": allocation.student_size, "student_steps": allocation.student_steps}


def teacher_row(teacher: TeacherUnit, probe: dict[str, Any], *, sweep: str, config_hash: str,
                probe_s: float) -> dict[str, Any]:
    checkpoint = teacher.final_checkpoint
    loop = loop_state(checkpoint)
    return {
        **common_columns(sweep, config_hash), **_teacher_columns(teacher),
        "unit_key": teacher.key, "role": "teacher", "step": teacher.id.steps, "is_final": True,
        "flops_teacher": loop["flops"], "flops_student": 0.0, "flops_total": loop["flops"],
        **training_summary(history(teacher.run_dir, teacher.id.steps)), **probe_columns(probe),
        **training_provenance(teacher.run_dir),
        "train_wall_s": loop["wall_s"], "probe_wall_s": probe_s, "status": "ok", "checkpoint": str(checkpoint),
    }


def student_row(student: StudentUnit, checkpoint: Path, step: int, probe: dict[str, Any], *, sweep: str,
                config_hash: str, probe_s: float) -> dict[str, Any]:
    """`checkpoint`: the student's at `step`, in its own folder or, before a branch's cool-down, its trunk's."""
    loop = loop_state(checkpoint)
    teacher_flops = loop_state(student.teacher.final_checkpoint)["flops"]
    return {
        **common_columns(sweep, config_hash), **_teacher_columns(student.teacher), **_allocation_columns(student.allocation),
        "unit_key": student.key, "role": "student", "step": step, "is_final": step == student.allocation.student_steps,
        "flops_teacher": teacher_flops, "flops_student": loop["flops"], "flops_total": teacher_flops + loop["flops"],
        **training_summary(history(checkpoint.parent.parent, step)), **probe_columns(probe),
        **training_provenance(checkpoint.parent.parent),
        "train_wall_s": loop["wall_s"], "probe_wall_s": probe_s, "status": "ok", "checkpoint": str(checkpoint),
    }


def _baseline_columns(unit: BaselineUnit) -> dict[str, Any]:
    # The trained encoder fills the student columns; there is no teacher, so its columns stay empty.
    return {"allocation_id": unit.id, "budget": unit.budget_value, "budget_kind": unit.budget_kind,
            "student_size": unit.size, "student_steps": unit.budget,
            "seed": unit.seed, "role": unit.method}


def baseline_row(unit: BaselineUnit, checkpoint: Path, step: int, probe: dict[str, Any], *, sweep: str,
                 config_hash: str, probe_s: float) -> dict[str, Any]:
    """Its FLOPs (the EMA forward included) are its total; `collapsed` flags a target_std below COLLAPSE_STD.
    `checkpoint` as for student_row."""
    loop = loop_state(checkpoint)
    summary = training_summary(history(checkpoint.parent.parent, step))
    return {
        **common_columns(sweep, config_hash), **_baseline_columns(unit),
        "unit_key": unit.key, "step": step, "is_final": step == unit.budget,
        "flops_teacher": 0.0, "flops_student": loop["flops"], "flops_total": loop["flops"],
        **summary, "collapsed": None if summary["target_std"] is None else summary["target_std"] < COLLAPSE_STD,
        **probe_columns(probe), **training_provenance(checkpoint.parent.parent),
        "train_wall_s": loop["wall_s"], "probe_wall_s": probe_s, "status": "ok", "checkpoint": str(checkpoint),
    }


def failed_row(unit: TeacherUnit | StudentUnit | BaselineUnit, reason: str, *, sweep: str,
               config_hash: str) -> dict[str, Any]:
    if isinstance(unit, StudentUnit):
        columns = {**_teacher_columns(unit.teacher), **_allocation_columns(unit.allocation), "role": "student"}
    elif isinstance(unit, BaselineUnit):
        columns = _baseline_columns(unit)
    else:
        columns = {**_teacher_columns(unit), "role": "teacher"}
    return {**common_columns(sweep, config_hash), **columns, "unit_key": unit.key, **failed_row_columns(reason)}


def failed_row_columns(reason: str) -> dict[str, Any]:
    return {"step": FAILED_STEP, "status": "failed", "reason": reason}


def pruned_row(student: StudentUnit, reason: str, *, sweep: str, config_hash: str) -> dict[str, Any]:
    """The row that marks a student its search stopped at a probe point: its probed checkpoints keep their rows."""
    return {**failed_row(student, reason, sweep=sweep, config_hash=config_hash), "status": PRUNED_STATUS}
