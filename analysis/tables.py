"""Reading and checking results tables (runs/<name>/rows/ and results.parquet, written by salt_budget/sweep/results.py).

A run folder's table is its units' rows files (rows/<unit>.parquet, one per unit, each replaced whole by the
unit's own writer) read as one: read_table. results.parquet is that table compiled for readers; a run folder
from before rows/ existed holds only results.parquet, which is read as it is. The table's layout (columns,
dtypes, row order) is defined here, so that the writer and every reader shape it alike; analysis/ does not
import salt_budget (the orchestrator depends on analysis, not the reverse), so the schema version it reads is
spelled out here too; tests/test_analysis.py checks that the two agree.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

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

TABLE_FILE = "results.parquet"  # the compiled table (and results.csv, its copy as text)
CSV_FILE = "results.csv"
ROWS_DIR = "rows"  # one rows file per unit: the table's source
# The table's columns in order, with their dtypes; per-task columns (acc_<task>, train_acc_<task>, chance_<task>,
# readout_<...>) follow, sorted, then the rest (converged_<task>) in the order first seen.
TABLE_COLUMNS: dict[str, str] = {
    "schema_version": "Int64", "sweep": "string", "config_hash": "string", "unit_key": "string",
    "role": "string", "allocation_id": "string", "budget": "float64", "budget_kind": "string",
    "teacher_key": "string", "teacher_size": "string", "teacher_steps": "Int64", "teacher_schedule": "string",
    "teacher_share": "float64", "student_size": "string", "student_steps": "Int64", "seed": "Int64",
    "step": "Int64", "is_final": "boolean",
    "flops_teacher": "float64", "flops_student": "float64", "flops_total": "float64",
    "loss_final": "float64", "loss_smoothed": "float64",
    "context_ratio": "float64", "target_ratio": "float64", "raw_target_ratio": "float64",
    "rankme": "float64", "target_std": "float64", "collapsed": "boolean", "acc_mean": "float64",
    "train_wall_s": "float64", "probe_wall_s": "float64",
    "status": "string", "reason": "string", "checkpoint": "string",
    # How and where each accuracy was read (trainers.stage_config.ProbeConfig.readout, trainers.provenance): the
    # probing process's code, libraries, machine and threads, and every machine that trained the encoder.
    "readout": "string", "probe_kind": "string", "probe_pooling": "string", "probe_protocol": "string",
    "code_version": "string", "git_commit": "string", "git_dirty": "boolean", "torch_version": "string",
    "ray_version": "string", "machine": "string", "cpu_capability": "string", "threads": "Int64", "train_machine": "string",
    "train_threads": "string", "train_cpu_capability": "string", "written_at": "string",
}
TASK_PREFIXES = ("acc_", "train_acc_", "chance_", "readout_")
# Row order; (unit_key, step) is unique, so the order does not depend on the order rows were written in.
TABLE_ORDER = ["role", "budget", "teacher_size", "teacher_steps", "seed", "unit_key", "step"]

log = logging.getLogger(__name__)

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


class TableDamaged(ReportError):
    """A results table that cannot be read and has nothing to be rebuilt from; the message says what to do."""


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


# What a damaged (cut, emptied, overwritten) parquet file raises: pyarrow's errors derive from these.
UNREADABLE = (OSError, ValueError, pa.ArrowException)
READ_TRIES = 3


def read_rows_file(path: Path, parse=pd.read_parquet):
    """A rows file from one snapshot of its bytes (read_parquet_snapshot), tried READ_TRIES times before it counts
    as damaged: on NFS a read that races a rename can fail once (a stale file handle) and succeed at once after.
    FileNotFoundError where it is gone."""
    for attempt in range(READ_TRIES):
        try:
            return parse(io.BytesIO(path.read_bytes()))
        except FileNotFoundError:
            raise
        except UNREADABLE:
            if attempt == READ_TRIES - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def conform(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` in the table's layout: every column of TABLE_COLUMNS with its dtype, in order, then the per-task
    columns (float64, sorted), then the rest (converged_<task> as boolean)."""
    for column, dtype in TABLE_COLUMNS.items():
        if column not in frame:
            frame[column] = pd.Series(index=frame.index, dtype=dtype)
        else:
            frame[column] = frame[column].astype(dtype)
    tasks = sorted(c for c in frame.columns if c not in TABLE_COLUMNS and c.startswith(TASK_PREFIXES))
    for column in tasks:
        frame[column] = frame[column].astype("float64")
    for column in (c for c in frame.columns if c.startswith("converged_")):
        frame[column] = frame[column].astype("boolean")
    rest = [c for c in frame.columns if c not in TABLE_COLUMNS and c not in tasks]
    return frame[[*TABLE_COLUMNS, *tasks, *rest]]


def sort_table(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(TABLE_ORDER, kind="stable", ignore_index=True)


_SAFE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


def rows_file_name(unit_key: str) -> str:
    """The file name of a unit's rows: its key, every character but [a-z0-9-_] written %XX (UTF-8), so that any
    key is one file name, never hidden, and distinct from every other key even on a case-insensitive file
    system; a key over 150 characters is cut and ends in a hash of the whole key."""
    name = "".join(c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode()) for c in str(unit_key)) or "%"
    if len(name) > 150:
        import hashlib

        name = f"{name[:130]}-{hashlib.sha256(str(unit_key).encode()).hexdigest()[:16]}"
    return f"{name}.parquet"


