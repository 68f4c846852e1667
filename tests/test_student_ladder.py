"""Student and baseline ladders (salt_budget/sweep/running/ladder.py): a branch is the run a fresh one of its length
would be, bit for bit on the CPU; the trunk's files do not depend on which trial trained which segment; the
plan counts every step once; runs whose early steps depend on their length never share a trunk.
The sweep on Ray with ladders, killed and resumed, is tests/test_sweep_run.py's micro sweep."""

import json
import pickle
from pathlib import Path

import pytest
import torch

from salt_budget.experiment import load_experiment
from salt_budget.sweep.running import baselines, trial
from salt_budget.sweep.planning.ladder import BRANCH_FILE
from salt_budget.sweep.planning.plan import build_plan
from salt_budget.sweep.planning.options import SweepOptions
from salt_budget.sweep.planning.plan_table import ladder_savings
from salt_budget.sweep.planning.teacher_ladders import ladders
from salt_budget.sweep.running.teachers import train_ladder
from salt_budget.sweep.planning.units import student_unit
from trainers.checkpoint import load_checkpoint
from trainers.train import train_student, train_vjepa2

from test_sweep_run import MICRO

# Budgets 12 and 24 with one 4-step teacher: students of 8 and 20 steps; the 8-step one branches at step 6.
OPTIONS = dict(total_steps=(12, 24), teacher_steps=(4,), teacher_sizes=("nano",), student_size="nano")
VOLATILE = {"wall_s", "clips_per_s", "data_wait_share", "data_wait_s"}  # timings, not results


def make_plan(root: Path, cache: Path, *extra: str, **options):
    experiment = load_experiment(None, [*MICRO, f"runs_dir={root}", f"data.cache_dir={cache}", *extra])
    return build_plan(experiment, SweepOptions(**{**OPTIONS, **options}))


def same(a, b, path: str = "") -> None:
    """Equal payloads: tensors bit for bit, everything else by value."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), path
    elif isinstance(a, dict):
        assert set(a) == set(b), path
        for key in a:
            same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


def same_run_state(path_a: Path, path_b: Path) -> None:
    """Weights, optimiser, step, epoch, data position and FLOPs equal; the config (which files are kept, the
    teacher's path) and the training time may differ."""
    a, b = load_checkpoint(path_a), load_checkpoint(path_b)
    for payload in (a, b):
        payload.pop("config"), payload.pop("teacher", None), payload["loop"].pop("wall_s")
    same(a, b)


def metrics(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in VOLATILE} for row in rows]


def students_of(plan):
    by_steps = {unit.steps: unit for unit in plan.students.values()}
    return by_steps[8], by_steps[20], plan.student_ladders[by_steps[8].allocation.id]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two sweeps of the same plan: in one the branch's trial comes first (it trains the trunk to its branch
    point), in the other the trunk's trial trains the whole trunk first; and a fresh 8-step run."""
    cache = tmp_path_factory.mktemp("cache")
    runs = {}
    for order in ("branch_first", "trunk_first"):
        plan = make_plan(tmp_path_factory.mktemp(order), cache)
        [teachers] = ladders(plan)
        train_ladder(teachers, plan)
        branch, trunk, _ = students_of(plan)
        for unit in ((branch, trunk) if order == "branch_first" else (trunk, branch)):
            trial._train(unit, plan)
        runs[order] = plan
    plan = runs["branch_first"]
    branch, _, _ = students_of(plan)
    fresh = tmp_path_factory.mktemp("fresh")
    train_student(branch.cfg, plan.experiment.data, fresh, seed=branch.allocation.seed, progress=False)
    return runs, fresh, cache


def test_a_branch_is_the_run_a_fresh_one_of_its_length_would_be(trained):
    runs, fresh, _ = trained
    plan = runs["branch_first"]
    branch, trunk, ladder = students_of(plan)
    assert branch.cfg.optim.schedule == "wsd" and ladder.branch_point(branch) == 6 and ladder.trunk is trunk
    # The branch trained only its cool-down, from the trunk's step 6.
    assert [row["step"] for row in metrics(branch.run_dir)] == [7, 8]
    assert json.loads((branch.run_dir / BRANCH_FILE).read_text())["step"] == 6
    final = ladder.final_checkpoint(branch)
    assert final.parent.parent == branch.run_dir
    same_run_state(final, fresh / "checkpoints" / "step_00000008.pt")
    # Its probe points before the branch point are the trunk's checkpoints, equal to the fresh run's.
    for step in (2, 4, 6):
        path = ladder.checkpoint(branch, step)
        assert path.parent.parent == trunk.run_dir
        same_run_state(path, fresh / "checkpoints" / f"step_{step:08d}.pt")
    # The trunk's own cool-down makes it the 20-step student.
    assert load_checkpoint(ladder.final_checkpoint(trunk))["loop"]["step"] == 20


