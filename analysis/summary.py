"""summary.md: the findings in numbers, beside the paper's where the comparison makes sense, and a
plain statement wherever the data cannot support a claim."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import reference
from analysis.allocation import FIT_SHARES, rank_allocations
from analysis.findings import Findings
from analysis.markdown import NA, budget_name, missing, num, pct, share, table
from analysis.recommend_text import format_recommendation
from analysis.summary_allocation import (
    allocation_section, encoder_name, headline, loss_section, teacher_side_section, teacher_size_section,
)
from analysis.results import Metric, Results, column_true, equals, floor_accuracy, is_baseline
from analysis.schema import MEAN_TASK
from analysis.stats import from_columns, noise_words
from analysis.summary_baselines import baselines_section, beats_section, teacher_verdicts, versus


def _values(frame: pd.DataFrame, column: str) -> str:
    values = sorted(frame[column].dropna().unique())
    return ", ".join(str(v) for v in values) if values else NA


def _budget_kind(rows: pd.DataFrame) -> str:
    kinds = set(rows["budget_kind"].dropna()) if "budget_kind" in rows else set()
    if kinds == {"flops"}:
        return "in FLOPs: each allocation's T and S split the budget by the FLOPs model"
    return "total steps T + S" if kinds <= {"steps"} else "steps and FLOPs, in different sweeps"


def _overview(results: Results, metrics: list[Metric], sizes: list[str]) -> list[str]:
    rows, failed = results.rows, results.failed
    runs = ", ".join(f"`{run}`" for run in results.runs) or "a results table"
    lines = [
        "# salt-budget report", "",
        f"- Runs: {runs}; sweeps: {_values(rows, 'sweep')}.",
        f"- Rows: {len(rows)} ({len(rows) - len(failed)} finished, {len(failed)} failed); roles: "
        f"{_values(rows, 'role')}; tasks analysed: {', '.join(m.label for m in metrics)}.",
        f"- Budgets ({_budget_kind(rows)}): "
        f"{', '.join(budget_name(v) for v in sorted(rows['budget'].dropna().unique())) or NA}; teacher sizes, small to large by FLOPs per step: "
        f"{', '.join(sizes) or NA}; student sizes: {_values(rows, 'student_size')}; seeds: {_values(rows, 'seed')}.",
        f"- Readout: {results.readout}. Accuracies are its top-1 on the validation split in %, gaps in percentage "
        "points; \"final\" is each unit's last checkpoint.",
        f"- {_floor_line(results, metrics)}",
        f"- Read on: {_provenance_line(results.rows)}.",
    ]
    return lines + [f"- {note}." for note in results.notes]


def _floor_line(results: Results, metrics: list[Metric]) -> str:
    floor = results.floor
    if floor.empty:
        return ("Random-init floor: not measured in this table (a sweep before salt-budget probed it): read "
                "accuracies against `salt-budget probe random` on the same readout.")
    sizes = sorted(floor["student_size"].dropna().unique())
    values = ", ".join(f"{m.label} {pct(floor_accuracy(results, m))}%" for m in metrics)
    return (f"Random-init floor (untrained {', '.join(sizes)} encoder{'s' * (len(sizes) > 1)}, same readout, "
            f"seeds {_values(floor, 'seed')}): {values}; an accuracy means training only where it clears this.")


def _provenance_line(rows: pd.DataFrame) -> str:
    """Machines, code and library versions of the rows, as recorded."""
    def distinct(column: str) -> str:
        return _values(rows, column) if column in rows else NA

    commits, kernels = distinct("git_commit"), distinct("cpu_capability")
    dirty = " (dirty)" if column_true(rows, "git_dirty") else ""
    parts = [f"machine {distinct('machine')}{f' ({kernels} kernels)' if kernels != NA else ''}",
             f"code {distinct('code_version')}{f' at {commits}' if commits != NA else ''}{dirty}",
             f"torch {distinct('torch_version')}", f"threads {distinct('threads')}"]
    return "; ".join(parts)


def _at_or_below_chance(results: Results, metric: Metric, baselines: bool = False) -> tuple[int, int, float]:
    """Final students (or baseline runs) at or below the probe's chance level on `metric`: (count, of how many,
    mean chance)."""
    final = results.final
    chosen = final[is_baseline(final)] if baselines else final[equals(final, "role", "student")]
    tasks = results.tasks if metric.name == MEAN_TASK else (metric.name,)
    chance = chosen[[f"chance_{t}" for t in tasks if f"chance_{t}" in chosen]].mean(axis=1)
    return int((chosen[metric.column] <= chance).sum()), len(chosen), float(chance.mean())


def _glance(results: Results, findings: Findings, metrics: list[Metric]) -> list[str]:
    head = headline(metrics)
    lines = ["", f"## At a glance ({head.label})", ""]
    points = findings.allocation_points[findings.allocation_points["task"] == head.name]
    seeds = findings.allocation_seeds[findings.allocation_seeds["task"] == head.name]
    for budget, group in points.groupby("budget", sort=True):
        r = rank_allocations(group, seeds)  # each gap set against the seed noise (analysis/stats.py)
        runner_up = ("no other allocation" if missing(r["gap_second"]) else
                     f"{pct(r['gap_second'])} points above the runner-up "
                     f"({noise_words(from_columns(r, 'second_'))})")
        heaviest = ("it is the most teacher-heavy allocation" if r["heaviest_share"] == r["best_share"] else
                    f"{pct(r['gap_heaviest'])} above the most teacher-heavy (share {share(r['heaviest_share'])}; "
                    f"{noise_words(from_columns(r, 'heaviest_'))})")
        lines.append(f"- Budget {budget_name(budget)}: best is a {r['best_teacher_size']} teacher for {r['best_teacher_steps']} "
                     f"steps "
                     f"(share {share(r['best_share'])}), {pct(r['best_accuracy'])}%, {runner_up}, {heaviest}.")
    if points.empty:
        lines.append("- No finished student: the data cannot say how to split the budget.")
    front = findings.pareto[(findings.pareto["task"] == head.name) & findings.pareto["on_front"]]
    lines.append(f"- Pareto front: {len(front)} encoder{'s' * (len(front) != 1)}; " + ", ".join(
        f"{role}: {count}" for role, count in front["role"].value_counts().items()) + ".")
    pooled = findings.loss_fits[(findings.loss_fits["task"] == head.name) & (findings.loss_fits["teacher"] == "pooled")]
    if len(pooled):
        fit = pooled.iloc[0]
        lines.append(f"- Student loss against accuracy over {fit['n']} checkpoints, pooled: " +
                     (f"R² {num(fit['r2'])}, Spearman ρ {num(fit['spearman'], '+.3f')}" if not missing(fit["r2"])
                      else f"no fit ({fit['note']})") +
                     f" (paper, per teacher on SSv2: {min(r2 for _, r2 in reference.LOSS_R2_SSV2)}-"
                     f"{max(r2 for _, r2 in reference.LOSS_R2_SSV2)}).")
    pairs = findings.pairs[findings.pairs["task"] == head.name].dropna(subset=["teacher_accuracy", "student_accuracy"])
    if len(pairs):
        lines.append(f"- {int(pairs['beats_teacher'].sum())} of {len(pairs)} final students beat their teacher "
                     f"(paper: {reference.STUDENTS_BEAT_TEACHERS}); {teacher_verdicts(findings, head)}.")
    for _, r in findings.baselines[findings.baselines["task"] == head.name].iterrows():
        lines.append(f"- {versus(r)}")
    low, students, chance = _at_or_below_chance(results, head)
    if low:
        lines.append(f"- Caution: {low} of {students} final students are at or below chance ({pct(chance)}%): "
                     "differences among them are noise, not findings.")
    return lines


def _failures(findings: Findings) -> list[str]:
    lines = ["", "## Failed and unfinished units", ""]
    failed, unfinished, pruned = findings.failed, findings.unfinished, findings.pruned
    if len(pruned):
        lines += [f"{len(pruned)} search trial(s) were pruned: stopped at a probe point, behind the median of the "
                  "search's finished trials there. They have no final point: their probed checkpoints count in the "
                  "loss fits only.", "",
                  table(["allocation", "teacher share", "last step", "of", "accuracy there", "reason"],
                        [[r.allocation_id, f"{r.teacher_share:.3f}", r.last_step, r.student_steps,
                          "-" if missing(r.acc_mean) else f"{pct(r.acc_mean)}%", r.reason]
                         for r in pruned.itertuples()]), ""]
    if failed.empty and unfinished.empty:
        return lines + (["No unit failed; every unit not pruned finished."] if len(pruned) else
                        ["None: every unit in the table finished."])
    if len(failed):
        lines += [f"{len(failed)} unit(s) failed; they are absent from every figure and finding below:", "",
                  table(["role", "unit", "allocation", "teacher", "reason"],
                        [[r.role, r.unit_key, r.allocation_id if not missing(r.allocation_id) else "-",
                          "-" if missing(r.teacher_steps) else f"{r.teacher_size} T{r.teacher_steps}", r.reason]
                         for r in failed.itertuples()]), ""]
    if len(unfinished):
        lines += [f"{len(unfinished)} student unit(s) have checkpoints but no final one yet (a sweep still running, "
                  "or stopped): their checkpoints count in the loss fits only.", "",
                  table(["allocation", "last step", "of"],
                        [[r.allocation_id, r.last_step, r.student_steps] for r in unfinished.itertuples()])]
    return lines


def _front(findings: Findings, metrics: list[Metric]) -> list[str]:
    lines = ["", "## Accuracy against compute (Pareto front)", ""]
    for metric in metrics:
        panel = findings.pareto[findings.pareto["task"] == metric.name]
        front = panel[panel["on_front"]].sort_values("flops_total")
        roles = ", ".join(f"{role}: {count}" for role, count in front["role"].value_counts().items())
        names = "; ".join(encoder_name(r) + f" ({pct(r.accuracy)} at {r.flops_total:.3g} FLOPs)"
                          for r in front.itertuples())
        lines.append(f"- {metric.label}: {len(front)} of {panel['accuracy'].notna().sum()} final encoders on the "
                     f"front ({roles or 'none'}): {names or NA}.")
    return lines


def _lattice_step(values: pd.Series) -> float:
    """The step of a validation split's accuracies (k / n clips): the smallest gap between distinct values
    when every value sits on that grid, else NaN (accuracies are not visibly quantised)."""
    # Rounded first: a task average of equal accuracies differs only in float noise.
    distinct = np.unique(values.dropna().to_numpy(dtype=float).round(9))
    if len(distinct) < 2:
        return float("nan")
    step = float(np.diff(distinct).min())
    multiples = (distinct - distinct[0]) / step
    return step if np.allclose(multiples, multiples.round(), atol=1e-6) else float("nan")


def _limits(results: Results, findings: Findings, metrics: list[Metric]) -> list[str]:
    lines = ["", "## What these data cannot tell", ""]
    final = results.final
    points = findings.allocation_points
    if len(points) and points["seeds"].max() <= 1:
        lines.append("- One seed per allocation: seed-to-seed noise is not measured, so no gap above is tested "
                     "against it.")
    elif len(points):
        lines.append(f"- Up to {points['seeds'].max()} seeds per allocation; the mean seed-to-seed standard deviation "
                     f"is {pct(points['accuracy_sd'].mean())} points. A gap above is a finding only where it says "
                     "\"resolved\": its 90% interval over seeds (paired by seed) excludes zero.")
    for metric in metrics:
        # A task average of quantised accuracies is quantised too, but says nothing new about the split.
        step = _lattice_step(final[metric.column]) if metric.name != MEAN_TASK else float("nan")
        if not missing(step):
            lines.append(f"- {metric.label}: accuracies move in steps of {pct(step, 2)} points (as from a validation "
                         f"split of about {round(1 / step)} clips): a gap of one step is one clip, not a finding.")
        low, count, chance = _at_or_below_chance(results, metric)
        if low:
            lines.append(f"- {metric.label}: {low} of {count} final students are at or below chance ({pct(chance)}%): "
                         "differences among them are noise.")
        low, count, chance = _at_or_below_chance(results, metric, baselines=True)
        if low:
            lines.append(f"- {metric.label}: {low} of {count} final baseline runs are at or below chance "
                         f"({pct(chance)}%): SALT's gaps to them are noise too.")
    allocation = findings.allocation
    if len(allocation):
        undefined = int(allocation["optimum_share"].isna().sum())
        exact = int(((allocation["shares"] == FIT_SHARES) & allocation["optimum_share"].notna()).sum())
        if undefined:
            lines.append(f"- {undefined} of {len(allocation)} allocation curves have no fitted optimum (reasons in the "
                         "table).")
        if exact:
            lines.append(f"- {exact} of {len(allocation)} allocation curves have exactly 3 shares: the quadratic "
                         "passes "
                         "through them, so its optimum interpolates and is not a tested fit.")
    loss = findings.loss_fits
    if len(loss):
        undefined = int(loss["r2"].isna().sum())
        if undefined:
            lines.append(f"- Loss-accuracy fits undefined: {undefined} of {len(loss)} (too few checkpoints, or no "
                         "spread in loss or accuracy).")
    return lines if len(lines) > 3 else lines + ["- Nothing flagged."]


def _recommendation(findings: Findings, metrics: list[Metric]) -> list[str]:
    lines = ["", "## The split for the next budget up (salt-budget recommend)", ""]
    if findings.advice is None:
        return lines + [f"{findings.no_advice}."]
    return lines + [f"Twice the largest budget swept, fitted on every budget swept ({headline(metrics).label}):", "",
                    *format_recommendation(findings.advice)]


def write_summary(results: Results, findings: Findings, metrics: list[Metric], sizes: list[str]) -> str:
    sections = [
        _overview(results, metrics, sizes), _glance(results, findings, metrics), _failures(findings),
        _front(findings, metrics), allocation_section(findings, metrics), loss_section(findings, metrics),
        teacher_side_section(findings, metrics), teacher_size_section(findings, metrics, sizes), beats_section(findings, metrics),
        baselines_section(results, findings, metrics), _recommendation(findings, metrics),
        _limits(results, findings, metrics),
    ]
    return "\n".join(line for section in sections for line in section) + "\n"
