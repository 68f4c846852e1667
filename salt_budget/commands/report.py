"""`salt-budget report`: the report of one or more sweeps."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(commands) -> None:
    report = commands.add_parser(
        "report", help="the report of one or more sweeps: Pareto fronts, allocation curves, regressions, findings",
        description="Read runs/<name>/results.parquet of each RUN_DIR (several budgets are one report) and write "
        "report.html (self-contained), summary.md, the table behind every figure as CSV and, where kaleido and a "
        "Chromium are installed, the figures as PNG.",
    )
    report.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="sweep run folder(s), e.g. runs/<name>")
    report.add_argument("--out", default=None, help="report folder (default: <first RUN_DIR>/report)")
    report.add_argument("--task", default=None, help="analyse one task only (a task name, or 'mean' for the average)")
    report.add_argument("--format", default="html,png,md", help="comma-separated outputs: html, png, md (default all)")
    report.add_argument("--archive", default=None, metavar="DIR",
                        help="for a study: also copy the files the report reads (study.json, study_log.jsonl, the "
                        "random-init probes, each sweep's results table) to DIR, so that `salt-budget report DIR` "
                        "writes the same report with no checkpoint or training (docs/study_tiny/data is one)")
    report.set_defaults(handler=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    from analysis.report import parse_formats, write_report
    from analysis.study_data import is_study
    from analysis.study_report import write_study_report
    from analysis.tables import ReportError

    study = len(args.run_dirs) == 1 and is_study(Path(args.run_dirs[0]))
    if args.archive and not study:
        raise ReportError(f"--archive copies a study's inputs; {' '.join(args.run_dirs)} is not a study folder (it "
                          f"has no study.json): copy a sweep's results.parquet by hand")
    if study:
        written = write_study_report(Path(args.run_dirs[0]), out=Path(args.out) if args.out else None,
                                     task=args.task, formats=parse_formats(args.format))
    else:
        written = write_report([Path(d) for d in args.run_dirs], out=Path(args.out) if args.out else None,
                               task=args.task, formats=parse_formats(args.format))
    print(f"report written to {written.out}:")
    for path in written.files:
        print(f"  {path.relative_to(written.out)}")
    for note in written.notes:
        print(note)
    if args.archive:
        from analysis.study_archive import archive_study

        copied = archive_study(Path(args.run_dirs[0]), Path(args.archive))
        print(f"the report's inputs ({len(copied)} files) copied to {args.archive}: salt-budget report {args.archive} "
              f"rebuilds it")
    return 0
