"""The study's findings on made-up study folders: the paper's V-JEPA 2 rows per budget, SALT against V-JEPA 2
paired by seed, the loss-accuracy fit per teacher, the two-step recommend check, and the verdict table, each
built so that its verdict must come out one way (a gap on every seed: resolved; noise larger than the gap: not
resolved; an ablation not run: not in this study)."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import reference
from analysis.stats import NOT_RESOLVED, ONE_SEED, RESOLVED, seeds_to_resolve
from analysis.study_data import load_study
from analysis.study_findings import summary, tables
from analysis.study_verdicts import NOT_IN_STUDY
from salt_budget.sweep.results.store import append_rows

SEEDS = (0, 1, 2)
NOISE = {0: 0.0, 1: 0.02, 2: -0.01}  # each seed's shift, shared by every arm of the seed


def _accuracy(appearance: float, motion: float) -> dict[str, float]:
    return {"acc_appearance": appearance, "acc_motion": motion, "acc_mean": (appearance + motion) / 2,
            "chance_appearance": 0.1, "chance_motion": 0.1}


class MadeUpStudy:
    """Rows per sweep folder and the sweeps of study.json, written by write()."""

    def __init__(self, folder: Path):
        self.folder, self.rows, self.sweeps = folder, {}, []

    def _common(self, folder: str, budget: int, t: int, seed: int, size: str) -> dict:
        return {"schema_version": 1, "sweep": folder, "config_hash": "h", "budget": budget, "budget_kind": "steps",
                "teacher_size": size, "teacher_steps": t, "teacher_share": t / budget, "student_size": "tiny",
                "student_steps": budget - t, "seed": seed, "status": "ok", "reason": None, "rankme": 1.0,
                "flops_teacher": t * {"micro": 1.0, "tiny": 2.0, "small": 4.0}[size],
                "flops_student": (budget - t) * 3.0}

    def allocation(self, folder: str, budget: int, t: int, seed: int, student: tuple[float, float],
                   teacher: tuple[float, float], size: str = "tiny",
                   checkpoints: tuple[tuple[float, float], ...] = ()) -> str:
        """A teacher (one per length, size and seed) and its student; `checkpoints`: (loss, accuracy) of every
        probed checkpoint before the final one, whose loss is 0.5."""
        common = self._common(folder, budget, t, seed, size)
        teacher_key = f"{folder}-teacher-{size}-T{t}-seed{seed}"
        unit = f"{folder}-N{budget}_T{t}-{size}_seed{seed}"
        rows = self.rows.setdefault(folder, [])
        rows.append({**common, "unit_key": teacher_key, "role": "teacher", "allocation_id": None, "teacher_key":
                     teacher_key, "step": t, "is_final": True, "flops_total": common["flops_teacher"],
                     "loss_final": 1.0, "loss_smoothed": 1.0, **_accuracy(*teacher)})
        final = budget - t
        probed = [*((step + 1, loss, acc) for step, (loss, acc) in enumerate(checkpoints)), (final, 0.5, None)]
        for step, loss, acc in probed:
            accuracy = _accuracy(*student) if acc is None else _accuracy(acc, acc)
            rows.append({**common, "unit_key": unit, "role": "student", "allocation_id": unit, "teacher_key":
                         teacher_key, "step": step, "is_final": step == final,
                         "flops_total": common["flops_teacher"] + common["flops_student"], "loss_final": loss,
                         "loss_smoothed": loss, **accuracy})
        return unit

    def baseline(self, folder: str, budget: int, seed: int, accuracy: tuple[float, float]) -> str:
        unit = f"{folder}-vjepa2-N{budget}-seed{seed}"
        self.rows.setdefault(folder, []).append({
            **self._common(folder, budget, 0, seed, "tiny"), "teacher_size": None, "teacher_steps": None,
            "teacher_share": None, "student_steps": budget, "unit_key": unit, "role": "vjepa2", "allocation_id": unit,
            "teacher_key": None, "step": budget, "is_final": True, "flops_teacher": 0.0, "flops_student": budget * 5.0,
            "flops_total": budget * 5.0, "loss_final": 0.3, "loss_smoothed": 0.3, **_accuracy(*accuracy)})
        return unit

    def sweep(self, ablation: str, variant: str, folder: str, students: list[str], baselines: list[str] = ()):
        self.sweeps.append({"ablation": ablation, "variant": variant, "folder": folder, "overrides": [],
                            "allocations": students, "students": students, "baselines": list(baselines)})

    def random_init(self, accuracy: tuple[float, float], seeds=SEEDS):
        for seed in seeds:
            probes = self.folder / "random_init" / f"seed{seed}" / "probes"
            probes.mkdir(parents=True)
            tasks = {"appearance": {"accuracy": accuracy[0] + NOISE[seed]}, "motion": {"accuracy": accuracy[1]}}
            (probes / f"random_init-tiny-seed{seed}.json").write_text(json.dumps({"tasks": tasks}))

    def write(self):
        for folder, rows in self.rows.items():
            append_rows(self.folder / folder, rows)
        (self.folder / "study.json").write_text(json.dumps({"name": "made-up", "seeds": list(SEEDS),
                                                            "sweeps": self.sweeps}))
        study = load_study(self.folder)
        return study, tables(study)


def _allocation_ablation(made: MadeUpStudy, budgets=(960, 1920), seeds=SEEDS, baseline_gap=None,
                         baseline_noise=None) -> None:
    """A teacher of 320 steps (1/3 of 960, 1/6 of 1,920: the best, a length that stays put) and of half the budget
    at each budget; T320's students read 40 / 50%, the others 30 / 40%, teachers 20 / 25%, each seed shifted by
    NOISE; a V-JEPA 2 run per budget and seed `baseline_gap` below T320's students (plus `baseline_noise[seed]`)."""
    students, baselines = [], []
    for budget in budgets:
        for seed in seeds:
            shift = NOISE[seed]
            for t, (appearance, motion) in ((320, (0.40, 0.50)), (budget // 2, (0.30, 0.40))):
                students.append(made.allocation("main", budget, t, seed, (appearance + shift, motion + shift),
                                                (0.20 + shift, 0.25 + shift)))
            if baseline_gap is not None:
                extra = (baseline_noise or {}).get(seed, 0.0)
                baselines.append(made.baseline("main", budget, seed, (0.40 + shift - baseline_gap + extra,
                                                                      0.50 + shift - baseline_gap + extra)))
    made.sweep("allocation", "default", "main", students, baselines)


# -- the paper's rows --------------------------------------------------------------------------------------


def test_the_paper_has_a_vjepa2_row_at_every_budget():
    assert reference.vjepa2(120_000)["flops_total"] == 0.951e21 and reference.vjepa2(120_000)["SSv2"] == 67.9
    assert reference.vjepa2(160_000)["K400"] == 73.5 and reference.vjepa2(160_000)["COIN"] == 82.9
    assert reference.vjepa2(240_000)["avg of 4"] == 74.6 and reference.vjepa2(200_000) is None
    # The two-task mean beside a task average is K400 + SSv2's, never the average of four.
    assert reference.vjepa2(160_000)[reference.TWO_TASK_MEAN] == pytest.approx((73.5 + 68.3) / 2)
    assert reference.BENCHMARK_OF_TASK["mean"] == reference.TWO_TASK_MEAN
    salt = reference.table_16(reference.TWO_TASK_MEAN).set_index(["budget", "teacher_steps"])["accuracy"]
    assert salt[(240_000, 40_000)] == pytest.approx(0.740)  # (76.3 + 71.7) / 2
    assert reference.vjepa2(240_000)["IN1k"] == 73.7 and reference.vjepa2(240_000)["COIN"] == 83.1
    assert reference.vjepa2(120_000)["avg of 4"] == 74.4 and reference.vjepa2(160_000)["flops_total"] == 1.260e21
    # The SALT rows' two-task mean is K400 + SSv2's; their avg of 4 is only asked for by name.
    assert reference.table_16("avg of 4").set_index(["budget", "teacher_steps"])["accuracy"][(240_000, 40_000)] == \
        pytest.approx(0.782)
    # Table 16's three-stage rows (avg of 4 only) beat its best two-stage row of 240k; Fig. 8's teachers alone.
    best_two_stage = max(row[6] for row in reference.TABLE_16 if row[0] == 240_000)
    assert [r.avg_of_4 for r in reference.THREE_STAGE_240K] == [78.5, 78.6] and best_two_stage == 78.2
    assert all(r.teacher_steps + r.first_student_steps + r.student_steps == 240_000 for r in reference.THREE_STAGE_240K)
    assert [(t.teacher_steps, t.avg_of_4) for t in reference.TEACHERS_ALONE] == [
        (20_000, 66.8), (40_000, 70.4), (80_000, 72.5)]
    # Fig. 8's 80k teacher is Table 14's ViT-L teacher alone.
    assert dict(reference.TEACHERS_ALONE)[80_000] == dict((n, a) for n, a, _ in reference.TEACHER_SIZES)["ViT-L"]
    # The tiny study's budgets are the paper's / 125: 960 -> 120k, 1,280 -> 160k, 1,920 -> 240k; 1,440 has none.
    scale = reference.paper_scale(1920)
    assert scale == 125
    assert [reference.paper_budget(b, scale) for b in (960, 1280, 1440, 1920, 3840)] == [
        120_000, 160_000, None, 240_000, None]
    assert reference.paper_teacher_steps(320, scale) == 40_000 and reference.paper_teacher_steps(480, scale) is None


# -- SALT against V-JEPA 2 ---------------------------------------------------------------------------------


def test_a_baseline_five_points_below_salt_on_every_seed_is_resolved(tmp_path):
    made = MadeUpStudy(tmp_path)
    _allocation_ablation(made, baseline_gap=0.05)
    study, found = made.write()
    versus = found["study_vs_baseline"]
    best = versus[versus["best"]].set_index(["budget", "task"])
    assert set(best.index) == {(b, t) for b in (960, 1920) for t in ("appearance", "motion", "mean")}
    assert (best["teacher_steps"] == 320).all()
    assert np.allclose(best["diff"], 0.05) and (best["verdict"] == RESOLVED).all() and best["paired"].all()
    # Paired by seed, the seeds' shared shift cancels: the interval is the point.
    assert np.allclose(best["low"], 0.05) and np.allclose(best["high"], 0.05)
    row = best.loc[(960, "motion")]
    assert row["salt_flops_total"] == 320 * 2.0 + 640 * 3.0 and row["baseline_flops_total"] == 960 * 5.0
    # Beside it, Table 16 at 120k: SALT's best on SSv2 (40k + 80k, 70.2) and V-JEPA 2's (67.9).
    assert row["paper_budget"] == 120_000 and row["paper_salt"] == pytest.approx(0.702)
    assert row["paper_vjepa2"] == pytest.approx(0.679) and row["paper_vjepa2_flops"] == 0.951e21
    mean = best.loc[(1920, "mean")]
    assert mean["benchmark"] == reference.TWO_TASK_MEAN and mean["paper_vjepa2"] == pytest.approx((73.3 + 68.4) / 200)
    # The other share is set against the paper's row of the same share: 1/2 of 240k has none.
    heavy = versus[~versus["best"] & (versus["budget"] == 1920)]
    assert heavy["paper_salt"].isna().all() and np.allclose(heavy["diff"], -0.05)
    verdicts = found["study_verdicts"].set_index(["finding", "task"])
    assert verdicts.loc[(7, "mean"), "verdict"] == RESOLVED and verdicts.loc[(7, "mean"), "agrees"]
    text = summary(study, found)
    assert "## SALT against V-JEPA 2 at equal steps" in text and "120k, SSv2: SALT T40k+S80k 70.2, V-JEPA 2 67.9" in text


def test_seed_noise_larger_than_the_baseline_gap_is_not_resolved(tmp_path):
    made = MadeUpStudy(tmp_path)
    _allocation_ablation(made, baseline_gap=0.01, baseline_noise={0: 0.06, 1: -0.06, 2: 0.0})
    study, found = made.write()
    best = found["study_vs_baseline"].query("best")
    assert np.allclose(best["diff"], 0.01) and (best["verdict"] == NOT_RESOLVED).all()
    assert found["study_verdicts"].set_index(["finding", "task"]).loc[(7, "mean"), "verdict"] == NOT_RESOLVED


# -- the verdict table -------------------------------------------------------------------------------------


def _full_study(tmp_path: Path, student_gain: float, mask_gap: float, seeds=SEEDS):
    """Every ablation: allocation (1/6 best), teacher sizes micro / tiny / small (teachers +10 points from micro
    to small, students `student_gain`), masks (multiblock `mask_gap` above tube, 10 above causal), V-JEPA 2 5
    points below, the random-init floor at 15 / 20%."""
    made = MadeUpStudy(tmp_path)
    _allocation_ablation(made, seeds=seeds, baseline_gap=0.05)
    sizes, masks, tubes = [], [], []
    for seed in seeds:
        shift = NOISE[seed]
        for size, teacher_gain, gain in (("micro", 0.0, 0.0), ("tiny", 0.05, student_gain / 2),
                                         ("small", 0.10, student_gain)):
            sizes.append(made.allocation("main", 1920, 320, seed, (0.40 + gain + shift, 0.50 + gain + shift),
                                         (0.20 + teacher_gain + shift, 0.25 + teacher_gain + shift), size=size))
        masks.append(made.allocation("causal", 1920, 320, seed, (0.35 + shift, 0.45 + shift), (0.30, 0.30)))
        tubes.append(made.allocation("tube", 1920, 320, seed, (0.40 - mask_gap + shift, 0.50 - mask_gap + shift),
                                     (0.25, 0.25)))
    made.sweep("teacher_size", "default", "main", sizes)
    made.sweep("teacher_masks", "multiblock", "main", [s for s in sizes if "-tiny_" in s])
    made.sweep("teacher_masks", "causal", "causal", masks)
    made.sweep("teacher_masks", "tube", "tube", tubes)
    made.random_init((0.15, 0.20), seeds)
    return made.write()


def test_every_finding_has_a_verdict_as_constructed(tmp_path):
    study, found = _full_study(tmp_path, student_gain=0.01, mask_gap=0.02)
    verdicts = found["study_verdicts"].set_index(["finding", "task"])
    assert sorted(verdicts.index.get_level_values(0).unique()) == [1, 2, 3, 4, 5, 6, 7]
    for finding in (1, 2, 3, 4, 5, 7):
        for task in ("appearance", "motion", "mean"):
            assert verdicts.loc[(finding, task), "verdict"] == RESOLVED, (finding, task)
            assert verdicts.loc[(finding, task), "agrees"], (finding, task)
    # (1) best at 1,920 (T320: 40 / 50% + shift) against the floor (15 + shift / 20%): appearance +25 every seed.
    assert verdicts.loc[(1, "appearance"), "diff"] == pytest.approx(0.25)
    assert verdicts.loc[(1, "motion"), "diff"] == pytest.approx(0.30 + np.mean(list(NOISE.values())))
    # (2) 1/6 against 1/2 at 1,920: +10 on every seed; (3) the weakest students are the causal teacher's (35 / 45%
    # plus the seed's shift), whose teacher reads 30% on every seed.
    assert verdicts.loc[(2, "mean"), "diff"] == pytest.approx(0.10)
    assert verdicts.loc[(3, "mean"), "diff"] == pytest.approx(0.10 + np.mean(list(NOISE.values())))
    assert "causal" in verdicts.loc[(3, "mean"), "comparison"]
    # (4) students +1 from micro to small against their teachers' +10: -9, resolved, as the paper.
    assert verdicts.loc[(4, "motion"), "diff"] == pytest.approx(-0.09)
    # (5) multiblock against the best other masks, tube: +2; (6) no checkpoint before the final one: each student
    # has one point.
    assert verdicts.loc[(5, "mean"), "diff"] == pytest.approx(0.02) and "tube" in verdicts.loc[(5, "mean"), "comparison"]
    assert verdicts.loc[(6, "mean"), "verdict"] != RESOLVED
    text = summary(study, found)
    assert text.index("## Verdicts") < text.index("## Allocation")
    assert "| (4) Larger teachers barely help |" in text and "-9.0 (-9.0 to -9.0): resolved" in text


def test_a_gap_inside_the_seed_noise_is_not_resolved_and_a_missing_ablation_says_so(tmp_path):
    made = MadeUpStudy(tmp_path)
    students = []
    for seed, wobble in zip(SEEDS, (0.08, -0.08, 0.0)):  # 1/6 leads 1/2 by 1 point, give or take 8
        for t, acc in ((320, 0.41 + wobble), (960, 0.40)):
            students.append(made.allocation("main", 1920, t, seed, (acc, acc), (0.38, 0.38)))
    made.sweep("allocation", "default", "main", students)
    study, found = made.write()
    verdicts = found["study_verdicts"].set_index(["finding", "task"])
    assert verdicts.loc[(2, "mean"), "diff"] == pytest.approx(0.01)
    assert verdicts.loc[(2, "mean"), "verdict"] == NOT_RESOLVED
    # Differences +9, -7, +1 points: sd 8 points; a 1-point gap at that spread needs about 400 seeds for 80% power.
    assert verdicts.loc[(2, "mean"), "sd"] == pytest.approx(0.08)
    assert verdicts.loc[(2, "mean"), "seeds_to_resolve"] == seeds_to_resolve(0.08, 0.01) == 398
    for finding in (1, 4, 5, 7):  # no floor, no teacher-size or mask ablation, no baseline
        assert (verdicts.loc[finding, "verdict"] == NOT_IN_STUDY).all(), finding
    text = summary(study, found)
    assert "| (7) SALT beats V-JEPA 2 at equal compute |" in text and NOT_IN_STUDY in text
    assert f"| not resolved | {seeds_to_resolve(0.08, 0.01)} |" in text


def test_a_best_teacher_that_grows_with_the_budget_is_not_the_papers_finding(tmp_path):
    made = MadeUpStudy(tmp_path)
    students = []
    for budget in (960, 1920):  # 1/6 best at both budgets: its teacher doubles, 160 then 320 steps
        for seed in SEEDS:
            for t, acc in ((budget // 6, 0.45), (budget // 2, 0.35)):
                students.append(made.allocation("main", budget, t, seed, (acc + NOISE[seed],) * 2, (0.2, 0.2)))
    made.sweep("allocation", "default", "main", students)
    study, found = made.write()
    small_share = found["study_verdicts"].set_index(["finding", "task"]).loc[(2, "mean")]
    assert small_share["verdict"] == RESOLVED and small_share["diff"] == pytest.approx(0.10)
    assert not small_share["agrees"] and "T160 (0.167) of 960, T320 (0.167) of 1920" in small_share["numbers"]


def test_one_seed_is_not_tested_against_noise(tmp_path):
    study, found = _full_study(tmp_path, student_gain=0.01, mask_gap=0.02, seeds=(0,))
    verdicts = found["study_verdicts"]
    tested = verdicts[verdicts["verdict"] != NOT_IN_STUDY]
    assert (tested[tested["finding"] != 6]["verdict"] == ONE_SEED).all()
    assert "nan" not in summary(study, found).lower()


# -- the loss-accuracy fit per teacher ---------------------------------------------------------------------


def test_the_loss_fit_pools_each_teachers_students_and_seeds(tmp_path):
    made = MadeUpStudy(tmp_path)
    # Teacher T320: students at 960 and 1,920, seeds 0 and 1, each with the checkpoints (loss, accuracy)
    # (1, .4) (2, .3) (3, .1) (4, .1); the final checkpoint (loss .5, accuracy .45) makes a fifth.
    points = ((1.0, 0.4), (2.0, 0.3), (3.0, 0.1), (4.0, 0.1))
    students = [made.allocation("main", budget, 320, seed, (0.45, 0.45), (0.2, 0.2), checkpoints=points)
                for budget in (960, 1920) for seed in (0, 1)]
    students.append(made.allocation("main", 1920, 480, 0, (0.3, 0.3), (0.2, 0.2), checkpoints=((0.9, 0.2),)))
    made.sweep("allocation", "default", "main", students)
    study, found = made.write()
    fits = found["study_regression_teachers"].set_index(["teacher", "task"])
    t320 = fits.loc[("T320", "motion")]
    # By hand over one student's five points, x = 1, 2, 3, 4, 0.5 and y = .4, .3, .1, .1, .45 (four copies of them
    # pool to the same line): means 2.1 and 0.27, Sxy = -0.91, Sxx = 8.2, Syy = 0.108, R² = Sxy² / (Sxx Syy).
    x, y = np.array([1, 2, 3, 4, 0.5]), np.array([0.4, 0.3, 0.1, 0.1, 0.45])
    assert ((x - x.mean()) * (y - y.mean())).sum() == pytest.approx(-0.91)
    assert ((x - x.mean()) ** 2).sum() == pytest.approx(8.2) and ((y - y.mean()) ** 2).sum() == pytest.approx(0.108)
    assert t320["r2"] == pytest.approx(0.91 ** 2 / (8.2 * 0.108))
    assert t320["n"] == 20 and t320["students"] == 4 and t320["seeds"] == 2 and t320["checkpoints_per_student"] == 5
    assert t320["paper_teacher_steps"] == 40_000 and t320["paper_r2_ssv2"] == 0.972
    # T480's one student has two checkpoints: no fit.
    t480 = fits.loc[("T480", "motion")]
    assert t480["n"] == 2 and math.isnan(t480["r2"]) and pd.isna(t480["paper_r2_ssv2"])
    assert fits.loc[("pooled", "motion"), "n"] == 22
    text = summary(study, found)
    assert "undefined (2 points, a fit needs 3)" in text and "0.972 (40k)" in text
    # Every seed's rho is the same: ranks of x 2, 3, 4, 5, 1 and of y 4, 3, 1.5, 1.5, 5 (less their mean 3) give
    # -9.5 / sqrt(10 * 9.5); a resolved "lower loss, higher accuracy".
    verdict = found["study_verdicts"].set_index(["finding", "task"]).loc[(6, "motion")]
    assert verdict["diff"] == pytest.approx(-9.5 / math.sqrt(95)) and verdict["verdict"] == RESOLVED and verdict["agrees"]


# -- the two-step recommend check --------------------------------------------------------------------------


def _check_study(tmp_path: Path, budgets: tuple[int, ...], heavy_bonus: float):
    """The best share is 1/6 at every budget (accuracy a parabola in ln share, rising with ln B), seed noise 0.3
    points; `heavy_bonus` lifts the largest budget's share 1/2 above the rest."""
    rng = np.random.default_rng(3)
    made = MadeUpStudy(tmp_path)
    students = []
    for budget in budgets:
        for fraction in (12, 6, 3, 2):
            t = budget // fraction
            for seed in (0, 1):
                acc = 0.3 + 0.03 * math.log(budget / budgets[0]) - 0.08 * math.log(6 / fraction) ** 2
                acc += rng.normal(0, 0.003) + (heavy_bonus if fraction == 2 and budget == budgets[-1] else 0.0)
                students.append(made.allocation("main", budget, t, seed, (acc, acc), (0.2, 0.2)))
    made.sweep("allocation", "default", "main", students)
    return made.write()


def test_the_check_finds_the_largest_budgets_best_share_inside_the_interval(tmp_path):
    study, found = _check_study(tmp_path, (960, 1920, 3840, 7680), heavy_bonus=0.0)
    check = found["study_recommend_check"].set_index("task")
    assert check.loc["mean", "fitted_on"] == "960 1920 3840" and check.loc["mean", "budget"] == 7680
    assert check.loc["mean", "best_trained_share"] == pytest.approx(1 / 6, rel=0.01)
    assert bool(check.loc["mean", "inside"])
    assert "## Two-step check of the recommendation" in summary(study, found)


def test_the_check_says_outside_when_the_largest_budget_moves(tmp_path):
    study, found = _check_study(tmp_path / "a", (960, 1920, 3840, 7680), heavy_bonus=0.2)
    check = found["study_recommend_check"].set_index("task")
    assert check.loc["mean", "best_trained_share"] == pytest.approx(0.5) and not check.loc["mean", "inside"]
    assert "OUTSIDE" in summary(study, found)
    # Three budgets: no check, and study.md says why.
    study, found = _check_study(tmp_path / "b", (960, 1920, 3840), heavy_bonus=0.0)
    assert "study_recommend_check" not in found
    assert "Not run: the allocation ablation has 3 budgets" in summary(study, found)


def test_a_larger_budget_with_fewer_seeds_does_not_carry_the_verdicts(tmp_path):
    # 960 and 1,920 by three seeds, 3,840 by seed 0 alone (as the tiny study extends its largest budget): the
    # findings compare at 1,920, where every seed trained, and V-JEPA 2 is compared there too.
    made = MadeUpStudy(tmp_path)
    _allocation_ablation(made, budgets=(960, 1920), baseline_gap=0.05)
    extra = [made.allocation("main", 3840, t, 0, (0.60, 0.70), (0.20, 0.25)) for t in (320, 1920)]
    made.sweeps[-1]["students"] += extra
    made.sweeps[-1]["baselines"].append(made.baseline("main", 3840, 0, (0.10, 0.10)))
    made.random_init((0.15, 0.20))
    study, found = made.write()
    verdicts = found["study_verdicts"].set_index(["finding", "task"])
    for finding in (1, 2, 7):
        assert verdicts.loc[(finding, "mean"), "comparison"].startswith("budget 1920"), finding
        assert verdicts.loc[(finding, "mean"), "verdict"] == RESOLVED, finding


def test_a_resumed_study_states_its_time_summed_over_every_run():
    from analysis.study_summary import _wall_lines

    crashed = [{"ablation": "allocation", "variant": "default", "exit_code": 3, "wall_s": 1971.4},
               {"ablation": "teacher_size", "variant": "default", "exit_code": 0, "wall_s": 1234.3}]
    resumed = [{"ablation": "allocation", "variant": "default", "exit_code": 0, "wall_s": 3076.6},
               {"ablation": "teacher_size", "variant": "default", "exit_code": 0, "wall_s": 4.9},
               {"study": "s", "wall_s": 3081.5, "finished_at": "2026-12-05T18:20:53", "exit_codes": [0, 0]}]
    [line] = _wall_lines(crashed + resumed)
    assert "last run: 3082 s" in line and "4 sweep runs" in line and "1 of them" in line
    assert "6287 s (104.8 min)" in line
    [alone] = _wall_lines(resumed)  # one run did everything: its time is the study's
    assert "Summed" not in alone and "3082 s" in alone
    assert _wall_lines(crashed) == []  # no run finished: no time to state


def test_each_task_is_read_against_its_own_best_other_mask(tmp_path):
    # Tube leads the others on appearance, causal on motion: each task's verdict is against its own rival, and
    # the one test text study.md shows names both.
    made = MadeUpStudy(tmp_path)
    arms = {"multiblock": (0.40, 0.50), "tube": (0.44, 0.40), "causal": (0.30, 0.53)}
    for variant, (appearance, motion) in arms.items():
        folder = "main" if variant == "multiblock" else variant
        students = [made.allocation(folder, 1280, 640, seed, (appearance + NOISE[seed], motion + NOISE[seed]),
                                    (0.3, 0.3)) for seed in SEEDS]
        made.sweep("teacher_masks", variant, folder, students)
    study, found = made.write()
    masks = found["study_verdicts"].set_index(["finding", "task"]).loc[5]
    assert masks.loc["appearance", "diff"] == pytest.approx(-0.04)  # multiblock minus tube
    assert masks.loc["motion", "diff"] == pytest.approx(-0.03)  # multiblock minus causal
    assert "appearance: tube" in masks.loc["mean", "comparison"] and "motion: causal" in masks.loc["mean", "comparison"]
