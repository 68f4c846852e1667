"""What a recommendation rests on and what would sharpen it: the sweeps' cost against one run at N, and the one
extra sweep that narrows the share interval most (by the weighted least-squares variance of the prediction)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.markdown import budget_name
from analysis.results import Results


def _prediction_variance(log_budgets: np.ndarray, variances: np.ndarray, at: float) -> float:
    """Variance of a weighted least-squares line's value at `at` (ln budget), points of known variance."""
    weights = 1 / np.maximum(variances, 1e-12)
    design = np.stack([np.ones_like(log_budgets), log_budgets], axis=1)
    cov = np.linalg.pinv(design.T @ (design * weights[:, None]))
    point = np.array([1.0, at])
    return float(point @ cov @ point)


def next_sweep(variances: dict[float, float], budget: float, kind: str, spent: dict[float, float]) -> str:
    """Which one extra sweep narrows the share interval at `budget` most, and what it costs: the next budget
    up on the swept spacing (while it stays below half of `budget`: a sweep at N itself would answer the
    question outright), or twice the seeds at one swept budget. `spent`: what each swept budget's sweep cost (sweep_flops)."""
    budgets = np.array(sorted(variances))
    var = np.array([variances[b] for b in budgets])
    if len(budgets) < 2 or not np.isfinite(var).all() or not var.any():
        return "a second seed at every budget swept (no seed spread yet to say more)"
    x, at = np.log(budgets), math.log(budget)
    now = _prediction_variance(x, var, at)
    options = {}
    step = budgets[-1] / budgets[-2]
    new_budget = float(budgets[-1] * step)
    if new_budget <= budget / 2:
        new_cost = spent.get(float(budgets[-1]), 0.0) * step
        options[f"a sweep at {budget_name(new_budget, kind)}, the same shares and seeds ({new_cost:.3g} FLOPs)"] = \
            _prediction_variance(np.append(x, math.log(new_budget)), np.append(var, var.mean()), at)
    for i, swept in enumerate(budgets):
        halved = var.copy()
        halved[i] /= 2
        cost_text = f"{spent.get(float(swept), 0.0):.3g} FLOPs"
        options[f"twice the seeds at {budget_name(float(swept), kind)} ({cost_text})"] = \
            _prediction_variance(x, halved, at)
    best = min(options, key=options.get)
    narrower = 1 - math.sqrt(options[best] / now) if now > 0 else 0.0
    return f"{best}: about {narrower:.0%} narrower share interval at {budget_name(budget, kind)}"


def sweep_flops(results: Results) -> dict[float, float]:
    """FLOPs each budget's sweep trained: its final students and the teachers first used there."""
    rows = results.ok
    finals = rows[(rows["role"] == "student") & rows["is_final"].astype(bool)]
    teachers = rows[rows["role"] == "teacher"].drop_duplicates("unit_key").set_index("unit_key")["flops_teacher"]
    spent, seen = {}, set()
    for budget, group in finals.groupby("budget", sort=True):
        new = [key for key in group["teacher_key"].dropna().unique() if key not in seen and key in teachers.index]
        seen.update(new)
        spent[float(budget)] = float(group["flops_student"].sum() + teachers.loc[new].sum())
    return spent


def cost(students: pd.DataFrame, results: Results, recommendation_share: float, budget: float,
         kind: str) -> dict[str, float]:
    """What the sweeps cost (FLOPs; process-hours where measured) against one run at N. Teachers are counted
    once each; students by their final FLOPs, an upper bound where ladders shared their trunks."""
    rows = results.ok
    teachers = rows[(rows["role"] == "teacher")].drop_duplicates("unit_key")
    finals = rows[(rows["role"] == "student") & rows["is_final"].astype(bool)]
    flops = float(teachers["flops_teacher"].sum() + finals["flops_student"].sum())
    hours = float(pd.concat([teachers, finals])[["train_wall_s", "probe_wall_s"]].fillna(0).sum().sum()) / 3600 \
        if {"train_wall_s", "probe_wall_s"} <= set(rows) else float("nan")
    if kind == "flops":
        run = budget
    else:
        per_teacher_step = float((students["flops_teacher"] / students["teacher_steps"]).median())
        per_student_step = float((students["flops_student"] / students["student_steps"]).median())
        teacher_steps = recommendation_share * budget
        run = teacher_steps * per_teacher_step + (budget - teacher_steps) * per_student_step
    return {"sweeps_flops": flops, "run_flops": run, "fraction": flops / run, "sweeps_hours": hours}
