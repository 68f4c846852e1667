"""summary.md: the findings in numbers, beside the paper's where the comparison makes sense, and a
plain statement wherever the data cannot support a claim."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import reference
from analysis.allocation import FIT_SHARES, allocation_findings, rank_allocations
from analysis.findings import LOSS, Findings
from analysis.markdown import NA, budget_id, budget_name, missing, num, pct, share, steps, table
from analysis.tables import COLLAPSE_STD, MEAN_TASK, Metric, Results, baseline_label, baseline_name, equals, is_baseline


def _headline(metrics: list[Metric]) -> Metric:
    """The accuracy the one-line readings quote: the task average when it is analysed."""
    return next((m for m in metrics if m.name == MEAN_TASK), metrics[0])


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
        "- Accuracies are the attentive probe's top-1 on the validation split in %, gaps in percentage points; "
        "\"final\" is each unit's last checkpoint.",
    ]
    return lines + [f"- {note}." for note in results.notes]


def _at_or_below_chance(results: Results, metric: Metric, baselines: bool = False) -> tuple[int, int, float]:
    """Final students (or baseline runs) at or below the probe's chance level on `metric`: (count, of how many,
    mean chance)."""
    final = results.final
    chosen = final[is_baseline(final)] if baselines else final[equals(final, "role", "student")]
    tasks = results.tasks if metric.name == MEAN_TASK else (metric.name,)
    chance = chosen[[f"chance_{t}" for t in tasks if f"chance_{t}" in chosen]].mean(axis=1)
    return int((chosen[metric.column] <= chance).sum()), len(chosen), float(chance.mean())


def _glance(results: Results, findings: Findings, metrics: list[Metric]) -> list[str]:
    head = _headline(metrics)
    lines = ["", f"## At a glance ({head.label})", ""]
    points = findings.allocation_points[findings.allocation_points["task"] == head.name]
    for budget, group in points.groupby("budget", sort=True):
        r = rank_allocations(group)
        runner_up = ("no other allocation" if missing(r["gap_second"]) else
                     f"{pct(r['gap_second'])} points above the runner-up")
        heaviest = ("it is the most teacher-heavy allocation" if r["heaviest_share"] == r["best_share"] else
                    f"{pct(r['gap_heaviest'])} above the most teacher-heavy (share {share(r['heaviest_share'])})")
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
                     f"(paper: {reference.STUDENTS_BEAT_TEACHERS}).")
    for _, r in findings.baselines[findings.baselines["task"] == head.name].iterrows():
        lines.append(f"- {_versus(r)}")
    low, students, chance = _at_or_below_chance(results, head)
    if low:
        lines.append(f"- Caution: {low} of {students} final students are at or below chance ({pct(chance)}%): "
                     "differences among them are noise, not findings.")
    return lines


def _collapsed(value: object) -> bool:
    return value is not None and not pd.isna(value) and bool(value)


def _versus(r: pd.Series, label: str = "") -> str:
    """SALT's best allocation against a baseline at the same budget, in accuracy and in FLOPs."""
    budget = f"Budget {budget_name(r['budget'])}" + (f" ({label})" if label else "")
    base = f"{r['baseline']}'s {pct(r['accuracy'])}% at {r['flops_total']:.3g} FLOPs" + (
        " (collapsed)" if _collapsed(r.get("collapsed")) else "")
    if missing(r["salt_accuracy"]):
        return f"{budget}: {base}; no finished SALT student of this budget and seed to set against it."
    gap = pct(abs(r["gap"]))
    versus = "level with it" if gap == pct(0) else f"{gap} points {'above' if r['gap'] > 0 else 'below'}"
    return (f"{budget}: SALT's best allocation {r['salt_allocation']} reaches {pct(r['salt_accuracy'])}% "
            f"at {r['salt_flops_total']:.3g} FLOPs against {base}: {versus}, at {r['flops_ratio']:.2f}x its FLOPs.")


def _failures(findings: Findings) -> list[str]:
    lines = ["", "## Failed and unfinished units", ""]
    failed, unfinished = findings.failed, findings.unfinished
    if failed.empty and unfinished.empty:
        return lines + ["None: every unit in the table finished."]
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
        names = "; ".join(_encoder(r) + f" ({pct(r.accuracy)} at {r.flops_total:.3g} FLOPs)"
                          for r in front.itertuples())
        lines.append(f"- {metric.label}: {len(front)} of {panel['accuracy'].notna().sum()} final encoders on the "
                     f"front ({roles or 'none'}): {names or NA}.")
    return lines


def _encoder(row) -> str:
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


