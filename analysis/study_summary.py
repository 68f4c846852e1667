"""study.md's ablation sections (analysis/study_findings.py puts the verdicts and findings around them): setup,
each ablation's table from analysis/study.py, and what holds against the paper, computed from the tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.markdown import num, pct, table
from analysis.schema import MEAN_TASK
from analysis.stats import describe, from_columns, tally
from analysis.study_data import StudyData
from analysis.study_stats import against_first_words, runner_up_words, versus_teacher_words


def _pm(mean: float, sd: float) -> str:
    return pct(mean) if np.isnan(sd) else f"{pct(mean)} ± {pct(sd)}"


def _variant_lines(frame: pd.DataFrame, by: str, study: StudyData, title: str) -> list[str]:
    metrics = study.metrics
    headers = [by.replace("_", " "), "seeds", *(f"teacher {m.label}" for m in metrics),
               *(f"student {m.label}" for m in metrics), f"students against {frame[by].iloc[0]}'s (task average)"]
    rows = [[r[by], int(r["seeds"]), *(pct(r[f"teacher_{m.name}"]) for m in metrics),
             *(_pm(r[f"student_{m.name}"], r[f"student_{m.name}_sd"]) for m in metrics),
             "-" if i == 0 else describe(from_columns(r, "vs_first_"))] for i, (_, r) in enumerate(frame.iterrows())]
    return [f"## {title}", "", table(headers, rows), ""]


def _wall_lines(log: list[dict]) -> list[str]:
    """The study's time. A resumed study's last run did only what was left: its wall time alone would hide the
    earlier runs, so the sweeps' times are also summed over every run the log records."""
    wall = [r for r in log if "study" in r]
    sweeps = [r for r in log if "ablation" in r]
    if not wall:
        return []
    last = wall[-1]
    line = f"Wall time of the last run: {last['wall_s']:.0f} s ({last['wall_s'] / 60:.1f} min), finished {last['finished_at']}."
    total = sum(r["wall_s"] for r in sweeps)
    if total > last["wall_s"] + 1:  # earlier runs did part of the work
        unfinished = sum(1 for r in sweeps if r.get("exit_code"))
        line += (f" Summed over the {len(sweeps)} sweep runs study_log.jsonl records ({unfinished} of them ended "
                 f"before every allocation finished, then resumed): {total:.0f} s ({total / 60:.1f} min); a run "
                 f"stopped in the middle of a sweep records nothing for it.")
    return [line]


