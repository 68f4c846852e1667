"""One verdict per finding of the paper, per task and task average: the comparison over seeds that tests it (mean
difference, 90% interval, resolved / not resolved / one seed, analysis/stats.py), the numbers it rests on, and
whether its direction is the paper's. A finding whose ablation the study did not run is "not in this study".

    (1) training beats random init   the largest budget's best allocation against the random-init encoder
    (2) a small teacher share is best, its length stays put as the budget grows
                                      at the largest budget, the best share against the most teacher-heavy one
    (3) every student beats its teacher  the allocation whose students lead their teachers least
    (4) larger teachers barely help   the student's gain from the smallest to the largest teacher minus the
                                      teachers' own gain (paper: +1.1 against +7.8)
    (5) multi-block masks are best for the teacher  multi-block's students against the best other masks'
    (6) student loss predicts accuracy  each seed's per-teacher Spearman rho, averaged over teachers, against 0
    (7) SALT beats V-JEPA 2 at equal compute  the best allocation against V-JEPA 2 at the largest budget with both
"""

from __future__ import annotations

import pandas as pd

from analysis import reference
from analysis.results import Metric, baseline_name, equals
from analysis.stats import NO_DIFFERENCE, Difference, as_columns, compare, from_columns, seeds_to_resolve
from analysis.study_data import StudyData, final_pairs
from analysis.study_regression import POOLED, spearman_over_seeds

NOT_IN_STUDY = "not in this study"
RHO_FINDING = 6  # its difference is a Spearman rho, not an accuracy
FINDINGS = {
    1: ("Training beats a random-init encoder", "(ours; the paper takes it for granted)"),
    2: ("The best teacher share is small, its length stays put as the budget grows",
        "T = 40k best at 120k, 160k and 240k: share 1/3, 1/4, 1/6"),
    3: ("Every student beats its teacher", "every one of Table 16's students"),
    4: ("Larger teachers barely help", "teachers B to G +7.8 alone, their students +1.1 (avg of 4)"),
    5: ("Multi-block masks are best for the teacher", "students 77.4 multi-block > 77.1 tube x1 > 76.9 tube x2 > "
                                                         "73.7 causal (avg of 4)"),
    6: ("Student loss predicts accuracy", "R² 0.951 / 0.972 / 0.984 per teacher (80k / 40k / 20k), SSv2"),
    7: ("SALT beats V-JEPA 2 at equal compute", "240k: SALT 40k + 200k 76.3 / 71.7 against V-JEPA 2 73.3 / 68.4 "
                                                 "(K400 / SSv2) at 1.311e21 against 1.900e21 FLOPs"),
}


