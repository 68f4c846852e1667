"""The results table of a sweep: one row per (encoder, checkpoint), kept as one rows file per unit.

runs/<name>/rows/<unit>.parquet holds every row of one unit (analysis.schema.rows_file_name names it from the
unit's key). A unit appends by reading its own file, replacing rows of the same (unit_key, step) and writing
the file whole through a temporary file and a rename: no lock, so this works on a shared file system without
`flock`, with units writing at once from several nodes. Only one process writes a unit's file at a time (the
unit's own task or trial, or the driver once that has failed for good). The table is every rows file read as
one (analysis.tables.read_unit_rows), conformed to COLUMNS and sorted.

results.parquet and results.csv are that table compiled for readers (salt-budget report, a user's pandas),
rewritten after each append through a temporary file and a rename; two units appending at once may leave
one's rows out of it for a moment (the last writer wins, and it rechecks rows/ after writing), so the driver
compiles it once more at the end of a sweep and at the start of a resumed one (compile_results). A damaged
results.parquet is rebuilt from rows/ then, and a damaged rows file (outside damage: its writer replaces it
whole) is warned about and its unit's rows are taken from results.parquet where it holds them; where neither
holds them the unit has no rows, and a resumed sweep probes its checkpoints again. A run folder from before
rows/ existed (results.parquet alone) is read as it is and split into rows/ by the first append or compile;
if its results.parquet cannot be read, TableDamaged says what to do.

A unit that fails for good gets one row at step FAILED_STEP with status "failed" and the reason; its rows from
a later successful attempt replace it. A search trial stopped at a probe point by the search's pruning gets such a
row with status "pruned" instead (salt_budget/sweep/running/search_trial.py); its probed checkpoints keep theirs. target_std and collapsed are a baseline's collapse signal
(analysis/schema.py COLLAPSE_STD), empty for teachers and students. Every file is read from one snapshot of its bytes
(analysis.tables.read_parquet_snapshot), so a reader sees one whole version of it, never half of one.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from trainers.atomic import atomic_write

from analysis.results import equals
from analysis.schema import CSV_FILE, ROWS_DIR, TABLE_COLUMNS, TABLE_FILE, conform, rows_file_name, sort_table
from analysis.tables import UNREADABLE, TableDamaged, read_rows_file, read_table, read_unit_rows, rows_files

FAILED_STEP = -1
KEY = ["unit_key", "step"]
COLUMNS = TABLE_COLUMNS  # fixed columns in table order (analysis.schema defines them for writer and readers)
COMPILE_ROUNDS = 5  # compiles of results.parquet per append while other units keep changing rows/

# TableDamaged (analysis.tables, a ReportError: the CLI prints it as one line) is raised from here too.
__all__ = ["COLUMNS", "FAILED_STEP", "KEY", "TableDamaged", "append_rows", "compile_results",
           "ok_steps", "read_results", "rows_dir", "table_path"]


def table_path(sweep_dir: Path) -> Path:
    return sweep_dir / TABLE_FILE


def rows_dir(sweep_dir: Path) -> Path:
    return sweep_dir / ROWS_DIR


def read_results(sweep_dir: Path) -> pd.DataFrame:
    """The sweep's table (rows/ read as one; results.parquet of a folder from before rows/); empty if none yet."""
    table = read_table(sweep_dir)
    return table if table is not None else conform(pd.DataFrame())


def _replace(frame: pd.DataFrame, path: Path, write: Callable[[pd.DataFrame, Path], None]) -> None:
    atomic_write(path, lambda tmp: write(frame, tmp))


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    frame.to_parquet(path, index=False)


def _ensure_rows(sweep_dir: Path) -> Path:
    """rows/, made on first use; a folder from before rows/ existed has its results.parquet split into it first
    (into a folder of its own, renamed into place: a process that loses the race drops its copy)."""
    folder = rows_dir(sweep_dir)
    if folder.is_dir():
        return folder
    old = table_path(sweep_dir)
    if not old.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    table = read_table(sweep_dir)  # TableDamaged if it cannot be read: nothing to rebuild it from
    if table is None:  # moved in by another process meanwhile
        return _ensure_rows(sweep_dir)
    staging = sweep_dir / f".{ROWS_DIR}.tmp-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        for key, unit_rows in table.groupby("unit_key", sort=False, dropna=False):
            _write_parquet(sort_table(conform(unit_rows.reset_index(drop=True))), staging / rows_file_name(key))
        os.rename(staging, folder)
    except OSError:
        if not folder.is_dir():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _unit_rows(sweep_dir: Path, path: Path) -> pd.DataFrame:
    """A unit's rows as its file holds them; a damaged file is set aside (kept as .<name>.damaged-<id>) and the
    unit's rows are taken from results.parquet where it holds them."""
    try:
        return read_rows_file(path)
    except FileNotFoundError:
        return pd.DataFrame()
    except UNREADABLE:
        pass
    damaged = [item for item in read_unit_rows(sweep_dir)[1] if item.path == path]  # warns, and rescues its rows
    if not damaged:  # it read whole this time
        return read_rows_file(path)
    try:
        os.replace(path, path.with_name(f".{path.name}.damaged-{uuid.uuid4().hex[:8]}"))
    except FileNotFoundError:
        pass
    return damaged[0].rescued


