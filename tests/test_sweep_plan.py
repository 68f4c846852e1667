"""The sweep plan: allocations T + S = N, predicted FLOPs, the teacher ladder, keys and every refusal."""

from fractions import Fraction
from pathlib import Path

import pytest

from salt_budget.cli import main
from salt_budget.experiment import load_experiment
from trainers.stage_costs import mask_tokens
from trainers.stages import student_flops_per_clip, teacher_flops_per_clip
from salt_budget.sweep.planning.plan import build_plan
from salt_budget.sweep.planning.options import PlanError, SweepOptions
from salt_budget.sweep.planning.plan_table import format_plan, plan_frame, teacher_steps_summary
from salt_budget.sweep.planning.teacher_ladders import ladders
from salt_budget.sweep.planning.units import TeacherId, probe_steps, teacher_config, teacher_key

# Short teachers need a short warm-up: the tiny default's 30 (teacher) and 100 (student) steps do not fit.
SHORT_WARMUP = ["teacher.optim.warmup_steps=2", "student.optim.warmup_steps=2"]
TINY = ["name=tiny", "teacher.encoder.preset=tiny", "student.encoder.preset=tiny", "data.frames=16",
        "data.resolution=64"]


@pytest.fixture
def experiment(tmp_path):
    return load_experiment(None, [f"runs_dir={tmp_path / 'runs'}", *TINY, *SHORT_WARMUP])


def plan_of(experiment, **options):
    return build_plan(experiment, SweepOptions(**options))


def test_default_shares_are_the_papers_and_every_allocation_sums_to_the_budget(experiment):
    plan = plan_of(experiment, total_steps=(240_000,))
    assert [(a.teacher_steps, a.student_steps) for a in plan.allocations] == [
        (20_000, 220_000), (40_000, 200_000), (80_000, 160_000), (120_000, 120_000)]
    assert plan.allocations[0].id == "N240000_T20000-tiny_S220000-tiny_seed0"
    assert plan.sweep_dir == Path(experiment.runs_dir) / "tiny"


def test_several_budgets_sizes_and_seeds_share_their_teachers(experiment):
    plan = plan_of(experiment, total_steps=(120, 160, 240), teacher_steps=(20, 40, 80), teacher_sizes=("nano", "tiny"),
                   seeds=(0, 1), name="grid")
    assert len(plan.allocations) == 3 * 3 * 2 * 2
    assert all(a.teacher_steps + a.student_steps == a.budget for a in plan.allocations)
    # A teacher of T steps is one artifact for every budget: 3 step counts x 2 sizes x 2 seeds.
    assert len(plan.teachers) == 12 and len(plan.students) == 36
    assert plan.sweep_dir.name == "grid" and plan.name == "grid"
    frame = plan_frame(plan)
    assert (frame["flops_total"] == frame["flops_teacher"] + frame["flops_student"]).all()
    assert frame["relative_compute"].min() == pytest.approx(1.0)
    # Teacher FLOPs are linear in its steps; a bigger teacher costs the student its forward pass.
    nano = frame[(frame.teacher_size == "nano") & (frame.seed == 0)].drop_duplicates("teacher_steps")
    assert nano["flops_teacher"].tolist() == pytest.approx([nano["flops_teacher"].iloc[0] * k for k in (1, 2, 4)])
    same = frame[(frame.budget == 240) & (frame.teacher_steps == 40) & (frame.seed == 0)].set_index("teacher_size")
    assert same.loc["tiny", "flops_student"] > same.loc["nano", "flops_student"]


def test_fractions_round_to_steps_and_duplicates_collapse(experiment):
    shares = (Fraction(1, 3), Fraction(33, 100), Fraction(1, 2))
    plan = plan_of(experiment, total_steps=(100,), teacher_fractions=shares)
    assert [a.teacher_steps for a in plan.allocations] == [33, 50]


def test_predicted_flops_follow_reference_section_7(tmp_path):
    # benchmarks/training.md run A: this setup logged 6.777e12 FLOPs for 300 teacher steps and
    # 4.218e13 for 1,200 student steps (the loop's count with the token counts of each batch).
    run_a = [f"runs_dir={tmp_path}", "data.frames=16", "data.resolution=64",
             *(f"{stage}.{key}" for stage in ("teacher", "student") for key in (
                 "encoder.preset=tiny", "optim.batch_size=16")),
             "teacher.decoder={width: 64, depth: 2, heads: 2}", "student.predictor={width: 64, depth: 2, heads: 2}"]
    experiment = load_experiment(None, run_a)
    cfg = teacher_config(experiment, "tiny", 300, "cosine", 0.2)
    context, target = mask_tokens(cfg.masks, (8, 8, 8), cfg.optim.batch_size)
    # V-JEPA's masks at batch 16 (docs/paper.md section 3): most of the clip is predicted, little is context.
    assert 0.2 * 512 < context < 0.45 * 512 and 1.0 * 512 < target < 1.5 * 512
    assert teacher_flops_per_clip(cfg, experiment.data) * 16 * 300 == pytest.approx(6.777e12, rel=0.01)
    assert student_flops_per_clip(experiment.student, cfg, experiment.data) * 16 * 1200 == pytest.approx(
        4.218e13, rel=0.01)


