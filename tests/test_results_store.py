"""The results table kept as one rows file per unit (rows/<unit>.parquet), with no lock: processes appending at
once lose no row, a retry replaces its unit's rows, results.parquet is compiled from rows/ and rebuilt when cut,
a damaged rows file is warned about and its rows kept from results.parquet where it held them, and a run folder
from before rows/ existed is read (and split into rows/), or refused with what to do where its table is cut."""

import logging
from pathlib import Path

import pandas as pd
import pytest

from analysis.schema import rows_file_name
from analysis.tables import ReportError, TableDamaged, read_parquet_snapshot, read_run
from salt_budget.cli import main
from salt_budget.sweep.results.store import FAILED_STEP, append_rows, compile_results, read_results
from tests.test_sweep_run import in_processes, row


def cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _units(folder: str, worker: int) -> None:
    for unit in range(10):
        key = f"w{worker}-u{unit}"
        append_rows(Path(folder), [row(key, 1, acc=0.2)])
        append_rows(Path(folder), [row(key, 2, acc=0.3)])  # the unit's next checkpoint, its step 1 kept


def test_processes_appending_at_once_without_a_lock_lose_no_row(tmp_path):
    assert in_processes(_units, tmp_path, 4) == [0] * 4
    table = read_results(tmp_path)
    assert len(table) == 4 * 10 * 2 and not table.duplicated(["unit_key", "step"]).any()
    assert (table.set_index("step").loc[1, "acc_motion"] == 0.2).all()
    assert len(list((tmp_path / "rows").glob("*.parquet"))) == 40
    assert not [p.name for p in (tmp_path / "rows").iterdir() if p.name.startswith(".")]  # no temporary file left
    # The last append compiled results.parquet after every other one (each rechecks rows/ after writing it).
    assert read_parquet_snapshot(tmp_path / "results.parquet").equals(table)
    assert compile_results(tmp_path).equals(table)


def test_a_retry_replaces_its_rows_and_its_failed_row(tmp_path):
    # The driver writes a unit's failed row, then a retry of the unit (another process) writes its rows.
    append_rows(tmp_path, [row("other", 3)])
    append_rows(tmp_path, [row("a", FAILED_STEP, status="failed", reason="OOM")])
    table = append_rows(tmp_path, [row("a", FAILED_STEP, status="failed", reason="OOM again")])
    assert table[table.unit_key == "a"].reason.tolist() == ["OOM again"]
    append_rows(tmp_path, [row("a", 5, acc=0.1)])
    append_rows(tmp_path, [row("a", 10)])
    table = append_rows(tmp_path, [row("a", 5, acc=0.7)])
    assert list(zip(table.unit_key, table.step, table.status)) == [("a", 5, "ok"), ("a", 10, "ok"), ("other", 3, "ok")]
    assert table.set_index(["unit_key", "step"]).loc[("a", 5), "acc_motion"] == 0.7
    own = pd.read_parquet(tmp_path / "rows" / "a.parquet")
    assert own.step.tolist() == [5, 10] and own.acc_motion.tolist() == [0.7, 0.5]


def test_a_cut_results_parquet_is_rebuilt_from_the_units_rows(tmp_path):
    append_rows(tmp_path, [row("a", 5), row("a", 10, extra_column="x")])
    append_rows(tmp_path, [row("b", FAILED_STEP, status="failed", reason="OOM")])
    append_rows(tmp_path, [row("c", 5, acc_appearance=0.25, converged_appearance=False)])  # a task only c has
    before = read_parquet_snapshot(tmp_path / "results.parquet")
    csv = (tmp_path / "results.csv").read_text()
    cut_in_half(tmp_path / "results.parquet")
    assert read_results(tmp_path).equals(before)  # the table is rows/: a cut results.parquet is not read
    assert read_run(tmp_path).equals(before)  # nor by salt-budget report
    assert compile_results(tmp_path).equals(before)
    assert read_parquet_snapshot(tmp_path / "results.parquet").equals(before)
    assert (tmp_path / "results.csv").read_text() == csv
    (tmp_path / "results.parquet").unlink()
    assert read_run(tmp_path).equals(before)  # report reads a folder with rows/ and no results.parquet


def test_a_damaged_rows_file_is_warned_about_and_its_rows_kept_from_results_parquet(tmp_path, caplog):
    append_rows(tmp_path, [row("a", 5), row("a", 10)])
    table = append_rows(tmp_path, [row("b", 5)])
    cut_in_half(tmp_path / "rows" / "a.parquet")
    with caplog.at_level(logging.WARNING, logger="analysis.tables"):
        assert read_results(tmp_path).equals(table)
        read_results(tmp_path)
    [warning] = [r.getMessage() for r in caplog.records]  # once per damaged file
    assert "rows/a.parquet cannot be read" in warning and "2 rows are taken from results.parquet" in warning
    assert compile_results(tmp_path).equals(table)  # heals it: a's file rewritten, the damaged one kept aside
    assert pd.read_parquet(tmp_path / "rows" / "a.parquet").step.tolist() == [5, 10]
    assert len(list((tmp_path / "rows").glob(".a.parquet.damaged-*"))) == 1