def summary(study: StudyData, found: dict[str, pd.DataFrame]) -> str:
    """study.md: setup, each ablation's table, and what holds against the paper, computed from the tables."""
    chance, floor = study.chance(), study.floor_means()
    metrics = study.metrics
    lines = [f"# Study {study.name}: the weak-teacher / strong-student ablations", ""]
    lines += _wall_lines(study.log)
    lines.append("Accuracies are probe accuracies on val in percent; ± is the standard deviation over seeds.")
    lines += ["", "| reference | " + " | ".join(m.label for m in metrics) + " |",
              "|---|" + "---|" * len(metrics),
              "| chance | " + " | ".join(pct(chance.get(m.name)) for m in metrics) + " |"]
    if floor:
        lines.append(f"| random-init encoder ({len(study.random_init)} seed(s)) | "
                     + " | ".join(pct(floor.get(m.name)) for m in metrics) + " |")
    lines.append("")

    verdicts: list[str] = []
    allocation = found.get("study_allocation")
    if allocation is not None:
        headers = ["budget", "T", "share", "seeds", *(f"student {m.label}" for m in metrics), "teacher avg",
                   "students > teacher"]
        rows = [[int(r["budget"]), int(r["teacher_steps"]), f"{r['teacher_share']:.3g}", int(r["seeds"]),
                 *(_pm(r[f"student_{m.name}"], r[f"student_{m.name}_sd"]) for m in metrics),
                 pct(r["teacher_mean"]), f"{int(r['student_beats_teacher'])}/{int(r['pairs'])}"]
                for _, r in allocation.iterrows()]
        lines += ["## Allocation: teacher share of each budget", "", table(headers, rows), ""]
        best = found["study_best_share"]
        for _, r in best.iterrows():
            lines.append(f"- Budget {int(r['budget'])}: best share {r['best_share']:.3g} (T = {int(r['best_teacher_steps'])}), "
                         f"task average {pct(r['best_mean'])}, {runner_up_words(r)}.")
        heaviest = allocation.groupby("budget")["teacher_share"].max()
        heavy_best = int((best.set_index("budget")["best_share"] >= heaviest).sum())
        shares = ", ".join(f"{r.best_share:.3g} of {int(r.budget)}" for r in best.itertuples())
        verdicts.append(
            f"Best teacher share per budget: {shares} (paper: T = 40k at every budget, 1/3 of 120k, 1/4 of 160k, "
            f"1/6 of 240k); the most teacher-heavy share is best in {heavy_best} of {len(best)} budgets; the best "
            f"share against the runner-up over seeds, in {len(best)} budget{'s' * (len(best) != 1)}: "
            f"{tally(best, above='(best ahead)', below='(runner-up ahead)')}.")
        lines.append("")
    pairs = found.get("study_pairs")
    if pairs is not None:
        pairs = pairs.drop_duplicates("unit_key")  # an allocation two ablations share counts once
        beats = pairs["acc_mean"] > pairs["teacher_acc_mean"]
        verdicts.append(f"Students beat their teacher (task average) in {int(beats.sum())} of {len(pairs)} final "
                        f"students (paper: every one); {versus_teacher_words(pairs)}.")
        if floor:
            above = pairs["acc_mean"] > floor[MEAN_TASK]
            verdicts.append(f"Students above the random-init encoder's task average ({pct(floor[MEAN_TASK])}): "
                            f"{int(above.sum())} of {len(pairs)}.")
    sizes = found.get("study_teacher_size")
    if sizes is not None:
        lines += _variant_lines(sizes, "teacher_size", study, "Teacher size (one student size)")
        if len(sizes) > 1:
            teacher_range = sizes["teacher_mean"].max() - sizes["teacher_mean"].min()
            student_range = sizes["student_mean"].max() - sizes["student_mean"].min()
            students = against_first_words(sizes, "teacher_size", "vs_first_")
            teachers = against_first_words(sizes, "teacher_size", "teacher_vs_first_")
            verdicts.append(f"Teacher size ({', '.join(sizes['teacher_size'])}): teachers alone span "
                            f"{pct(teacher_range)} points, their students {pct(student_range)}. Against the "
                            f"{sizes['teacher_size'].iloc[0]} teacher's, over seeds: students {students}; teachers "
                            f"alone {teachers} (paper, B to g: 7.8 against 1.1: larger teachers barely help).")
    masks = found.get("study_teacher_masks")
    if masks is not None:
        lines += _variant_lines(masks, "variant", study, "Teacher masking (the student keeps multi-block)")
        ranked = masks.sort_values("student_mean", ascending=False)["variant"].tolist()
        spread = masks["student_mean"].max() - masks["student_mean"].min()
        against = (f"; against {masks['variant'].iloc[0]}, over seeds: "
                   f"{against_first_words(masks, 'variant', 'vs_first_')}") if len(masks) > 1 else ""
        verdicts.append(f"Teacher masking, students ranked by task average: {' > '.join(ranked)}, "
                        f"{pct(spread)} points from first to last{against} (paper: multiblock 77.4 > tube x1 77.1 > "
                        f"tube x2 76.9 > causal 73.7).")
    fits = found.get("study_regression")
    if fits is not None:
        lines += ["## Student loss against probe accuracy (allocation ablation, over each run's checkpoints)", "",
                  "Per task: the median over student runs of R² and Spearman ρ (negative: lower loss, higher "
                  "accuracy), how many runs have ρ < 0, and the fit pooled over every run's checkpoints (which mixes "
                  "teachers whose losses are not on one scale). Every run's own fit: tables/study_regression.csv.",
                  ""]
        rows = []
        for metric in metrics:
            # Two checkpoints always fit a line exactly: a run's R² needs three.
            runs = fits[(fits["task"] == metric.name) & (fits["student"] != "pooled") & (fits["n"] >= 3)]
            pooled = fits[(fits["task"] == metric.name) & (fits["student"] == "pooled")].iloc[0]
            rows.append([metric.label, len(runs), int(runs["n"].median()) if len(runs) else "n/a",
                         num(runs["r2"].median(), ".2f"), num(runs["spearman"].median(), "+.2f"),
                         f"{int((runs['spearman'] < 0).sum())}/{len(runs)}", num(pooled["r2"], ".2f"),
                         num(pooled["spearman"], "+.2f")])
            if metric.name == MEAN_TASK and len(runs):
                verdicts.append(
                    f"Student loss against task-average accuracy over each run's {int(runs['n'].median())} "
                    f"checkpoints: R² median {runs['r2'].median():.2f}, lower loss with higher accuracy (ρ < 0) in "
                    f"{int((runs['spearman'] < 0).sum())} of {len(runs)} runs (paper, per teacher on SSv2: R² "
                    f"0.951-0.984, accuracy rising as the loss falls).")
        lines += [table(["task", "runs", "checkpoints", "R² (median)", "ρ (median)", "runs with ρ < 0",
                         "pooled R²", "pooled ρ"], rows), ""]
    learning = found.get("study_learning")
    if learning is not None:
        lines += ["## Does training beat a random-init encoder?", "",
                  "The floor every result is read against: the random-init encoder of the student's size on the same "
                  "readout. Best student per budget: it must clear the floor by 5 points and by more than twice its "
                  "seed sd; teachers of at least 1/6 of the largest budget must read above it.", ""]
        rows = [[r["what"], "-" if pd.isna(r["budget"]) else int(r["budget"]), int(r["teacher_steps"]),
                 _pm(r["accuracy"], r["sd"]), pct(r["floor"]), f"{100 * r['margin']:+.1f}",
                 "yes" if r["holds"] else "no"] for _, r in learning.iterrows()]
        lines += [table(["encoder", "budget", "T", "task average", "random init", "margin (points)", "holds"], rows), ""]
        students, teachers = learning[learning["what"] == "best student"], learning[learning["what"] == "teacher"]
        verdicts.append(
            f"(ours) Training beats a random-init encoder: the best student of {int(students['holds'].sum())} of "
            f"{len(students)} budgets clears the floor by 5 points and 2 seed sd; {int(teachers['holds'].sum())} of "
            f"{len(teachers)} teacher lengths of at least 1/6 of the largest budget read above it.")
    readouts = found.get("study_readouts")
    if readouts is not None:
        lines += ["## Readouts", "",
                  "Task average on every readout the probes computed (main: the study's; the others on the same "
                  "cached features), and how each ranks the final students and teachers against the main one.", ""]
        rows = [[r["readout"], pct(r["random_init"]), pct(r["teachers"]), pct(r["students"]), pct(r["best_student"]),
                 f"{int(r['students_above_floor'])}/{int(r['student_count'])}", num(r["spearman_with_main"], "+.2f")]
                for _, r in readouts.iterrows()]
        lines += [table(["readout", "random init", "teachers (mean)", "students (mean)", "best student",
                         "students above random init", "Spearman with main"], rows), ""]
    lines += ["## Against the paper", "", *(f"- {v}" for v in verdicts), ""]
    return "\n".join(lines)
