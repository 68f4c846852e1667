"""Running a study: every plan checked first, the random-init floor probed once per seed, then each
sweep in the file's order (`run_sweep`), the wall time of each logged, and the study report.

runs/<study>/
  study.yaml          the study as resolved (a rerun with another file is refused)
  study.json          its sweeps (ablation, variant, folder, overrides) for the report
  study_log.jsonl     one line per finished sweep and one per finished study: wall seconds
  random_init/        the random-init probe per seed
  main/, <variant>/   sweep folders (salt-budget sweep's layout)
  report/             salt-budget report of the study
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from trainers.config import save_config, to_dict

from salt_budget.study.config import StudyConfig, StudySweep
from salt_budget.sweep.plan import Plan, PlanError, build_plan
from salt_budget.sweep.runner import Resources, check_address, run_sweep


def say(message: str) -> None:
    print(f"[study] {message}", flush=True)


@dataclass(frozen=True)
class StudyPlan:
    study: StudyConfig
    study_dir: Path
    sweeps: list[StudySweep]
    plans: list[Plan]


def plan_study(study: StudyConfig, sweeps: list[StudySweep]) -> StudyPlan:
    """Every sweep's plan, or a PlanError naming the ablation and variant that cannot run."""
    plans = []
    for sweep in sweeps:
        try:
            plans.append(build_plan(sweep.experiment, sweep.options))
        except PlanError as error:
            raise PlanError(f"ablations.{sweep.ablation} ({sweep.variant}): {error}") from None
    study_dir = plans[0].sweep_dir.parent
    return StudyPlan(study, study_dir, sweeps, plans)


def manifest(plan: StudyPlan) -> dict:
    return {
        "name": plan.study.name,
        "seeds": list(plan.study.seeds),
        "sweeps": [{"ablation": s.ablation, "variant": s.variant, "folder": s.folder, "overrides": list(s.overrides),
                    "allocations": [a.id for a in p.allocations],
                    "students": [student.key for student in p.students.values()]}
                   for s, p in zip(plan.sweeps, plan.plans)],
    }


def _prepare(plan: StudyPlan, resume: bool) -> None:
    saved = plan.study_dir / "study.yaml"
    if resume and not saved.is_file():
        raise PlanError(f"--resume: {plan.study_dir} holds no study to continue (it has no study.yaml); check the "
                        f"study's name and runs_dir, or drop --resume to start it")
    if saved.is_file():
        if yaml.safe_load(saved.read_text()) != to_dict(plan.study):
            raise PlanError(f"{plan.study_dir} holds another study (its study.yaml differs from this one); give this "
                            f"study another name, or repeat the first study's file and overrides")
        if not resume:
            raise PlanError(f"{plan.study_dir} holds this study already: add --resume to continue it "
                            f"(finished sweeps and units are not trained again)")
    plan.study_dir.mkdir(parents=True, exist_ok=True)
    save_config(plan.study, saved)
    (plan.study_dir / "study.json").write_text(json.dumps(manifest(plan), indent=2))


def _log(plan: StudyPlan, record: dict) -> None:
    record = {"finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"), **record}
    with open(plan.study_dir / "study_log.jsonl", "a") as log:
        log.write(json.dumps(record) + "\n")


def probe_random_floor(plan: StudyPlan) -> None:
    """A random-init encoder of the first sweep's student size, probed once per seed: what training has to beat."""
    from trainers.encoders import encoder_description
    from trainers.evaluate import probe_random_init

    experiment = plan.plans[0].experiment
    size = plan.sweeps[0].options.student_size or experiment.student.encoder.preset
    encoder = experiment.student.encoder
    description = encoder_description(type(encoder)(preset=size, patch_size=encoder.patch_size,
                                                    tubelet_size=encoder.tubelet_size), experiment.data)
    for seed in plan.study.seeds:
        out_dir = plan.study_dir / "random_init" / f"seed{seed}"
        if (out_dir / "probes" / f"random_init-{size}-seed{seed}.json").is_file():
            continue
        started = time.perf_counter()
        result, _ = probe_random_init(description, experiment.data, experiment.probe, out_dir, seed=seed,
                                      progress=False)
        accuracies = ", ".join(f"{name} {task['accuracy']:.1%}" for name, task in result["tasks"].items())
        say(f"random-init {size} (seed {seed}): {accuracies}, in {time.perf_counter() - started:.0f} s")


def run_study(plan: StudyPlan, *, resume: bool = False, address: str | None = None,
              resources: Resources = Resources()) -> int:
    """The random-init floor, then every sweep of the study in order; 0 when every sweep finished, else 1."""
    if address:
        check_address(address)  # before the floor's probes: an unreachable cluster fails in seconds
    _prepare(plan, resume)
    started = time.perf_counter()
    if plan.study.random_init_probe:
        probe_random_floor(plan)
    codes = []
    for number, (sweep, sweep_plan) in enumerate(zip(plan.sweeps, plan.plans), 1):
        say(f"sweep {number}/{len(plan.plans)}: ablation {sweep.ablation}, variant {sweep.variant} "
            f"({len(sweep_plan.allocations)} allocations) -> {sweep_plan.sweep_dir}")
        sweep_started = time.perf_counter()
        # A resumed study continues the sweeps it started and starts the others.
        started_before = (sweep_plan.sweep_dir / "config.yaml").is_file()
        code = run_sweep(sweep_plan, resume=resume and started_before, address=address, resources=resources)
        codes.append(code)
        _log(plan, {"ablation": sweep.ablation, "variant": sweep.variant, "folder": sweep.folder, "exit_code": code,
                    "wall_s": round(time.perf_counter() - sweep_started, 1)})
    wall = time.perf_counter() - started
    _log(plan, {"study": plan.study.name, "wall_s": round(wall, 1), "exit_codes": codes})
    say(f"all {len(codes)} sweeps done in {wall:.0f} s ({wall / 60:.1f} min)"
        + ("" if not any(codes) else f"; {sum(1 for c in codes if c)} had failed units (see above)"))
    return 1 if any(codes) else 0
