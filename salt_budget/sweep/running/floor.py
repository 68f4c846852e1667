"""The random-init floor: every encoder size a sweep trains, never trained, probed on the sweep's own
readout for each seed. An accuracy means something only against this floor (a random ViT already reads
well above chance on motion), so the sweep measures it beside its teachers and students, and the report
draws it on every accuracy figure. One row per (size, seed), role "random_init", step 0, zero FLOPs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis.probe_columns import probe_columns
from analysis.schema import FLOOR_ROLE
from trainers.config import config_hash, to_dict
from trainers.encoders import encoder_description
from trainers.locks import file_lock

from salt_budget.sweep.results.store import append_rows, ok_steps, read_results
from salt_budget.sweep.running.rows import common_columns, failed_row_columns
from salt_budget.sweep.running.summary import say
from salt_budget.sweep.planning.units import data_view

if TYPE_CHECKING:
    from salt_budget.sweep.planning.plan import Plan
    from salt_budget.sweep.running.resources import UnitResources

@dataclass(frozen=True)
class FloorUnit:
    size: str
    seed: int
    description: dict[str, Any]  # trainers.encoders.encoder_description: what builds the untrained encoder
    key: str
    sweep_dir: Path

    @property
    def run_dir(self) -> Path:
        return self.sweep_dir / "random_init" / f"{self.size}_seed{self.seed}-{self.key[:8]}"


def floor_units(plan: Plan) -> list[FloorUnit]:
    """One per distinct encoder (teachers', students' and baselines' sizes) and seed of the plan."""
    experiment = plan.experiment
    encoders = [unit.cfg.encoder for unit in plan.teachers.values()]
    encoders += [unit.cfg.encoder for unit in plan.students.values()]
    encoders += [unit.cfg.encoder for unit in plan.baselines.values()]
    seeds = sorted({unit.allocation.seed for unit in plan.students.values()} |
                   {unit.seed for unit in plan.baselines.values()})
    descriptions = {config_hash(d): d for d in (encoder_description(e, experiment.data) for e in encoders)}
    units = []
    for description in descriptions.values():
        for seed in seeds:
            key = config_hash({"kind": FLOOR_ROLE, "seed": seed, "encoder": description,
                               "data": data_view(experiment.data), "probe": to_dict(experiment.probe)})
            units.append(FloorUnit(description["preset"], seed, description, key, plan.sweep_dir))
    return units


def probe_floor(unit: FloorUnit, plan: Plan) -> float:
    """Probe one untrained encoder and append its row, once (a Ray task, or a plain call); the seconds spent."""
    from trainers.probe.checkpoints import probe_random_init

    with file_lock(unit.sweep_dir / "random_init" / f".{unit.key}.lock"):
        if 0 in ok_steps(read_results(plan.sweep_dir), unit.key):
            return 0.0
        started = time.perf_counter()
        result, _ = probe_random_init(unit.description, plan.experiment.data, plan.experiment.probe, unit.run_dir,
                                      seed=unit.seed, progress=False)
        seconds = time.perf_counter() - started
        append_rows(plan.sweep_dir, [floor_row(unit, result, sweep=plan.name, config_hash=plan.config_hash,
                                               probe_s=seconds)])
    return seconds


def floor_row(unit: FloorUnit, probe: dict[str, Any], *, sweep: str, config_hash: str,
              probe_s: float) -> dict[str, Any]:
    return {
        **common_columns(sweep, config_hash), **_floor_columns(unit), "step": 0, "is_final": True,
        "flops_teacher": 0.0, "flops_student": 0.0, "flops_total": 0.0, **probe_columns(probe),
        "train_wall_s": 0.0, "probe_wall_s": probe_s, "status": "ok",
    }


def _floor_columns(unit: FloorUnit) -> dict[str, Any]:
    # The encoder fills the student columns, as a baseline's does: it is read where a trained encoder is.
    return {"unit_key": unit.key, "role": FLOOR_ROLE, "student_size": unit.size, "seed": unit.seed}


def probe_floors(plan: Plan, resources: UnitResources) -> None:
    """The floor of every size and seed that has no row yet, as Ray tasks; a failure is recorded, not fatal:
    the report then says the floor was not measured."""
    from salt_budget.sweep.running.ray_tasks import run_as_tasks

    table = read_results(plan.sweep_dir)
    todo = [unit for unit in floor_units(plan) if 0 not in ok_steps(table, unit.key)]
    if not todo:
        return
    say(f"probing {len(todo)} random-init encoder(s), the floor every accuracy is read against")
    for unit, seconds, reason in run_as_tasks(probe_floor, todo, plan, cpus=resources.cpus or resources.workers.cpus,
                                              gpus=resources.gpus or resources.workers.gpus,
                                              retries=resources.max_failures, max_concurrent=resources.slots):
        if reason is not None:
            append_rows(plan.sweep_dir, [{**common_columns(plan.name, plan.config_hash), **_floor_columns(unit),
                                          **failed_row_columns(reason)}])
            say(f"random-init {unit.size} seed {unit.seed}: FAILED ({reason}); the report will lack its floor")
        else:
            say(f"random-init {unit.size} seed {unit.seed}: probed in {seconds:.1f} s")
