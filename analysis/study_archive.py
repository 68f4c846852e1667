"""The files a study's report is read from, copied where they can be shipped (docs/study_tiny/data/): study.json,
study_log.jsonl, the random-init floor's probe results and each sweep folder's results table. `salt-budget report`
on the copy writes the same tables and study.md as on the study folder, with no checkpoint and no training;
`salt-budget recommend --check <copy>/main` reads the shared sweep's table the same way."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from analysis.tables import ReportError

RESULTS_FILES = ("results.parquet", "results.csv")  # the table, and its CSV copy for readers without pyarrow


def study_inputs(study_dir: Path) -> list[Path]:
    """Every file the study report reads, relative to the study folder."""
    study_dir = Path(study_dir)
    manifest_path = study_dir / "study.json"
    if not manifest_path.is_file():
        raise ReportError(f"{study_dir} has no study.json: it is not a study folder (salt-budget study writes one)")
    found = [Path("study.json")]
    if (study_dir / "study_log.jsonl").is_file():
        found.append(Path("study_log.jsonl"))
    found += sorted(p.relative_to(study_dir) for p in study_dir.glob("random_init/seed*/probes/random_init-*.json"))
    folders = dict.fromkeys(sweep["folder"] for sweep in json.loads(manifest_path.read_text())["sweeps"])
    for folder in folders:
        found += [Path(folder) / name for name in RESULTS_FILES if (study_dir / folder / name).is_file()]
    return found


def archive_study(study_dir: Path, dest: Path) -> list[Path]:
    """Copy study_inputs to `dest` (kept in the same layout); the copied paths."""
    study_dir, dest = Path(study_dir), Path(dest)
    if dest.resolve() == study_dir.resolve():
        raise ReportError(f"--archive {dest} is the study folder itself; name another folder")
    copied = []
    for relative in study_inputs(study_dir):
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(study_dir / relative, target)
        copied.append(target)
    return copied
