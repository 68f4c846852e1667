"""analysis/ on hand-made numbers with known answers: Pareto fronts, line fits, the allocation curve,
table checks and the summary's words for what the data cannot support. Pure pandas, no torch."""

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from fixtures.results_table import MOTION_OFFSET, OPTIMUM_SHARE, final_accuracy, results_frame

from analysis.allocation import RANKING, allocation_findings, fit_share_curve, rank_allocations
from analysis.findings import compute
from analysis.pareto import front_steps, pareto_mask
from analysis.regression import fit_line, grouped_fits, loo_mae, r_squared, spearman
from analysis.results import from_frame, size_order
from analysis.schema import COLLAPSE_STD, SCHEMA_VERSION
from analysis.summary import write_summary
from analysis.tables import ReportError

# -- Pareto -------------------------------------------------------------------------------------------


def test_pareto_keeps_points_no_other_point_beats_on_both_axes():
    cost = [1, 2, 3, 4, 5]
    acc = [0.5, 0.4, 0.7, 0.6, 0.8]
    assert pareto_mask(cost, acc).tolist() == [True, False, True, False, True]


def test_pareto_ties_and_equal_cost():
    # Identical points are both on the front; at equal cost only the better one; at equal accuracy the cheaper.
    cost = [1, 1, 2, 2, 3]
    acc = [0.5, 0.5, 0.6, 0.55, 0.6]
    assert pareto_mask(cost, acc).tolist() == [True, True, True, False, False]


def test_pareto_single_point_and_nans():
    assert pareto_mask([7.0], [0.1]).tolist() == [True]
    assert pareto_mask([], []).tolist() == []
    # A NaN point is off the front and does not knock out the points it would dominate.
    assert pareto_mask([1, np.nan, 2, 3], [0.5, 0.9, np.nan, 0.6]).tolist() == [True, False, False, True]


def test_front_steps_sorted_and_extended():
    cost, acc = np.array([3, 1, 2]), np.array([0.7, 0.5, 0.4])
    xs, ys = front_steps(cost, acc, pareto_mask(cost, acc), until=5)
    assert xs.tolist() == [1, 3, 5] and ys.tolist() == [0.5, 0.7, 0.7]


# -- line fits ----------------------------------------------------------------------------------------