def test_predicted_flops_count_the_tokens_of_a_micro_batch():
    # Masks are cut to the least tokens of the batch the collator sees: a micro-batch of 4 keeps more
    # context than a batch of 16, and a batch of 16 in 4 micro-batches costs what batches of 4 do.
    whole = load_experiment(None, ["teacher.optim.batch_size=16"]).teacher
    parts = load_experiment(None, ["teacher.optim.batch_size=16", "teacher.run.micro_batch=4"]).teacher
    small = load_experiment(None, ["teacher.optim.batch_size=4"]).teacher
    data = load_experiment(None, []).data
    assert teacher_flops_per_clip(parts, data) == teacher_flops_per_clip(small, data)
    assert teacher_flops_per_clip(parts, data) > teacher_flops_per_clip(whole, data)


@pytest.mark.parametrize("micro_batch", [None, 2])
def test_a_finished_run_gives_the_rate_that_predicts_time(tmp_path, micro_batch):
    import json

    from salt_budget.sweep.planning.costs import ASSUMED_EFFICIENCY, measured_rates, predicted_seconds
    from tests.test_sweep_run import MICRO
    from trainers.train import train_teacher

    experiment = load_experiment(None, [*MICRO, f"data.cache_dir={tmp_path / 'cache'}", "teacher.encoder.preset=nano",
                                        "teacher.optim.steps=4", f"teacher.run.micro_batch={micro_batch or 'null'}"])
    train_teacher(experiment.teacher, experiment.data, tmp_path / "runs" / "exp" / "teacher", seed=0, progress=False)
    last = json.loads((tmp_path / "runs" / "exp" / "teacher" / "metrics.jsonl").read_text().splitlines()[-1])
    rates = measured_rates(tmp_path / "runs")
    # Keyed by the batch on the device: 4 clips, or 2 per micro-batch.
    # Keyed by the batch on the device (4 clips, or 2 per micro-batch) and the data-parallel processes (1).
    assert rates == {("teacher", "nano", 4, 32, micro_batch or 4, 1): pytest.approx(last["flops"] / last["wall_s"])}
    seconds, assumed = predicted_seconds(rates, "teacher", experiment.teacher, experiment.data, 2 * last["flops"])
    assert seconds == pytest.approx(2 * last["wall_s"]) and not assumed
    # Two workers, never measured: twice the rate at the assumed efficiency, and said to be assumed.
    seconds, assumed = predicted_seconds(rates, "teacher", experiment.teacher, experiment.data, 2 * last["flops"], 2)
    assert seconds == pytest.approx(last["wall_s"] / ASSUMED_EFFICIENCY) and assumed
    other = load_experiment(None, [*MICRO, "teacher.encoder.preset=nano", "teacher.optim.batch_size=8"]).teacher
    assert predicted_seconds(rates, "teacher", other, experiment.data, last["flops"]) == (None, False)


def test_ladder_trains_the_longest_teacher_plus_the_shorter_ones_cool_downs(experiment):
    plan = plan_of(experiment, total_steps=(120, 240), teacher_steps=(20, 40, 80), cooldown_fraction=0.25)
    [ladder] = ladders(plan)
    assert [u.id.steps for u in ladder.units] == [20, 40, 80] and ladder.trunk.id.steps == 80
    assert ladder.trunk_config().run.checkpoint_steps == [15, 30]  # T - 25% of T
    assert ladder.steps_to_train() == 80 + 5 + 10
    assert teacher_steps_summary(plan) == (95, 140, 2 * 140)
    cosine = plan_of(experiment, total_steps=(120, 240), teacher_steps=(20, 40, 80), teacher_schedule="cosine")
    assert ladders(cosine)[0].steps_to_train() == 140
    text = format_plan(plan, plan_frame(plan))
    assert "teacher steps: 95 trained for 3 teachers (140 if each were its own run)" in text
    assert "N240_T80-tiny_S160-tiny_seed0" in text
    # The students of each teacher share a trunk too: 220 + 25, 200 + 20 and 160 + 10 steps of 800.
    assert "student steps: 635 trained, 800 summed over the allocations" in text


