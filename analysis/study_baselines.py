"""SALT against each baseline at equal steps, in a study: per budget, each SALT allocation of the ablation
that lists the baseline (study.json: a sweep's "baselines", the baseline's unit keys) against the baseline run of
the same budget, per task and task average, over seeds and paired by seed (analysis/stats.py), with both sides'
total FLOPs (the baseline's include its EMA teacher's forward), beside Table 16's SALT and V-JEPA 2 rows (for the
paper's own baseline, reference.PAPER_BASELINE) of the paper budget the study budget stands for
(analysis/reference.py: paper_budget)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import reference
from analysis.markdown import NA, budget_name, pct, table
from analysis.results import baseline_name, is_baseline
from analysis.stats import as_columns, compare, describe, from_columns
from analysis.study_data import StudyData, final_pairs, paper_scale_of

ARM = ["teacher_size", "teacher_steps", "teacher_share"]  # one SALT allocation of a budget


def baseline_runs(study: StudyData, ablation: str) -> pd.DataFrame:
    """The final checkpoint of every baseline run the ablation's sweeps list (one row per run)."""
    parts = []
    for sweep in study.ablation(ablation):
        results = study.results.get(sweep["folder"])
        if results is None or not sweep.get("baselines"):
            continue
        final = results.final
        parts.append(final[is_baseline(final) & final["unit_key"].isin(sweep["baselines"])])
    if not parts:
        return pd.DataFrame()
    return pd.concat(parts, ignore_index=True).drop_duplicates("unit_key", keep="last")


def _paper_columns(method: str, benchmark: str | None, paper_budget: int | None, share: float,
                   best: bool) -> dict[str, object]:
    """Table 16 at the matching budget: SALT's best row (for the best allocation) or the row of the same teacher
    share, and V-JEPA 2's, on the task's benchmark (fractions, like the study's accuracies); empty for a baseline
    other than the paper's."""
    empty = {"paper_salt_allocation": None, "paper_salt": np.nan, "paper_salt_flops": np.nan,
             "paper_vjepa2": np.nan, "paper_vjepa2_flops": np.nan, "paper_gap": np.nan}
    paper_row = paper_budget is not None and method == reference.PAPER_BASELINE
    vjepa2 = reference.vjepa2(paper_budget) if paper_row else None
    if benchmark is None or vjepa2 is None:
        return empty
    salt = reference.table_16(benchmark)
    salt = salt[salt["budget"] == paper_budget]
    chosen = salt.loc[[salt["accuracy"].idxmax()]] if best else salt[np.isclose(salt["teacher_share"], share, rtol=1e-3)]
    columns = {**empty, "paper_vjepa2": vjepa2[benchmark] / 100, "paper_vjepa2_flops": vjepa2["flops_total"]}
    if len(chosen):
        row = chosen.iloc[0]
        columns.update(paper_salt_allocation=row["allocation_ids"], paper_salt=row["accuracy"],
                       paper_salt_flops=row["flops_total"], paper_gap=row["accuracy"] - vjepa2[benchmark] / 100)
    return columns


def _sd(values: pd.Series) -> float:
    return float(values.std(ddof=1)) if len(values) > 1 else np.nan


