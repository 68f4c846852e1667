"""The optuna search: the teacher share drawn on a log scale between the user's bounds, proposals that become units
(teachers branched from their size's search trunk), the study stored in SQLite and continued by --resume, pruning at
probe points (optuna's MedianPruner in the trial), pruned trials marked in the table and the report."""

from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from salt_budget.cli import main
from salt_budget.experiment import load_experiment
from salt_budget.sweep.planning.options import PlanError, SweepOptions
from salt_budget.sweep.planning.plan import build_plan
from salt_budget.sweep.planning.search_space import KEEP_ALL, SearchLadder
from salt_budget.sweep.results.store import read_results
from salt_budget.sweep.running.search import load_study, prune_reason, searcher, study_name
from salt_budget.sweep.running.unit_run import train_unit
from trainers.checkpoint import load_checkpoint
from test_sweep_run import MICRO as SWEEP_MICRO, fingerprint

# The search's objective is the final student's accuracy: at lr 1e-3 the micro probe (2 epochs of 3 steps) stays
# near chance and reads no accuracy (a trial told as failed); 1e-2 fits every unit here.
MICRO = [*SWEEP_MICRO, "probe.lrs=[0.01]"]

SEARCH = ["sweep", "--total-steps", "24", "--teacher-sizes", "nano", "--student-size", "nano", "--search", "optuna",
          "--share-bounds", "1/6", "1/2", "--probe-points", "2", "--name", "search"]


def search_plan(tmp_path: Path, **options) -> object:
    experiment = load_experiment(None, [*MICRO, f"runs_dir={tmp_path / 'runs'}", f"data.cache_dir={tmp_path / 'cache'}"])
    return build_plan(experiment, SweepOptions(**{
        "total_steps": (24,), "teacher_sizes": ("nano",), "student_size": "nano", "search": "optuna", "trials": 3,
        "share_bounds": (1 / 6, 1 / 2), "probe_points": 2, "name": "search", **options}))


def test_a_proposal_becomes_units_whose_teacher_branches_from_the_search_trunk(tmp_path):
    plan = search_plan(tmp_path)
    # The plan prices its bounds: teachers of 4 (1/6 of 24) and 12 steps (1/2).
    assert sorted(a.teacher_steps for a in plan.allocations) == [4, 12]
    student = plan.student_for({"teacher_share": 0.3})
    assert (student.allocation.teacher_steps, student.allocation.student_steps) == (7, 17)
    assert plan.student_for({"teacher_share": 0.3}) is student  # one allocation, one unit
    ladder = plan.teacher_ladders[student.teacher.id]
    assert isinstance(ladder, SearchLadder) and ladder.trunk.steps == 12 and ladder.branches == (student.teacher,)
    # Every proposal of the size shares one trunk, whose config (and folder) does not depend on the proposal.
    other = plan.teacher_ladders[plan.student_for({"teacher_share": 0.2}).teacher.id]
    assert other.trunk.key == ladder.trunk.key and other.trunk_config() == ladder.trunk_config()
    assert ladder.trunk_config().run.keep_last == KEEP_ALL
    assert ladder.trunk.key != plan.teacher_ladders[plan.allocations[-1].teacher_id].branches[0].key


@pytest.mark.parametrize("options, message", [
    (dict(share_bounds=(0.5, 0.2)), "0 < LO < HI < 1"),
    (dict(share_bounds=(0.0, 0.5)), "0 < LO < HI < 1"),
    (dict(teacher_fractions=(0.25,)), "drop them"),
    (dict(pruning_startup=-1), "--pruning-startup"),
    (dict(search="grid", trials=None, share_bounds=None, search_seed=3), "--search-seed applies to --search optuna"),
    (dict(search="grid", trials=None), "--share-bounds applies to --search optuna"),
])
def test_a_search_request_that_cannot_run_is_refused_with_what_to_change(tmp_path, options, message):
    with pytest.raises(PlanError, match=message):
        search_plan(tmp_path, **options)