def test_keys_name_the_artifact_not_where_or_how_it_is_loaded(experiment, tmp_path):
    plan = plan_of(experiment, total_steps=(100,), teacher_steps=(20,))
    unit = plan.teachers[TeacherId("tiny", 20, 0)]
    moved = load_experiment(None, [f"runs_dir={tmp_path / 'elsewhere'}", "data.workers=0",
                                   f"data.cache_dir={tmp_path}", *TINY, *SHORT_WARMUP])
    other = plan_of(moved, total_steps=(300,), teacher_steps=(20,))
    assert other.teachers[TeacherId("tiny", 20, 0)].key == unit.key
    assert other.allocations[0].id != plan.allocations[0].id  # another budget, but the same teacher
    assert teacher_key(1, experiment.data, unit.cfg) != unit.key
    assert teacher_key(0, experiment.data, teacher_config(experiment, "tiny", 21, "wsd", 0.2)) != unit.key
    assert plan.students[plan.allocations[0].id].run_dir.parent == plan.sweep_dir / "trials"


def test_probe_points_are_evenly_spaced_and_end_at_the_last_step():
    assert probe_steps(20, 4) == [5, 10, 15, 20]
    assert probe_steps(3, 4) == [1, 2, 3]
    assert probe_steps(7, 1) == [7]


@pytest.mark.parametrize("options, message", [
    (dict(total_steps=(100,), teacher_steps=(100,)), "not below the budget"),
    (dict(total_steps=(100, 50), teacher_steps=(60,)), "--teacher-steps 60 is not below the budget --total-steps 50"),
    (dict(total_steps=(100,), teacher_steps=(0,)), "at least 1 step"),
    (dict(total_steps=(100,), teacher_steps=(-5,)), "at least 1 step"),
    (dict(total_steps=(100,), teacher_fractions=(Fraction(0),)), r"outside \(0, 1\)"),
    (dict(total_steps=(100,), teacher_fractions=(Fraction(3, 2),)), r"outside \(0, 1\)"),
    (dict(total_steps=(5,), teacher_fractions=(Fraction(1, 12),)), "rounds to 0 teacher steps"),
    (dict(total_steps=(1,)), "at least 2 steps"),
    (dict(total_steps=(-100,)), "at least 2 steps"),
    (dict(total_steps=(100,), teacher_sizes=("tinny",)), "did you mean 'tiny'"),
    (dict(total_steps=(100,), student_size="vit_huuge"), "unknown encoder preset 'vit_huuge'"),
    (dict(total_steps=(100,), teacher_sizes=("vit_large",)), "token grid"),
    (dict(total_steps=(100,), teacher_steps=(20,), cooldown_fraction=0.7),
     r"--cooldown-fraction 0.7 must lie in \(0, 0.5\]"),
    (dict(total_steps=(100,), probe_points=0), "--probe-points 0"),
    (dict(total_steps=(100,), search="optuna"), "needs --trials"),
    (dict(total_steps=(100, 200), search="optuna", trials=4), "ONE budget"),
    (dict(total_steps=(100,), trials=4), "--trials applies to --search optuna"),
])
def test_bad_requests_are_refused_with_the_reason(experiment, options, message):
    with pytest.raises(PlanError, match=message):
        plan_of(experiment, **options)


def test_a_teacher_too_short_for_its_warm_up_and_cool_down_is_refused(tmp_path):
    experiment = load_experiment(None, [f"runs_dir={tmp_path}", *TINY, "teacher.optim.warmup_steps=30"])
    with pytest.raises(PlanError, match=r"teacher tiny of 20 steps: warmup_steps must lie in \[0, steps=20\]"):
        plan_of(experiment, total_steps=(240,))
    experiment = load_experiment(None, [f"runs_dir={tmp_path}", *TINY, "teacher.optim.warmup_steps=18"])
    with pytest.raises(PlanError, match="20 steps: .*cooldown_steps <= steps - warmup_steps.*--cooldown-fraction"):
        plan_of(experiment, total_steps=(240,), teacher_steps=(20,))
    with pytest.raises(PlanError, match="student of 20 steps .*warmup_steps"):
        plan_of(load_experiment(None, [f"runs_dir={tmp_path}", *TINY, "teacher.optim.warmup_steps=2",
                                       "student.optim.warmup_steps=100"]), total_steps=(240,), teacher_steps=(220,))


