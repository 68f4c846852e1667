"""Ladders of teacher, student or baseline runs that differ only in length: one trunk, a cool-down branch per shorter run.

A wsd run (warm-up, constant lr and weight decay, a linear cool-down over its last steps) does not depend on
its own length before its cool-down. So the runs of one ladder (students of one teacher at several budgets,
or one baseline at several budgets) share a TRUNK: the longest run, trained once, with kept checkpoints at
every shorter run's branch point (its steps minus its cool-down) and at the shorter runs' probe points that
lie before it. Each shorter run is a BRANCH: its cool-down, started from the trunk's checkpoint at its branch
point (weights, optimiser, data position and step), so it ends where a standalone run of its own length
would. A branch without a cool-down (a constant-lr baseline) trains nothing: the trunk's checkpoint at its
length is that run. The ladder trains max(S) plus the shorter runs' cool-downs instead of the sum of all S.

A run of another schedule (cosine), or whose EMA momentum changes with its length, is a ladder of one: it
trains alone. How a ladder trains (its trunk in segments): salt_budget/sweep/running/rungs.py.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from trainers.checkpoint import checkpoint_path
from trainers.config import config_hash, to_dict

BRANCH_FILE = "branch.json"  # in a cool-down branch's run directory: the trunk it started from


class Rung(Protocol):
    """What a ladder needs of a unit: its length, its stage kind and config (optim, run), seed, folder and key."""

    @property
    def steps(self) -> int: ...

    @property
    def kind(self) -> str: ...

    @property
    def seed(self) -> int: ...

    cfg: Any
    run_dir: Path
    key: str




def length_independent(cfg: Any) -> bool:
    """Whether every step before the cool-down is the same whatever optim.steps says."""
    momentum = getattr(cfg, "momentum", None)  # the V-JEPA 2 baseline's EMA momentum ramps over its steps
    return cfg.optim.schedule == "wsd" and (momentum is None or momentum[0] == momentum[1])


def ladder_group(unit: Rung, shared: dict[str, Any]) -> str:
    """Units with equal groups differ only in length (steps, cool-down, probe points): they can share a trunk.
    `shared` holds what else must match (seed, data, teacher)."""
    view = to_dict(unit.cfg)
    view["optim"] = {k: v for k, v in view["optim"].items() if k not in ("steps", "cooldown_steps")}
    view["run"] = {k: v for k, v in view["run"].items() if k != "checkpoint_steps"}
    return config_hash({"cfg": view, **shared})


def step_file(run_dir: Path, step: int) -> Path:
    return checkpoint_path(run_dir / "checkpoints", step)


@dataclass(frozen=True)
class RunLadder:
    """The runs of one group, by ascending length; the last is the trunk."""

    units: tuple[Rung, ...]

    @property
    def trunk(self) -> Rung:
        return self.units[-1]

    @property
    def branches(self) -> tuple[Rung, ...]:
        return self.units[:-1]

    def is_trunk(self, unit: Rung) -> bool:
        # By key, not identity: a unit sent to a Ray task apart from its plan arrives as a copy.
        return unit.key == self.trunk.key

    def branch_point(self, unit: Rung) -> int:
        return unit.steps - unit.cfg.optim.cooldown_steps

    def trunk_config(self) -> Any:
        """The trunk's config with the checkpoints its branches read kept: their branch points and their
        probe points before them. Which files are kept, not the weights: the trunk's key is its own config's."""
        cfg = copy.deepcopy(self.trunk.cfg)
        points = set(cfg.run.checkpoint_steps) | set(self.segment_ends()[:-1])
        for unit in self.branches:
            points |= {step for step in unit.cfg.run.checkpoint_steps if step <= self.branch_point(unit)}
        cfg.run.checkpoint_steps = sorted(points)
        return cfg

    def segment_ends(self) -> list[int]:
        """Where the trunk pauses: each branch point below its own length, then its length."""
        return sorted({self.branch_point(unit) for unit in self.branches if self.branch_point(unit) < self.trunk.steps}
                      | {self.trunk.steps})

    def steps_to_train(self) -> int:
        return self.trunk.steps + sum(unit.cfg.optim.cooldown_steps for unit in self.branches)

    def checkpoint(self, unit: Rung, step: int) -> Path:
        """Where `unit`'s checkpoint at `step` lies: its own folder, or the trunk's before its branch point."""
        own = step_file(unit.run_dir, step)
        if self.is_trunk(unit) or own.is_file() or step > self.branch_point(unit):
            return own
        return step_file(self.trunk.run_dir, step)

    def final_checkpoint(self, unit: Rung) -> Path:
        return self.checkpoint(unit, unit.steps)

    def is_trained(self, unit: Rung) -> bool:
        return self.final_checkpoint(unit).is_file()


def ladders_of(units: Iterable[Rung], group: Callable[[Rung], str]) -> list[RunLadder]:
    """Units of equal `group` whose schedule allows it share a ladder; every other unit is a ladder of one.
    Units of equal length in one group (the same run asked for twice) are left alone: each keeps its own."""
    groups: dict[str, list[Rung]] = {}
    result = []
    for unit in units:
        if length_independent(unit.cfg):
            groups.setdefault(group(unit), []).append(unit)
        else:
            result.append(RunLadder((unit,)))
    for members in groups.values():
        members = sorted(members, key=lambda unit: unit.steps)
        if len({unit.steps for unit in members}) < len(members):
            result += [RunLadder((unit,)) for unit in members]
        else:
            result.append(RunLadder(tuple(members)))
    return result