def test_r_squared_known_values():
    assert r_squared([1, 2, 3, 4], [3, 5, 7, 9]) == pytest.approx(1.0)
    assert r_squared([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.64)  # r = 0.8
    assert r_squared([1, 2, 3, 4, np.nan], [1, 3, 2, 4, 100]) == pytest.approx(0.64)  # the NaN pair is dropped


def test_r_squared_undefined():
    assert math.isnan(r_squared([1, 2], [1, 2]))  # two points always fit
    assert math.isnan(r_squared([1, 1, 1], [1, 2, 3]))  # no spread in x
    assert math.isnan(r_squared([1, 2, 3], [2, 2, 2]))  # no spread in y


def test_spearman_with_ties():
    # x ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4): 4.5 / sqrt(4.5 * 5) = sqrt(0.9).
    assert spearman([1, 2, 2, 3], [10, 20, 30, 40]) == pytest.approx(math.sqrt(0.9))
    assert spearman([1, 2, 3, 4], [8, 4, 2, 1]) == pytest.approx(-1.0)  # monotone, not linear
    assert math.isnan(spearman([1, 2, 3], [5, 5, 5]))
    assert math.isnan(spearman([1, 2], [1, 2]))


def test_leave_one_out_error():
    assert loo_mae([0, 1, 2, 3], [1, 3, 5, 7]) == pytest.approx(0.0)
    # Without (0, 0): line through (1, 0), (2, 3) predicts -3; without (1, 0): 1.5; without (2, 3): 0.
    assert loo_mae([0, 1, 2], [0, 0, 3]) == pytest.approx((3 + 1.5 + 3) / 3)
    assert math.isnan(loo_mae([1, 1, 2], [0, 1, 2]))  # dropping x=2 leaves one x


def test_fit_line_says_why_it_is_undefined():
    assert fit_line([1, 2], [3, 4]).note == "undefined: 2 points, a fit needs 3"
    assert fit_line([1, 1, 1], [1, 2, 3]).note == "undefined: every x is the same"
    flat = fit_line([1, 2, 3], [0.5, 0.5, 0.5])
    assert flat.slope == 0 and math.isnan(flat.r2) and "every y is the same" in flat.note
    good = fit_line([1, 2, 3, 4], [9, 7, 5, 3])
    assert (good.n, good.note) == (4, "")
    assert [good.slope, good.intercept, good.r2, good.spearman, good.loo_mae] == pytest.approx([-2, 11, 1, -1, 0])


def test_grouped_fits_add_a_pooled_row():
    frame = pd.DataFrame({"g": ["a"] * 3 + ["b"] * 2, "x": [1, 2, 3, 1, 2], "y": [1, 2, 3, 5, 5]})
    fits = grouped_fits(frame, "x", "y", by="g")
    assert fits["g"].tolist() == ["a", "b", "pooled"]
    assert fits["n"].tolist() == [3, 2, 5] and fits["r2"].iloc[0] == pytest.approx(1.0)
    assert "2 points" in fits["note"].iloc[1]


# -- the allocation curve --------------------------------------------------------------------------------


def _parabola(shares, peak_share, peak=0.6, k=0.05):
    return peak - k * (np.log(shares) - math.log(peak_share)) ** 2


def test_share_curve_recovers_a_known_interior_optimum():
    shares = np.array([1 / 12, 1 / 6, 1 / 3, 1 / 2])
    fit = fit_share_curve(shares, _parabola(shares, 0.2))
    assert fit.optimum_where == "inside" and fit.note == ""
    assert fit.optimum_share == pytest.approx(0.2) and fit.optimum_accuracy == pytest.approx(0.6)


def test_share_curve_optimum_at_the_edge_and_undefined_cases():
    shares = np.array([0.1, 0.2, 0.4])
    rising = fit_share_curve(shares, [0.1, 0.2, 0.3])  # monotone: the best tested share is the largest
    assert rising.optimum_where == "edge" and rising.optimum_share == pytest.approx(0.4)
    assert "exact through 3 shares" in rising.note
    assert fit_share_curve([0.1, 0.2, 0.2], [0.1, 0.2, 0.3]).note == "no curve: 2 distinct shares, a fit needs 3"
    assert fit_share_curve([0.1, np.nan, 0.3], [0.1, 0.2, np.nan]).shares == 1
    assert fit_share_curve(shares, [0.3, 0.3, 0.3]).note == "no optimum: every share scores the same"


def test_allocation_ranking_gaps_and_ties():
    points = pd.DataFrame({
        "budget": 100, "teacher_size": "s", "student_size": "s", "teacher_steps": [10, 20, 40, 50],
        "student_steps": [90, 80, 60, 50], "teacher_share": [0.1, 0.2, 0.4, 0.5], "accuracy": [0.5, 0.6, 0.6, 0.3],
    })
    row = allocation_findings(points).iloc[0]
    # A tie at the top: the smaller share is named best, the gap to the runner-up is zero.
    assert row["best_teacher_steps"] == 20 and row["tied_shares"] == "0.2 0.4" and row["gap_second"] == 0
    assert row["heaviest_share"] == 0.5 and row["gap_heaviest"] == pytest.approx(0.3)
    assert set(rank_allocations(points)) == set(RANKING)  # the table's named columns hold every ranking value
    single = allocation_findings(points.iloc[:1]).iloc[0]
    assert math.isnan(single["gap_second"]) and single["gap_heaviest"] == 0 and single["note"].startswith("no curve")


# -- tables --------------------------------------------------------------------------------------------


def test_schema_version_and_collapse_threshold_match_the_sweep():
    from salt_budget.sweep.running.rows import COLLAPSE_STD as FLAGGED
    from salt_budget.sweep.running.rows import SCHEMA_VERSION as WRITTEN

    assert SCHEMA_VERSION == WRITTEN and COLLAPSE_STD == FLAGGED


def test_table_checks_name_the_problem():
    frame = results_frame()
    with pytest.raises(ReportError, match="has no rows"):
        from_frame(frame.iloc[:0])
    with pytest.raises(ReportError, match="schema version 2, this report reads version 1: upgrade"):
        from_frame(frame.assign(schema_version=2))
    with pytest.raises(ReportError, match="schema version 0.*rerun the sweep"):
        from_frame(frame.assign(schema_version=0))
    with pytest.raises(ReportError, match="lacks the columns loss_smoothed, rankme"):
        from_frame(frame.drop(columns=["loss_smoothed", "rankme"]))
    with pytest.raises(ReportError, match="all 1 rows are failed units.*CUDA out of memory"):
        from_frame(frame[frame["status"] == "failed"])


def test_tasks_are_discovered_and_a_missing_task_names_the_others():
    results = from_frame(results_frame())
    assert results.tasks == ("appearance", "motion")
    assert [m.column for m in results.metrics()] == ["acc_appearance", "acc_motion", "acc_mean"]
    with pytest.raises(ReportError, match="no task 'colour'.*appearance, motion, mean"):
        results.metrics("colour")


def test_failed_rows_are_kept_and_duplicates_counted_once():
    frame = results_frame()
    results = from_frame(pd.concat([frame, frame.iloc[:3]], ignore_index=True))
    assert len(results.rows) == len(frame) and len(results.failed) == 1
    assert results.notes == ("3 rows appear in more than one run (same unit and checkpoint) and are counted once",)


def test_teacher_sizes_sort_by_flops_per_step():
    assert size_order(results_frame()) == ["small", "large"]  # not alphabetical


# -- findings and the summary's words --------------------------------------------------------------------


def test_findings_on_the_fixture():
    results = from_frame(results_frame())
    findings = compute(results, results.metrics())
    fits = findings.allocation
    assert len(fits) == 2 * 2 * 3  # budgets x teacher sizes x (2 tasks + mean)
    assert np.allclose(fits["optimum_share"], OPTIMUM_SHARE)
    pairs = findings.pairs[findings.pairs["task"] == "appearance"]
    assert int(pairs["beats_teacher"].sum()) == 10  # the large 80-step teacher beats both its students
    assert findings.failed["reason"].tolist() == ["CUDA out of memory"]
    assert findings.unfinished.empty


def test_summary_says_when_the_data_cannot_support_a_claim():
    frame = results_frame()
    # Keep one budget, one teacher size and two teacher step counts, final checkpoints only.
    keep = (frame["teacher_size"] == "small") & ((frame["budget"] == 240) | frame["budget"].isna()) & \
        frame["teacher_steps"].isin([20, 40]) & frame["is_final"].fillna(False).astype(bool)
    results = from_frame(frame[keep])
    metrics = results.metrics("motion")
    summary = write_summary(results, compute(results, metrics), metrics, size_order(results.rows))
    assert "no curve: 2 distinct shares, a fit needs 3" in summary
    assert "n/a (undefined: 1 point, a fit needs 3)" in summary  # one checkpoint per teacher
    assert "One teacher size: the data cannot say how teacher size matters." in summary
    assert "One seed per allocation" in summary
    assert "nan" not in summary.lower()


def test_baselines_join_the_front_and_face_salts_best_allocation_of_their_budget():
    results = from_frame(results_frame(baselines=True))
    metrics = results.metrics()
    findings = compute(results, metrics)
    base = findings.pareto[findings.pareto["role"] == "vjepa2"]
    # At 240 steps the baseline beats every student for less than the best one costs; at 120 it is dominated.
    assert base.groupby("budget")["on_front"].all().to_dict() == {120: False, 240: True}
    assert base.groupby("budget")["collapsed"].all().to_dict() == {120: True, 240: False}
    mean = findings.baselines[findings.baselines["task"] == "mean"].set_index("budget")
    salt = final_accuracy("large", 1 / 6) - MOTION_OFFSET / 2  # the large teacher at share 1/6, either budget
    assert mean["salt_allocation"].tolist() == ["N120_T20-large_S100-small_seed0", "N240_T40-large_S200-small_seed0"]
    assert mean["gap"].tolist() == pytest.approx([salt - 0.45, salt - 0.58])
    assert mean["flops_ratio"].tolist() == pytest.approx([180e9 / 156e9, 360e9 / 312e9])
    assert mean.loc[240, "cheaper_allocation"] == "N120_T20-large_S100-small_seed0"
    # Its loss has its own fit, outside the students' pooled one.
    fits = findings.loss_fits[findings.loss_fits["task"] == "mean"].set_index("teacher")
    assert fits.loc["V-JEPA 2 small", "role"] == "vjepa2" and fits.loc["V-JEPA 2 small", "spearman"] > 0
    assert fits.loc["pooled", "n"] == 36  # students only
    summary = write_summary(results, findings, metrics, size_order(results.rows))
    assert ("- Budget 120: SALT's best allocation N120_T20-large_S100-small_seed0 reaches 56.8% at 1.8e+11 FLOPs "
            "against V-JEPA 2 small's 45.0% at 1.56e+11 FLOPs (collapsed): 11.8 points above (seed 0 alone; one seed: not "
            "tested against noise), at 1.15x its FLOPs."
            in summary)
    assert ("Budget 240 (task average): SALT's best allocation N240_T40-large_S200-small_seed0 reaches 56.8% at 3.6e+11 "
            "FLOPs against V-JEPA 2 small's 58.0% at 3.12e+11 FLOPs: 1.2 points below (seed 0 alone; one seed: not tested "
            "against noise), at 1.15x its FLOPs." in summary)
    assert "Pareto front: 7 encoders; teacher: 4, student: 2, vjepa2: 1." in summary
    assert "V-JEPA 2 N240 small (58.0 at 3.12e+11 FLOPs)" in summary
    assert "a run with target std below 0.1 is flagged `collapsed`" in summary
    assert "- Collapsed: V-JEPA 2 small N120" in summary and "RankMe 3.0 (step 40)" in summary
    assert "its own loss over 6 checkpoints: R² 0.149, Spearman ρ +0.478: lower loss does not go with higher" in summary
    assert "nan" not in summary.lower()


def test_summary_lists_unfinished_students():
    frame = results_frame()
    unit = frame.loc[frame["role"] == "student", "unit_key"].iloc[0]
    results = from_frame(frame[~((frame["unit_key"] == unit) & frame["is_final"].fillna(False).astype(bool))])
    findings = compute(results, results.metrics())
    assert findings.unfinished["unit_key"].tolist() == [unit]
    assert "1 student unit(s) have checkpoints but no final one yet" in write_summary(
        results, findings, results.metrics(), size_order(results.rows))


# -- the dependency rule ------------------------------------------------------------------------------------


def test_analysis_imports_neither_torch_nor_ray():
    code = ("import importlib, pkgutil, sys, analysis; "
            "[importlib.import_module(f'analysis.{m.name}') for m in pkgutil.iter_modules(analysis.__path__)]; "
            "assert 'analysis.study_report' in sys.modules; "
            "bad = [m for m in ('torch', 'ray') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_seeds_are_averaged_and_their_spread_reported():
    frame = results_frame()
    students = frame[(frame["role"] == "student") & (frame["status"] == "ok")]
    again = students.assign(seed=1, unit_key=students["unit_key"] + "-seed1",
                            allocation_id=students["allocation_id"].str.replace("seed0", "seed1"),
                            acc_motion=students["acc_motion"] + 0.01)
    results = from_frame(pd.concat([frame, again], ignore_index=True))
    metrics = results.metrics("motion")
    findings = compute(results, metrics)
    assert (findings.allocation_points["seeds"] == 2).all()
    assert findings.allocation_points["accuracy_sd"].to_numpy() == pytest.approx(0.01 / math.sqrt(2))
    summary = write_summary(results, findings, metrics, size_order(results.rows))
    assert "Up to 2 seeds per allocation; the mean seed-to-seed standard deviation is 0.7 points" in summary