def test_a_branch_starts_from_the_trunks_last_checkpoint_before_its_point_and_equals_its_own_run(tmp_path):
    plan = search_plan(tmp_path)
    from trainers.probe.sets import prepare_data

    list(prepare_data(plan.experiment.data, plan.experiment.probe))
    units = {share: plan.student_for({"teacher_share": share}).teacher for share in (4 / 24, 10 / 24, 8 / 24)}
    # Teachers of 4, 10, 8 steps branch at 3, 8 and 6: the trunk is extended to 3, then 8; the last finds no
    # checkpoint at 6 and starts from the one at 3.
    for teacher in units.values():
        train_unit(teacher, plan.teacher_ladders[teacher.id], plan)
    last = units[8 / 24]
    branch = (last.run_dir / "branch.json").read_text()
    assert '"step": 3' in branch
    alone = build_plan(plan.experiment, SweepOptions(total_steps=(24,), teacher_steps=(8,), teacher_sizes=("nano",),
                                                     student_size="nano", name="alone", probe_points=2))
    [teacher] = alone.teachers.values()
    train_unit(teacher, alone.teacher_ladders[teacher.id], alone)
    mine, theirs = load_checkpoint(last.final_checkpoint), load_checkpoint(teacher.final_checkpoint)
    for name, tensor in theirs["encoder_state"].items():
        torch.testing.assert_close(mine["encoder_state"][name], tensor, rtol=0, atol=1e-6)


def test_the_searcher_records_probe_points_and_a_trial_that_stopped_itself_as_pruned(tmp_path):
    plan = search_plan(tmp_path)
    search = searcher(plan, slots=1).searcher
    first = search.suggest("a")
    assert 1 / 6 <= first["teacher_share"] <= 1 / 2
    search.on_trial_result("a", {"acc_mean": 0.4, "probe_point": 1})
    search.on_trial_result("a", {"acc_mean": 0.5, "probe_point": 2})
    search.on_trial_complete("a", {"acc_mean": 0.5, "probe_point": 2, "pruned": 0.0})
    search.suggest("b")
    search.on_trial_result("b", {"acc_mean": 0.1, "probe_point": 1})
    search.on_trial_complete("b", {"acc_mean": 0.1, "probe_point": 1, "pruned": 1.0})
    stored = optuna.load_study(study_name=study_name(plan), storage=f"sqlite:///{plan.sweep_dir / 'optuna.db'}")
    assert [(t.state, t.intermediate_values) for t in stored.trials] == [
        (TrialState.COMPLETE, {1: 0.4, 2: 0.5}), (TrialState.PRUNED, {1: 0.1})]
    # Seeded: another folder, the same search seed, the same first proposal; another seed, another one.
    again = searcher(search_plan(tmp_path / "again"), slots=1).searcher.suggest("a")
    other = searcher(search_plan(tmp_path / "other", search_seed=7), slots=1).searcher.suggest("a")
    assert again == first and other != first


def test_the_median_rule_prunes_behind_the_finished_trials_and_not_before_enough_finished(tmp_path):
    plan = search_plan(tmp_path, pruning_startup=2)
    study = load_study(plan)
    distribution = {"teacher_share": optuna.distributions.FloatDistribution(1 / 6, 1 / 2, log=True)}
    study.add_trial(optuna.trial.create_trial(params={"teacher_share": 0.2}, distributions=distribution, value=0.6,
                                              intermediate_values={1: 0.5, 2: 0.6}))
    assert prune_reason(plan, {1: 0.1}) is None  # one finished trial, fewer than --pruning-startup 2
    study.add_trial(optuna.trial.create_trial(params={"teacher_share": 0.3}, distributions=distribution, value=0.4,
                                              intermediate_values={1: 0.3, 2: 0.4}))
    reason = prune_reason(plan, {1: 0.2})
    assert reason and "probe point 1 of 2" in reason and "median 0.4000 of 2 finished" in reason
    assert prune_reason(plan, {1: 0.45}) is None  # above the median 0.4
    assert prune_reason(search_plan(tmp_path / "none", pruning="none"), {1: 0.0}) is None


def _study(sweep_dir: Path) -> optuna.Study:
    storage = f"sqlite:///{sweep_dir / 'optuna.db'}"
    [summary] = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage)


