"""Does the student's loss predict its accuracy? Per teacher, as the paper fits it (Fig. 7: student loss against
SSv2 accuracy over checkpoints, R^2 0.951-0.984 per teacher): one line per teacher length of the allocation
ablation, through every probed checkpoint of that teacher's students (every budget and seed), per task, and one
through every checkpoint (pooled), with R^2, Spearman and the leave-one-out error (analysis/regression.py).

Over seeds: each seed's own per-teacher fits give a Spearman rho per teacher; their mean over teachers is one
value per seed, and its 90% interval over seeds (stats.compare against zero, paired) says whether "lower loss,
higher accuracy" stands out of the seed noise."""

from __future__ import annotations

import math

import pandas as pd

from analysis import reference
from analysis.markdown import NA, num, pct, table
from analysis.regression import MIN_POINTS, fit_line, grouped_fits
from analysis.results import Metric
from analysis.stats import NO_DIFFERENCE, Difference, compare
from analysis.study_data import StudyData, paper_scale_of, student_checkpoints

LOSS = "loss_smoothed"
POOLED = "pooled"


def _teacher(checkpoints: pd.DataFrame) -> pd.Series:
    """A teacher's name in the table: its length, and its size where the ablation trains more than one."""
    steps = "T" + checkpoints["teacher_steps"].astype(int).astype(str)
    if checkpoints["teacher_size"].nunique() > 1:
        steps = steps + " " + checkpoints["teacher_size"].astype(str)
    return steps


def teacher_regression_table(study: StudyData) -> pd.DataFrame:
    """One row per teacher (and pooled) and task: the line fit, how many students and seeds it pools, the fewest
    checkpoints one student has, and the paper's SSv2 R^2 of the teacher length it stands for."""
    checkpoints = student_checkpoints(study)
    if checkpoints.empty:
        return checkpoints
    checkpoints = checkpoints.assign(teacher=_teacher(checkpoints))
    scale = paper_scale_of(study)
    paper_r2 = dict(reference.LOSS_R2_SSV2)
    parts = []
    for metric in study.metrics:
        fits = grouped_fits(checkpoints, LOSS, metric.column, "teacher", pooled=POOLED)
        extra = []
        for name in fits["teacher"]:
            mine = checkpoints if name == POOLED else checkpoints[checkpoints["teacher"] == name]
            steps = None if name == POOLED else float(mine["teacher_steps"].iloc[0])
            paper_steps = None if steps is None else reference.paper_teacher_steps(steps, scale)
            extra.append({"task": metric.name, "teacher_steps": steps, "students": mine["unit_key"].nunique(),
                          "seeds": mine["seed"].nunique(),
                          "checkpoints_per_student": int(mine.groupby("unit_key")["step"].nunique().min()),
                          "paper_teacher_steps": paper_steps, "paper_r2_ssv2": paper_r2.get(paper_steps)})
        parts.append(pd.concat([fits, pd.DataFrame(extra)], axis=1))
    return pd.concat(parts, ignore_index=True)


def spearman_over_seeds(study: StudyData, metric: Metric) -> Difference:
    """Mean over teachers of each seed's own per-teacher Spearman rho (loss against accuracy), over seeds against
    zero: a resolved negative mean says lower loss goes with higher accuracy beyond the seed noise."""
    checkpoints = student_checkpoints(study)
    if checkpoints.empty:
        return NO_DIFFERENCE
    per_seed = {}
    for seed, rows in checkpoints.groupby("seed", sort=True):
        rhos = [fit_line(group[LOSS], group[metric.column]).spearman
                for _, group in rows.groupby(["teacher_size", "teacher_steps"], sort=True)]
        rhos = [rho for rho in rhos if not math.isnan(rho)]  # a teacher with fewer than 3 checkpoints in a seed has none
        if rhos:
            per_seed[seed] = sum(rhos) / len(rhos)
    if not per_seed:
        return NO_DIFFERENCE
    rho = pd.Series(per_seed, dtype=float)
    return compare(rho, pd.Series(0.0, index=rho.index))


def _r2_cell(r: pd.Series) -> str:
    if r["n"] < MIN_POINTS:
        return f"undefined ({int(r['n'])} point{'s' * (r['n'] != 1)}, a fit needs {MIN_POINTS})"
    if pd.isna(r["r2"]):
        return r["note"] or "undefined"  # the fit's note says why (every x the same, every y the same)
    return num(r["r2"], ".2f") + (f" ({r['note']})" if r["note"] else "")


def section(study: StudyData, fits: pd.DataFrame | None) -> list[str]:
    if fits is None or fits.empty:
        return []
    label = {m.name: m.label for m in study.metrics}
    lines = ["## Student loss against accuracy, per teacher (as the paper fits it)", "",
             "One line per teacher length through every probed checkpoint of its students (all budgets and seeds), "
             f"x the student's smoothed loss, y the accuracy; pooled: every checkpoint. A fit needs {MIN_POINTS} "
             "points. LOO: mean absolute error of each checkpoint predicted by the line through the others. Paper: "
             "R² per teacher on SSv2 (Fig. 7), beside the teacher length this one stands for. "
             "Table: tables/study_regression_teachers.csv.", ""]
    rows = []
    for _, r in fits.iterrows():
        paper = NA if pd.isna(r["paper_r2_ssv2"]) else f"{r['paper_r2_ssv2']:.3f} ({int(r['paper_teacher_steps']) // 1000}k)"
        rows.append([r["teacher"], label[r["task"]], int(r["students"]), int(r["seeds"]),
                     int(r["checkpoints_per_student"]), int(r["n"]), _r2_cell(r), num(r["spearman"], "+.2f"),
                     pct(r["loo_mae"], 2), paper])
    lines += [table(["teacher", "task", "students", "seeds", "checkpoints per student (fewest)", "points", "R²",
                     "Spearman ρ", "LOO error (pts)", "paper R² (SSv2)"], rows), ""]
    return lines
