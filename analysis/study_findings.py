"""The study report's tables and study.md in full: the ablation tables of analysis/study.py and their text
(analysis/study_summary.py), and beside them the findings that test each claim of the paper: SALT against a
baseline (study_baselines), the loss-accuracy fit per teacher (study_regression), the two-step recommend check
(study_check) and the verdict table (study_verdicts), which study.md shows first."""

from __future__ import annotations

import pandas as pd

from analysis import study as ablations
from analysis import study_baselines, study_check, study_regression, study_summary, study_verdicts, study_verdicts_text
from analysis.study_check import MIN_BUDGETS
from analysis.study_data import StudyData, final_pairs


def tables(study: StudyData) -> dict[str, pd.DataFrame]:
    found = ablations.tables(study)
    extra = {
        "study_vs_baseline": study_baselines.baseline_table(study),
        "study_regression_teachers": study_regression.teacher_regression_table(study),
        "study_recommend_check": study_check.check_table(study),
    }
    found.update({name: frame for name, frame in extra.items() if len(frame)})
    found["study_verdicts"] = study_verdicts.verdict_table(study, found)
    return found


def _check_note(study: StudyData, found: dict[str, pd.DataFrame]) -> list[str]:
    """Why the two-step check is missing, where the allocation ablation ran."""
    if "study_recommend_check" in found:
        return []
    pairs = final_pairs(study, "allocation")
    if pairs.empty:
        return []
    budgets = pairs["budget"].nunique()
    return ["## Two-step check of the recommendation", "",
            f"Not run: the allocation ablation has {budgets} budget{'s' * (budgets != 1)}; the check fits the "
            f"recommendation on every budget but the largest and needs {MIN_BUDGETS} (three to fit a trend that is "
            f"itself checked, one to predict).", ""]


def summary(study: StudyData, found: dict[str, pd.DataFrame]) -> str:
    """study.md: the verdict table right after the setup, then the ablations, then the findings' sections."""
    text = study_summary.summary(study, found)
    head, _, rest = text.partition("\n## ")
    verdicts = study_verdicts_text.section(study, found.get("study_verdicts"))
    findings = [*study_baselines.section(study, found.get("study_vs_baseline")),
                *study_regression.section(study, found.get("study_regression_teachers")),
                *study_check.section(study, found.get("study_recommend_check")), *_check_note(study, found)]
    parts = [head, *verdicts, "## " + rest if rest else "", *findings]
    return "\n".join(part for part in parts if part is not None).rstrip("\n") + "\n"