def _append_unit(sweep_dir: Path, folder: Path, unit_key: Any, new: pd.DataFrame) -> None:
    """Merge `new` (rows of one unit) into the unit's rows file: rows of the same (unit_key, step) are replaced,
    and the unit's failed rows go once it has a finished one."""
    path = folder / rows_file_name(unit_key)
    old = _unit_rows(sweep_dir, path)
    if len(old):
        old = conform(old)
        if equals(new, "status", "ok").any():
            old = old[equals(old, "status", "ok")]
        old = old[~old.set_index(KEY).index.isin(new.set_index(KEY).index)]
    frames = [frame for frame in (old, new) if len(frame)]
    merged = sort_table(conform(pd.concat(frames, ignore_index=True)))
    _replace(merged, path, _write_parquet)


def _listing(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Each rows file's identity (inode, size, mtime): a rename or rewrite changes it."""
    found = {}
    for path in rows_files(folder):
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        found[path.name] = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    return found


def _heal(sweep_dir: Path, damaged: list) -> None:
    """Rewrite each damaged rows file from its unit's rows that results.parquet held (the damaged one is kept
    aside); one whose unit results.parquet does not hold is left for a rerun of the unit to replace."""
    for item in damaged:
        if not len(item.rescued):
            continue
        try:
            os.replace(item.path, item.path.with_name(f".{item.path.name}.damaged-{uuid.uuid4().hex[:8]}"))
        except FileNotFoundError:
            continue  # its unit replaced it meanwhile
        _replace(sort_table(conform(item.rescued.copy())), item.path, _write_parquet)


def _compile(sweep_dir: Path, heal: bool = False) -> pd.DataFrame:
    folder = rows_dir(sweep_dir)
    table = None
    for _ in range(COMPILE_ROUNDS):
        before = _listing(folder)
        table, damaged = read_unit_rows(sweep_dir)
        if heal and damaged:
            _heal(sweep_dir, damaged)
            heal = False
            continue
        if len(table) or table_path(sweep_dir).exists():
            _replace(table, table_path(sweep_dir), _write_parquet)
            _replace(table, sweep_dir / CSV_FILE, lambda df, p: df.to_csv(p, index=False))
        if _listing(folder) == before:  # no unit wrote meanwhile: what we wrote holds every row
            break
    return table


def compile_results(sweep_dir: Path) -> pd.DataFrame:
    """Rebuild results.parquet and results.csv from rows/ and return the table; call it where no unit of the
    sweep writes (the driver at the start of a resumed sweep, and at its end).

    A folder from before rows/ existed is split into rows/ first (TableDamaged where its results.parquet cannot
    be read: nothing holds its rows elsewhere). A damaged results.parquet is rewritten from rows/; a damaged
    rows file is set aside and rewritten from the rows results.parquet held of its unit, where it held them
    (where not, the unit has no rows and the resumed sweep probes its checkpoints again). A folder without a
    row gets no results.parquet."""
    sweep_dir = Path(sweep_dir)
    if not rows_dir(sweep_dir).is_dir() and not table_path(sweep_dir).is_file():
        return conform(pd.DataFrame())
    _ensure_rows(sweep_dir)
    return _compile(sweep_dir, heal=True)


def append_rows(sweep_dir: Path, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Add `rows` to the table, replacing rows with the same (unit_key, step); returns the new table."""
    if not rows:
        return read_results(sweep_dir)
    sweep_dir = Path(sweep_dir)
    folder = _ensure_rows(sweep_dir)
    new = conform(pd.DataFrame(rows))
    for unit_key, unit_rows in new.groupby("unit_key", sort=False, dropna=False):
        _append_unit(sweep_dir, folder, unit_key, unit_rows.reset_index(drop=True))
    return _compile(sweep_dir)


def ok_steps(table: pd.DataFrame, unit_key: str) -> set[int]:
    """Checkpoints of a unit that already have a finished row."""
    done = table[(table["unit_key"] == unit_key) & (table["status"] == "ok")]
    return {int(step) for step in done["step"]}
