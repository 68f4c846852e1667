"""The stage kinds, by name: what the CLI, the trainers and the sweep need to know of each.

Adding a stage kind (or a baseline) is one `register` call beside its stage file; nothing else names it.
(Skeleton: the full entry, FLOPs per clip and probe encoder included, follows.)"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class StageKind:
    kind: str  # the experiment's config section, a checkpoint's "kind", a baseline's results role
    config_class: type  # the stage's config dataclass
    stage_class: Callable[..., Any]  # stage_class(cfg, data) -> a Stage (trainers/loop.py)
    label: str  # how reports name it
    baseline: bool = False  # trained for a whole budget beside SALT's allocations (sweep --baselines)


_KINDS: dict[str, StageKind] = {}


def register(entry: StageKind) -> StageKind:
    _KINDS[entry.kind] = entry
    return entry


def unregister(kind: str) -> None:
    _KINDS.pop(kind, None)


def _builtins() -> None:
    from trainers.stage_config import StudentConfig, TeacherConfig, VJEPA2Config
    from trainers.stages import StudentStage, TeacherStage
    from trainers.vjepa2 import VJEPA2Stage

    register(StageKind("teacher", TeacherConfig, TeacherStage, "V-Pixel teacher"))
    register(StageKind("student", StudentConfig, StudentStage, "SALT student"))
    register(StageKind("vjepa2", VJEPA2Config, VJEPA2Stage, "V-JEPA 2", baseline=True))


def stage_kinds() -> dict[str, StageKind]:
    if not _KINDS:
        _builtins()
    return dict(_KINDS)


def stage_kind(kind: str) -> StageKind:
    kinds = stage_kinds()
    if kind not in kinds:
        raise KeyError(f"no stage kind {kind!r}; registered: {', '.join(sorted(kinds))}")
    return kinds[kind]


def baselines() -> tuple[str, ...]:
    return tuple(kind for kind, entry in stage_kinds().items() if entry.baseline)
