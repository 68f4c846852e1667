"""Would the recommendation have found the largest budget's best share? Where the allocation ablation has four
budgets or more (three to fit a trend that is itself checked, one to predict), the recommendation is fitted on
every budget but the largest with the function `salt-budget recommend --check` uses (analysis/recommend.py:
check_largest), and the largest budget's measured best share is set against its 90% interval."""

from __future__ import annotations

import math

import pandas as pd

from analysis.markdown import pct, table
from analysis.recommend import check_largest
from analysis.results import Results, equals
from analysis.study_data import StudyData

MIN_BUDGETS = 4


def allocation_results(study: StudyData) -> Results | None:
    """The allocation ablation's students (and every teacher of their folders) as one Results."""
    parts, tasks = [], ()
    for sweep in study.ablation("allocation"):
        results = study.results.get(sweep["folder"])
        if results is None:
            continue
        rows = results.rows
        parts.append(rows[equals(rows, "role", "teacher") | rows["unit_key"].isin(sweep["students"])])
        tasks = results.tasks
    if not parts:
        return None
    return Results(pd.concat(parts, ignore_index=True).drop_duplicates(), tasks)


def check_table(study: StudyData, draws: int = 400) -> pd.DataFrame:
    """One row per task (and task average): fitted on, predicted budget, the predicted share and its interval, the
    measured best trained share and the fitted optimum of its curve, and whether the best trained share lies
    inside the interval (None with one seed: no interval). Empty below MIN_BUDGETS budgets."""
    results = allocation_results(study)
    if results is None:
        return pd.DataFrame()
    final = results.final
    budgets = sorted(final[equals(final, "role", "student")]["budget"].unique())
    if len(budgets) < MIN_BUDGETS:
        return pd.DataFrame()
    rows = []
    for metric in study.metrics:
        predicted, measured = check_largest(results, metric.column, draws)
        low, high = predicted.share_interval
        best = measured["best_trained_share"]
        inside = None if math.isnan(low) else bool(low <= best <= high)
        rows.append({"task": metric.name, "fitted_on": " ".join(f"{b:g}" for b in predicted.optima["budget"]),
                     "budget": measured["budget"], "predicted_share": predicted.share, "share_low": low,
                     "share_high": high, "predicted_accuracy": predicted.accuracy,
                     "best_trained_share": best, "best_trained_accuracy": measured["best_trained_accuracy"],
                     "fitted_optimum_share": measured["fitted_optimum_share"], "inside": inside})
    return pd.DataFrame(rows)


def inside_words(inside: object) -> str:
    if inside is None or (isinstance(inside, float) and math.isnan(inside)):
        return "no interval (one seed)"
    return "inside" if bool(inside) else "OUTSIDE"


def section(study: StudyData, found: pd.DataFrame | None) -> list[str]:
    if found is None or found.empty:
        return []
    label = {m.name: m.label for m in study.metrics}
    first = found.iloc[0]
    lines = ["## Two-step check of the recommendation", "",
             f"`salt-budget recommend --check`'s fit on budgets {first['fitted_on'].replace(' ', ', ')}, predicting "
             f"{first['budget']:g}: does the best share trained there lie inside the predicted 90% interval? "
             "Table: tables/study_recommend_check.csv.", ""]
    rows = [[label[r["task"]], f"{r['predicted_share']:.3f}",
             "n/a" if math.isnan(r["share_low"]) else f"{r['share_low']:.3f} to {r['share_high']:.3f}",
             f"{r['best_trained_share']:.3f}", pct(r["best_trained_accuracy"]), f"{r['fitted_optimum_share']:.3f}",
             inside_words(r["inside"])] for _, r in found.iterrows()]
    lines += [table(["task", "predicted share", "90% interval", "best share trained", "its accuracy",
                     "fitted optimum share", "best trained share"], rows), ""]
    return lines
