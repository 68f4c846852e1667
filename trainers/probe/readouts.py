"""How each readout kind fits and scores the tasks on an encoder's cached features.

A kind is one entry of FITS here and, by the same name, of READOUT_KINDS in trainers/probe/config.py (the probe
knobs it reads, how a report names it, its variants: what the config needs without torch). probe.kind picks the main readout; probe.also (and probe.also_ridge, its older ridge-only spelling) names
the readouts computed beside it, each as a kind (`attentive`) or a kind and one of its variants
(`ridge_mean`), which is also the name its results go under (readout_<name>_<task> in a results table).
Adding a readout is its fit here, its entry in READOUT_KINDS, and its name in ProbeConfig.kind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from trainers.probe.attentive import probe_task
from trainers.probe.augmented import AugmentedTrain, augmented_tasks
from trainers.probe.config import READOUT_KINDS, ProbeConfig
from trainers.probe.ridge import ridge_readout

if TYPE_CHECKING:
    from trainers.data.build import TaskClasses


@dataclass
class CachedSet:
    """One probe set's cached features, as every readout reads them."""

    train: dict[str, Any]  # cached_features of the train split: features, labels (a column per task), views
    val: dict[str, Any]
    tasks: Sequence[TaskClasses]  # in label-column order
    grid: tuple[int, int, int]  # a video's token grid: its clips side by side in time
    views: int
    seed: int
    device: torch.device
    # The train clips under the training augmentation, read by the frozen encoder (probe.augment).
    augmented: AugmentedTrain | None = None


# (the set, the probe section, the variant or None) -> a result per task name, each with "accuracy"
Fit = Callable[[CachedSet, ProbeConfig, "str | None"], dict[str, dict[str, Any]]]


def _fit_attentive(cached: CachedSet, cfg: ProbeConfig, variant: str | None) -> dict[str, dict[str, Any]]:
    if cfg.augment:
        return augmented_tasks(cached, cached.augmented, cfg)
    return {task.name: probe_task(cached.train, cached.val, column, task.num_classes, cfg, seed=cached.seed,
                                  device=cached.device, grid=cached.grid)
            for column, task in enumerate(cached.tasks)}


def _fit_ridge(cached: CachedSet, cfg: ProbeConfig, pooling: str | None) -> dict[str, dict[str, Any]]:
    results = ridge_readout(
        cached.train["features"], cached.train["labels"], cached.val["features"], cached.val["labels"],
        [task.num_classes for task in cached.tasks], lambdas=cfg.ridge_lambdas, folds=cfg.ridge_folds,
        seed=cached.seed, time_steps=cached.grid[0], pooling=pooling, views=cached.views)
    return dict(zip([task.name for task in cached.tasks], results))


# Each kind's fit, by the name of its entry in trainers/probe/config.py's READOUT_KINDS (a test holds the two equal).
FITS: dict[str, Fit] = {"attentive": _fit_attentive, "ridge": _fit_ridge}


def main_readout(cfg: ProbeConfig) -> tuple[str, str | None]:
    """(kind, variant) of the main readout: probe.kind, its variant from the kind's knob (ridge: probe.pooling)."""
    readout = READOUT_KINDS[cfg.kind]
    return cfg.kind, getattr(cfg, readout.variant_knob) if readout.variant_knob else None


def also_readouts(cfg: ProbeConfig) -> list[str]:
    """The names of the readouts computed beside the main one, in order, once each: probe.also_ridge's
    poolings as ridge_<pooling>, then probe.also."""
    return list(dict.fromkeys([*(f"ridge_{pooling}" for pooling in cfg.also_ridge), *cfg.also]))


def read(cached: CachedSet, cfg: ProbeConfig, kind: str, variant: str | None) -> dict[str, dict[str, Any]]:
    """A result per task of one readout."""
    return FITS[kind](cached, cfg, variant)
