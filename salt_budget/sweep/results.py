"""The results table runs/<name>/results.parquet (+ results.csv): one row per (encoder, checkpoint).

Every unit appends its rows as it finishes them. An append holds a file lock, rewrites both files
through a temporary file and a rename, and keeps one row per
(unit_key, step): a resumed or retried unit replaces its rows instead of duplicating them. A unit
that fails for good gets one row at step FAILED_STEP with status "failed" and the reason; its
rows from a later successful attempt replace it. target_std and collapsed are a baseline's collapse
signal (trainers/vjepa2.py), empty for teachers and students. A read takes the file's bytes in one go
(analysis.tables.read_parquet_snapshot), so it sees one whole version of the table, never half of one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.tables import read_parquet_snapshot
from trainers.locks import file_lock

SCHEMA_VERSION = 1
FAILED_STEP = -1
KEY = ["unit_key", "step"]

# Fixed columns in table order; per-task columns (acc_<task>, train_acc_<task>, chance_<task>) follow.
COLUMNS: dict[str, str] = {
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
_TASK_PREFIXES = ("acc_", "train_acc_", "chance_", "readout_")


def table_path(sweep_dir: Path) -> Path:
    return sweep_dir / "results.parquet"


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    for column, dtype in COLUMNS.items():
        if column not in frame:
            frame[column] = pd.Series(index=frame.index, dtype=dtype)
        else:
            frame[column] = frame[column].astype(dtype)
    tasks = sorted(c for c in frame.columns if c not in COLUMNS and c.startswith(_TASK_PREFIXES))
    for column in tasks:
        frame[column] = frame[column].astype("float64")
    for column in (c for c in frame.columns if c.startswith("converged_")):
        frame[column] = frame[column].astype("boolean")
    rest = [c for c in frame.columns if c not in COLUMNS and c not in tasks]
    return frame[[*COLUMNS, *tasks, *rest]]


def read_results(sweep_dir: Path) -> pd.DataFrame:
    path = table_path(sweep_dir)
    return read_parquet_snapshot(path) if path.is_file() else _typed(pd.DataFrame())


def _replace(frame: pd.DataFrame, path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(frame, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def append_rows(sweep_dir: Path, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Add `rows` to the table, replacing rows with the same (unit_key, step); returns the new table."""
    if not rows:
        return read_results(sweep_dir)
    new = _typed(pd.DataFrame(rows))
    with file_lock(sweep_dir / ".results.lock"):
        table = read_results(sweep_dir)
        recovered = set(new.loc[new["status"] == "ok", "unit_key"])
        table = table[~(table["unit_key"].isin(recovered) & (table["status"] != "ok"))]
        replaced = table.set_index(KEY).index.isin(new.set_index(KEY).index)
        table = _typed(pd.concat([df for df in (table[~replaced], new) if len(df)], ignore_index=True))
        table = table.sort_values(["role", "budget", "teacher_size", "teacher_steps", "seed", "unit_key", "step"],
                                  kind="stable", ignore_index=True)
        _replace(table, table_path(sweep_dir), lambda df, p: df.to_parquet(p, index=False))
        _replace(table, sweep_dir / "results.csv", lambda df, p: df.to_csv(p, index=False))
    return table


def ok_steps(table: pd.DataFrame, unit_key: str) -> set[int]:
    """Checkpoints of a unit that already have a finished row."""
    done = table[(table["unit_key"] == unit_key) & (table["status"] == "ok")]
    return {int(step) for step in done["step"]}