def baseline_table(study: StudyData) -> pd.DataFrame:
    """One row per ablation listing a baseline, budget, baseline method, SALT allocation and task (tasks and their
    average): both arms' mean and sd over seeds and total FLOPs, SALT - baseline over seeds (diff ... verdict,
    paired by seed), `best` on the allocation of the best seed-mean task average, and the paper's rows."""
    rows = []
    for ablation in dict.fromkeys(s["ablation"] for s in study.sweeps if s.get("baselines")):
        runs, students = baseline_runs(study, ablation), final_pairs(study, ablation)
        if runs.empty or students.empty:
            continue
        scale = paper_scale_of(study, ablation)
        for (budget, method), base in runs.groupby(["budget", "role"], sort=True):
            salt = students[students["budget"] == budget]
            if salt.empty:
                continue
            arms = salt.groupby(ARM, sort=True)
            best = arms["acc_mean"].mean().idxmax()
            paper_budget = reference.paper_budget(budget, scale)
            for arm, group in arms:
                for metric in study.metrics:
                    difference = compare(group.set_index("seed")[metric.column], base.set_index("seed")[metric.column])
                    salt_flops, base_flops = float(group["flops_total"].mean()), float(base["flops_total"].mean())
                    rows.append({
                        "ablation": ablation, "budget": budget, "paper_budget": paper_budget, "task": metric.name,
                        "benchmark": reference.BENCHMARK_OF_TASK.get(metric.name), "best": arm == best,
                        **dict(zip(ARM, arm)), "salt_accuracy": float(group[metric.column].mean()),
                        "salt_sd": _sd(group[metric.column]), "salt_seeds": int(group["seed"].nunique()),
                        "salt_flops_total": salt_flops, "baseline": baseline_name(method),
                        "baseline_size": str(base["student_size"].iloc[0]),
                        "baseline_accuracy": float(base[metric.column].mean()), "baseline_sd": _sd(base[metric.column]),
                        "baseline_seeds": int(base["seed"].nunique()), "baseline_flops_total": base_flops,
                        "flops_ratio": salt_flops / base_flops if base_flops else np.nan,
                        **as_columns(difference),
                        **_paper_columns(method, reference.BENCHMARK_OF_TASK.get(metric.name), paper_budget,
                                         float(arm[2]), arm == best)})
    return pd.DataFrame(rows)


def _pm(mean: float, sd: float) -> str:
    return pct(mean) if np.isnan(sd) else f"{pct(mean)} ± {pct(sd)}"


def _paper_cell(r: pd.Series) -> str:
    if pd.isna(r["paper_budget"]):
        return "no paper budget"
    if r["baseline"] != baseline_name(reference.PAPER_BASELINE):
        return "the paper has no row of this baseline"
    if pd.isna(r["paper_vjepa2"]):
        return f"{budget_name(r['paper_budget'])}: no benchmark for this task"
    salt = NA if pd.isna(r["paper_salt"]) else f"SALT {r['paper_salt_allocation']} {pct(r['paper_salt'])}"
    return (f"{budget_name(r['paper_budget'])}, {r['benchmark']}: {salt if salt != NA else 'no SALT row of this share'}"
            f", V-JEPA 2 {pct(r['paper_vjepa2'])}" + ("" if pd.isna(r["paper_gap"]) else
                                                     f" ({100 * r['paper_gap']:+.1f})"))


def section(study: StudyData, found: pd.DataFrame | None) -> list[str]:
    if found is None or found.empty:
        return []
    label = {m.name: m.label for m in study.metrics}
    baselines = " / ".join(dict.fromkeys(found["baseline"]))
    lines = [f"## SALT against {baselines} at equal steps", "",
             "Per budget, every SALT allocation (**bold**: the best on the task average) against the baseline "
             "trained for the whole budget, SALT minus baseline over seeds, paired by seed; FLOPs are each run's "
             "total (SALT: teacher and student; the baseline: its encoder and its EMA teacher's forward). Paper: "
             "Table 16 at the budget this one stands for (its SALT row of the same share, or its best for the bold "
             "row), K400 beside appearance, SSv2 beside motion, their mean beside the task average. "
             "Table: tables/study_vs_baseline.csv.", ""]
    rows = []
    for _, r in found.iterrows():
        allocation = f"T{int(r['teacher_steps'])} ({r['teacher_share']:.3g})"
        rows.append([budget_name(r["budget"]), f"**{allocation}**" if r["best"] else allocation, label[r["task"]],
                     _pm(r["salt_accuracy"], r["salt_sd"]), f"{r['salt_flops_total']:.3g}",
                     f"{r['baseline']} {r['baseline_size']}", _pm(r["baseline_accuracy"], r["baseline_sd"]),
                     f"{r['baseline_flops_total']:.3g}", describe(from_columns(r)), _paper_cell(r)])
    lines += [table(["budget", "SALT allocation", "task", "SALT", "SALT FLOPs", "baseline", "baseline accuracy",
                     "baseline FLOPs", "SALT - baseline over seeds", "paper"], rows), ""]
    return lines
