"""summary.md's sections on where the budget should go: the allocation ranking (ours and the paper's Table 16),
the loss-accuracy fits, the teacher's side and the teacher size."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import reference
from analysis.allocation import allocation_findings
from analysis.findings import LOSS, Findings
from analysis.markdown import NA, budget_id, budget_name, missing, num, pct, share, steps, table
from analysis.results import Metric, baseline_name
from analysis.schema import MEAN_TASK
from analysis.stats import ONE_SEED, from_columns, noise_words, tally


def headline(metrics: list[Metric]) -> Metric:
    """The accuracy the one-line readings quote: the task average when it is analysed."""
    return next((m for m in metrics if m.name == MEAN_TASK), metrics[0])


def encoder_name(row) -> str:
    if row.role == "student":
        return f"{budget_id(row.budget)} T{row.teacher_steps} {row.teacher_size} + S{row.student_steps} {row.student_size}"
    if row.role == "teacher":
        return f"teacher {row.teacher_size} T{row.teacher_steps} alone"
    return f"{baseline_name(row.role)} {budget_id(row.budget)} {row.student_size}"


def _optimum(row: pd.Series) -> str:
    if missing(row["optimum_share"]):
        return row["note"]
    where = "inside" if row["optimum_where"] == "inside" else "at the edge of"
    return f"{share(row['optimum_share'])} ({pct(row['optimum_accuracy'])}), {where} the tested range"


def _ranking_rows(fits: pd.DataFrame, labels: dict[str, str], step_format=budget_name,
                  noise: bool = False) -> list[list[object]]:
    """The ranking table's rows; with `noise`, a last cell sets the gap to the runner-up against the seeds."""
    rows = []
    for _, r in fits.iterrows():
        ties = r["tied_shares"].split()
        best = f"T{step_format(r['best_teacher_steps'])} (share {share(r['best_share'])})"
        if len(ties) > 1:
            best += f", tied with share {' '.join(t for t in ties if t != share(r['best_share']))}"
        gap_second = "n/a (one allocation)" if missing(r["gap_second"]) else pct(r["gap_second"])
        heaviest = ("is the best" if r["heaviest_share"] == r["best_share"] else
                    f"share {share(r['heaviest_share'])}: {pct(r['heaviest_accuracy'])}, gap {pct(r['gap_heaviest'])}")
        rows.append([step_format(r["budget"]), f"{r['teacher_size']} → {r['student_size']}", labels[r["task"]], best,
                     pct(r["best_accuracy"]), gap_second, heaviest, _optimum(r)])
        if noise:
            rows[-1].append(noise_words(from_columns(r, "second_")))
    return rows


ALLOCATION_HEADERS = ["budget", "teacher → student", "task", "best allocation", "accuracy", "gap to 2nd",
                      "most teacher-heavy", "fitted optimum share (accuracy)"]


def _heaviest_best(fits: pd.DataFrame) -> int:
    return int(sum(r["best_accuracy"] == r["heaviest_accuracy"] for _, r in fits.iterrows()))


def allocation_section(findings: Findings, metrics: list[Metric]) -> list[str]:
    fits = findings.allocation
    lines = ["", "## Where the budget should go (accuracy against teacher share)", ""]
    if fits.empty:
        return lines + ["No finished student: the data cannot say how to split the budget."]
    lines += [table([*ALLOCATION_HEADERS, "gap to 2nd against the seeds"],
                    _ranking_rows(fits, {m.name: m.label for m in metrics}, noise=True)), "",
              "Fitted curve: a quadratic in ln(share) per budget and size pair; its optimum is the fitted maximum "
              "over the tested shares, so an optimum at the edge means the best share may lie outside them.", ""]
    head = headline(metrics)
    mine = fits[fits["task"] == head.name]
    lines.append(f"- The most teacher-heavy allocation is the best (or tied best) in {_heaviest_best(mine)} of "
                 f"{len(mine)} curves ({head.label}).")
    lines.append(f"- Best teacher share per budget ({head.label}): " + "; ".join(
        f"{budget_name(r['budget'])} {r['teacher_size']}: {share(r['best_share'])}" for _, r in mine.iterrows()) + ".")
    lines.append(f"- {_runner_up_verdicts(mine)} ({head.label}).")
    return lines + _paper_allocation(metrics)


def _runner_up_verdicts(fits: pd.DataFrame) -> str:
    """Whether the best share's lead over the runner-up exceeds the seed noise, over the curves, in words."""
    compared = fits[fits["second_n"] > 0]
    if compared.empty:
        return "No curve has a runner-up to set the best share against"
    if (compared["second_verdict"] == ONE_SEED).all():
        return ("One seed per allocation: no best share is tested against the runner-up beyond the seed noise, so "
                "none is shown to be better than it")
    return (f"The best share against the runner-up over seeds, in {len(compared)} curves: "
            f"{tally(compared, 'second_', above='(best ahead)', below='(runner-up ahead)')}")