def test_the_trunk_does_not_depend_on_which_trial_trained_it(trained):
    runs, _, _ = trained
    first, second = (students_of(runs[order]) for order in ("branch_first", "trunk_first"))
    for unit_a, unit_b in zip(first[:2], second[:2]):
        assert metrics(unit_a.run_dir) == metrics(unit_b.run_dir)
        same_run_state(first[2].final_checkpoint(unit_a), second[2].final_checkpoint(unit_b))
    # The trunk paused at the branch point: a checkpoint and a metrics row there, whoever trained it.
    assert 6 in [row["step"] for row in metrics(first[1].run_dir)]


def test_a_trained_ladder_trains_nothing_more(trained):
    runs, _, _ = trained
    plan = runs["trunk_first"]
    branch, trunk, _ = students_of(plan)
    stamps = {path: path.stat().st_mtime_ns for unit in (branch, trunk) for path in unit.run_dir.rglob("*.pt")}
    assert trial._train(branch, plan) == 0.0 and trial._train(trunk, plan) == 0.0
    assert {path: path.stat().st_mtime_ns for path in stamps} == stamps


def test_a_baseline_with_a_cool_down_branches_like_a_student(tmp_path, trained):
    _, _, cache = trained
    plan = make_plan(tmp_path / "runs", cache, "vjepa2.optim.cooldown_steps=2", baselines=("vjepa2",))
    by_steps = {unit.steps: unit for unit in plan.baselines.values()}
    short, long = by_steps[12], by_steps[24]
    ladder = plan.baseline_ladders[short.id]
    assert ladder.trunk is long and ladder.branch_point(short) == 10 and ladder.steps_to_train() == 26
    # Each baseline reaches its Ray task apart from the plan, as a copy: the ladder knows its trunk by key.
    baselines._train(pickle.loads(pickle.dumps(long)), plan)
    assert [row["step"] for row in metrics(long.run_dir)][-3:] == [22, 23, 24]
    baselines._train(pickle.loads(pickle.dumps(short)), plan)
    assert [row["step"] for row in metrics(short.run_dir)] == [11, 12]
    fresh = tmp_path / "fresh"
    train_vjepa2(short.cfg, plan.experiment.data, fresh, seed=short.seed, progress=False)
    same_run_state(ladder.final_checkpoint(short), fresh / "checkpoints" / "step_00000012.pt")
    same_run_state(ladder.checkpoint(short, 9), fresh / "checkpoints" / "step_00000009.pt")


def test_runs_that_depend_on_their_length_train_alone(tmp_path):
    cache = tmp_path / "cache"
    # A cosine student, and a baseline whose EMA momentum ramps over its steps: one run per budget.
    plan = make_plan(tmp_path, cache, "vjepa2.momentum=[0.99,0.999]", student_schedule="cosine",
                     baselines=("vjepa2",))
    assert all(len(ladder.units) == 1 for ladder in plan.student_ladders.values())
    assert all(len(ladder.units) == 1 for ladder in plan.baseline_ladders.values())
    summary = ladder_savings(plan)
    assert summary["student"]["steps"] == summary["student"]["steps_summed"] == 8 + 20
    assert summary["baseline"]["steps"] == 12 + 24
    # The cosine student is the experiment's own: its key is the one sweeps made before ladders existed.
    unit = next(iter(plan.students.values()))
    assert plan.experiment.student.optim.schedule == "cosine"
    assert unit.key == student_unit(plan.sweep_dir, plan.experiment, unit.allocation, unit.teacher,
                                    plan.options.probe_points).key
    # With wsd, the same budgets share one trunk: 20 + the 8-step student's 2-step cool-down.
    plan = make_plan(tmp_path, cache, baselines=("vjepa2",))
    summary = ladder_savings(plan)
    assert (summary["student"]["steps"], summary["student"]["steps_summed"]) == (22, 28)
    assert summary["baseline"]["steps"] == 24  # constant lr: the 12-step run is the trunk's step 12


def test_the_plan_counts_every_step_of_the_papers_grid_once():
    experiment = load_experiment("experiments/paper_vitl_240k.yaml", [])
    grid = dict(total_steps=(120_000, 160_000, 240_000), teacher_steps=(20_000, 40_000, 80_000))
    ladders_ = ladder_savings(build_plan(experiment, SweepOptions(**grid)))
    alone = ladder_savings(build_plan(experiment, SweepOptions(**grid, student_schedule="cosine")))
    # Students of each teacher: the longest run plus 20% of each shorter one.
    assert ladders_["student"]["steps"] == (220_000 + 0.2 * (100_000 + 140_000) + 200_000 + 0.2 * (80_000 + 120_000)
                                            + 160_000 + 0.2 * (40_000 + 80_000)) == 692_000
    assert ladders_["student"]["steps_summed"] == alone["student"]["steps"] == 1_140_000
    assert ladders_["teacher"]["steps"] == alone["teacher"]["steps"] == 80_000 + 0.2 * (20_000 + 40_000)
    assert ladders_["student"]["flops"] / alone["student"]["flops"] == pytest.approx(692 / 1140)
