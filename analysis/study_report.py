"""`salt-budget report runs/<study>` (and the end of `salt-budget study`): the study report folder.

    <out>/study.md               the ablations against the paper, in numbers
    <out>/study.html             the study's figures with study.md on top (plotly.js inlined)
    <out>/tables/study_*.csv     the table behind every number
    <out>/figures/study_*.png    where kaleido can render (analysis/png.py)
    <out>/sweep/                 salt-budget report of the shared sweep (Pareto fronts, allocation fits, loss plots)
"""

from __future__ import annotations

from pathlib import Path
from typing import Collection

from analysis import html
from analysis.report import FORMATS, Written, write_pngs, write_report
from analysis.study_data import load_study
from analysis.study_figures import study_figures
from analysis.study_findings import summary, tables
from trainers.atomic import atomic_write


def write_study_report(study_dir: Path, out: Path | None = None, task: str | None = None,
                       formats: Collection[str] = FORMATS) -> Written:
    """The study's tables, study.md, study.html and PNGs; `task` narrows the sweep report (the study's tables
    always show every task and their average)."""
    study = load_study(Path(study_dir))
    out = Path(out) if out is not None else Path(study_dir) / "report"
    written = Written(out)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    found = tables(study)
    csv_paths = {}
    for name, frame in found.items():
        path = atomic_write(out / "tables" / f"{name}.csv", lambda p, f=frame: f.to_csv(p, index=False))
        csv_paths[name] = path.relative_to(out).as_posix()
        written.files.append(path)
    text = summary(study, found)
    figures = study_figures(study, found)
    if "md" in formats:
        written.files.append(atomic_write(out / "study.md", lambda p: p.write_text(text)))
    if "html" in formats:
        page = html.render(f"salt-budget study: {study.name}", figures, text, csv_paths)
        written.files.append(atomic_write(out / "study.html", lambda p: p.write_text(page, encoding="utf-8")))
    if "png" in formats:
        write_pngs(figures, out / "figures", written)
    shared = Path(study_dir) / "main"  # salt_budget/study/config.py SHARED_SWEEP: the variants without overrides
    if (shared / "results.parquet").is_file():
        sweep = write_report([shared], out=out / "sweep", task=task, formats=formats)
        written.files += sweep.files
        written.notes += sweep.notes
    return written