def rows_files(rows_dir: Path) -> list[Path]:
    """The units' rows files, by name (a writer's temporary files and set-aside damaged files start with '.')."""
    return sorted(p for p in rows_dir.glob("*.parquet") if not p.name.startswith("."))


@dataclass(frozen=True)
class DamagedRows:
    """A unit's rows file that cannot be read, and that unit's rows as results.parquet last held them (or none)."""

    path: Path
    error: str
    rescued: pd.DataFrame


_warned: set[tuple[str, int, int]] = set()


def _warn_once(damaged: DamagedRows) -> None:
    try:
        stat = damaged.path.stat()
        key = (str(damaged.path), stat.st_size, stat.st_mtime_ns)
    except OSError:
        key = (str(damaged.path), -1, -1)
    if key in _warned:
        return
    _warned.add(key)
    kept = (f"its unit's {len(damaged.rescued)} rows are taken from {TABLE_FILE}, which held them"
            if len(damaged.rescued) else
            f"its unit's rows are left out of the table ({TABLE_FILE} does not hold them), and the unit counts "
            f"as not run until the sweep probes its checkpoints again")
    log.warning("%s cannot be read (%s), outside damage (its writer replaces it whole): %s", damaged.path,
                damaged.error, kept)


def _rescue(run_dir: Path, damaged: list[tuple[Path, str]]) -> list[DamagedRows]:
    """The rows of the damaged files' units from results.parquet (the table compiled from rows/ earlier)."""
    table = None
    path = run_dir / TABLE_FILE
    try:
        table = read_parquet_snapshot(path) if path.is_file() else None
    except UNREADABLE:
        pass
    names = (table["unit_key"].map(rows_file_name) if table is not None and "unit_key" in table
             else pd.Series(dtype=object))
    found = []
    for file, error in damaged:
        rescued = table[(names == file.name).to_numpy()] if len(names) else pd.DataFrame()
        found.append(DamagedRows(file, error, rescued.reset_index(drop=True)))
    return found


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [frame for frame in frames if len(frame)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def read_unit_rows(run_dir: Path) -> tuple[pd.DataFrame, list[DamagedRows]]:
    """Every rows file of run_dir/rows/ read as one table (conformed and sorted), and the files that could not be
    read (each warned about once), whose units' rows come from results.parquet where it holds them.

    Each file is read from one snapshot of its bytes (read_parquet_snapshot says why), not as a pyarrow dataset,
    which opens each file more than once; the files may differ in their per-task columns."""
    tables, damaged = [], []
    for path in rows_files(run_dir / ROWS_DIR):
        try:
            tables.append(read_rows_file(path, pq.read_table))
        except FileNotFoundError:  # set aside as damaged between the listing and the read
            continue
        except UNREADABLE as error:
            damaged.append((path, f"{type(error).__name__}: {error}"))
    tables = [table for table in tables if table.num_rows]
    try:
        frame = pa.concat_tables(tables, promote_options="default").to_pandas() if tables else pd.DataFrame()
    except (pa.ArrowException, ValueError, TypeError):  # a column of different types in two files
        frame = _concat([table.to_pandas() for table in tables])
    found = _rescue(run_dir, damaged) if damaged else []
    for item in found:
        _warn_once(item)
    frame = _concat([frame, *(item.rescued for item in found)])
    return sort_table(conform(frame)), found


def _damaged_message(path: Path, error: BaseException) -> str:
    # What the sweep does then (salt_budget/sweep): a unit with no rows is probed again from its kept checkpoints
    # and is not trained again (a trained student whose Tune trial is done, by the driver at --resume).
    return (f"{path} cannot be read ({type(error).__name__}: {error}) and {path.parent} has no {ROWS_DIR}/ folder "
            f"to rebuild it from (a sweep written before salt-budget kept each unit's rows there): move it away "
            f"(mv {path} {path}.damaged) and rerun the sweep with --resume, which trains no unit again and probes "
            f"every kept checkpoint again to rebuild the table ({CSV_FILE} beside it holds the rows as text)")


def read_table(run_dir: Path) -> pd.DataFrame | None:
    """A run folder's results table: its rows/ read as one (read_unit_rows) where the folder has rows/, else its
    results.parquet as it is (a folder written before rows/ existed); None where it has neither. Raises
    TableDamaged where results.parquet is its only table and cannot be read."""
    run_dir = Path(run_dir)
    if (run_dir / ROWS_DIR).is_dir():
        return read_unit_rows(run_dir)[0]
    path = run_dir / TABLE_FILE
    if not path.is_file():
        return None
    try:
        return read_parquet_snapshot(path)
    except FileNotFoundError:
        return read_table(run_dir) if (run_dir / ROWS_DIR).is_dir() else None  # moved into rows/ meanwhile
    except UNREADABLE as error:
        raise TableDamaged(_damaged_message(path, error)) from None


def read_run(run_dir: Path) -> pd.DataFrame:
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir} is not a directory: give a sweep's run folder, e.g. runs/<name>")
    frame = read_table(run_dir)
    if frame is None:
        raise ReportError(f"{run_dir} has no {TABLE_FILE}: it is not a sweep's run folder, or no unit has "
                          f"finished yet (salt-budget sweep writes it as units finish)")
    return frame


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
