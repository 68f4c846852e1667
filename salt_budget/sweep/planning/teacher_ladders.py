"""The teachers of one size and seed as one unit of work: a Ray task trains them all, each ladder's trunk before its
branches (salt_budget/sweep/running/teachers.py); the plan's table counts the steps they train."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from salt_budget.sweep.planning.ladder import RunLadder
from salt_budget.sweep.planning.plan import Plan
from salt_budget.sweep.planning.units import TeacherUnit


@dataclass(frozen=True)
class TeacherLadders:
    """The teachers of one size and seed, trained by one Ray task: one ladder (ladder.py) with "wsd", one ladder
    per teacher with "cosine"."""

    ladders: tuple[RunLadder, ...]

    @property
    def units(self) -> tuple[TeacherUnit, ...]:
        return tuple(sorted((unit for ladder in self.ladders for unit in ladder.units), key=lambda u: u.id.steps))

    @property
    def name(self) -> str:
        first = self.units[0].id
        return f"{first.size} seed {first.seed}"

    @property
    def trunk(self) -> TeacherUnit:
        return self.units[-1]

    def trunk_config(self) -> Any:
        return self._trunk_ladder.trunk_config()

    def steps_to_train(self) -> int:
        return sum(ladder.steps_to_train() for ladder in self.ladders)

    @property
    def _trunk_ladder(self) -> RunLadder:
        return next(ladder for ladder in self.ladders if ladder.is_trunk(self.trunk))


def ladders(plan: Plan) -> list[TeacherLadders]:
    groups: dict[tuple[str, int], dict[int, RunLadder]] = {}
    for tid, _ in sorted(plan.teachers.items()):
        ladder = plan.teacher_ladders[tid]
        groups.setdefault((tid.size, tid.seed), {})[id(ladder)] = ladder
    return [TeacherLadders(tuple(group.values())) for group in groups.values()]
