"""The lists a probe reads: the data section's train/val lists and its tasks, or each task of probe.tasks
on its own lists; and the check, before any training, that every list a run will read loads."""

from __future__ import annotations

from dataclasses import dataclass, replace

from trainers.data.build import ResolvedData, pretrain_entries, read_split, resolve_data
from trainers.data.config import DataConfig
from trainers.probe.config import ProbeConfig


@dataclass
class ProbeSet:
    """Lists read together and the tasks they label: the data section's train/val lists and its tasks, or one
    task of probe.tasks on its own lists; `clips` x `views` of each video are read."""

    data: DataConfig
    resolved: ResolvedData
    clips: int
    views: int


def probe_sets(data: DataConfig, cfg: ProbeConfig, *, progress: bool = True) -> list[ProbeSet]:
    if not cfg.tasks:
        return [ProbeSet(data, resolve_data(data, progress=progress), cfg.clips, cfg.views)]
    sets = []
    for name, task in cfg.tasks.items():
        # The clip cut (frames, resolution, crop) is the data section's: the encoder's input; only the lists change.
        task_data = replace(data, dataset="lists", train_list=task.train_list, val_list=task.val_list, tasks=[name],
                            num_classes={} if task.num_classes is None else {name: task.num_classes}, pretrain=[])
        sets.append(ProbeSet(task_data, resolve_data(task_data, progress=progress), task.clips or cfg.clips,
                             task.views or cfg.views))
    return sets


def prepare_data(data: DataConfig, cfg: ProbeConfig, *, progress: bool = True) -> list[str]:
    """Generate the embedded set if needed and read every list a run will read (pre-training and each probe
    task's), so that a wrong path or label fails before any training; lines saying what was found."""
    resolved = resolve_data(data, progress=progress)
    entries, weights = pretrain_entries(data, resolved)
    source = ", ".join(f"{part.path} (weight {part.weight:g})" for part in data.pretrain) or "the train list"
    lines = [f"pre-training: {len(entries)} clips from {source}"
             + ("" if weights is None else ", drawn by weight with replacement")]
    for probe_set in probe_sets(data, cfg, progress=progress):
        sizes = {split: len(read_split(probe_set.resolved, split)) for split in ("train", "val")}
        for task in probe_set.resolved.tasks:
            lines.append(f"probe task {task.name}: {task.num_classes} classes, {sizes['train']} train / {sizes['val']} "
                         f"val clips, {probe_set.clips} clip(s) x {probe_set.views} view(s)")
    return lines
