"""A results table read for analysis: its rows checked against the schema (analysis/schema.py) and wrapped as
Results (finished, failed and final rows, the tasks, the random-init floor), and the helpers figures and
findings read rows with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pandas as pd

from analysis.schema import (
    FLOOR_ROLE, MEAN_TASK, PROVENANCE_COLUMNS, PRUNED_STATUS, REQUIRED, SALT_ROLES, SCHEMA_VERSION, UNKNOWN_READOUT,
)
from analysis.tables import ReportError, read_run

BASELINE_NAMES = {"vjepa2": "V-JEPA 2"}


@dataclass(frozen=True)
class Metric:
    """An accuracy to analyse: one task's acc_<task> column, or the task average."""

    name: str

    @property
    def column(self) -> str:
        return f"acc_{self.name}"

    @property
    def label(self) -> str:
        return "task average" if self.name == MEAN_TASK else self.name


@dataclass(frozen=True)
class Results:
    """Every row of one or more runs (failed rows included) and the tasks they were probed on."""

    rows: pd.DataFrame
    tasks: tuple[str, ...]
    runs: tuple[Path, ...] = ()
    notes: tuple[str, ...] = ()
    floor: pd.DataFrame = field(default_factory=pd.DataFrame)  # finished random-init rows (FLOOR_ROLE)

    @property
    def readout(self) -> str:
        return readout_name(self.rows)

    @property
    def ok(self) -> pd.DataFrame:
        return self.rows[equals(self.rows, "status", "ok")]

    @property
    def failed(self) -> pd.DataFrame:
        return self.rows[~equals(self.rows, "status", "ok") & ~equals(self.rows, "status", PRUNED_STATUS)]

    @property
    def pruned(self) -> pd.DataFrame:
        """The rows that mark search trials stopped at a probe point (their probed checkpoints are in `ok`)."""
        return self.rows[equals(self.rows, "status", PRUNED_STATUS)]

    @property
    def final(self) -> pd.DataFrame:
        """Each finished unit's last checkpoint: one point per trained encoder."""
        ok = self.ok
        return ok[ok["is_final"].fillna(False).astype(bool)]

    def metrics(self, task: str | None = None) -> list[Metric]:
        """The accuracies to analyse: `task` alone, or every task and their average."""
        names = [*self.tasks, MEAN_TASK]
        if task is None:
            return [Metric(name) for name in names]
        if task not in names:
            raise ReportError(f"no task {task!r} in the results; the tasks are: {', '.join(names)}")
        return [Metric(task)]


def equals(frame: pd.DataFrame, column: str, value: object) -> pd.Series:
    """A plain boolean mask; a missing value is unequal (a nullable comparison would give NA)."""
    return (frame[column] == value).fillna(False).astype(bool)


def column_true(frame: pd.DataFrame, column: str) -> bool:
    """Whether any row has `column` True (False where the column is absent)."""
    return column in frame and bool(frame[column].fillna(False).astype(bool).any())


def discover_tasks(columns: Sequence[str]) -> tuple[str, ...]:
    return tuple(c.removeprefix("acc_") for c in columns if c.startswith("acc_") and c != f"acc_{MEAN_TASK}")


def check_table(frame: pd.DataFrame, source: str) -> None:
    """Raise ReportError unless `frame` is a non-empty results table of the schema this code reads."""
    if "schema_version" not in frame:
        raise ReportError(f"{source} has no schema_version column: it is not a salt-budget results table, "
                          f"or one written before versioning; rerun the sweep with this salt-budget")
    if frame.empty:
        raise ReportError(f"{source} has no rows: no unit of the sweep has finished yet; "
                          f"wait for the sweep (or rerun it with --resume) and report again")
    versions = sorted({int(v) for v in frame["schema_version"].dropna()})
    if versions != [SCHEMA_VERSION]:
        newer = any(v > SCHEMA_VERSION for v in versions)
        fix = "upgrade salt-budget to read it" if newer else "rerun the sweep with this salt-budget to rewrite it"
        raise ReportError(f"{source} has schema version {', '.join(map(str, versions)) or 'none'}, this report "
                          f"reads version {SCHEMA_VERSION}: {fix}")
    missing = [c for c in REQUIRED if c not in frame]
    if missing:
        raise ReportError(f"{source} lacks the columns {', '.join(missing)}: the table is damaged or was not "
                          f"written by salt-budget's sweep")
    if not discover_tasks(frame.columns):
        raise ReportError(f"{source} has no acc_<task> column: no encoder was probed on any task")


