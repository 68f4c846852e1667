"""The study's findings: the paper's ablations (docs/paper.md section 8) read from a study folder
(analysis/study_data.py) as tables: the allocation grid over seeds, teacher sizes, teacher masks, students
against their teachers, the loss-accuracy regression, and the random-init floor and chance beside them.
Their text in study.md: analysis/study_summary.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.regression import grouped_fits
from analysis.results import equals
from analysis.schema import MEAN_TASK
from analysis.study_data import StudyData, final_pairs, final_teachers, student_checkpoints
from analysis.study_stats import against_first, best_shares


def _spread(frame: pd.DataFrame, by: list[str], study: StudyData) -> pd.DataFrame:
    """Per group: seeds, and mean and standard deviation (over seeds) of student and teacher accuracies."""
    rows = []
    for key, group in frame.groupby(by, sort=False):
        row = {column: value.item() if isinstance(value, np.generic) else value
               for column, value in zip(by, key if isinstance(key, tuple) else (key,))}
        row["seeds"] = int(group["seed"].nunique())
        for metric in study.metrics:
            row[f"student_{metric.name}"] = float(group[metric.column].mean())
            row[f"student_{metric.name}_sd"] = float(group[metric.column].std(ddof=1)) if len(group) > 1 else np.nan
            row[f"teacher_{metric.name}"] = float(group[f"teacher_{metric.column}"].mean())
        row["student_beats_teacher"] = int((group["acc_mean"] > group["teacher_acc_mean"]).sum())
        row["pairs"] = len(group)
        rows.append(row)
    return pd.DataFrame(rows)


def allocation_table(study: StudyData) -> pd.DataFrame:
    pairs = final_pairs(study, "allocation")
    if pairs.empty:
        return pairs
    pairs = pairs.sort_values(["budget", "teacher_share"])
    return _spread(pairs, ["budget", "teacher_steps", "teacher_share"], study)


def variant_table(study: StudyData, ablation: str, by: str) -> pd.DataFrame:
    pairs = final_pairs(study, ablation)
    if pairs.empty:
        return pairs
    if by == "teacher_size":  # small to large, by the teacher's FLOPs per step (names do not sort by size)
        per_step = pairs["flops_teacher"].astype(float) / pairs["teacher_steps"].astype(float)
        pairs = pairs.assign(_cost=per_step.groupby(pairs["teacher_size"]).transform("median")).sort_values("_cost")
    return against_first(_spread(pairs, [by], study), pairs, by)


def regression_table(study: StudyData) -> pd.DataFrame:
    """Student loss (smoothed) against probe accuracy over the allocation ablation's student checkpoints:
    one fit per student run and one pooled, for every task (analysis/study_regression.py: per teacher)."""
    checkpoints = student_checkpoints(study)
    if checkpoints.empty:
        return checkpoints
    # One fit per student run (the paper's: one student per teacher, over its checkpoints). Pooled runs mix
    # targets of different teachers, whose losses are not on one scale.
    checkpoints = checkpoints.assign(student=checkpoints["allocation_id"].astype(str))
    fits = [grouped_fits(checkpoints, "loss_smoothed", m.column, "student").assign(task=m.name)
            for m in study.metrics]
    return pd.concat(fits, ignore_index=True)


def learning_table(study: StudyData) -> pd.DataFrame:
    """Does training beat the random-init encoder? Per budget of the allocation ablation: the best share's
    students against the floor (margin, and margin over seed sd), and the teachers of at least 1/6 of the
    largest budget against the floor (the checks that say a study can test the paper at all)."""
    floor = study.floor_means().get(MEAN_TASK)
    allocation = allocation_table(study)
    if floor is None or allocation.empty:
        return pd.DataFrame()
    rows = []
    for budget, group in allocation.groupby("budget", sort=True):
        best = group.sort_values("student_mean", ascending=False).iloc[0]
        margin, sd = best["student_mean"] - floor, best["student_mean_sd"]
        rows.append({"what": "best student", "budget": int(budget), "teacher_steps": int(best["teacher_steps"]),
                     "accuracy": float(best["student_mean"]), "sd": float(sd), "floor": floor, "margin": float(margin),
                     "holds": bool(margin >= 0.05 and (np.isnan(sd) or margin > 2 * sd))})
    teachers = final_teachers(study)
    if len(teachers):
        least = int(np.ceil(allocation["budget"].max() / 6))
        strong = teachers[teachers["teacher_steps"].astype(int) >= least]
        for steps, group in strong.groupby("teacher_steps", sort=True):
            accuracy = float(group["acc_mean"].mean())
            sd = float(group["acc_mean"].std(ddof=1)) if len(group) > 1 else np.nan
            rows.append({"what": "teacher", "budget": None, "teacher_steps": int(steps), "accuracy": accuracy,
                         "sd": sd, "floor": floor, "margin": accuracy - floor, "holds": bool(accuracy > floor)})
    return pd.DataFrame(rows)


READOUT_PREFIX = "readout_"


def readout_table(study: StudyData) -> pd.DataFrame:
    """Every readout the probes computed (the main one and probe.also_ridge), task average: the random-init
    floor, the final teachers' and students' means, and how each ranks the final encoders against the main
    readout (Spearman over students and teachers together)."""
    pairs = final_pairs(study)
    if pairs.empty:
        return pd.DataFrame()
    encoders = pd.concat([pairs.drop_duplicates("unit_key"), final_teachers(study)], ignore_index=True)
    names = ["acc_mean", *sorted(c for c in encoders.columns if c.startswith(READOUT_PREFIX) and c.endswith("_mean"))]
    rows = []
    for column in names:
        if column not in encoders or encoders[column].isna().all():
            continue
        students, teachers = encoders[equals(encoders, "role", "student")], encoders[equals(encoders, "role", "teacher")]
        floor = study.random_init[column].mean() if column in study.random_init else np.nan
        rank = encoders[["acc_mean", column]].astype(float).corr(method="spearman").iloc[0, 1]
        rows.append({"readout": "main" if column == "acc_mean" else column.removeprefix(READOUT_PREFIX)[: -len("_mean")],
                     "random_init": float(floor), "teachers": float(teachers[column].mean()),
                     "students": float(students[column].mean()), "best_student": float(students[column].max()),
                     "students_above_floor": int((students[column] > floor).sum()), "student_count": len(students),
                     "spearman_with_main": float(rank)})
    return pd.DataFrame(rows)


def tables(study: StudyData) -> dict[str, pd.DataFrame]:
    allocation = allocation_table(study)
    found = {
        "study_allocation": allocation,
        "study_best_share": best_shares(allocation, final_pairs(study, "allocation")) if len(allocation) else
        pd.DataFrame(),
        "study_teacher_size": variant_table(study, "teacher_size", "teacher_size"),
        "study_teacher_masks": variant_table(study, "teacher_masks", "variant"),
        "study_regression": regression_table(study),
        "study_random_init": study.random_init,
        "study_learning": learning_table(study),
        "study_readouts": readout_table(study),
        "study_pairs": final_pairs(study),
    }
    return {name: frame for name, frame in found.items() if len(frame)}