def _ranking_rows(fits: pd.DataFrame, labels: dict[str, str], step_format=budget_name) -> list[list[object]]:
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
    return rows


ALLOCATION_HEADERS = ["budget", "teacher → student", "task", "best allocation", "accuracy", "gap to 2nd",
                      "most teacher-heavy", "fitted optimum share (accuracy)"]


def _heaviest_best(fits: pd.DataFrame) -> int:
    return int(sum(r["best_accuracy"] == r["heaviest_accuracy"] for _, r in fits.iterrows()))


def _allocation(findings: Findings, metrics: list[Metric]) -> list[str]:
    fits = findings.allocation
    lines = ["", "## Where the budget should go (accuracy against teacher share)", ""]
    if fits.empty:
        return lines + ["No finished student: the data cannot say how to split the budget."]
    lines += [table(ALLOCATION_HEADERS, _ranking_rows(fits, {m.name: m.label for m in metrics})), "",
              "Fitted curve: a quadratic in ln(share) per budget and size pair; its optimum is the fitted maximum "
              "over the tested shares, so an optimum at the edge means the best share may lie outside them.", ""]
    head = _headline(metrics)
    mine = fits[fits["task"] == head.name]
    lines.append(f"- The most teacher-heavy allocation is the best (or tied best) in {_heaviest_best(mine)} of "
                 f"{len(mine)} curves ({head.label}).")
    lines.append(f"- Best teacher share per budget ({head.label}): " + "; ".join(
        f"{budget_name(r['budget'])} {r['teacher_size']}: {share(r['best_share'])}" for _, r in mine.iterrows()) + ".")
    return lines + _paper_allocation(metrics)


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
    return lines


def _fit_cells(r: pd.Series) -> list[object]:
    if missing(r["r2"]) and missing(r["spearman"]):
        return [r["n"], f"n/a ({r['note']})", NA, NA, NA]
    slope = NA if missing(r["slope"]) else f"{r['slope'] * 100:+.2f}"
    r2 = num(r["r2"]) + (f" ({r['note']})" if r["note"] else "")
    return [r["n"], r2, num(r["spearman"], "+.3f"), slope, pct(r["loo_mae"], 2)]


def _loss(findings: Findings, metrics: list[Metric]) -> list[str]:
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
    for _, r in fits[(fits["role"] != "student") & (fits["task"] == _headline(metrics).name)].iterrows():
        pooled = fits[(fits["role"] == "student") & (fits["task"] == r["task"]) & (fits["teacher"] == "pooled")]
        salt = f"SALT students pooled: R² {num(pooled['r2'].iloc[0])}" if len(pooled) else "no SALT fit"
        if missing(r["spearman"]):
            reading = f"no fit ({r['note']})"
        else:
            tracks = "lower loss goes with higher accuracy" if r["spearman"] < 0 else \
                "lower loss does not go with higher accuracy"
            reading = f"R² {num(r['r2'])}, Spearman ρ {num(r['spearman'], '+.3f')}: {tracks}"
        lines.append(f"- {r['teacher']} ({_headline(metrics).label}), its own loss over {r['n']} checkpoints: {reading}; "
                     f"{salt}. Paper: the V-JEPA 2 loss is known not to track accuracy (its target moves).")
    return lines


def _teacher_side(findings: Findings, metrics: list[Metric]) -> list[str]:
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


def _teacher_size(findings: Findings, metrics: list[Metric], sizes: list[str]) -> list[str]:
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


def _beats(findings: Findings, metrics: list[Metric]) -> list[str]:
    pairs = findings.pairs
    lines = ["", "## Do students beat their teachers?", ""]
    for metric in metrics:
        panel = pairs[pairs["task"] == metric.name]
        known = panel.dropna(subset=["teacher_accuracy", "student_accuracy"])
        if known.empty:
            lines.append(f"- {metric.label}: no final student with a probed teacher: the data cannot say.")
            continue
        ties = int((known["student_accuracy"] == known["teacher_accuracy"]).sum())
        missing_teacher = len(panel) - len(known)
        lines.append(f"- {metric.label}: {int(known['beats_teacher'].sum())} of {len(known)} final students beat their "
                     f"teacher (strictly higher accuracy), {ties} tie{'s' * (ties != 1)}" +
                     (f"; {missing_teacher} have no probed teacher in the table" if missing_teacher else "") + ".")
    return lines + [f"- Paper: {reference.STUDENTS_BEAT_TEACHERS}."]


