"""Each baseline run against SALT: its final checkpoint beside the best final SALT student of the same
budget and seed (matched total steps), and beside the best student at no more compute (any budget). Over
seeds, the baseline against the SALT allocation best on average at its budget, paired by seed (the
diff ... verdict columns, analysis/stats.py), so a gap is set against the seed noise."""

from __future__ import annotations

import pandas as pd

from analysis.allocation import POINT
from analysis.results import baseline_label, equals, is_baseline
from analysis.schema import COLLAPSE_COLUMNS
from analysis.stats import NO_DIFFERENCE, as_columns, column_names, compare

COLUMNS = [
    "task", "role", "baseline", "unit_key", "budget", "seed", "accuracy", "flops_total", "target_std", "collapsed",
    "salt_allocation", "salt_accuracy", "salt_flops_total", "gap", "flops_ratio",
    "cheaper_allocation", "cheaper_accuracy", "cheaper_flops_total", "salt_allocations", *column_names(),
]
RUN = ["task", "role", "student_size", "budget"]  # one baseline's seeds: compared with SALT together


def _best(students: pd.DataFrame) -> pd.Series | None:
    """The most accurate; of equals, the cheapest."""
    known = students.dropna(subset=["accuracy"])
    if known.empty:
        return None
    return known.sort_values(["accuracy", "flops_total"], ascending=[False, True], kind="stable").iloc[0]


def _over_seeds(runs: pd.DataFrame, students: pd.DataFrame) -> dict[str, object]:
    """SALT's allocation of the best seed-mean accuracy at the runs' budget (of equals, the cheapest) minus the
    baseline, over seeds; salt_allocations names that allocation's runs."""
    first = runs.iloc[0]
    mine = students[(students["task"] == first["task"]) & (students["budget"] == first["budget"]).fillna(False)]
    mine = mine.dropna(subset=["accuracy"])
    if mine.empty:
        return {"salt_allocations": "", **as_columns(NO_DIFFERENCE)}
    groups = mine.groupby(POINT, dropna=False)
    mine = mine.assign(_mean=groups["accuracy"].transform("mean"), _point=groups.ngroup())
    best = mine.sort_values(["_mean", "flops_total"], ascending=[False, True], kind="stable")["_point"].iloc[0]
    best = mine[mine["_point"] == best]
    difference = compare(best.set_index("seed")["accuracy"], runs.set_index("seed")["accuracy"])
    return {"salt_allocations": " ".join(sorted(best["allocation_id"].astype(str))), **as_columns(difference)}


def baseline_comparison(pareto: pd.DataFrame) -> pd.DataFrame:
    """One row per final baseline and task (from the Pareto table: final encoders, accuracy per task).
    gap = SALT's best accuracy - the baseline's; flops_ratio = SALT's FLOPs / the baseline's; empty where no
    student qualifies. The comparison over seeds is one per baseline, task and budget, on each of its rows."""
    baselines = pareto[is_baseline(pareto)]
    students = pareto[equals(pareto, "role", "student")]
    over_seeds = {}
    for _, runs in baselines.groupby(RUN, dropna=False, sort=False):
        over_seeds.update(dict.fromkeys(runs.index, _over_seeds(runs, students)))
    rows = []
    for index, base in baselines.assign(label=baseline_label(baselines)).iterrows():
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
                     **{c: base[c] for c in COLLAPSE_COLUMNS if c in base}, **salt, **cheap, **over_seeds[index]})
    return pd.DataFrame(rows, columns=COLUMNS)