def test_cli_dry_run_prints_the_plan_and_writes_nothing(tmp_path, capsys):
    code = main(["sweep", "--total-steps", "120", "240", "--teacher-steps", "20", "40", "--dry-run",
                 f"runs_dir={tmp_path / 'runs'}", *TINY, *SHORT_WARMUP])
    out = capsys.readouterr().out
    assert code == 0 and "N240_T40-tiny_S200-tiny_seed0" in out and "FLOPs total" in out and "dry run" in out
    assert not (tmp_path / "runs").exists()


def test_baselines_are_one_run_per_budget_and_seed_for_the_whole_budget(tmp_path):
    experiment = load_experiment(None, [f"runs_dir={tmp_path}", *TINY, *SHORT_WARMUP, "vjepa2.optim.warmup_steps=5"])
    plan = plan_of(experiment, total_steps=(120, 240), teacher_steps=(20, 40), seeds=(0, 1), baselines=("vjepa2",))
    assert sorted(plan.baselines) == ["N120_vjepa2-tiny_seed0", "N120_vjepa2-tiny_seed1", "N240_vjepa2-tiny_seed0",
                                      "N240_vjepa2-tiny_seed1"]
    unit = plan.baselines["N240_vjepa2-tiny_seed0"]
    assert (unit.cfg.optim.steps, unit.checkpoint_steps, unit.cfg.optim.schedule) == (240, [60, 120, 180, 240], "wsd")
    assert unit.cfg.optim.betas == (0.9, 0.999) and unit.cfg.momentum == (0.99925, 0.99925)
    assert len({u.key for u in plan.baselines.values()}) == 4 and unit.run_dir.parent == plan.sweep_dir / "baselines"
    # The same run is found again by a plan with other allocations.
    assert plan_of(experiment, total_steps=(240,), teacher_steps=(80,), baselines=("vjepa2",)).baselines[
        unit.id].key == unit.key
    text = format_plan(plan, plan_frame(plan))
    assert "4 baseline run(s)" in text and "EMA encoder's forward" in text and "N240_vjepa2-tiny_seed1" in text
    assert "like for like" not in text
    unlike = load_experiment(None, [f"runs_dir={tmp_path}", *TINY, *SHORT_WARMUP, "vjepa2.optim.warmup_steps=5",
                                    "vjepa2.optim.batch_size=8"])
    plan = plan_of(unlike, total_steps=(120,), baselines=("vjepa2",))
    assert "note: the baseline's optim.batch_size differs from the student's" in format_plan(plan, plan_frame(plan))
    with pytest.raises(PlanError, match="--baselines mae: unknown baseline; choose from vjepa2"):
        plan_of(experiment, total_steps=(120,), baselines=("mae",))
    with pytest.raises(PlanError, match=r"baseline N60_vjepa2-tiny_seed0: warmup_steps must lie in \[0, steps=60\].*"
                                        r"lower vjepa2.optim.warmup_steps"):
        plan_of(load_experiment(None, [f"runs_dir={tmp_path}", *TINY, *SHORT_WARMUP]), total_steps=(60,),
                teacher_steps=(10,), baselines=("vjepa2",))


def test_a_large_budget_trained_by_fewer_seeds_extends_their_ladders(tmp_path):
    experiment = load_experiment(None, [f"runs_dir={tmp_path}", *TINY, *SHORT_WARMUP, "vjepa2.optim.warmup_steps=5"])
    plan = plan_of(experiment, total_steps=(120, 240, 480), teacher_steps=(20, 40), seeds=(0, 1, 2),
                   baselines=("vjepa2",), budget_seeds={480: (0, 1)})
    budgets_of = {seed: sorted({a.budget for a in plan.allocations if a.seed == seed}) for seed in (0, 1, 2)}
    assert budgets_of == {0: [120, 240, 480], 1: [120, 240, 480], 2: [120, 240]}
    assert sorted(u.id for u in plan.baselines.values() if u.id.startswith("N480")) == [
        "N480_vjepa2-tiny_seed0", "N480_vjepa2-tiny_seed1"]
    # Baselines may read their final checkpoint only, while the students keep their probe points.
    fewer = plan_of(experiment, total_steps=(240,), teacher_steps=(40,), baselines=("vjepa2",), baseline_probe_points=1)
    assert fewer.baselines["N240_vjepa2-tiny_seed0"].checkpoint_steps == [240]
    assert len(fewer.students["N240_T40-tiny_S200-tiny_seed0"].checkpoint_steps) == 4
    # Seed 0's students of one teacher form one ladder whose trunk is the 480 run; seed 2's trunk is its 240 run.
    assert plan.student_ladders["N120_T20-tiny_S100-tiny_seed0"].trunk.steps == 460
    assert plan.student_ladders["N120_T20-tiny_S100-tiny_seed2"].trunk.steps == 220
    with pytest.raises(PlanError, match="budget_seeds names budget 960, which the sweep does not train"):
        plan_of(experiment, total_steps=(120,), teacher_steps=(20,), budget_seeds={960: (0,)})
    with pytest.raises(PlanError, match=r"must be a non-empty subset of the sweep's seeds \[0, 1\]"):
        plan_of(experiment, total_steps=(120,), teacher_steps=(20,), seeds=(0, 1), budget_seeds={120: (3,)})


