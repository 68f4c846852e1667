"""Reading and checking results tables (runs/<name>/results.parquet, written by salt_budget/sweep/results.py).

analysis/ does not import salt_budget (the orchestrator depends on analysis, not the reverse), so the
schema version it reads is spelled out here; tests/test_analysis.py checks that the two agree.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pandas as pd

SCHEMA_VERSION = 1
MEAN_TASK = "mean"  # acc_mean, the task average, is selectable like a task
SALT_ROLES = ("teacher", "student")  # every other role but the floor is a baseline trained on its own
# Never-trained encoders probed on the sweep's readout (salt_budget/sweep/floor.py): the floor every accuracy is
# read against. Results keeps them apart (Results.floor), so no figure or finding counts them as encoders.
FLOOR_ROLE = "random_init"
UNKNOWN_READOUT = "readout not recorded (a table written before salt-budget recorded it)"
# Columns that say how and where a row was read; a table whose rows differ in one of them mixes what should
# not be compared without saying so (salt_budget/sweep/results.py writes them).
PROVENANCE_COLUMNS = {
    "readout": "readouts", "git_commit": "code versions (git commits)", "git_dirty": "clean and modified checkouts",
    "code_version": "package versions", "torch_version": "torch versions", "machine": "machines (probe)",
    "cpu_capability": "CPU kernel instruction sets",
    "train_machine": "machines (training)", "train_cpu_capability": "CPU kernel instruction sets (training)",
}
BASELINE_NAMES = {"vjepa2": "V-JEPA 2"}
# A baseline's collapse signal (optional columns: tables from before the baseline lack them). The threshold
# is trainers/vjepa2.py's, which flags `collapsed` when the sweep writes the row; tests check the two agree.
COLLAPSE_COLUMNS = ("target_std", "collapsed")
COLLAPSE_STD = 0.1

# Columns the analysis reads; the rest of the table is carried along untouched.
REQUIRED = (
    "schema_version", "sweep", "unit_key", "role", "allocation_id", "budget", "teacher_key", "teacher_size",
    "teacher_steps", "teacher_share", "student_size", "student_steps", "seed", "step", "is_final",
    "flops_teacher", "flops_student", "flops_total", "loss_final", "loss_smoothed", "rankme", "acc_mean",
    "status", "reason",
)
# What identifies a row to a reader: carried into every figure table and shown on hover.
CONFIG_COLUMNS = (
    "sweep", "role", "allocation_id", "budget", "teacher_size", "teacher_steps", "teacher_schedule",
    "teacher_share", "student_size", "student_steps", "seed", "step", "unit_key", "teacher_key",
)


class ReportError(Exception):
    """Input the report cannot use; the message says what is wrong and what to do (one line)."""


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
        return self.rows[~equals(self.rows, "status", "ok")]

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


def read_parquet_snapshot(path: Path) -> pd.DataFrame:
    """Read a table that another process may replace while we read it.

    The writers swap in a whole new file with a rename, but pyarrow opens a path more than once (the
    footer, then the pages): a swap in between pairs the old footer with the new file's pages and fails
    ("Deserializing page header failed"). One read of the bytes sees a single version of the file.
    """
    return pd.read_parquet(io.BytesIO(path.read_bytes()))


def read_run(run_dir: Path) -> pd.DataFrame:
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir} is not a directory: give a sweep's run folder, e.g. runs/<name>")
    path = run_dir / "results.parquet"
    if not path.is_file():
        raise ReportError(f"{run_dir} has no results.parquet: it is not a sweep's run folder, or no unit has "
                          f"finished yet (salt-budget sweep writes it as units finish)")
    try:
        return read_parquet_snapshot(path)
    except (OSError, ValueError) as error:  # pyarrow's errors derive from these
        raise ReportError(f"{path} cannot be read ({error}); rerun the sweep with --resume to rewrite it") from None


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
