"""Every number the report shows, computed once from a Results: the figures draw these tables, the
summary words them, and the report writes them as CSV.

Tables are long: one row per point (or fit) and task, with the task in a `task` column and the
accuracy as a fraction, as in the results table.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import pandas as pd

from analysis.allocation import allocation_findings, allocation_points, seed_values
from analysis.baselines import baseline_comparison
from analysis.markdown import budget_name
from analysis.pairs import student_teacher_pairs, teacher_label, versus_teacher
from analysis.pareto import pareto_mask
from analysis.recommend import Recommendation, next_budget
from analysis.recommend_text import recommendation_table
from analysis.regression import fit_line, grouped_fits
from analysis.results import Metric, Results, baseline_label, equals, is_baseline, size_order
from analysis.schema import COLLAPSE_COLUMNS, CONFIG_COLUMNS, MEAN_TASK

# The student-loss axis: the mean of the last 10% of logged losses up to the checkpoint. The last
# logged loss alone is one batch's, too noisy to rank checkpoints at small batch sizes.
LOSS = "loss_smoothed"
TEACHER_METRICS = {
    "teacher_loss": "teacher loss", "teacher_rankme": "teacher RankMe", "teacher_accuracy": "teacher accuracy",
}
FAILED_COLUMNS = ["sweep", "role", "unit_key", "allocation_id", "teacher_size", "teacher_steps", "budget", "reason"]


@dataclass(frozen=True)
class Findings:
    pareto: pd.DataFrame  # final encoders of every role (baselines with their collapse signal), on_front per task
    allocation_points: pd.DataFrame  # final students, one point per allocation (mean over seeds)
    allocation_seeds: pd.DataFrame  # final students, one value per allocation and seed (what the intervals pair)
    allocation: pd.DataFrame  # per curve: best allocation, gaps (against the seed noise), fitted optimum
    pairs: pd.DataFrame  # final students beside their teachers
    versus_teacher: pd.DataFrame  # per allocation: student - teacher over seeds, against the seed noise
    loss_points: pd.DataFrame  # student and baseline checkpoints: loss and accuracy
    loss_fits: pd.DataFrame  # per teacher, pooled over students, and per baseline run (role column)
    teacher_points: pd.DataFrame  # teacher-side metric against student accuracy
    teacher_fits: pd.DataFrame  # per budget and pooled
    baselines: pd.DataFrame  # each final baseline beside SALT's best student of its budget and seed
    failed: pd.DataFrame  # failed units, listed
    unfinished: pd.DataFrame  # student units with checkpoints but no final one yet
    pruned: pd.DataFrame  # search trials stopped at a probe point: where, at what accuracy, why
    recommendation: pd.DataFrame  # the budgets' optimum shares and the split advised at twice the largest
    advice: Recommendation | None  # that split, for summary.md (computed once: it bootstraps)
    no_advice: str  # why there is none

    def tables(self) -> dict[str, pd.DataFrame]:
        return {f.name: getattr(self, f.name) for f in fields(self) if isinstance(getattr(self, f.name), pd.DataFrame)}


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _config(frame: pd.DataFrame) -> list[str]:
    return [c for c in CONFIG_COLUMNS if c in frame]


def _long(frame: pd.DataFrame, metrics: list[Metric], keep: list[str], name: str = "accuracy") -> pd.DataFrame:
    return _concat([frame[keep].assign(task=m.name, **{name: frame[m.column].astype(float)}) for m in metrics])


def _pareto(results: Results, metrics: list[Metric]) -> pd.DataFrame:
    collapse = [c for c in COLLAPSE_COLUMNS if c in results.final]
    table = _long(results.final, metrics, [*_config(results.final), "flops_total", *collapse])
    table["on_front"] = False
    for _, panel in table.groupby("task", sort=False):
        table.loc[panel.index, "on_front"] = pareto_mask(panel["flops_total"].to_numpy(), panel["accuracy"].to_numpy())
    return table


def _allocation(results: Results, metrics: list[Metric]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Points (seed means), per-seed values and per-curve findings, each with a task column."""
    students = results.final[equals(results.final, "role", "student")]
    points = [allocation_points(students, m.column).assign(task=m.name) for m in metrics]
    seeds = [seed_values(students, m.column).assign(task=m.name) for m in metrics]
    fits = [allocation_findings(p, s).assign(task=m.name) for m, p, s in zip(metrics, points, seeds, strict=True)]
    return _concat(points), _concat(seeds), _concat(fits)


def _pairs(pairs: pd.DataFrame, metrics: list[Metric]) -> pd.DataFrame:
    parts = []
    for m in metrics:
        part = pairs[[*_config(pairs), "teacher", "teacher_loss", "teacher_rankme"]].assign(
            task=m.name, teacher_accuracy=pairs[f"teacher_{m.column}"].astype(float),
            student_accuracy=pairs[m.column].astype(float))
        part["beats_teacher"] = part["student_accuracy"] > part["teacher_accuracy"]
        parts.append(part)
    return _concat(parts)


