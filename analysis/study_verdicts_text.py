"""study.md's verdict table: one row per finding of the paper, each task's difference over seeds with its 90%
interval and verdict, the numbers behind it, and whether it goes the paper's way (analysis/study_verdicts.py)."""

from __future__ import annotations

import pandas as pd

from analysis.markdown import missing, table
from analysis.stats import NOT_RESOLVED, ONE_SEED
from analysis.study_data import StudyData
from analysis.study_verdicts import NOT_IN_STUDY


def _signed(value: float, unit: str) -> str:
    return f"{value:+.2f}" if unit == "rho" else f"{100 * value:+.1f}"


def task_cell(r: pd.Series) -> str:
    """"+8.4 (+5.1 to +11.7): resolved"; one seed: "+8.4 (one seed: not tested against noise)"."""
    if r["verdict"] == NOT_IN_STUDY or missing(r["diff"]):
        return str(r["verdict"])
    if r["verdict"] == ONE_SEED:
        return f"{_signed(r['diff'], r['unit'])} ({ONE_SEED})"
    return f"{_signed(r['diff'], r['unit'])} ({_signed(r['low'], r['unit'])} to {_signed(r['high'], r['unit'])}): " \
           f"{r['verdict']}"


def _needed(r: pd.Series) -> str:
    if r["verdict"] != NOT_RESOLVED:
        return "-"
    needed = r.get("seeds_to_resolve")
    return "more than 10,000" if needed is None or missing(needed) else f"{int(needed)}"


def _agrees(value: object) -> str:
    if value is None or missing(value):
        return "-"
    return "yes" if bool(value) else "no"


def section(study: StudyData, verdicts: pd.DataFrame | None) -> list[str]:
    if verdicts is None or verdicts.empty:
        return []
    metrics = study.metrics
    lines = ["## Verdicts: the paper's findings at this scale", "",
             "Each finding's test over seeds: the mean difference (accuracy points; finding 6: Spearman ρ), its "
             "90% interval, and whether it is resolved beyond the seed noise, per task and task average; "
             "\"as the paper\" says whether the task average goes the paper's way. Table (every task's numbers): "
             "tables/study_verdicts.csv.", ""]
    rows = []
    for finding, group in verdicts.groupby("finding", sort=True):
        by_task = group.set_index("task")
        first = group.iloc[0]
        numbers = "; ".join(f"{m.label}: {by_task.loc[m.name, 'numbers']}" for m in metrics
                            if m.name in by_task.index and by_task.loc[m.name, "numbers"])
        mean = by_task.loc["mean"] if "mean" in by_task.index else first
        rows.append([f"({finding}) {first['claim']}", first["paper"], first["comparison"],
                     *(task_cell(by_task.loc[m.name]) if m.name in by_task.index else "-" for m in metrics),
                     mean["verdict"], _needed(mean), _agrees(mean["agrees"]), numbers or "-"])
    lines += [table(["finding", "paper", "test", *(m.label for m in metrics), "verdict (task average)",
                     "seeds to resolve it", "as the paper", "numbers"], rows), ""]
    lines += ["Seeds to resolve it: for a task average not resolved, the seeds whose 90% interval would exclude zero "
              "8 times in 10 if the measured gap were the true one, at the measured sd of one seed's difference "
              "(analysis/stats.py seeds_to_resolve).", ""]
    return lines
