"""Every clip list an experiment reads, named by what it is for: the pre-training lists (data.pretrain, else
the train list) and each probe set's train and val lists. `data prepare`, `data check` and a sweep's dry
run all walk this one inventory, so none of them can forget a list."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from trainers.data.build import clip_spec, read_split, resolve_data
from trainers.data.clip_list import (
    ClipEntry,
    ClipListError,
    TaskClasses,
    read_clip_list,
)
from trainers.data.config import DataConfig
from trainers.data.dataset import VideoClipDataset
from trainers.data.synthetic import cache_key
from trainers.probe.config import ProbeConfig
from trainers.probe.sets import ProbeSet, probe_sets

# A dry run stats this many clip paths per list, spread over it: enough to catch a wrong root folder or a list
# written on another machine, in seconds even on a parallel file system where a full walk would take minutes.
SAMPLED_PATHS = 64


@dataclass
class ClipSet:
    """One list and what reads it; `entries` None where the embedded set is not generated yet (a dry run)."""

    role: str
    path: Path | None
    entries: list[ClipEntry] | None
    tasks: list[TaskClasses]
    data: DataConfig
    clips: int = 1
    views: int = 1

    def dataset(self) -> VideoClipDataset:
        """The clips decoded as evaluation reads them (centre crop), labelled where the list is."""
        return VideoClipDataset(self.entries or [], self.tasks, clip_spec(self.data, train=False), None)


def _synthetic_pending(data: DataConfig) -> bool:
    return data.dataset == "synthetic" and not (data.resolved_cache_dir() / cache_key(data.synthetic)
                                               / "meta.json").is_file()


def clip_sets(data: DataConfig, probe: ProbeConfig, *, generate: bool = True, progress: bool = True) -> list[ClipSet]:
    """Every list, read and checked (line format, labels against the class counts); `generate=False` leaves an
    embedded set that is not in the cache yet ungenerated (its lists are written by this project, not a user)."""
    pending = not generate and _synthetic_pending(data)
    sets: list[ClipSet] = []
    if data.pretrain:
        for number, part in enumerate(data.pretrain, start=1):
            path = Path(part.path).expanduser()
            sets.append(ClipSet(f"pre-training list {number} (weight {part.weight:g})", path,
                                read_clip_list(path, (), labels=False), [], data))
    elif pending:
        sets.append(ClipSet("pre-training (the embedded synthetic set's train list, generated on first use: "
                            f"{data.synthetic.train} clips)", None, None, [], data))
    else:
        resolved = resolve_data(data, progress=progress)
        if "train" not in resolved.lists:
            raise ClipListError("nothing to pre-train on: set data.pretrain (lists of clips) or data.train_list")
        path = resolved.lists["train"]
        sets.append(ClipSet("pre-training (the train list)", path, read_clip_list(path, (), labels=False), [], data))
    if pending and not probe.tasks:
        sets.append(ClipSet(f"probe {', '.join(data.tasks)}: the embedded set's train and val lists, generated on first "
                            f"use ({data.synthetic.train} / {data.synthetic.val} clips)", None, None, [], data))
        return sets
    for probe_set in probe_sets(data, probe, progress=progress):
        sets += _probe_clip_sets(probe_set, several=bool(probe.tasks))
    return sets


def _probe_clip_sets(probe_set: ProbeSet, *, several: bool) -> list[ClipSet]:
    names = ", ".join(f"{task.name} ({task.num_classes} classes)" for task in probe_set.resolved.tasks)
    return [ClipSet(f"probe {'task ' if several else ''}{names}, {split}", probe_set.resolved.lists.get(split),
                    read_split(probe_set.resolved, split), probe_set.resolved.tasks, probe_set.data, probe_set.clips,
                    probe_set.views)
            for split in ("train", "val")]


def describe(sets: list[ClipSet]) -> list[str]:
    lines = []
    for clip_set in sets:
        if clip_set.entries is None:
            lines.append(clip_set.role)
            continue
        views = f", {clip_set.clips} clip(s) x {clip_set.views} view(s) each" if clip_set.tasks else ""
        lines.append(f"{clip_set.role}: {len(clip_set.entries):,} clips in {clip_set.path}{views}")
    return lines


def check_clips_exist(sets: list[ClipSet], sample: int = SAMPLED_PATHS) -> list[str]:
    """Stat up to `sample` clips per list, evenly spread; a missing one fails with the list's file:line."""
    lines = []
    for clip_set in sets:
        if not clip_set.entries:
            continue
        entries = clip_set.entries
        picked = entries if len(entries) <= sample else [entries[i * len(entries) // sample] for i in range(sample)]
        missing = [entry for entry in picked if not os.path.isfile(entry.path)]
        if missing:
            first = missing[0]
            raise ClipListError(
                f"{clip_set.path}:{first.line}: clip {first.path!r} does not exist ({len(missing)} of {len(picked)} "
                f"clips checked in this list are missing); relative paths are relative to the list's folder: fix "
                f"the list or move the clips")
        lines.append(f"{clip_set.path}: {len(picked)} of {len(entries):,} clip paths checked, all present")
    return lines


def probe_rows(sets: list[ClipSet], data: DataConfig, probe: ProbeConfig) -> float:
    """Rows one probe caches (videos x clips x views over every probe list): what a feature cache holds."""
    rows = 0.0
    for clip_set in sets:
        if not clip_set.role.startswith("probe"):
            continue
        if clip_set.entries is None:  # the embedded set, not generated yet
            rows += (data.synthetic.train + data.synthetic.val) * probe.clips * probe.views
        else:
            rows += len(clip_set.entries) * clip_set.clips * clip_set.views
    return rows
