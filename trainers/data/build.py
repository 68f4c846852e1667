"""From an experiment's data config to datasets and loaders."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from trainers.data.clip_list import ClipEntry, ClipListError, TaskClasses, infer_num_classes, read_clip_list
from trainers.data.config import DataConfig
from trainers.data.dataset import ClipLoader, ClipSpec, VideoClipDataset
from trainers.data.synthetic import ensure_synthetic, read_meta

Split = Literal["train", "val"]


@dataclass
class ResolvedData:
    """Lists on disk and the label spaces of the configured tasks, in config order."""

    lists: dict[str, Path]
    tasks: list[TaskClasses]
    label_mirror: list[list[int] | None]
    # Column of each configured task among the list's label columns.
    columns: list[int]
    list_tasks: list[TaskClasses]


def resolve_data(cfg: DataConfig, *, progress: bool = True) -> ResolvedData:
    if cfg.dataset == "synthetic":
        folder = ensure_synthetic(cfg.synthetic, cfg.resolved_cache_dir(), progress=progress)
        meta = read_meta(folder)
        available = list(meta["tasks"])
        unknown = [name for name in cfg.tasks if name not in available]
        if unknown:
            raise ClipListError(
                f"data.tasks names {unknown}, which the synthetic data set does not have (it has: {', '.join(available)})"
            )
        list_tasks = [TaskClasses(name, class_names=tuple(meta["tasks"][name]["classes"])) for name in available]
        columns = [available.index(name) for name in cfg.tasks]
        return ResolvedData(
            lists={split: folder / name for split, name in meta["lists"].items()},
            tasks=[list_tasks[column] for column in columns],
            label_mirror=[meta["tasks"][name]["mirror"] for name in cfg.tasks],
            columns=columns,
            list_tasks=list_tasks,
        )
    lists = {split: Path(path).expanduser() for split, path in (("train", cfg.train_list), ("val", cfg.val_list))
             if path}
    tasks = [TaskClasses(name, cfg.num_classes.get(name)) for name in cfg.tasks]
    if any(task.num_classes is None for task in tasks) and "train" in lists:
        tasks = infer_num_classes(read_clip_list(lists["train"], tasks), tasks)
    return ResolvedData(lists, tasks, [None] * len(tasks), list(range(len(tasks))), tasks)


def read_split(resolved: ResolvedData, split: Split) -> list[ClipEntry]:
    if split not in resolved.lists:
        raise ClipListError(f"no {split} list configured: set data.{split}_list to a CSV of 'path label...' lines, "
                            f"or name the evaluation tasks and their lists in probe.tasks")
    entries = read_clip_list(resolved.lists[split], resolved.list_tasks)
    if resolved.columns == list(range(len(resolved.list_tasks))):
        return entries
    return [replace(entry, labels=tuple(entry.labels[c] for c in resolved.columns)) for entry in entries]


def clip_spec(cfg: DataConfig, *, train: bool, clips: int = 1, views: int = 1) -> ClipSpec:
    return ClipSpec(
        frames=cfg.frames,
        frame_step=cfg.frame_step,
        resolution=cfg.resolution,
        train=train,
        crop_scale=tuple(cfg.crop_scale),
        crop_aspect=tuple(cfg.crop_aspect),
        hflip=cfg.hflip,
        eval_crop_fraction=cfg.eval_crop_fraction,
        short_clip=cfg.short_clip,
        reader=cfg.reader,
        decode_threads=cfg.decode_threads,
        decode_device=cfg.decode_device,
        decoded_cache_mb=cfg.decoded_cache_mb,
        clips=clips,
        views=views,
    )


def build_dataset(
    cfg: DataConfig, split: Split, *, train: bool, resolved: ResolvedData | None = None, clips: int = 1,
    views: int = 1,
) -> VideoClipDataset:
    """`train` picks the augmentation (random crop and flip vs centre crop), independent of the split; `clips`
    and `views` the clips x spatial views of each video that evaluation reads."""
    resolved = resolved or resolve_data(cfg)
    return VideoClipDataset(read_split(resolved, split), resolved.tasks,
                            clip_spec(cfg, train=train, clips=clips, views=views), resolved.label_mirror)


def pretrain_entries(cfg: DataConfig, resolved: ResolvedData) -> tuple[list[ClipEntry], np.ndarray | None]:
    """The clips pre-training draws from, unlabelled, and each clip's probability of being drawn (None: every
    clip once per epoch, in a shuffled order). The mixture of data.pretrain, else the train list."""
    if not cfg.pretrain:
        if "train" not in resolved.lists:
            raise ClipListError("nothing to pre-train on: set data.pretrain (lists of clips) or data.train_list")
        return read_clip_list(resolved.lists["train"], (), labels=False), None
    parts = [read_clip_list(Path(part.path).expanduser(), (), labels=False) for part in cfg.pretrain]
    entries = [entry for part in parts for entry in part]
    if len(parts) == 1:
        return entries, None
    total = sum(part.weight for part in cfg.pretrain)
    weights = np.concatenate([np.full(len(clips), part.weight / total / len(clips))
                              for part, clips in zip(cfg.pretrain, parts)])
    return entries, weights / weights.sum()


def build_pretrain_dataset(cfg: DataConfig, resolved: ResolvedData | None = None
                           ) -> tuple[VideoClipDataset, np.ndarray | None]:
    """The training augmentation over pretrain_entries, and their draw probabilities for build_loader."""
    entries, weights = pretrain_entries(cfg, resolved or resolve_data(cfg))
    return VideoClipDataset(entries, [], clip_spec(cfg, train=True)), weights


def build_loader(
    cfg: DataConfig,
    dataset: VideoClipDataset,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    drop_last: bool = False,
    workers: int | None = None,
    collate_fn=None,
    shard: tuple[int, int] | None = None,
    weights: np.ndarray | None = None,
) -> ClipLoader:
    return ClipLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        workers=cfg.workers if workers is None else workers,
        pin_memory=cfg.pin_memory,
        drop_last=drop_last,
        max_bad_fraction=cfg.max_bad_fraction,
        collate_fn=collate_fn,
        shard=shard,
        weights=weights,
    )
