"""Each baseline run against SALT: its final checkpoint beside the best final SALT student of the same
budget and seed (matched total steps), and beside the best student at no more compute (any budget)."""

from __future__ import annotations

import pandas as pd

from analysis.tables import COLLAPSE_COLUMNS, baseline_label, equals, is_baseline

COLUMNS = [
    "task", "role", "baseline", "unit_key", "budget", "seed", "accuracy", "flops_total", "target_std", "collapsed",
    "salt_allocation", "salt_accuracy", "salt_flops_total", "gap", "flops_ratio",
    "cheaper_allocation", "cheaper_accuracy", "cheaper_flops_total",
]


def _best(students: pd.DataFrame) -> pd.Series | None:
    """The most accurate; of equals, the cheapest."""
    known = students.dropna(subset=["accuracy"])
    if known.empty:
        return None
    return known.sort_values(["accuracy", "flops_total"], ascending=[False, True], kind="stable").iloc[0]


def baseline_comparison(pareto: pd.DataFrame) -> pd.DataFrame:
    """One row per final baseline and task (from the Pareto table: final encoders, accuracy per task).
    gap = SALT's best accuracy - the baseline's; flops_ratio = SALT's FLOPs / the baseline's; empty where no
    student qualifies."""
    baselines = pareto[is_baseline(pareto)]
    students = pareto[equals(pareto, "role", "student")]
    rows = []
    for _, base in baselines.assign(label=baseline_label(baselines)).iterrows():
        mine = students[students["task"] == base["task"]]
        same = _best(mine[(mine["budget"] == base["budget"]).fillna(False) & (mine["seed"] == base["seed"]).fillna(False)])
        cheaper = _best(mine[mine["flops_total"] <= base["flops_total"]])
        salt = {} if same is None else {
            "salt_allocation": same["allocation_id"], "salt_accuracy": same["accuracy"],
            "salt_flops_total": same["flops_total"], "gap": same["accuracy"] - base["accuracy"],
            "flops_ratio": same["flops_total"] / base["flops_total"]}
        cheap = {} if cheaper is None else {
            "cheaper_allocation": cheaper["allocation_id"], "cheaper_accuracy": cheaper["accuracy"],
            "cheaper_flops_total": cheaper["flops_total"]}
        rows.append({"task": base["task"], "role": base["role"], "baseline": base["label"],
                     **{c: base[c] for c in ("unit_key", "budget", "seed", "accuracy", "flops_total")},
                     **{c: base[c] for c in COLLAPSE_COLUMNS if c in base}, **salt, **cheap})
    return pd.DataFrame(rows, columns=COLUMNS)