def test_a_search_sweep_stores_its_study_and_resume_continues_it(tmp_path, capsys):
    runs, cache = tmp_path / "runs", tmp_path / "cache"
    extra = [*MICRO, f"runs_dir={runs}", f"data.cache_dir={cache}"]
    assert main([*SEARCH, "--trials", "3", *extra]) == 0
    sweep_dir = runs / "search"
    first = [(t.number, t.params, t.state) for t in _study(sweep_dir).trials]
    assert len(first) == 3 and all(1 / 6 <= params["teacher_share"] <= 1 / 2 for _, params, _ in first)
    assert "optuna-dashboard sqlite:///" in capsys.readouterr().out
    trained = fingerprint(sweep_dir)
    table = read_results(sweep_dir)
    students = table[(table["role"] == "student") & (table["status"] == "ok")]
    proposed = {round(round(params["teacher_share"] * 24) / 24, 6) for _, params, _ in first}
    assert set(students["teacher_share"].round(6)) <= proposed
    # The same request again without --resume is refused: it would start a second study beside the first.
    assert main([*SEARCH, "--trials", "3", *extra]) == 2
    assert "add --resume" in capsys.readouterr().err
    # --resume with --trials 4 continues the stored study: its trials kept as they were, one more proposed.
    assert main([*SEARCH, "--trials", "4", "--resume", *extra]) == 0
    trials = _study(sweep_dir).trials
    assert [(t.number, t.params, t.state) for t in trials[:3]] == first and len(trials) == 4
    # Nothing trained again: every checkpoint, probe and student log as it was (a trunk's log may grow).
    kept = {path: digest for path, digest in trained.items()
            if not (path.startswith("teachers/") and path.endswith("metrics.jsonl"))}
    assert {path: digest for path, digest in fingerprint(sweep_dir).items() if path in kept} == kept
    assert "holds 4 trials" in capsys.readouterr().out


def test_a_trial_behind_the_median_stops_at_its_probe_point_is_marked_and_stays_stopped(tmp_path, capsys):
    from salt_budget.sweep.running.search_trial import search_trial
    from trainers.probe.sets import prepare_data

    plan = search_plan(tmp_path, pruning_startup=1)
    list(prepare_data(plan.experiment.data, plan.experiment.probe))
    distribution = {"teacher_share": optuna.distributions.FloatDistribution(1 / 6, 1 / 2, log=True)}
    load_study(plan).add_trial(optuna.trial.create_trial(  # a finished trial at 100%: every trial is behind it
        params={"teacher_share": 0.25}, distributions=distribution, value=1.0, intermediate_values={1: 1.0, 2: 1.0}))
    student = plan.student_for({"teacher_share": 0.25})
    reports = []
    reason = search_trial(student, plan, reports.append)
    assert reason and "probe point 1 of 2" in reason
    assert [(r["probe_point"], r["pruned"]) for r in reports] == [(1, 1.0)]
    first_point, last_point = student.checkpoint_steps
    table = read_results(plan.sweep_dir)
    mine = table[table["unit_key"] == student.key]
    assert list(mine.loc[mine["status"] == "ok", "step"]) == [first_point]
    assert list(mine.loc[mine["status"] == "pruned", "reason"]) == [reason]
    steps = sorted(int(p.stem.split("_")[1]) for p in (student.run_dir / "checkpoints").glob("step_*.pt"))
    assert max(steps) == first_point < last_point  # not trained past the point it was stopped at
    # A restarted trial (a retry, --resume) stops at the same point without training or probing anything.
    before = fingerprint(plan.sweep_dir)
    again = []
    assert search_trial(student, plan, again.append) == reason and len(again) == 1 and again[0]["pruned"] == 1.0
    assert fingerprint(plan.sweep_dir) == before
    # The report lists it as pruned, apart from failed units.
    assert main(["report", str(plan.sweep_dir), "--out", str(tmp_path / "report")]) == 0
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "1 search trial(s) were pruned" in summary and student.allocation.id in summary
    assert "unit(s) failed" not in summary


def test_a_trial_without_an_accuracy_is_told_failed_with_the_reason_not_left_running(tmp_path):
    """A final probe that does not converge reads NaN, which optuna refuses as a value: the trial stayed RUNNING
    in the stored study until a --resume marked it failed."""
    plan = search_plan(tmp_path)
    search = searcher(plan, 2).searcher
    assert search.suggest("a") and search.suggest("b")
    search.on_trial_complete("a", {"acc_mean": float("nan"), "pruned": 0.0, "probe_point": 2})
    search.on_trial_complete("b", {"acc_mean": 0.25, "pruned": 0.0, "probe_point": 2})
    failed, finished = load_study(plan).trials
    assert failed.state == TrialState.FAIL and "did not converge" in failed.user_attrs["reason"]
    assert finished.state == TrialState.COMPLETE and finished.value == 0.25
