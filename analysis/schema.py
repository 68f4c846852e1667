"""The results table's schema: its version, columns, dtypes, row order and file names, and the roles and
thresholds its rows are read by.

analysis/ reads the table, so the schema is defined here, once: salt_budget/sweep (the writer: results.py,
rows.py) imports it from here, as analysis does not import salt_budget (the orchestrator depends on analysis,
not the reverse).
"""

from __future__ import annotations

import hashlib

import pandas as pd

SCHEMA_VERSION = 1
MEAN_TASK = "mean"  # acc_mean, the task average, is selectable like a task
SALT_ROLES = ("teacher", "student")  # every other role but the floor is a baseline trained on its own
# Never-trained encoders probed on the sweep's readout (salt_budget/sweep/running/floor.py): the floor every accuracy is
# read against. Results keeps them apart (Results.floor), so no figure or finding counts them as encoders.
FLOOR_ROLE = "random_init"
# The status of the row that marks a search trial stopped at a probe point by the search's pruning (its probed
# checkpoints keep their "ok" rows; it has no final one). Not a failure: it ran as the search asked.
PRUNED_STATUS = "pruned"
UNKNOWN_READOUT = "readout not recorded (a table written before salt-budget recorded it)"
# Columns that say how and where a row was read; a table whose rows differ in one of them mixes what should
# not be compared without saying so (salt_budget/sweep/results/store.py writes them).
PROVENANCE_COLUMNS = {
    "readout": "readouts", "git_commit": "code versions (git commits)", "git_dirty": "clean and modified checkouts",
    "code_version": "package versions", "torch_version": "torch versions", "machine": "machines (probe)",
    "cpu_capability": "CPU kernel instruction sets",
    "train_machine": "machines (training)", "train_cpu_capability": "CPU kernel instruction sets (training)",
}
# A baseline's collapse signal (optional columns: tables from before the baseline lack them); the sweep flags
# `collapsed` when it writes the row (salt_budget/sweep/running/rows.py).
COLLAPSE_COLUMNS = ("target_std", "collapsed")
# Below this target_std a run is flagged as collapsed. Measured 2026-11-27 on a batch of the synthetic set:
# 0.90 for a random-init tiny encoder, 0.70-0.87 for V-Pixel teachers and SALT students trained 1,000-2,000
# steps; every token at one vector plus 1% noise gives 0.01.
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
        name = f"{name[:130]}-{hashlib.sha256(str(unit_key).encode()).hexdigest()[:16]}"
    return f"{name}.parquet"
