"""The evidence docs/study_tiny.md is read from: the study's inputs shipped under docs/study_tiny/data (salt-budget
report --archive) rebuild, with no training, exactly the tables shipped under docs/study_tiny/tables and the
numbers of docs/study_tiny/study.md; and `salt-budget recommend --check` reads the shipped allocation sweep."""

from pathlib import Path

from salt_budget.cli import main

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "docs" / "study_tiny"


def test_the_shipped_study_tables_are_rebuilt_from_the_shipped_inputs(tmp_path, capsys):
    assert (SHIPPED / "data" / "study.json").is_file(), "docs/study_tiny/data is the study's archive (report --archive)"
    out = tmp_path / "report"
    assert main(["report", str(SHIPPED / "data"), "--out", str(out), "--format", "md"]) == 0
    shipped = sorted(p.name for p in (SHIPPED / "tables").glob("*.csv"))
    assert shipped == sorted(p.name for p in (out / "tables").glob("*.csv"))
    for name in shipped:
        assert (out / "tables" / name).read_text() == (SHIPPED / "tables" / name).read_text(), name
    assert (out / "study.md").read_text() == (SHIPPED / "study.md").read_text()
    capsys.readouterr()
    assert main(["recommend", str(SHIPPED / "data" / "main"), "--check"]) == 0
    assert "3840" in capsys.readouterr().out.replace(",", "")