def test_cli_refusals_are_one_line(tmp_path, capsys):
    assert main(["sweep", "--total-steps", "100", "--teacher-steps", "150", f"runs_dir={tmp_path}", *TINY]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no student steps" in err and "Traceback" not in err
    with pytest.raises(SystemExit):  # argparse: steps and fractions exclude each other
        main(["sweep", "--total-steps", "100", "--teacher-steps", "10", "--teacher-fractions", "1/2"])
    assert "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["sweep", "--total-steps", "100", "--teacher-fractions", "1/0"])
    assert "is not a fraction" in capsys.readouterr().err


# -- budgets in FLOPs ---------------------------------------------------------------------------------

def test_a_flops_budget_gives_teachers_of_every_size_the_same_compute(experiment):
    plan = plan_of(experiment, total_flops=(4e15,), teacher_sizes=("micro", "tiny"),
                   teacher_fractions=(Fraction(1, 6), Fraction(1, 3)), student_size="tiny")
    frame = plan_frame(plan).set_index("allocation_id")
    assert len(frame) == 4 and (frame["budget_kind"] == "flops").all() and (frame["budget"] == 4e15).all()
    # Each allocation spends the budget to within one student step, whatever its teacher's size.
    student_step = max(frame["flops_student"] / frame["student_steps"])
    assert (abs(frame["flops_total"] - 4e15) <= student_step).all()
    by_share = frame.groupby(frame["teacher_share"].round(2))
    assert sorted(by_share.groups) == [0.17, 0.33]
    for _, group in by_share:
        assert group["teacher_size"].tolist() == ["micro", "tiny"]
        # A smaller teacher trains more steps for the same FLOPs, and its student more (a cheaper forward).
        assert group["teacher_steps"].iloc[0] > group["teacher_steps"].iloc[1]
        assert group["student_steps"].iloc[0] > group["student_steps"].iloc[1]
        assert group["flops_teacher"].iloc[0] == pytest.approx(group["flops_teacher"].iloc[1], rel=1e-3)
    assert all(a.id.startswith("F4e15_T") for a in plan.allocations)
    text = format_plan(plan, plan_frame(plan))
    assert "budgets 4e+15 FLOPs (each split between teacher and student by the FLOPs model" in text


def test_flops_budgets_refuse_what_cannot_run(experiment):
    with pytest.raises(PlanError, match="one of the two"):
        plan_of(experiment, total_steps=(240,), total_flops=(1e15,))
    with pytest.raises(PlanError, match="leaving no student step"):
        plan_of(experiment, total_flops=(1e12,), teacher_steps=(100,))
    with pytest.raises(SystemExit):
        main(["sweep", "--total-flops", "many", "--dry-run"])


def test_the_dry_run_prices_workers_from_a_measured_rate_or_says_the_efficiency_it_assumes(experiment):
    from salt_budget.sweep.planning.costs import ASSUMED_EFFICIENCY

    plan = plan_of(experiment, total_steps=(240,), teacher_steps=(40,))
    rates = {key: 1e9 for key in [("teacher", "tiny", 16, 64, 16, 1), ("student", "tiny", 16, 64, 16, 1)]}
    import salt_budget.sweep.planning.plan_table as plan_table

    original = plan_table.measured_rates
    plan_table.measured_rates = lambda folder, calibrations=None: rates
    try:
        one, four = plan_frame(plan, 1), plan_frame(plan, 4)
        assert four["predicted_s"].iloc[0] == pytest.approx(one["predicted_s"].iloc[0] / (4 * ASSUMED_EFFICIENCY))
        assert "taken at 90% parallel efficiency" in format_plan(plan, four)
        rates.update({("teacher", "tiny", 16, 64, 16, 4): 2e9, ("student", "tiny", 16, 64, 16, 4): 2e9})
        measured = plan_frame(plan, 4)
        assert measured["predicted_s"].iloc[0] == pytest.approx(one["predicted_s"].iloc[0] / 2)
        assert "parallel efficiency" not in format_plan(plan, measured)
    finally:
        plan_table.measured_rates = original
