"""Probing one frozen encoder: its features of every probe set, cached, then each readout of the table (the main
one and those beside it) per task, and RankMe."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import torch

from trainers.data.config import DataConfig
from trainers.loop import resolve_device
from trainers.models.vit import VisionTransformer
from trainers.probe.config import ProbeConfig
from trainers.probe.augmented import AugmentedTrain
from trainers.probe.features import cached_features
from trainers.probe.config import parse_readout
from trainers.probe.readouts import CachedSet, also_readouts, main_readout, read
from trainers.probe.sets import probe_sets
from trainers.provenance import provenance


def rankme(embeddings: torch.Tensor) -> float:
    """RankMe (Garrido et al.): exp of the entropy of the normalised singular values of the raw
    (uncentred) N x K embedding matrix."""
    singular = torch.linalg.svdvals(embeddings.double())
    p = singular / singular.sum() + 1e-7
    return float(torch.exp(-(p * p.log()).sum()))


def probe_encoder(
    encoder: VisionTransformer, encoder_key: str, data: DataConfig, cfg: ProbeConfig, cache_dir: str | os.PathLike,
    *, seed: int = 0, progress: bool = True,
) -> dict[str, Any]:
    """Probe every task (probe.tasks, each on its own lists, or the data section's) on the frozen `encoder`
    with the main readout (result under "tasks") and those beside it (under "readouts", by name); also RankMe of
    the first set's mean-pooled val features."""
    device = resolve_device(cfg.device)
    main = main_readout(cfg)
    also = {name: parse_readout(name) for name in also_readouts(cfg)}
    tasks: dict[str, Any] = {}
    readouts: dict[str, dict[str, Any]] = {name: {} for name in also}
    first: dict[str, Any] | None = None
    for probe_set in probe_sets(data, cfg, progress=progress):
        views = {
            split: cached_features(encoder, encoder_key, probe_set.data, probe_set.resolved, split, Path(cache_dir),
                                   batch_size=cfg.extract_batch_size, device=device, single_frame=cfg.single_frame,
                                   progress=progress, clips=probe_set.clips, views=probe_set.views)
            for split in ("train", "val")
        }
        first = first or views
        # The clips of a video sit side by side in time: the probe's position code and the pooling see C x T steps.
        grid = (encoder.grid[0] * probe_set.clips, *encoder.grid[1:])
        augmented = AugmentedTrain(encoder, probe_set, device) if cfg.augment else None
        cached = CachedSet(views["train"], views["val"], probe_set.resolved.tasks, grid, probe_set.views, seed, device,
                           augmented)
        for name, (kind, variant) in also.items():
            readouts[name].update(read(cached, cfg, kind, variant))
        found = read(cached, cfg, *main)
        for result in found.values():
            result.update(clips_per_video=probe_set.clips, views=probe_set.views,
                          videos={split: len(view["labels"]) for split, view in views.items()})
        tasks.update(found)
    if progress:
        for name, task in tasks.items():
            verdict = "" if task.get("converged", True) else ", NOT CONVERGED: train accuracy near chance, not a result"
            print(f"[probe] {name}: {task['accuracy']:.1%} (chance {task['chance']:.1%}{verdict})", file=sys.stderr,
                  flush=True)
    pooled = first["val"]["features"].float().mean(1)
    readout = cfg.readout()
    return {
        "tasks": tasks,
        "rankme": rankme(pooled),
        "single_frame": cfg.single_frame,
        "probe": cfg.kind,
        "pooling": readout["probe_pooling"] or None,
        "readouts": readouts,
        "readout": readout,
        "provenance": provenance(device),
        "position": cfg.position,
        "clips": {split: len(view["labels"]) for split, view in first.items()},
        "tokens": int(first["val"]["features"].size(1)),
        "width": int(first["val"]["features"].size(2)),
    }