def _loss(results: Results, metrics: list[Metric]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Students grouped by teacher and pooled; each baseline run on its own (its loss is another objective's,
    on another scale, so it never joins the pooled fit). The `teacher` column names the group."""
    students = results.ok[equals(results.ok, "role", "student")]
    rank = {size: i for i, size in enumerate(size_order(results.rows))}
    students = students.assign(teacher=teacher_label(students), loss=students[LOSS].astype(float),
                               _size=students["teacher_size"].map(rank))
    students = students.sort_values(["_size", "teacher_steps", "seed", "step"], kind="stable")
    baselines = results.ok[is_baseline(results.ok)]
    baselines = baselines.assign(teacher=baseline_label(baselines), loss=baselines[LOSS].astype(float))
    baselines = baselines.sort_values(["teacher", "budget", "step"], kind="stable")
    keep = ["is_final", "teacher", "loss"]
    points = _long(students, metrics, [*_config(students), *keep])
    extra = _long(baselines, metrics, [*_config(baselines), *keep])
    # Per metric, not per group of points: a metric without points still gets its (undefined) pooled fit.
    fits = [grouped_fits(points[points["task"] == m.name], "loss", "accuracy", by="teacher").assign(
        task=m.name, role="student") for m in metrics]
    fits += [pd.DataFrame([{"teacher": label, **fit_line(group["loss"], group["accuracy"]).as_row()}]).assign(
        task=task, role=group["role"].iloc[0]) for (task, label), group in extra.groupby(["task", "teacher"], sort=False)]
    return (points if extra.empty else pd.concat([points, extra], ignore_index=True)), _concat(fits)


def _teacher_side(pairs: pd.DataFrame, metrics: list[Metric]) -> tuple[pd.DataFrame, pd.DataFrame]:
    pairs = pairs.sort_values("budget", kind="stable")
    parts = [pairs.assign(teacher_metric=label, x=pairs[column].astype(float))
             for column, label in TEACHER_METRICS.items()]
    points = _concat(parts).drop(columns=list(TEACHER_METRICS))
    points["group"] = pd.Series([f"budget {budget_name(v)}" for v in points["budget"]], index=points.index,
                                dtype=object)
    fits = [grouped_fits(points[(points["task"] == m.name) & (points["teacher_metric"] == label)], "x",
                         "student_accuracy", by="group").assign(task=m.name, teacher_metric=label)
            for label in TEACHER_METRICS.values() for m in metrics]
    return points, _concat(fits)


def _pruned(results: Results) -> pd.DataFrame:
    """Each pruned trial: its allocation and share, its last probed checkpoint and accuracy there, the reason."""
    rows = []
    for marker in results.pruned.itertuples():
        probed = results.ok[results.ok["unit_key"] == marker.unit_key].sort_values("step")
        last = probed.iloc[-1] if len(probed) else None
        rows.append({"unit_key": marker.unit_key, "allocation_id": marker.allocation_id,
                     "teacher_share": marker.teacher_share, "teacher_steps": marker.teacher_steps,
                     "student_steps": marker.student_steps, "last_step": None if last is None else last["step"],
                     "acc_mean": None if last is None else last["acc_mean"], "reason": marker.reason})
    return pd.DataFrame(rows, columns=["unit_key", "allocation_id", "teacher_share", "teacher_steps", "student_steps",
                                       "last_step", "acc_mean", "reason"])


def _unfinished(results: Results) -> pd.DataFrame:
    students = results.ok[equals(results.ok, "role", "student")]
    finished = set(results.final["unit_key"]) | set(results.pruned["unit_key"])
    pending = students[~students["unit_key"].isin(finished)]
    return pending.groupby("unit_key", sort=True).agg(
        allocation_id=("allocation_id", "first"), last_step=("step", "max"), student_steps=("student_steps", "first"),
    ).reset_index()


def compute(results: Results, metrics: list[Metric]) -> Findings:
    pairs = _pairs(student_teacher_pairs(results), metrics)
    allocation_points_table, allocation_seeds, allocation = _allocation(results, metrics)
    loss_points, loss_fits = _loss(results, metrics)
    teacher_points, teacher_fits = _teacher_side(pairs, metrics)
    failed = results.failed[[c for c in FAILED_COLUMNS if c in results.failed]].reset_index(drop=True)
    pareto = _pareto(results, metrics)
    head = next((m for m in metrics if m.name == MEAN_TASK), metrics[0])
    advice, no_advice = next_budget(results, head.column)
    return Findings(
        pareto=pareto, allocation_points=allocation_points_table, allocation_seeds=allocation_seeds,
        allocation=allocation, pairs=pairs, versus_teacher=versus_teacher(pairs), loss_points=loss_points,
        loss_fits=loss_fits, teacher_points=teacher_points, teacher_fits=teacher_fits,
        baselines=baseline_comparison(pareto), failed=failed, unfinished=_unfinished(results),
        pruned=_pruned(results),
        recommendation=recommendation_table(advice), advice=advice, no_advice=no_advice)
