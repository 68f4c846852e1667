"""The experiment file: one typed config for a whole study, loaded from YAML plus dotted overrides.

The dataclass defaults ARE the embedded tiny default (CPU, synthetic data), so every command
runs without an experiment file; experiments/tiny.yaml spells the same values out.

Each stage kind (trainers/registry.py) has a section named after it. The built-in kinds' sections are
fields of ExperimentConfig; a kind registered beyond them (a plug-in's) gets one in a subclass that
load_experiment builds, read from YAML and overrides like the others, after them in a saved config.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from trainers.config import ConfigError
from trainers.config_files import load_config
from trainers.data.config import DataConfig
from trainers.probe.config import ProbeConfig
from trainers.registry import StageKind, stage_kind, stage_kinds
from trainers.stage_config import StudentConfig, TeacherConfig, VJEPA2Config


@dataclass
class ExperimentConfig:
    name: str = "tiny"
    seed: int = 0
    runs_dir: str = "runs"  # run directories go to <runs_dir>/<name>/
    data: DataConfig = field(default_factory=DataConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    vjepa2: VJEPA2Config = field(default_factory=VJEPA2Config)  # the baseline (`train vjepa2`, `sweep --baselines`)
    probe: ProbeConfig = field(default_factory=ProbeConfig)

    def stage_config(self, kind: str) -> Any:
        """The section of stage kind `kind`: its stage's config."""
        stage_kind(kind)  # an unknown kind fails with the registered ones listed
        section = getattr(self, kind, None)
        if not isinstance(section, stage_kind(kind).config_class):
            raise ConfigError(f"this experiment config has no section for stage kind {kind!r}: it was loaded before "
                              f"the kind was registered; register it first (trainers/registry.py), then load")
        return section


def experiment_class() -> type[ExperimentConfig]:
    """ExperimentConfig, with a section for every registered stage kind beyond its own fields."""
    own = typing.get_type_hints(ExperimentConfig)
    extra = []
    for kind, entry in stage_kinds().items():
        if kind not in own:
            extra.append(entry)
        elif own[kind] is not entry.config_class:
            raise ConfigError(f"stage kind {kind!r} clashes with the experiment's {kind!r} setting "
                              f"({own[kind]}); register it under another name")
    return _with_sections(tuple(extra)) if extra else ExperimentConfig


@functools.cache
def _with_sections(entries: tuple[StageKind, ...]) -> type[ExperimentConfig]:
    # Cached: loads under the same registry give one class, so that their configs compare equal.
    sections = [(e.kind, e.config_class, field(default_factory=e.config_class)) for e in entries]
    kinds = tuple(e.kind for e in entries)

    def __reduce__(self):  # pickle cannot find a built class by name: it is rebuilt from the receiver's registry
        return _restore, (kinds, dict(self.__dict__))

    return dataclasses.make_dataclass("ExperimentConfig", sections, bases=(ExperimentConfig,),
                                      namespace={"__module__": __name__, "__reduce__": __reduce__})


def _restore(kinds: tuple[str, ...], state: dict[str, Any]) -> ExperimentConfig:
    cls = experiment_class()
    missing = [kind for kind in kinds if kind not in {f.name for f in dataclasses.fields(cls)}]
    if missing:
        raise ConfigError(f"stage kinds {', '.join(missing)} of this experiment are not registered in this process: "
                          f"name their entries in $SALT_BUDGET_STAGES or an entry point (trainers/registry.py)")
    cfg = cls.__new__(cls)
    cfg.__dict__.update(state)
    return cfg


def load_experiment(
    path: str | Path | None = None, overrides: Sequence[str] = (), *, base: Mapping[str, Any] | None = None
) -> ExperimentConfig:
    return absolute_lists(load_config(experiment_class(), path, overrides, base=base))


def absolute_lists(cfg: ExperimentConfig) -> ExperimentConfig:
    """Clip-list paths made absolute against the directory the command runs in, as they were meant, so that
    trials (which Ray may start elsewhere) and the saved config find the same files."""

    def absolute(path: str) -> str:
        return str(Path(path).expanduser().resolve())

    data = cfg.data
    data.train_list = data.train_list and absolute(data.train_list)
    data.val_list = data.val_list and absolute(data.val_list)
    for part in data.pretrain:
        part.path = absolute(part.path)
    for task in cfg.probe.tasks.values():
        task.train_list, task.val_list = absolute(task.train_list), absolute(task.val_list)
    return cfg