def _baselines(results: Results, findings: Findings, metrics: list[Metric]) -> list[str]:
    comparison = findings.baselines
    if comparison.empty:
        return []
    lines = ["", "## Baselines: SALT against them at the same budget", "",
             "Each baseline trains the student's encoder for the whole budget N (matched total steps) on the same data "
             "and masks; its FLOPs are its own, the EMA encoder's forward (2ND on every token) included. SALT: the "
             "most accurate final student of the same budget and seed (teacher + student FLOPs). Gap: SALT - "
             "baseline in points; FLOPs: SALT's / the baseline's.", ""]
    label = {m.name: m.label for m in metrics}
    rows = [[r["budget"], label[r["task"]], r["baseline"], pct(r["accuracy"]), f"{r['flops_total']:.3g}",
             NA if missing(r["salt_accuracy"]) else r["salt_allocation"], pct(r["salt_accuracy"]),
             NA if missing(r["salt_flops_total"]) else f"{r['salt_flops_total']:.3g}",
             NA if missing(r["gap"]) else f"{r['gap'] * 100:+.1f}", num(r["flops_ratio"], ".2f")]
            for _, r in comparison.iterrows()]
    lines += [table(["budget", "task", "baseline", "accuracy", "FLOPs", "SALT's best allocation", "accuracy", "FLOPs",
                     "gap (pts)", "FLOPs SALT / baseline"], rows), ""]
    head = _headline(metrics)
    for _, r in comparison[comparison["task"] == head.name].iterrows():
        cheaper = ("no student used no more compute" if missing(r["cheaper_accuracy"]) else
                   f"the best student at no more compute (any budget) is {r['cheaper_allocation']}, "
                   f"{pct(r['cheaper_accuracy'])}% at {r['cheaper_flops_total']:.3g} FLOPs")
        lines.append(f"- {_versus(r, head.label)} {cheaper[0].upper()}{cheaper[1:]}.")
    return lines + _collapse(results) + [_paper_baseline()]


def _collapse(results: Results) -> list[str]:
    """The collapse signal of every baseline run: target std at its final checkpoint, RankMe at each probed one."""
    runs = results.ok[is_baseline(results.ok)]
    if "target_std" not in runs or runs["target_std"].isna().all():
        return ["- Collapse: this table has no target std (written before the baseline logged it)."]
    runs = runs.assign(label=baseline_label(runs)).sort_values(["label", "budget", "step"], kind="stable")
    lines = [f"- Collapse signal: target std, the per-channel standard deviation of the layer-normalised EMA targets "
             f"over a batch's tokens, averaged over channels (0 when every token has the same target; mean over the "
             f"last 10% of logged steps), and RankMe of the probed features; a run with target std below "
             f"{COLLAPSE_STD:g} is flagged `collapsed` in the results table."]
    flagged = []
    for (name, budget), run in runs.groupby(["label", "budget"], sort=False):
        final = run.iloc[-1]
        rankme = ", ".join(f"{r['rankme']:.1f} (step {r['step']})" for _, r in run.iterrows())
        flagged += [f"{name} N{budget}"] if _collapsed(final.get("collapsed")) else []
        lines.append(f"  - {name} N{budget}: target std {num(final['target_std'])} at step {final['step']}; RankMe "
                     f"{rankme}{'; COLLAPSED' if _collapsed(final.get('collapsed')) else ''}.")
    lines.append(f"- Collapsed: {', '.join(flagged)}: their accuracies measure a collapsed encoder." if flagged
                 else f"- No baseline run collapsed (every final target std is at least {COLLAPSE_STD:g}).")
    return lines


def _paper_baseline() -> str:
    flops, *accuracy = reference.VJEPA2_240K
    return (f"- Paper (Table 16): V-JEPA 2 at {flops:.3g} FLOPs: " + ", ".join(
        f"{b} {a}" for b, a in zip(reference.BENCHMARKS, accuracy, strict=True))
        + "; every SALT allocation there uses less compute and reaches more.")


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
                     f"is {pct(points['accuracy_sd'].mean())} points: gaps smaller than that are noise.")
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


def write_summary(results: Results, findings: Findings, metrics: list[Metric], sizes: list[str]) -> str:
    sections = [
        _overview(results, metrics, sizes), _glance(results, findings, metrics), _failures(findings),
        _front(findings, metrics), _allocation(findings, metrics), _loss(findings, metrics),
        _teacher_side(findings, metrics), _teacher_size(findings, metrics, sizes), _beats(findings, metrics),
        _baselines(results, findings, metrics), _limits(results, findings, metrics),
    ]
    return "\n".join(line for section in sections for line in section) + "\n"
