"""A study's plan (every sweep's plan, checked before anything runs) and its folder:

runs/<study>/
  study.yaml          the study as resolved (a rerun with another file is refused)
  study.json          its sweeps (ablation, variant, folder, overrides) for the report
  study_log.jsonl     one line per finished sweep (wall seconds, start and end, cores, exit code) and one per
                      finished study ("study") or part of it ("part", --ablations)
  logs/               the output of each sweep that ran beside others (<n>-<folder>.log)
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

from salt_budget.study.config import StudyConfig, StudySweep
from salt_budget.sweep.planning.plan import Plan, build_plan
from salt_budget.sweep.planning.options import PlanError
from trainers.config import to_dict
from trainers.config_files import save_config


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
        "paper_scale": plan.study.paper_scale,
        "sweeps": [{"ablation": s.ablation, "variant": s.variant, "folder": s.folder, "overrides": list(s.overrides),
                    "allocations": [a.id for a in p.allocations],
                    "students": [student.key for student in p.students.values()],
                    "baselines": [unit.key for unit in p.baselines.values()]}
                   for s, p in zip(plan.sweeps, plan.plans)],
    }


def prepare_folder(plan: StudyPlan, resume: bool) -> None:
    """The study's folder with study.yaml and study.json, or a PlanError where it holds another study, or this
    one and `resume` is not set."""
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


def log_record(plan: StudyPlan, record: dict) -> None:
    """One line of study_log.jsonl."""
    record = {"finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"), **record}
    with open(plan.study_dir / "study_log.jsonl", "a") as log:
        log.write(json.dumps(record) + "\n")
