"""The study's comparisons over seeds (analysis/stats.py): the best share against the runner-up, each ablation
variant against the first, and students against their teachers, as table columns and as words."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.markdown import pct
from analysis.stats import NO_DIFFERENCE, as_columns, compare, describe, from_columns, noise_words, tally


def seeds_of(pairs: pd.DataFrame, budget: float, teacher_steps: float) -> pd.Series:
    """One allocation's task average per seed."""
    chosen = pairs[(pairs["budget"] == budget) & (pairs["teacher_steps"] == teacher_steps)]
    return chosen.set_index("seed")["acc_mean"]


def best_shares(allocation: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Per budget: the share with the best seed-mean task average, the runner-up's gap, the seeds' spread, and
    the gap against the seed noise (diff ... verdict, paired by seed; `pairs`: the allocation ablation's)."""
    rows = []
    for budget, group in allocation.groupby("budget", sort=True):
        ranked = group.sort_values("student_mean", ascending=False)
        best = ranked.iloc[0]
        gap = best["student_mean"] - ranked.iloc[1]["student_mean"] if len(ranked) > 1 else np.nan
        versus = NO_DIFFERENCE if len(ranked) < 2 else compare(
            seeds_of(pairs, budget, best["teacher_steps"]), seeds_of(pairs, budget, ranked.iloc[1]["teacher_steps"]))
        rows.append({"budget": int(budget), "best_share": float(best["teacher_share"]),
                     "best_teacher_steps": int(best["teacher_steps"]), "best_mean": float(best["student_mean"]),
                     "gap_to_runner_up": float(gap), "seed_sd_mean": float(group["student_mean_sd"].mean()),
                     "shares": len(group), **as_columns(versus)})
    return pd.DataFrame(rows)


def against_first(frame: pd.DataFrame, pairs: pd.DataFrame, by: str) -> pd.DataFrame:
    """Each variant minus the first (the default masks; the smallest teacher), over seeds, paired by seed:
    students (vs_first_ columns) and teachers alone (teacher_vs_first_)."""
    first = frame[by].iloc[0]

    def arm(value: object, column: str) -> pd.Series:
        return pairs[pairs[by] == value].set_index("seed")[column]

    rows = []
    for value in frame[by]:
        same = value == first
        students = NO_DIFFERENCE if same else compare(arm(value, "acc_mean"), arm(first, "acc_mean"))
        teachers = NO_DIFFERENCE if same else compare(arm(value, "teacher_acc_mean"), arm(first, "teacher_acc_mean"))
        rows.append({**as_columns(students, "vs_first_"), **as_columns(teachers, "teacher_vs_first_")})
    return pd.concat([frame.reset_index(drop=True), pd.DataFrame(rows)], axis=1)


def against_first_words(frame: pd.DataFrame, by: str, prefix: str) -> str:
    """Every variant but the first against the first, over seeds (the against_first columns), in words."""
    return "; ".join(f"{r[by]} {describe(from_columns(r, prefix))}" for _, r in frame.iloc[1:].iterrows())


def runner_up_words(r: pd.Series) -> str:
    if np.isnan(r["gap_to_runner_up"]):
        return "the only share trained"
    return f"{pct(r['gap_to_runner_up'])} points above the runner-up ({noise_words(from_columns(r))})"


def versus_teacher_words(pairs: pd.DataFrame) -> str:
    """Each allocation's students against their teachers over seeds, paired by seed (one teacher per seed)."""
    keys = ["folder", "budget", "teacher_size", "teacher_steps", "student_size"]
    table = pd.DataFrame([as_columns(compare(g.set_index("seed")["acc_mean"], g.set_index("seed")["teacher_acc_mean"]))
                          for _, g in pairs.groupby(keys, dropna=False, sort=True)])
    if table.empty:
        return "no allocation to compare over seeds"
    words = tally(table, above="(student higher)", below="(teacher higher)")
    return f"over seeds, per allocation ({len(table)}): {words}"
