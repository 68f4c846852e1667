"""A recommendation as markdown lines (the command's output and the report's section), and as the table behind
the report's figure."""

from __future__ import annotations

import math

import pandas as pd

from analysis.markdown import budget_name
from analysis.recommend import Recommendation


# One seed per allocation gives the bootstrap no seed spread to redraw from: there is no interval to print.
NO_INTERVAL = "no interval: one seed per allocation (sweep a second seed to draw one)"


def _pct(value: float) -> str:
    return "n/a" if value != value else f"{100 * value:.1f}%"


def has_interval(r: Recommendation) -> bool:
    return not any(math.isnan(v) for v in (*r.share_interval, *r.accuracy_interval))


def _share_interval(r: Recommendation) -> str:
    return f"{r.share_interval[0]:.3f}-{r.share_interval[1]:.3f}"


def _accuracy_interval(r: Recommendation) -> str:
    return f"{_pct(r.accuracy_interval[0])}-{_pct(r.accuracy_interval[1])}"


def format_recommendation(r: Recommendation) -> list[str]:
    """Markdown lines: the split, its interval, the per-budget optima it rests on, warnings and cost."""
    kind = r.budget_kind
    split = f"teacher share {r.share:.3f}"
    if r.teacher_steps is not None:
        split += f": T = {r.teacher_steps:,} teacher steps, S = {round(r.budget) - r.teacher_steps:,} student steps"
    interval, accuracy = NO_INTERVAL, f"Predicted accuracy {_pct(r.accuracy)}"
    if has_interval(r):
        interval, accuracy = f"90% interval of the share {_share_interval(r)}", f"{accuracy} ({_accuracy_interval(r)})"
    lines = [
        f"**Recommended split at {budget_name(r.budget, kind)}** ({r.teacher_size} teacher, {r.student_size} "
        f"student): {split}; {interval}. {accuracy}.",
    ]
    if r.too_far:
        lines.append(f"**Too far to trust**: {budget_name(r.budget, kind)} lies {r.reach:.1f}x as far beyond the "
                     f"largest budget swept as the sweeps span (in log budget); the fit is trusted up to "
                     f"{budget_name(r.trusted_up_to, kind)}.")
    lines += ["", "| budget | optimum share | accuracy there | optimum lies |", "| ---: | ---: | ---: | --- |"]
    for _, row in r.optima.iterrows():
        where = {"inside": "inside the shares swept", "edge": f"at the {row['edge']} share swept",
                 "trained": "best share trained"}[row["where"]]
        lines.append(f"| {budget_name(row['budget'], kind)} | {row['optimum_share']:.3f} | "
                     f"{_pct(row['optimum_accuracy'])} | {where} |")
    lines += ["", f"Trend: share = {math.exp(r.trend.p0):.3g} x budget^{r.trend.p1:.3f}; accuracy = "
                  f"{100 * r.trend.q0:.1f} + {100 * r.trend.q1:.2f} x ln(budget) points."]
    lines += [f"- {note}" for note in r.notes]
    lines.append(f"- the interval narrows most with {r.next_sweep}" if has_interval(r) else
                 f"- an interval needs {r.next_sweep}")
    c = r.cost
    hours = "" if c.get("sweeps_hours", float("nan")) != c.get("sweeps_hours") else \
        f", {c['sweeps_hours']:.2f} process-hours of training and probing"
    lines.append(f"- cost: the sweeps trained {c['sweeps_flops']:.3g} FLOPs{hours}, {c['fraction']:.1%} of one run "
                 f"at {budget_name(r.budget, kind)} ({c['run_flops']:.3g} FLOPs)")
    if not r.others.empty:
        for _, row in r.others.iterrows():
            lines.append(f"- also fitted: {row['teacher_size']} -> {row['student_size']}: share {row['share']:.3f}, "
                         f"accuracy {_pct(row['accuracy'])}")
    return lines


def _check_verdict(predicted: Recommendation, measured: dict[str, float]) -> str:
    """Whether the best trained share lies in the predicted interval; with one seed there is no interval, so
    the point prediction is set beside the measured best and the check is said to need two seeds."""
    best = measured["best_trained_share"]
    if not has_interval(predicted):
        return (f"The best trained share is {best:.3f}, the predicted share {predicted.share:.3f} "
                f"({best / predicted.share:.2f}x the prediction); with one seed per allocation there is no "
                f"interval to check it against: the check needs two seeds per allocation (sweep a second seed).")
    inside = predicted.share_interval[0] <= best <= predicted.share_interval[1]
    return f"The best trained share lies {'inside' if inside else 'OUTSIDE'} the predicted interval."


def format_check(predicted: Recommendation, measured: dict[str, float]) -> list[str]:
    kind = predicted.budget_kind
    if has_interval(predicted):
        row = (f"| predicted (90% interval) | {predicted.share:.3f} ({_share_interval(predicted)}) | "
               f"{_pct(predicted.accuracy)} ({_accuracy_interval(predicted)}) |")
    else:
        row = f"| predicted (no interval: one seed) | {predicted.share:.3f} | {_pct(predicted.accuracy)} |"
    return [
        f"Check: fitted on {', '.join(budget_name(b, kind) for b in predicted.optima['budget'])}, predicting "
        f"{budget_name(measured['budget'], kind)}",
        "", "| | share | accuracy |", "| --- | ---: | ---: |", row,
        f"| measured: best allocation trained | {measured['best_trained_share']:.3f} | "
        f"{_pct(measured['best_trained_accuracy'])} |",
        f"| measured: fitted optimum of its curve | {measured['fitted_optimum_share']:.3f} | "
        f"{_pct(measured['fitted_optimum_accuracy'])} |",
        "", _check_verdict(predicted, measured),
    ]


def recommendation_table(r: Recommendation | None) -> pd.DataFrame:
    """The swept budgets' optima and the recommended point, for the report's figure and CSV."""
    columns = ["row", "budget", "budget_kind", "teacher_size", "student_size", "share", "share_low", "share_high",
               "accuracy", "accuracy_low", "accuracy_high", "where", "too_far", "cost_fraction"]
    if r is None:
        return pd.DataFrame(columns=columns)
    rows = [{"row": "swept", "budget": row["budget"], "budget_kind": r.budget_kind, "teacher_size": r.teacher_size,
             "student_size": r.student_size, "share": row["optimum_share"], "accuracy": row["optimum_accuracy"],
             "where": row["where"]} for _, row in r.optima.iterrows()]
    rows.append({"row": "recommended", "budget": r.budget, "budget_kind": r.budget_kind,
                 "teacher_size": r.teacher_size, "student_size": r.student_size, "share": r.share,
                 "share_low": r.share_interval[0], "share_high": r.share_interval[1], "accuracy": r.accuracy,
                 "accuracy_low": r.accuracy_interval[0], "accuracy_high": r.accuracy_interval[1],
                 "too_far": r.too_far, "cost_fraction": r.cost.get("fraction")})
    return pd.DataFrame(rows, columns=columns)
