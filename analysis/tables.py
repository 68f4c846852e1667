"""Reading a run folder's results table (runs/<name>/rows/ and results.parquet, written by
salt_budget/sweep/results/store.py), in the layout analysis/schema.py defines.

A run folder's table is its units' rows files (rows/<unit>.parquet, one per unit, each replaced whole by the
unit's own writer) read as one: read_table. results.parquet is that table compiled for readers; a run folder
from before rows/ existed holds only results.parquet, which is read as it is.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from analysis.schema import CSV_FILE, ROWS_DIR, TABLE_FILE, conform, rows_file_name, sort_table

log = logging.getLogger(__name__)


class ReportError(Exception):
    """Input the report cannot use; the message says what is wrong and what to do (one line)."""


class TableDamaged(ReportError):
    """A results table that cannot be read and has nothing to be rebuilt from; the message says what to do."""


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