def _by_seed(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame.set_index("seed")[column]


def _row(finding: int, metric: Metric, comparison: str, difference: Difference, agrees: bool | None,
         numbers: str) -> dict[str, object]:
    return {"finding": finding, "claim": FINDINGS[finding][0], "paper": FINDINGS[finding][1], "task": metric.name,
            "comparison": comparison, "numbers": numbers, **as_columns(difference), "agrees": agrees,
            "unit": "rho" if finding == RHO_FINDING else "accuracy",
            # What a study would need: the seeds that resolve the measured gap 8 times in 10, were it the true one.
            "seeds_to_resolve": seeds_to_resolve(difference.sd, difference.mean_diff)}


def _absent(finding: int, study: StudyData, why: str) -> list[dict[str, object]]:
    return [{**_row(finding, m, why, NO_DIFFERENCE, None, ""), "verdict": NOT_IN_STUDY} for m in study.metrics]


def _direction(difference: Difference, sign: int) -> bool | None:
    return None if difference.n == 0 else bool(sign * difference.mean_diff > 0)


def _most_seeded_largest(budgets: pd.Series, seeds: pd.Series) -> float:
    """The largest budget among those trained by the most seeds: a study may add a larger budget with fewer seeds
    (for the recommendation's check), whose comparisons would rest on less."""
    per_budget = seeds.groupby(budgets.to_numpy()).nunique()
    return float(per_budget[per_budget == per_budget.max()].index.max())


def _largest_budget_arms(pairs: pd.DataFrame) -> tuple[float, pd.DataFrame]:
    largest = _most_seeded_largest(pairs["budget"], pairs["seed"])
    return largest, pairs[pairs["budget"] == largest]


def training_beats_random_init(study: StudyData) -> list[dict[str, object]]:
    pairs = final_pairs(study, "allocation")
    if pairs.empty or study.random_init.empty:
        return _absent(1, study, "needs the allocation ablation and the random-init floor")
    budget, arms = _largest_budget_arms(pairs)
    best = arms.groupby("teacher_steps")["acc_mean"].mean().idxmax()
    student = arms[arms["teacher_steps"] == best]
    rows = []
    for m in study.metrics:
        d = compare(_by_seed(student, m.column), _by_seed(study.random_init, m.column))
        rows.append(_row(1, m, f"budget {budget:g}, best allocation T{int(best)} minus random init", d,
                         _direction(d, +1), f"{100 * student[m.column].mean():.1f} against "
                                            f"{100 * study.random_init[m.column].mean():.1f}"))
    return rows


def small_share_is_best(study: StudyData) -> list[dict[str, object]]:
    pairs = final_pairs(study, "allocation")
    if pairs.empty:
        return _absent(2, study, "needs the allocation ablation")
    budget, arms = _largest_budget_arms(pairs)
    smallest_budget = pairs["budget"].min()
    rows = []
    for m in study.metrics:
        means = pairs.groupby(["budget", "teacher_steps", "teacher_share"])[m.column].mean().reset_index()
        best = means.loc[means.groupby("budget")[m.column].idxmax()].sort_values("budget")
        at_largest = means[means["budget"] == budget].sort_values(m.column, ascending=False)
        top, heaviest = at_largest.iloc[0], at_largest.sort_values("teacher_share").iloc[-1]
        other = at_largest.iloc[1] if top["teacher_steps"] == heaviest["teacher_steps"] and len(at_largest) > 1 \
            else heaviest
        d = NO_DIFFERENCE if other["teacher_steps"] == top["teacher_steps"] else compare(
            _by_seed(arms[arms["teacher_steps"] == top["teacher_steps"]], m.column),
            _by_seed(arms[arms["teacher_steps"] == other["teacher_steps"]], m.column))
        first_t = best[best["budget"] == smallest_budget]["teacher_steps"].iloc[0]
        small = top["teacher_share"] < heaviest["teacher_share"] and top["teacher_steps"] <= first_t
        shares = ", ".join(f"T{int(r.teacher_steps)} ({r.teacher_share:.3g}) of {r.budget:g}" for r in best.itertuples())
        rows.append(_row(2, m, f"budget {budget:g}: best share {top['teacher_share']:.3g} minus "
                               f"{other['teacher_share']:.3g}", d, (small and _direction(d, +1)) if d.n else small,
                         f"best per budget: {shares}"))
    return rows


def students_beat_teachers(study: StudyData) -> list[dict[str, object]]:
    pairs = final_pairs(study)
    if pairs.empty:
        return _absent(3, study, "needs students and their teachers")
    pairs = pairs.drop_duplicates("unit_key")
    keys = ["folder", "budget", "teacher_size", "teacher_steps", "student_size"]
    rows = []
    for m in study.metrics:
        found = []
        for key, group in pairs.groupby(keys, dropna=False, sort=True):
            found.append((key, compare(_by_seed(group, m.column), _by_seed(group, f"teacher_{m.column}"))))
        key, weakest = min(found, key=lambda item: item[1].mean_diff)
        resolved = sum(d.verdict == "resolved" and d.mean_diff > 0 for _, d in found)
        ahead = sum(d.mean_diff > 0 for _, d in found)
        folder = f" (sweep {key[0]})" if pairs["folder"].nunique() > 1 else ""
        rows.append(_row(3, m, f"weakest: budget {key[1]:g}, T{int(key[3])} {key[2]}{folder}, student minus teacher",
                         weakest,
                         _direction(weakest, +1), f"student ahead in {ahead} of {len(found)} allocations, "
                                                  f"resolved in {resolved}"))
    return rows


def larger_teachers_barely_help(study: StudyData) -> list[dict[str, object]]:
    pairs = final_pairs(study, "teacher_size")
    if pairs.empty or pairs["teacher_size"].nunique() < 2:
        return _absent(4, study, "needs the teacher-size ablation with two sizes or more")
    cost = (pairs["flops_teacher"].astype(float) / pairs["teacher_steps"].astype(float)).groupby(
        pairs["teacher_size"]).median().sort_values()
    small, large = pairs[pairs["teacher_size"] == cost.index[0]], pairs[pairs["teacher_size"] == cost.index[-1]]
    rows = []
    for m in study.metrics:
        student_gain = _by_seed(large, m.column) - _by_seed(small, m.column)
        teacher_gain = _by_seed(large, f"teacher_{m.column}") - _by_seed(small, f"teacher_{m.column}")
        d = compare(student_gain, teacher_gain)
        # The paper's finding needs the larger teacher to be better alone; then its student gains less.
        agrees = None if d.n == 0 else bool(teacher_gain.mean() > 0 and d.mean_diff < 0)
        rows.append(_row(4, m, f"{cost.index[0]} to {cost.index[-1]}: the student's gain minus the teacher's", d,
                         agrees, f"teachers {100 * teacher_gain.mean():+.1f}, students {100 * student_gain.mean():+.1f}"))
    return rows


def multiblock_is_best(study: StudyData) -> list[dict[str, object]]:
    pairs = final_pairs(study, "teacher_masks")
    if pairs.empty or pairs["variant"].nunique() < 2:
        return _absent(5, study, "needs the teacher-mask ablation with two variants or more")
    variants = list(dict.fromkeys(pairs["variant"]))
    default = next((v for v in variants if "multi" in str(v)), variants[0])
    means = {m.name: pairs.groupby("variant")[m.column].mean() for m in study.metrics}
    rivals = {m.name: means[m.name].drop(default).idxmax() for m in study.metrics}
    # The study.md table shows one test text for all tasks: it names each task's rival, which may differ.
    test = f"{default} minus the best other variant of each task (" + ", ".join(
        f"{m.label}: {rivals[m.name]}" for m in study.metrics) + ")"
    rows = []
    for m in study.metrics:
        d = compare(_by_seed(pairs[pairs["variant"] == default], m.column),
                    _by_seed(pairs[pairs["variant"] == rivals[m.name]], m.column))
        ranked = " > ".join(f"{v} {100 * a:.1f}" for v, a in means[m.name].sort_values(ascending=False).items())
        rows.append(_row(5, m, test, d, _direction(d, +1), ranked))
    return rows


def loss_predicts_accuracy(study: StudyData, fits: pd.DataFrame | None) -> list[dict[str, object]]:
    if fits is None or fits.empty:
        return _absent(6, study, "needs probed student checkpoints of the allocation ablation")
    rows = []
    for m in study.metrics:
        mine = fits[fits["task"] == m.name]
        teachers, pooled = mine[mine["teacher"] != POOLED], mine[mine["teacher"] == POOLED].iloc[0]
        r2 = ", ".join(f"{t} {'undefined' if pd.isna(v) else f'{v:.2f}'}" for t, v in zip(teachers["teacher"], teachers["r2"]))
        d = spearman_over_seeds(study, m)
        rows.append(_row(6, m, "each seed's per-teacher Spearman ρ (mean over teachers) against 0, in points of ρ",
                         d, _direction(d, -1), f"R² per teacher: {r2}; pooled "
                                               f"{'undefined' if pd.isna(pooled['r2']) else format(pooled['r2'], '.2f')}"))
    return rows


def salt_beats_vjepa2(study: StudyData, versus: pd.DataFrame | None) -> list[dict[str, object]]:
    paper = baseline_name(reference.PAPER_BASELINE)  # the claim is about the paper's baseline, not any other
    best = None if versus is None or versus.empty else versus[versus["best"] & (versus["baseline"] == paper)]
    if best is None or best.empty:
        return _absent(7, study, f"needs the {reference.PAPER_BASELINE} baseline in an ablation")
    full = best[best["n"] == best["n"].max()]  # the largest budget of those compared over the most seeds
    largest = full[full["budget"] == full["budget"].max()]
    rows = []
    for m in study.metrics:
        here = largest[largest["task"] == m.name].iloc[0]
        d = from_columns(here)
        every = best[best["task"] == m.name]
        numbers = "; ".join(f"{r.budget:g}: T{int(r.teacher_steps)} {100 * r.diff:+.1f} at {r.salt_flops_total:.3g} "
                            f"against {r.baseline_flops_total:.3g} FLOPs" for r in every.itertuples())
        rows.append(_row(7, m, f"budget {here['budget']:g}: best allocation T{int(here['teacher_steps'])} minus "
                               f"V-JEPA 2", d, _direction(d, +1), numbers))
    return rows


def verdict_table(study: StudyData, found: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Findings (1)-(7), one row per task and task average (the long form behind study.md's verdict table)."""
    rows = [*training_beats_random_init(study), *small_share_is_best(study), *students_beat_teachers(study),
            *larger_teachers_barely_help(study), *multiblock_is_best(study),
            *loss_predicts_accuracy(study, found.get("study_regression_teachers")),
            *salt_beats_vjepa2(study, found.get("study_vs_baseline"))]
    return pd.DataFrame(rows)


def headline(verdicts: pd.DataFrame) -> pd.DataFrame:
    """The task average's row of each finding (the verdict study.md's table leads with)."""
    return verdicts[equals(verdicts, "task", "mean")]
