"""The optuna search on Ray Tune: its study in SQLite in the run folder (optuna-dashboard opens it; --resume continues
it), a seeded TPE sampler over the teacher share on a log scale, and pruning at probe points.

Tune's OptunaSearch proposes and records; this subclass reports each probe point as the intermediate value at the
point's index (1..P: the same fraction of every student's run, whatever its length; students of different shares
share no step) and records a trial that stopped itself as PRUNED. The trial decides (search_trial.py) with optuna's
MedianPruner against the study's finished trials: it alone knows, between two probe points, whether to go on.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from trainers.config import config_hash

from salt_budget.sweep.planning.options import PlanError, share_bounds
from salt_budget.sweep.planning.plan import Plan
from salt_budget.sweep.planning.search_space import search_sizes, unit_seed

if TYPE_CHECKING:
    import optuna

STUDY_FILE = "optuna.db"
METRIC = "acc_mean"


def storage_url(plan: Plan) -> str:
    return f"sqlite:///{plan.sweep_dir / STUDY_FILE}"


def study_name(plan: Plan) -> str:
    """What the search is over: the same request finds its study again, with more --trials too."""
    options = plan.options
    return "teacher-share-" + config_hash({
        "budget": options.budgets[0], "kind": "flops" if options.total_flops else "steps", "seed": unit_seed(plan),
        "sizes": search_sizes(plan), "student": options.student_size, "bounds": list(share_bounds(options)),
        "search_seed": sampler_seed(plan), "pruning": [options.pruning, options.pruning_startup],
        "probe_points": options.probe_points, "schedules": [options.teacher_schedule, options.students_schedule],
        "cooldown": options.cooldown_fraction,
    }, length=8)


def sampler_seed(plan: Plan) -> int:
    return plan.options.search_seed if plan.options.search_seed is not None else plan.experiment.seed


def load_study(plan: Plan) -> optuna.Study:
    """The stored study (created empty where there is none)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    plan.sweep_dir.mkdir(parents=True, exist_ok=True)
    return optuna.create_study(study_name=study_name(plan), storage=storage_url(plan), direction="maximize",
                               load_if_exists=True)


def finished_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))


def check_stored_study(plan: Plan, resume: bool) -> None:
    """A study that holds trials is continued only with --resume."""
    if resume or not (plan.sweep_dir / STUDY_FILE).is_file():
        return
    import optuna

    names = {summary.study_name: summary.n_trials
             for summary in optuna.get_all_study_summaries(storage_url(plan), include_best_trial=False)}
    if names.get(study_name(plan)):
        raise PlanError(f"{plan.sweep_dir / STUDY_FILE} holds this search's study ({names[study_name(plan)]} trials): "
                        f"add --resume to continue it (finished trials are kept; --trials K runs it to K trials)")


def trials_left(plan: Plan) -> int:
    """Trials this run still proposes: --trials less those the stored study finished. Trials a stopped run left
    running, and whose Tune state is not restored, are marked failed and proposed again first."""
    from optuna.trial import TrialState

    study = load_study(plan)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        if trial.state == TrialState.RUNNING:
            study.tell(trial.number, state=TrialState.FAIL)
            study.enqueue_trial(trial.params, skip_if_exists=True)
    return max(0, plan.options.trials - len(finished_trials(study)))


def searcher(plan: Plan, slots: int) -> Any:
    """OptunaSearch over the plan's space, on the stored study, at most `slots` trials at a time."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch
    from optuna.trial import TrialState

    class SweepSearch(OptunaSearch):
        def on_trial_result(self, trial_id: str, result: dict) -> None:
            if trial_id in self._completed_trials or trial_id not in self._ot_trials:
                return
            self._ot_trials[trial_id].report(result[self.metric], int(result["probe_point"]))

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            if result and trial_id in self._ot_trials and not error:
                state = (TrialState.PRUNED if result.get("pruned") else
                         TrialState.FAIL if math.isnan(result.get(self.metric, math.nan)) else None)
                if state is not None:  # optuna refuses a NaN value: told as a value, the trial would stay RUNNING
                    if state == TrialState.FAIL:
                        self._ot_trials[trial_id].set_user_attr(
                            "reason", "its final probe did not converge (train accuracy near chance): no accuracy")
                    self._ot_study.tell(self._ot_trials[trial_id], state=state)
                    self._completed_trials.add(trial_id)
                    return
            super().on_trial_complete(trial_id, result, error)

    trials = plan.options.trials
    space: dict[str, Any] = {"teacher_share": FloatDistribution(*share_bounds(plan.options), log=True)}
    sizes = search_sizes(plan)
    if len(sizes) > 1:
        space["teacher_size"] = CategoricalDistribution(sizes)
    # TPE needs a few random trials before it models anything; with a small K, spend at most half of them so.
    sampler = optuna.samplers.TPESampler(seed=sampler_seed(plan), n_startup_trials=max(1, min(10, trials // 2)))
    load_study(plan)  # created here, so that every trial finds it
    search = SweepSearch(space=space, metric=METRIC, mode="max", sampler=sampler, study_name=study_name(plan),
                         storage=optuna.storages.RDBStorage(storage_url(plan)))
    return ConcurrencyLimiter(search, max_concurrent=slots)


def prune_reason(plan: Plan, values: dict[int, float]) -> str | None:
    """Why the trial whose probe points so far gave `values` (point -> accuracy) stops: optuna's MedianPruner
    against the study's finished trials at its last point; None to go on."""
    if plan.options.pruning == "none" or not values:
        return None
    import statistics

    import optuna
    from optuna.trial import TrialState, create_trial

    study = load_study(plan)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=plan.options.pruning_startup, n_warmup_steps=0)
    trial = create_trial(state=TrialState.RUNNING, params={}, distributions={}, intermediate_values=values)
    if not pruner.prune(study, trial):
        return None
    point = max(values)
    others = [t.intermediate_values[point] for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
              if point in t.intermediate_values and not math.isnan(t.intermediate_values[point])]
    best = max(values.values())
    median = statistics.median(others) if others else float("nan")
    mine = ("its probe has not converged (no accuracy)" if math.isnan(best) else
            f"best accuracy so far {best:.4f} below")
    return (f"pruned at probe point {point} of {plan.options.probe_points}: {mine} the median {median:.4f} of "
            f"{len(others)} finished trial(s) there")


def study_allocations(plan: Plan) -> list[str]:
    """The allocation of every trial the stored study holds (one entry per trial; a failed trial only where no other
    trial of its allocation went on to finish: a stopped run's trials are proposed again); their units join the
    plan."""
    from optuna.trial import TrialState

    def ids(*states: TrialState) -> list[str]:
        return [plan.student_for(trial.params).allocation.id
                for trial in load_study(plan).get_trials(deepcopy=False, states=states)
                if "teacher_share" in trial.params]

    ran = ids(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    return ran + [a for a in dict.fromkeys(ids(TrialState.FAIL)) if a not in ran]