def test_a_damaged_rows_file_nothing_else_holds_leaves_its_unit_to_be_probed_again(tmp_path, caplog):
    append_rows(tmp_path, [row("a", 5), row("a", 10)])
    append_rows(tmp_path, [row("b", 5)])
    (tmp_path / "results.parquet").unlink()
    cut_in_half(tmp_path / "rows" / "a.parquet")
    with caplog.at_level(logging.WARNING, logger="analysis.tables"):
        table = read_results(tmp_path)
    assert table.unit_key.tolist() == ["b"]  # no crash: a has no rows, so a resumed sweep probes it again
    assert "rows are left out of the table" in caplog.text and "counts as not run" in caplog.text
    assert compile_results(tmp_path).unit_key.tolist() == ["b"]
    table = append_rows(tmp_path, [row("a", 5)])  # the unit probed again replaces its damaged file
    assert sorted(table.unit_key) == ["a", "b"]
    assert pd.read_parquet(tmp_path / "rows" / "a.parquet").step.tolist() == [5]


def test_a_run_folder_from_before_rows_is_read_and_split_into_rows(tmp_path):
    append_rows(tmp_path, [row("a", 5), row("a", 10), row("b", FAILED_STEP, status="failed", reason="OOM")])
    old = read_parquet_snapshot(tmp_path / "results.parquet")
    for path in (tmp_path / "rows").iterdir():
        path.unlink()
    (tmp_path / "rows").rmdir()  # what a sweep of an earlier salt-budget left: results.parquet and .csv
    assert read_results(tmp_path).equals(old) and read_run(tmp_path).equals(old)
    assert compile_results(tmp_path).equals(old)  # splits it into rows/, one file per unit
    assert sorted(p.name for p in (tmp_path / "rows").iterdir()) == ["a.parquet", "b.parquet"]
    (tmp_path / "rows" / "a.parquet").unlink()
    (tmp_path / "rows" / "b.parquet").unlink()
    (tmp_path / "rows").rmdir()
    table = append_rows(tmp_path, [row("b", 5)])  # a resumed unit's append splits it too, keeping every old row
    assert list(zip(table.unit_key, table.step, table.status)) == [("a", 5, "ok"), ("a", 10, "ok"), ("b", 5, "ok")]


def test_a_cut_table_with_no_rows_folder_is_refused_with_what_to_do(tmp_path, capsys):
    append_rows(tmp_path, [row("a", 5)])
    (tmp_path / "rows" / "a.parquet").unlink()
    (tmp_path / "rows").rmdir()
    cut_in_half(tmp_path / "results.parquet")
    for call in (read_results, compile_results, lambda folder: append_rows(folder, [row("b", 5)])):
        with pytest.raises(TableDamaged, match=r"results.parquet cannot be read .* no rows/ folder .* move it away "
                                               r"\(mv .*\) and rerun the sweep "
                                               r"with --resume"):
            call(tmp_path)
    assert issubclass(TableDamaged, ReportError)  # the CLI prints it as one line
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "report")]) == 2
    err = capsys.readouterr().err
    assert "move it away" in err and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "rows").exists()  # nothing was written over it


def test_results_parquet_keeps_rows_another_unit_wrote_while_it_was_compiled(tmp_path, monkeypatch):
    from salt_budget.sweep.results import store as results

    append_rows(tmp_path, [row("a", 5)])
    late = results.read_unit_rows(tmp_path)[0].assign(unit_key="late")
    read, calls = results.read_unit_rows, []

    def read_then_another_unit_writes(run_dir):
        found = read(run_dir)
        if not calls:  # between this compile's read of rows/ and its write of results.parquet
            late.to_parquet(tmp_path / "rows" / "late.parquet", index=False)
        calls.append(1)
        return found

    monkeypatch.setattr(results, "read_unit_rows", read_then_another_unit_writes)
    append_rows(tmp_path, [row("b", 5)])
    assert sorted(read_parquet_snapshot(tmp_path / "results.parquet").unit_key) == ["a", "b", "late"]


def test_every_unit_key_is_a_file_name_of_its_own(tmp_path, caplog):
    keys = ["3fa2b1c4d5e6", "a/b", "../up", ".hidden", "A", "a", "", "x" * 400, "x" * 399 + "y", "naïve"]
    names = [rows_file_name(key) for key in keys]
    assert len(set(names)) == len(keys)
    assert names[0] == "3fa2b1c4d5e6.parquet"
    assert all("/" not in n and not n.startswith(".") and len(n) <= 170 for n in names)
    table = append_rows(tmp_path, [row(key, 1) for key in keys])
    assert sorted(table.unit_key) == sorted(keys) and len(list((tmp_path / "rows").iterdir())) == len(keys)
    (tmp_path / "rows" / ".a.parquet.tmp-0123").write_bytes(b"half a file")  # a killed writer's leftover
    with caplog.at_level(logging.WARNING, logger="analysis.tables"):
        assert read_results(tmp_path).equals(table)
    assert not caplog.records  # not a rows file: not read, not warned about
