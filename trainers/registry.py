"""The stage kinds, by name: what the CLI, the trainers and the sweep need to know of each.

Adding a stage kind (or a baseline) is one `register` call beside its stage file; nothing else names it
(docs/adding_a_stage.md). A kind registered in one process only exists there: a sweep's Ray workers and
torchrun's processes import trainers afresh. A plug-in therefore names its entries where every process
looks, as `module:attribute` references to a StageKind (or a list of them): in the environment variable
SALT_BUDGET_STAGES (comma-separated; Ray's local workers and torchrun's processes inherit it) or as an
entry point of the group `salt_budget.stages` of an installed package. Both are read the first time any
process reads the registry.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from dataclasses import KW_ONLY, dataclass
from importlib.metadata import entry_points
from typing import Any, Callable

from trainers.config import ConfigError

PLUGINS_VARIABLE = "SALT_BUDGET_STAGES"
PLUGINS_GROUP = "salt_budget.stages"


@dataclass(frozen=True)
class StageKind:
    kind: str  # the experiment's config section, a checkpoint's "kind", a baseline's results role
    config_class: type  # the stage's config dataclass, with encoder, masks, optim and run sections
    stage_class: Callable[..., Any]  # stage_class(cfg, data) -> a Stage (trainers/stage_protocol.py)
    label: str  # how reports name it
    _: KW_ONLY
    # flops_per_clip(cfg=, data=, teacher=) -> the stage's FLOPs per training clip predicted from its config
    # (teacher: the teacher's config where needs_teacher, else None): what the sweep prices its budgets with.
    flops_per_clip: Callable[..., float]
    # checkpoint_bytes(cfg=, teacher=) -> the bytes of one checkpoint (trainers/stage_costs.checkpoint_bytes).
    checkpoint_bytes: Callable[..., float]
    baseline: bool = False  # trained for a whole budget beside SALT's allocations (sweep --baselines)
    needs_teacher: bool = False  # trains against the frozen teacher checkpoint at cfg.teacher_checkpoint

    @property
    def run_folder(self) -> str:
        """Where `salt-budget train` puts its runs under <runs_dir>/<name>/."""
        return "baselines" if self.baseline else f"{self.kind}s"


class UnknownStageKind(ConfigError, KeyError):
    """A kind no entry describes. A KeyError for lookups, a ConfigError for the CLI's one-line message."""

    def __str__(self) -> str:  # KeyError's own would print the message quoted
        return str(self.args[0])


_KINDS: dict[str, StageKind] = {}
_loaded = False


def register(entry: StageKind) -> StageKind:
    """Add a stage kind. Registering an equal entry again does nothing; another entry under a registered kind
    is refused, so that two plug-ins cannot silently shadow each other (or a built-in)."""
    _load()
    if not entry.kind.isidentifier():
        raise ConfigError(f"stage kind {entry.kind!r} is not a Python identifier; it names a config section and "
                          f"the dotted overrides under it: choose a name like my_baseline")
    if not dataclasses.is_dataclass(entry.config_class):
        raise ConfigError(f"stage kind {entry.kind!r}: config_class {entry.config_class!r} is not a dataclass; "
                          f"the experiment builds its section from YAML (trainers/config.py)")
    known = _KINDS.get(entry.kind)
    if known is not None and known != entry:
        raise ConfigError(f"stage kind {entry.kind!r} is registered already ({known.stage_class!r}); unregister it "
                          f"first or choose another name")
    _KINDS[entry.kind] = entry
    return entry


def unregister(kind: str) -> None:
    _KINDS.pop(kind, None)


def _builtins() -> list[StageKind]:
    from trainers.stage_config import StudentConfig, TeacherConfig, VJEPA2Config
    from trainers.stages import (
        StudentStage, TeacherStage, student_checkpoint_bytes, student_flops_per_clip, teacher_checkpoint_bytes,
        teacher_flops_per_clip,
    )
    from trainers.vjepa2 import VJEPA2Stage, vjepa2_checkpoint_bytes, vjepa2_flops_per_clip

    return [
        StageKind("teacher", TeacherConfig, TeacherStage, "V-Pixel teacher", flops_per_clip=teacher_flops_per_clip,
                  checkpoint_bytes=teacher_checkpoint_bytes),
        StageKind("student", StudentConfig, StudentStage, "SALT student", flops_per_clip=student_flops_per_clip,
                  checkpoint_bytes=student_checkpoint_bytes, needs_teacher=True),
        StageKind("vjepa2", VJEPA2Config, VJEPA2Stage, "V-JEPA 2", flops_per_clip=vjepa2_flops_per_clip,
                  checkpoint_bytes=vjepa2_checkpoint_bytes, baseline=True),
    ]


def _resolve(reference: str, where: str) -> list[StageKind]:
    module, _, attribute = reference.strip().partition(":")
    try:
        found = getattr(importlib.import_module(module), attribute) if attribute else None
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"{where}: cannot load stage kinds from {reference!r} ({error}); write module:attribute "
                          f"of a StageKind or a list of them, importable in every process") from None
    entries = found if isinstance(found, (list, tuple)) else [found]
    if not all(isinstance(entry, StageKind) for entry in entries):
        raise ConfigError(f"{where}: {reference!r} is not a StageKind or a list of them; write module:attribute")
    return list(entries)


def _plugins() -> list[StageKind]:
    entries = []
    for reference in filter(str.strip, os.environ.get(PLUGINS_VARIABLE, "").split(",")):
        entries += _resolve(reference, f"${PLUGINS_VARIABLE}")
    for point in entry_points(group=PLUGINS_GROUP):
        entries += _resolve(point.value, f"entry point {point.name} ({PLUGINS_GROUP})")
    return entries


def _load() -> None:
    """The built-ins, then the plug-ins, once a process, whichever call reads or writes the registry first."""
    global _loaded
    if _loaded:
        return
    _loaded = True  # first: a plug-in module may itself import this one and register
    try:
        for entry in _builtins():
            _KINDS.setdefault(entry.kind, entry)
        for entry in _plugins():
            register(entry)
    except BaseException:
        _loaded = False  # the next read tries again and reports the same error
        raise


def stage_kinds() -> dict[str, StageKind]:
    _load()
    return dict(_KINDS)


def stage_kind(kind: str) -> StageKind:
    kinds = stage_kinds()
    if kind not in kinds:
        raise UnknownStageKind(f"no stage kind {kind!r}; registered: {', '.join(sorted(kinds))} (a plug-in's kind "
                               f"must be registered before it is named: see trainers/registry.py)")
    return kinds[kind]


def baselines() -> tuple[str, ...]:
    return tuple(kind for kind, entry in stage_kinds().items() if entry.baseline)