def _paper_allocation(metrics: list[Metric]) -> list[str]:
    benchmarks = [(m, reference.BENCHMARK_OF_TASK[m.name]) for m in metrics if m.name in reference.BENCHMARK_OF_TASK]
    if not benchmarks:
        return []
    fits = {b: allocation_findings(reference.table_16(b)).assign(task=b) for _, b in benchmarks}
    rows = [row for m, b in benchmarks for row in _ranking_rows(fits[b], {b: f"{b} (vs {m.label})"}, steps)]
    lines = ["", f"Paper, Table 16 ({reference.CITATION}), ranked the same way:", "",
             table(ALLOCATION_HEADERS, rows), ""]
    for _, b in benchmarks:
        fit = fits[b]
        lines.append(f"- Paper, {b}: the most teacher-heavy allocation is the best (or tied best) in "
                     f"{_heaviest_best(fit)} of {len(fit)} budgets; best teacher steps per budget: " + "; ".join(
                         f"{steps(r['budget'])}: {steps(r['best_teacher_steps'])} (share {share(r['best_share'])})"
                         for _, r in fit.iterrows()) + ".")
    three = "; ".join(f"T{steps(r.teacher_steps)} + S{steps(r.first_student_steps)}, then S{steps(r.student_steps)}: "
                      f"{r.avg_of_4} at {r.flops_total:.4g} FLOPs" for r in reference.THREE_STAGE_240K)
    best = max((r for r in reference.TABLE_16 if r[0] == 240_000), key=lambda r: r[6])  # avg of 4
    return lines + [f"- Paper, 240k, three stages (a SALT student as the next teacher; avg of 4 only, not comparable "
                    f"with the tasks above): {three}; the best two stages, T{steps(best[1])} + S{steps(best[2])}: "
                    f"{best[6]}."]


def _fit_cells(r: pd.Series) -> list[object]:
    if missing(r["r2"]) and missing(r["spearman"]):
        return [r["n"], f"n/a ({r['note']})", NA, NA, NA]
    slope = NA if missing(r["slope"]) else f"{r['slope'] * 100:+.2f}"
    r2 = num(r["r2"]) + (f" ({r['note']})" if r["note"] else "")
    return [r["n"], r2, num(r["spearman"], "+.3f"), slope, pct(r["loo_mae"], 2)]


def loss_section(findings: Findings, metrics: list[Metric]) -> list[str]:
    fits = findings.loss_fits
    lines = ["", "## Does the student's loss predict its accuracy? (over checkpoints)", "",
             f"x: the student's training loss at each probed checkpoint ({LOSS}: the mean of the last 10% of logged "
             "losses; a baseline's own loss for its rows, never pooled with the students'); y: accuracy. A loss that "
             "picks checkpoints has a negative Spearman ρ, a high R² and a small leave-one-out (LOO) error.", ""]
    if fits.empty:
        return lines + ["No student checkpoint was probed: the data cannot say."]
    label = {m.name: m.label for m in metrics}
    rows = [[r["teacher"], label[r["task"]], *_fit_cells(r)] for _, r in fits.iterrows()]
    lines += [table(["teacher (or baseline)", "task", "checkpoints", "R²", "Spearman ρ", "slope (pts per unit loss)",
                     "LOO error (pts)"], rows), ""]
    students = fits[fits["role"] == "student"]
    for metric in metrics:
        per_teacher = students[(students["task"] == metric.name) & (students["teacher"] != "pooled")]
        defined = per_teacher.dropna(subset=["spearman"])
        if per_teacher.empty:
            continue
        lines.append(f"- {metric.label}: lower loss goes with higher accuracy (ρ < 0) for "
                     f"{(defined['spearman'] < 0).sum()} "
                     f"of {len(per_teacher)} teachers ({len(per_teacher) - len(defined)} undefined).")
    paper = ", ".join(f"{r2} ({steps(t)} teacher)" for t, r2 in reference.LOSS_R2_SSV2)
    lines.append(f"- Paper (SSv2, student loss against accuracy over checkpoints, per teacher): R² {paper}.")
    return lines + _baseline_loss(fits, metrics)


