"""The study's findings: the paper's ablations (docs/paper.md section 8) read from a study folder
(salt-budget study): the allocation grid over seeds, teacher sizes, teacher masks, students against
their teachers, the loss-accuracy regression, and the random-init floor and chance beside them.

Each ablation is read from the rows of its own student units only (study.json lists their keys), so an
allocation two ablations share counts in both, and a sweep folder's other rows do not leak in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import reference
from analysis.markdown import num, pct, table
from analysis.regression import grouped_fits
from analysis.stats import describe, from_columns, tally
from analysis.study_stats import (
    against_first,
    against_first_words,
    best_shares,
    runner_up_words,
    versus_teacher_words,
)
from analysis.tables import (
    MEAN_TASK,
    Metric,
    ReportError,
    Results,
    equals,
    load_results,
)


@dataclass(frozen=True)
class StudyData:
    name: str
    sweeps: list[dict]  # study.json's: ablation, variant, folder, overrides, allocations, students (unit keys)
    results: dict[str, Results]  # by sweep folder
    random_init: pd.DataFrame  # seed, acc_<task>..., acc_mean
    log: list[dict]  # study_log.jsonl
    paper_scale: float | None = None  # study.json's: paper steps per study step (None: not given)

    @property
    def tasks(self) -> tuple[str, ...]:
        return next(iter(self.results.values())).tasks

    @property
    def metrics(self) -> list[Metric]:
        return [Metric(t) for t in (*self.tasks, MEAN_TASK)]

    def chance(self) -> dict[str, float]:
        chance = {}
        for task in self.tasks:
            values = [r.ok[f"chance_{task}"].astype(float).mean() for r in self.results.values()
                      if f"chance_{task}" in r.ok]
            chance[task] = float(np.nanmean(values)) if values else float("nan")
        chance[MEAN_TASK] = float(np.mean([chance[t] for t in self.tasks]))
        return chance

    def ablation(self, name: str) -> list[dict]:
        return [s for s in self.sweeps if s["ablation"] == name]


def is_study(path: Path) -> bool:
    return (Path(path) / "study.json").is_file()


def _random_init(study_dir: Path) -> pd.DataFrame:
    rows = []
    for path in sorted((study_dir / "random_init").glob("seed*/probes/random_init-*.json")):
        result = json.loads(path.read_text())
        if result.get("single_frame"):
            continue
        accuracies = {f"acc_{name}": task["accuracy"] for name, task in result["tasks"].items()}
        readouts = {}
        for readout, tasks in result.get("readouts", {}).items():
            readouts.update({f"readout_{readout}_{name}": task["accuracy"] for name, task in tasks.items()})
            readouts[f"readout_{readout}_mean"] = float(np.mean([task["accuracy"] for task in tasks.values()]))
        rows.append({"seed": int(path.parts[-3].removeprefix("seed")), "encoder": result.get("encoder"),
                     **accuracies, "acc_mean": float(np.mean(list(accuracies.values()))), **readouts})
    return pd.DataFrame(rows)


def load_study(study_dir: Path) -> StudyData:
    study_dir = Path(study_dir)
    if not is_study(study_dir):
        raise ReportError(f"{study_dir} has no study.json: it is not a study folder (salt-budget study writes one)")
    manifest = json.loads((study_dir / "study.json").read_text())
    results = {}
    for folder in dict.fromkeys(s["folder"] for s in manifest["sweeps"]):
        if (study_dir / folder / "results.parquet").is_file():
            results[folder] = load_results([study_dir / folder])
    if not results:
        raise ReportError(f"{study_dir}: no sweep of the study has finished a unit yet; wait for it, or rerun "
                          f"salt-budget study with --resume")
    log_path = study_dir / "study_log.jsonl"
    log = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()] if log_path.is_file() else []
    return StudyData(manifest["name"], manifest["sweeps"], results, _random_init(study_dir), log,
                     manifest.get("paper_scale"))


def _final_pairs(study: StudyData, sweep: dict) -> pd.DataFrame:
    """The sweep's final students with their teacher's final accuracies beside them (teacher_acc_*)."""
    results = study.results.get(sweep["folder"])
    if results is None:
        return pd.DataFrame()
    final = results.final
    students = final[equals(final, "role", "student") & final["unit_key"].isin(sweep["students"])]
    teachers = final[equals(final, "role", "teacher")].drop_duplicates("unit_key", keep="last")
    columns = [m.column for m in study.metrics]
    teacher_acc = teachers.set_index("unit_key")[columns].add_prefix("teacher_")
    pairs = students.join(teacher_acc, on="teacher_key")
    return pairs.assign(ablation=sweep["ablation"], variant=sweep["variant"], folder=sweep["folder"])


def final_pairs(study: StudyData, ablation: str | None = None) -> pd.DataFrame:
    sweeps = study.sweeps if ablation is None else study.ablation(ablation)
    parts = [p for p in (_final_pairs(study, s) for s in sweeps) if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def paper_scale_of(study: StudyData, ablation: str = "allocation") -> float:
    """Paper steps per study step: the study file's paper_scale, else the allocation ablation's largest budget
    (the ablation's own where the study has no allocation ablation) taken for the paper's 240k."""
    if study.paper_scale:
        return float(study.paper_scale)
    for name in ("allocation", ablation):
        pairs = final_pairs(study, name)
        if len(pairs):
            return reference.paper_scale(float(pairs["budget"].max()))
    return float("nan")


def _spread(frame: pd.DataFrame, by: list[str], study: StudyData) -> pd.DataFrame:
    """Per group: seeds, and mean and standard deviation (over seeds) of student and teacher accuracies."""
    rows = []
    for key, group in frame.groupby(by, sort=False):
        row = {column: value.item() if isinstance(value, np.generic) else value
               for column, value in zip(by, key if isinstance(key, tuple) else (key,))}
        row["seeds"] = int(group["seed"].nunique())
        for metric in study.metrics:
            row[f"student_{metric.name}"] = float(group[metric.column].mean())
            row[f"student_{metric.name}_sd"] = float(group[metric.column].std(ddof=1)) if len(group) > 1 else np.nan
            row[f"teacher_{metric.name}"] = float(group[f"teacher_{metric.column}"].mean())
        row["student_beats_teacher"] = int((group["acc_mean"] > group["teacher_acc_mean"]).sum())
        row["pairs"] = len(group)
        rows.append(row)
    return pd.DataFrame(rows)


def allocation_table(study: StudyData) -> pd.DataFrame:
    pairs = final_pairs(study, "allocation")
    if pairs.empty:
        return pairs
    pairs = pairs.sort_values(["budget", "teacher_share"])
    return _spread(pairs, ["budget", "teacher_steps", "teacher_share"], study)


def variant_table(study: StudyData, ablation: str, by: str) -> pd.DataFrame:
    pairs = final_pairs(study, ablation)
    if pairs.empty:
        return pairs
    if by == "teacher_size":  # small to large, by the teacher's FLOPs per step (names do not sort by size)
        per_step = pairs["flops_teacher"].astype(float) / pairs["teacher_steps"].astype(float)
        pairs = pairs.assign(_cost=per_step.groupby(pairs["teacher_size"]).transform("median")).sort_values("_cost")
    return against_first(_spread(pairs, [by], study), pairs, by)


def student_checkpoints(study: StudyData, ablation: str = "allocation") -> pd.DataFrame:
    """Every probed checkpoint of the ablation's students (one row each), by budget, teacher, seed and step."""
    parts = []
    for sweep in study.ablation(ablation):
        results = study.results.get(sweep["folder"])
        if results is None:
            continue
        ok = results.ok
        parts.append(ok[equals(ok, "role", "student") & ok["unit_key"].isin(sweep["students"])])
    if not parts:
        return pd.DataFrame()
    checkpoints = pd.concat(parts, ignore_index=True).drop_duplicates(["unit_key", "step"], keep="last")
    return checkpoints.sort_values(["budget", "teacher_steps", "seed", "step"], ignore_index=True)


def regression_table(study: StudyData) -> pd.DataFrame:
    """Student loss (smoothed) against probe accuracy over the allocation ablation's student checkpoints:
    one fit per student run and one pooled, for every task (analysis/study_regression.py: per teacher)."""
    checkpoints = student_checkpoints(study)
    if checkpoints.empty:
        return checkpoints
    # One fit per student run (the paper's: one student per teacher, over its checkpoints). Pooled runs mix
    # targets of different teachers, whose losses are not on one scale.
    checkpoints = checkpoints.assign(student=checkpoints["allocation_id"].astype(str))
    fits = [grouped_fits(checkpoints, "loss_smoothed", m.column, "student").assign(task=m.name)
            for m in study.metrics]
    return pd.concat(fits, ignore_index=True)


def final_teachers(study: StudyData, ablation: str = "allocation") -> pd.DataFrame:
    """The final row of every teacher the ablation's students learned from."""
    parts = []
    for sweep in study.ablation(ablation):
        results = study.results.get(sweep["folder"])
        if results is None:
            continue
        final = results.final
        keys = final[final["unit_key"].isin(sweep["students"])]["teacher_key"].unique()
        teachers = final[equals(final, "role", "teacher") & final["unit_key"].isin(keys)]
        parts.append(teachers.drop_duplicates("unit_key", keep="last"))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def learning_table(study: StudyData) -> pd.DataFrame:
    """Does training beat the random-init encoder? Per budget of the allocation ablation: the best share's
    students against the floor (margin, and margin over seed sd), and the teachers of at least 1/6 of the
    largest budget against the floor (the checks that say a study can test the paper at all)."""
    floor = _floor(study).get(MEAN_TASK)
    allocation = allocation_table(study)
    if floor is None or allocation.empty:
        return pd.DataFrame()
    rows = []
    for budget, group in allocation.groupby("budget", sort=True):
        best = group.sort_values("student_mean", ascending=False).iloc[0]
        margin, sd = best["student_mean"] - floor, best["student_mean_sd"]
        rows.append({"what": "best student", "budget": int(budget), "teacher_steps": int(best["teacher_steps"]),
                     "accuracy": float(best["student_mean"]), "sd": float(sd), "floor": floor, "margin": float(margin),
                     "holds": bool(margin >= 0.05 and (np.isnan(sd) or margin > 2 * sd))})
    teachers = final_teachers(study)
    if len(teachers):
        least = int(np.ceil(allocation["budget"].max() / 6))
        strong = teachers[teachers["teacher_steps"].astype(int) >= least]
        for steps, group in strong.groupby("teacher_steps", sort=True):
            accuracy = float(group["acc_mean"].mean())
            sd = float(group["acc_mean"].std(ddof=1)) if len(group) > 1 else np.nan
            rows.append({"what": "teacher", "budget": None, "teacher_steps": int(steps), "accuracy": accuracy,
                         "sd": sd, "floor": floor, "margin": accuracy - floor, "holds": bool(accuracy > floor)})
    return pd.DataFrame(rows)


READOUT_PREFIX = "readout_"


def readout_table(study: StudyData) -> pd.DataFrame:
    """Every readout the probes computed (the main one and probe.also_ridge), task average: the random-init
    floor, the final teachers' and students' means, and how each ranks the final encoders against the main
    readout (Spearman over students and teachers together)."""
    pairs = final_pairs(study)
    if pairs.empty:
        return pd.DataFrame()
    encoders = pd.concat([pairs.drop_duplicates("unit_key"), final_teachers(study)], ignore_index=True)
    names = ["acc_mean", *sorted(c for c in encoders.columns if c.startswith(READOUT_PREFIX) and c.endswith("_mean"))]
    rows = []
    for column in names:
        if column not in encoders or encoders[column].isna().all():
            continue
        students, teachers = encoders[equals(encoders, "role", "student")], encoders[equals(encoders, "role", "teacher")]
        floor = study.random_init[column].mean() if column in study.random_init else np.nan
        rank = encoders[["acc_mean", column]].astype(float).corr(method="spearman").iloc[0, 1]
        rows.append({"readout": "main" if column == "acc_mean" else column.removeprefix(READOUT_PREFIX)[: -len("_mean")],
                     "random_init": float(floor), "teachers": float(teachers[column].mean()),
                     "students": float(students[column].mean()), "best_student": float(students[column].max()),
                     "students_above_floor": int((students[column] > floor).sum()), "student_count": len(students),
                     "spearman_with_main": float(rank)})
    return pd.DataFrame(rows)


def tables(study: StudyData) -> dict[str, pd.DataFrame]:
    allocation = allocation_table(study)
    found = {
        "study_allocation": allocation,
        "study_best_share": best_shares(allocation, final_pairs(study, "allocation")) if len(allocation) else
        pd.DataFrame(),
        "study_teacher_size": variant_table(study, "teacher_size", "teacher_size"),
        "study_teacher_masks": variant_table(study, "teacher_masks", "variant"),
        "study_regression": regression_table(study),
        "study_random_init": study.random_init,
        "study_learning": learning_table(study),
        "study_readouts": readout_table(study),
        "study_pairs": final_pairs(study),
    }
    return {name: frame for name, frame in found.items() if len(frame)}


def _pm(mean: float, sd: float) -> str:
    return pct(mean) if np.isnan(sd) else f"{pct(mean)} ± {pct(sd)}"


def _floor(study: StudyData) -> dict[str, float]:
    if study.random_init.empty:
        return {}
    return {m.name: float(study.random_init[m.column].mean()) for m in study.metrics if m.column in study.random_init}


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
    chance, floor = study.chance(), _floor(study)
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
