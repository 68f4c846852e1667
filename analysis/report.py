"""`salt-budget report`: read results tables, write the report folder.

    <out>/report.html        every figure, plotly.js inlined (opens offline), summary.md shown on top
    <out>/summary.md         the findings in numbers
    <out>/tables/<name>.csv  the table behind every figure (accuracies as fractions, as in results.parquet)
    <out>/figures/<name>.png where kaleido and a Chromium are available
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Collection, Sequence

import numpy as np

from analysis import html, png
from analysis.figures import Figure, all_figures
from analysis.findings import compute
from analysis.results import Results, load_results, size_order
from analysis.summary import write_summary
from analysis.tables import ReportError
from trainers.atomic import atomic_write

FORMATS = ("html", "png", "md")


@dataclass
class Written:
    out: Path
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def parse_formats(text: str) -> set[str]:
    chosen = {part.strip() for part in text.split(",") if part.strip()}
    unknown = sorted(chosen - set(FORMATS))
    if unknown or not chosen:
        raise ReportError(f"unknown --format {', '.join(unknown) or repr(text)}: choose from {', '.join(FORMATS)} "
                          f"(comma-separated, e.g. html,md)")
    return chosen


def _chance(results: Results) -> dict[str, float]:
    ok = results.ok
    return {task: float(np.nanmean(ok[f"chance_{task}"].astype(float))) for task in results.tasks
            if f"chance_{task}" in ok and ok[f"chance_{task}"].notna().any()}


def write_report(run_dirs: Sequence[Path], out: Path | None = None, task: str | None = None,
                 formats: Collection[str] = FORMATS) -> Written:
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ReportError(f"unknown format {', '.join(unknown)}: choose from {', '.join(FORMATS)}")
    results = load_results([Path(d) for d in run_dirs])
    metrics = results.metrics(task)
    sizes = size_order(results.rows)
    findings = compute(results, metrics)
    out = Path(out) if out is not None else Path(run_dirs[0]) / "report"
    written = Written(out)
    (out / "tables").mkdir(parents=True, exist_ok=True)

    csv_paths = {}
    for name, frame in findings.tables().items():
        path = atomic_write(out / "tables" / f"{name}.csv", lambda p, f=frame: f.to_csv(p, index=False))
        csv_paths[name] = path.relative_to(out).as_posix()
        written.files.append(path)

    summary = write_summary(results, findings, metrics, sizes)
    if "md" in formats:
        written.files.append(atomic_write(out / "summary.md", lambda p: p.write_text(summary)))

    figures = all_figures(findings, metrics, sizes, _chance(results), results=results)
    if "html" in formats:
        title = f"salt-budget report: {', '.join(d.name for d in results.runs)}"
        page = html.render(title, figures, summary, csv_paths)
        written.files.append(atomic_write(out / "report.html", lambda p: p.write_text(page, encoding="utf-8")))

    if "png" in formats:
        write_pngs(figures, out / "figures", written)
    return written


def write_pngs(figures: Sequence[Figure], folder: Path, written: Written) -> None:
    """Each figure as <folder>/<name>.png where kaleido can render, else a note in `written`."""
    reason = png.unavailable()
    if reason is None:
        folder.mkdir(parents=True, exist_ok=True)
        for figure in figures:
            try:
                path = folder / f"{figure.name}.png"
                written.files.append(atomic_write(path, lambda p, f=figure.figure: png.write_png(f, p)))
            # kaleido's failures are varied (browser, sandbox, timeout), and PNGs are optional.
            except Exception as error:
                first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
                reason = f"PNG figures stopped at {figure.name}: {first_line}"
                break
    if reason:
        written.notes.append(reason)