def _baseline_loss(fits: pd.DataFrame, metrics: list[Metric]) -> list[str]:
    """Whether a baseline's loss tracks its accuracy, beside SALT's pooled fit."""
    lines = []
    for _, r in fits[(fits["role"] != "student") & (fits["task"] == headline(metrics).name)].iterrows():
        pooled = fits[(fits["role"] == "student") & (fits["task"] == r["task"]) & (fits["teacher"] == "pooled")]
        salt = f"SALT students pooled: R² {num(pooled['r2'].iloc[0])}" if len(pooled) else "no SALT fit"
        if missing(r["spearman"]):
            reading = f"no fit ({r['note']})"
        else:
            tracks = "lower loss goes with higher accuracy" if r["spearman"] < 0 else \
                "lower loss does not go with higher accuracy"
            reading = f"R² {num(r['r2'])}, Spearman ρ {num(r['spearman'], '+.3f')}: {tracks}"
        paper = " Paper: the V-JEPA 2 loss is known not to track accuracy (its target moves)." \
            if r["role"] == reference.PAPER_BASELINE else ""
        lines.append(f"- {r['teacher']} ({headline(metrics).label}), its own loss over {r['n']} checkpoints: {reading}; "
                     f"{salt}.{paper}")
    return lines


def teacher_side_section(findings: Findings, metrics: list[Metric]) -> list[str]:
    fits = findings.teacher_fits
    lines = ["", "## Do teacher-side metrics predict the student?", ""]
    if fits.empty:
        return lines + ["No final student with a probed teacher: the data cannot say."]
    rows, label = [], {m.name: m.label for m in metrics}
    for (task, metric), group in fits.groupby(["task", "teacher_metric"], sort=False):
        pooled = group[group["group"] == "pooled"].iloc[0]
        budgets = "; ".join(f"{r['group']}: {num(r['r2'], '.2f')} (n={r['n']})" for _, r in group.iterrows()
                            if r["group"] != "pooled")
        rows.append([label[task], metric, pooled["n"], num(pooled["r2"]) if not missing(pooled["r2"]) else
                     f"n/a ({pooled['note']})", num(pooled["spearman"], "+.3f"), budgets])
    lines += [table(["task", "teacher metric", "students", "pooled R²", "pooled ρ", "R² per budget"], rows), "",
              "- Within one budget more teacher steps means fewer student steps (T + S = N): a teacher metric that "
              "tracks teacher steps also tracks the student's training length, so a high R² here is not evidence "
              "that the teacher metric itself matters.",
              f"- Paper: {reference.TEACHER_METRICS}."]
    return lines


def teacher_size_section(findings: Findings, metrics: list[Metric], sizes: list[str]) -> list[str]:
    pairs = findings.pairs
    lines = ["", "## Teacher size: the teacher alone against its student", ""]
    present = [s for s in sizes if s in set(pairs["teacher_size"].dropna())]
    if not present:
        return lines + ["No final student with a probed teacher: the data cannot say."]
    rows, spreads = [], []
    for metric in metrics:
        panel = pairs[pairs["task"] == metric.name]
        means = panel.groupby("teacher_size")[["teacher_accuracy", "student_accuracy"]].mean()
        for size in present:
            count = int((panel["teacher_size"] == size).sum())
            rows.append([size, metric.label, count, pct(means.loc[size, "teacher_accuracy"]),
                         pct(means.loc[size, "student_accuracy"]),
                         pct(means.loc[size, "student_accuracy"] - means.loc[size, "teacher_accuracy"])])
        spreads.append((metric, np.ptp(means["teacher_accuracy"].dropna()) if means["teacher_accuracy"].notna().any()
                        else np.nan, np.ptp(means["student_accuracy"].dropna())))
    headers = ["teacher size", "task", "allocations", "teacher alone", "its student", "student - teacher"]
    lines += [table(headers, rows), ""]
    if len(present) < 2:
        lines.append("- One teacher size: the data cannot say how teacher size matters.")
    else:
        grid = pairs.groupby("teacher_size")[["budget", "teacher_steps"]].apply(
            lambda g: frozenset(map(tuple, g.drop_duplicates().to_numpy().tolist())))
        if grid.nunique() > 1:
            lines.append("- The sizes were not trained at the same allocations: the means above are not like for like.")
        for metric, teacher_spread, student_spread in spreads:
            lines.append(f"- {metric.label}: across sizes the teacher-alone means span {pct(teacher_spread)} points, "
                         f"the students' {pct(student_spread)} points.")
    paper = reference.TEACHER_SIZES
    lines.append("- Paper (Table 14, avg of 4, teacher alone -> ViT-L student): " + ", ".join(
        f"{name} {alone} -> {student}" for name, alone, student in paper) + f"; the teachers span "
        f"{max(p[1] for p in paper) - min(p[1] for p in paper):.1f} points, the students "
        f"{max(p[2] for p in paper) - min(p[2] for p in paper):.1f}.")
    return lines