def from_frame(frame: pd.DataFrame, source: str = "results table", runs: Sequence[Path] = ()) -> Results:
    """Check a results table and wrap it; rows repeated across runs (same unit and checkpoint) count once."""
    check_table(frame, source)
    notes = []
    duplicated = frame.duplicated(["unit_key", "step"], keep="first")
    if duplicated.any():
        notes.append(f"{int(duplicated.sum())} rows appear in more than one run (same unit and checkpoint) "
                     f"and are counted once")
        frame = frame[~duplicated]
    notes.extend(mixed_provenance(frame))
    is_floor = equals(frame, "role", FLOOR_ROLE)
    floor = frame[is_floor & equals(frame, "status", "ok")].reset_index(drop=True)
    frame = frame[~is_floor]
    if not equals(frame, "status", "ok").any():
        reasons = frame["reason"].dropna()
        first = f"; first reason: {reasons.iloc[0]}" if len(reasons) else ""
        raise ReportError(f"{source}: all {len(frame)} rows are failed units, nothing to report{first}")
    return Results(frame.reset_index(drop=True), discover_tasks(frame.columns), tuple(runs), tuple(notes), floor)


def readout_name(rows: pd.DataFrame) -> str:
    """The readout the accuracies of `rows` were read with, in words; several joined by " / " (mixed)."""
    if "readout" not in rows:
        return UNKNOWN_READOUT
    names = list(dict.fromkeys(rows["readout"].dropna()))
    return " / ".join(names) if names else UNKNOWN_READOUT


def mixed_provenance(frame: pd.DataFrame) -> list[str]:
    """Warnings for a table whose finished rows were read with several readouts, code versions or machines."""
    ok = frame[equals(frame, "status", "ok")]
    warnings = []
    for column, what in PROVENANCE_COLUMNS.items():
        values = sorted({str(v) for v in ok[column].dropna()}) if column in ok else []
        if len(values) > 1:
            warnings.append(f"WARNING: this table mixes {len(values)} {what} ({'; '.join(values)}): compare "
                            f"numbers only within one, or rerun the units that differ")
    return warnings


def floor_accuracy(results: Results, metric: Metric, size: str | None = None) -> float:
    """The random-init encoders' mean accuracy over seeds (of one encoder size, or all); NaN when the sweep
    measured none (tables written before the sweep probed the floor)."""
    floor = results.floor
    if size is not None and len(floor):
        floor = floor[equals(floor, "student_size", size)]
    if floor.empty or metric.column not in floor:
        return float("nan")
    return float(floor[metric.column].astype(float).mean())


def load_results(run_dirs: Sequence[Path]) -> Results:
    """One table over several runs (several budgets), each checked on its own first."""
    if not run_dirs:
        raise ReportError("no run folder given: name at least one, e.g. salt-budget report runs/<name>")
    frames = []
    for run_dir in run_dirs:
        frame = read_run(run_dir)
        check_table(frame, str(run_dir / "results.parquet"))
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    source = ", ".join(str(d) for d in run_dirs)
    return from_frame(frame, source, run_dirs)


def size_order(rows: pd.DataFrame) -> list[str]:
    """Teacher sizes from small to large, by training FLOPs per teacher step (the table holds no
    parameter counts, and preset names do not sort by size)."""
    teachers = rows[equals(rows, "role", "teacher") & equals(rows, "status", "ok")]
    per_step = (teachers["flops_teacher"].astype(float) / teachers["teacher_steps"].astype(float))
    order = per_step.groupby(teachers["teacher_size"]).median().sort_values()
    rest = sorted(set(rows["teacher_size"].dropna()) - set(order.index))
    return [*order.index, *rest]


def baseline_name(role: str) -> str:
    return BASELINE_NAMES.get(role, role)


def is_baseline(rows: pd.DataFrame) -> pd.Series:
    return (rows["role"].notna() & ~rows["role"].isin((*SALT_ROLES, FLOOR_ROLE))).astype(bool)


def baseline_label(rows: pd.DataFrame) -> pd.Series:
    """A baseline run's name in figures and tables, e.g. "V-JEPA 2 tiny"; the seed where seeds differ. One
    label spans the budgets: its checkpoints are read together, as a student's teacher's are."""
    label = rows["role"].map(baseline_name) + " " + rows["student_size"].astype(str)
    if rows["seed"].nunique() > 1:
        label = label + " seed" + rows["seed"].astype("Int64").astype(str)
    return label
