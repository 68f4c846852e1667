"""Each final student beside the frozen teacher it learned from."""

from __future__ import annotations

import pandas as pd

from analysis.results import Results, equals
from analysis.stats import as_columns, column_names, compare

# What the teacher side can offer as a predictor of its student (the paper's claim is that it cannot).
TEACHER_SIDE = {"loss_smoothed": "teacher_loss", "rankme": "teacher_rankme"}


def teacher_label(rows: pd.DataFrame) -> pd.Series:
    """A short name per teacher (size and steps); the seed is added only where seeds differ."""
    label = rows["teacher_size"].astype(str) + " T" + rows["teacher_steps"].astype("Int64").astype(str)
    if rows["seed"].nunique() > 1:
        label = label + " seed" + rows["seed"].astype("Int64").astype(str)
    return label


def student_teacher_pairs(results: Results) -> pd.DataFrame:
    """Final student rows with their teacher's loss, RankMe and accuracies (teacher_acc_<task>).

    The teacher is the row with the student's teacher_key at step teacher_steps; where it is missing
    (its probe failed, or it comes from a run not given) the teacher columns are NaN, not guessed.
    """
    students = results.final[equals(results.final, "role", "student")]
    ok = results.ok
    teachers = ok[equals(ok, "role", "teacher") & (ok["step"] == ok["teacher_steps"]).fillna(False).astype(bool)]
    accuracy = [c for c in results.rows.columns if c.startswith("acc_")]
    columns = {**TEACHER_SIDE, **{c: f"teacher_{c}" for c in accuracy}}
    teachers = teachers.drop_duplicates("teacher_key")[["teacher_key", *columns]].rename(columns=columns)
    pairs = students.merge(teachers, on="teacher_key", how="left", validate="many_to_one")
    pairs["teacher"] = teacher_label(pairs)
    return pairs


# One comparison per allocation (over its seeds) and task.
ALLOCATION = ["task", "budget", "teacher_size", "teacher_steps", "teacher_share", "student_size", "student_steps"]


def versus_teacher(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per allocation and task, from the long pairs table (student_accuracy, teacher_accuracy, task): the
    student minus its teacher over seeds, paired by seed (a student learns from the teacher of its seed)."""
    rows = []
    for key, group in pairs.groupby(ALLOCATION, dropna=False, sort=True):
        by_seed = group.set_index("seed")
        rows.append({**dict(zip(ALLOCATION, key, strict=True)),
                     "student_accuracy": float(group["student_accuracy"].mean()),
                     "teacher_accuracy": float(group["teacher_accuracy"].mean()),
                     **as_columns(compare(by_seed["student_accuracy"], by_seed["teacher_accuracy"]))})
    return pd.DataFrame(rows, columns=[*ALLOCATION, "student_accuracy", "teacher_accuracy", *column_names()])
