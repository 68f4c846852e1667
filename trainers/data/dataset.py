"""Clips for training and evaluation: decode, sample, crop, and survive bad files.

Randomness of a sample comes from a seed carried with its index (see ClipSampler), not from
the worker's global state, so a batch is the same with 0 or 8 workers and after a resume.
A clip that cannot be decoded never crashes a worker: training draws another clip in its
place, evaluation drops it, and either way the failure travels with the batch to ClipLoader,
which counts it, warns once per file and stops the run past `max_bad_fraction`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from trainers.data.clip_list import ClipEntry, TaskClasses
from trainers.data.readers import ReaderBackend, UnreadableVideo, open_video
from trainers.data.sampling import ShortClipRule, eval_clip_indices, frame_indices
from trainers.data.transforms import center_crop_box, crop_resize, random_resized_crop_box, view_crop_boxes

log = logging.getLogger("salt_budget.data")


class DataError(RuntimeError):
    """The data cannot support the run; the message says what was seen and what to do."""


@dataclass(frozen=True)
class ClipSpec:
    """How one clip is cut from a video."""

    frames: int = 16
    frame_step: int = 2
    resolution: int = 64
    train: bool = True
    crop_scale: tuple[float, float] = (0.3, 1.0)
    crop_aspect: tuple[float, float] = (0.75, 1.35)
    hflip: bool = True
    eval_crop_fraction: float = 0.875
    short_clip: ShortClipRule = "pad"
    reader: ReaderBackend = "auto"
    decode_threads: int = 1
    decode_device: str = "cpu"
    decoded_cache_mb: float = 0
    max_retries: int = 20
    # Evaluation only: temporal clips x spatial views per video (V-JEPA's multi-clip, multi-view evaluation).
    clips: int = 1
    views: int = 1

    def __post_init__(self) -> None:
        if self.clips < 1 or self.views < 1:
            raise ValueError(f"clips and views must be >= 1 (got {self.clips}, {self.views})")
        if self.train and self.clips * self.views > 1:
            raise ValueError("several clips or views are an evaluation setting; training cuts one clip per sample")


def sample_seed(seed: int, epoch: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


class VideoClipDataset(Dataset):
    """Items are dicts: video (3, T, H, W) uint8, labels (tasks,) int64, index, and bookkeeping.

    `label_mirror[t]`, where given, maps task t's classes under a horizontal flip (a clip that
    moves right moves left once mirrored); tasks without a map keep their label.
    """

    def __init__(
        self,
        entries: Sequence[ClipEntry],
        tasks: Sequence[TaskClasses],
        spec: ClipSpec,
        label_mirror: Sequence[Sequence[int] | None] | None = None,
    ):
        self.entries = list(entries)
        self.tasks = list(tasks)
        self.spec = spec
        self.label_mirror = list(label_mirror) if label_mirror is not None else [None] * len(self.tasks)
        self._decoded: dict[str, np.ndarray] = {}  # path -> all frames, while under spec.decoded_cache_mb
        self._decoded_bytes = 0

    def __len__(self) -> int:
        return len(self.entries)

    def _frames(self, path: str, choose) -> tuple[list[np.ndarray], list[bool]]:
        """Decoded frames of each clip `choose(video length)` names, as [(indices, short)]."""
        spec = self.spec
        video = self._decoded.get(path)
        reader = open_video(path, spec.reader, spec.decode_threads, spec.decode_device) if video is None else None
        cuts = choose(len(reader) if video is None else len(video))
        if video is None and spec.decoded_cache_mb:
            video = reader.get_frames(list(range(len(reader))))
            if self._decoded_bytes + video.nbytes <= spec.decoded_cache_mb * 2**20:
                self._decoded[path] = video
                self._decoded_bytes += video.nbytes
        if video is None:
            wanted = np.concatenate([indices for indices, _ in cuts])
            decoded = reader.get_frames(wanted)
            return [decoded[i * spec.frames : (i + 1) * spec.frames] for i in range(len(cuts))], [s for _, s in cuts]
        return [video[indices] for indices, _ in cuts], [short for _, short in cuts]

    def load(self, index: int, rng: np.random.Generator) -> dict[str, Any]:
        """One clip, or UnreadableVideo. With several evaluation clips or views, `video` is
        (views * clips, 3, T, H, W), view-major."""
        spec = self.spec
        entry = self.entries[index]
        if spec.clips * spec.views > 1:
            cut, shorts = self._frames(entry.path, lambda n: eval_clip_indices(
                n, spec.frames, spec.frame_step, spec.clips, short_clip=spec.short_clip))
            boxes = view_crop_boxes(*cut[0].shape[1:3], spec.eval_crop_fraction, spec.views)
            video = torch.stack([crop_resize(frames, box, spec.resolution) for box in boxes for frames in cut])
            return {"video": video, "labels": torch.tensor(entry.labels, dtype=torch.int64), "index": index,
                    "short": any(shorts)}
        (frames,), (short,) = self._frames(entry.path, lambda n: [frame_indices(
            n, spec.frames, spec.frame_step, random_start=spec.train, rng=rng, short_clip=spec.short_clip)])
        height, width = frames.shape[1:3]
        flip = False
        if spec.train:
            box = random_resized_crop_box(height, width, spec.crop_scale, spec.crop_aspect, rng)
            flip = spec.hflip and bool(rng.random() < 0.5)
        else:
            box = center_crop_box(height, width, spec.eval_crop_fraction)
        labels = list(entry.labels)
        if flip:
            labels = [mirror[label] if mirror is not None else label for label, mirror in zip(labels, self.label_mirror)]
        return {
            "video": crop_resize(frames, box, spec.resolution, flip),
            "labels": torch.tensor(labels, dtype=torch.int64),
            "index": index,
            "short": short,
        }

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, seed = key if isinstance(key, tuple) else (key, sample_seed(0, 0, key))
        rng = np.random.default_rng(seed)
        failures: list[tuple[str, str, str]] = []
        for _ in range(self.spec.max_retries + 1):
            try:
                item = self.load(index, rng)
                item["failures"] = failures
                item["seed"] = seed  # the mask collator derives a batch's masks from its samples' seeds
                return item
            except UnreadableVideo as error:
                failures.append((error.path, error.reason, str(error)))
                if not self.spec.train:
                    return {"skip": True, "index": index, "failures": failures}
                # Training keeps its batch shape: a different clip, drawn from this sample's own rng.
                index = int(rng.integers(len(self.entries)))
        raise DataError(
            f"{len(failures)} unreadable clips in a row (last: {failures[-1][2]}); "
            f"check the clip list and the files it names"
        )


class ClipSampler(Sampler):
    """Yields (index, sample seed): a seeded permutation per epoch (or the list order), one seed per
    sample. `start` skips the first samples of the epoch, so a resumed run sees exactly the
    batches an uninterrupted one would have, without decoding the skipped clips.

    `shard` = (rank, world, chunk) splits the epoch for data-parallel processes: after `start`, the order
    is cut into chunks of `chunk` samples (a process's micro-batch) and process `rank` takes chunks rank,
    rank + world, ..., whole rounds only, so every process yields the same number. The chunks of one round
    are what one process with `world` times the micro-batches would take in a row.

    `weights`, a probability per sample, replaces the permutation by as many weighted draws with replacement
    (a mixture of lists, each drawn at its own share)."""

    def __init__(self, size: int, *, shuffle: bool, seed: int = 0, epoch: int = 0, start: int = 0,
                 shard: tuple[int, int, int] | None = None, weights: np.ndarray | None = None):
        if weights is not None and len(weights) != size:
            raise ValueError(f"{len(weights)} sampling weights for {size} samples")
        self.size = size
        self.weights = weights
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = epoch
        self.start = start
        self.shard = shard

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch = epoch
        self.start = start

    def _positions(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.weights is not None:  # a weighted mixture: as many draws per epoch as samples, with replacement
            order = rng.choice(self.size, self.size, replace=True, p=self.weights)
        else:
            order = rng.permutation(self.size) if self.shuffle else np.arange(self.size)
        order = order[self.start :]
        if self.shard is None:
            return order
        rank, world, chunk = self.shard
        rounds = len(order) // (chunk * world)
        return order[: rounds * chunk * world].reshape(rounds, world, chunk)[:, rank].reshape(-1)

    def __len__(self) -> int:
        if self.shard is None:
            return self.size - self.start
        _, world, chunk = self.shard
        return (self.size - self.start) // (chunk * world) * chunk

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for position in self._positions():
            yield int(position), sample_seed(self.seed, self.epoch, int(position))


def collate_clips(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    kept = [item for item in items if not item.get("skip")]
    failures = [failure for item in items for failure in item["failures"]]
    return {
        # None when every clip of the batch was dropped; ClipLoader accounts for it and moves on.
        "video": torch.stack([item["video"] for item in kept]) if kept else None,
        "labels": torch.stack([item["labels"] for item in kept]) if kept else None,
        "index": torch.tensor([item["index"] for item in kept], dtype=torch.int64),
        "attempts": len(kept) + len(failures),
        "failures": failures,
        "short": sum(bool(item["short"]) for item in kept),
    }


@dataclass
class LoaderStats:
    attempts: int = 0
    delivered: int = 0
    short: int = 0
    failed: dict[str, int] = field(default_factory=dict)  # reason -> count
    bad_files: dict[str, str] = field(default_factory=dict)  # path -> reason

    @property
    def skipped(self) -> int:
        return sum(self.failed.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "attempts": self.attempts,
            "delivered": self.delivered,
            "skipped": self.skipped,
            "skipped_by_reason": dict(self.failed),
            "bad_files": len(self.bad_files),
            "short_clips": self.short,
        }


class ClipLoader:
    """A DataLoader over VideoClipDataset that accounts for every clip it could not use."""

    def __init__(
        self,
        dataset: VideoClipDataset,
        *,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        workers: int = 0,
        pin_memory: bool = False,
        drop_last: bool = False,
        max_bad_fraction: float = 0.01,
        min_attempts_for_check: int = 64,
        collate_fn: Callable[[Sequence[dict[str, Any]]], dict[str, Any]] | None = None,
        shard: tuple[int, int] | None = None,
        weights: np.ndarray | None = None,
    ):
        self.dataset = dataset
        # A process of a data-parallel run takes whole batches of the epoch in turn with the others.
        self.sampler = ClipSampler(len(dataset), shuffle=shuffle, seed=seed,
                                   shard=None if shard is None else (*shard, batch_size), weights=weights)
        self.max_bad_fraction = max_bad_fraction
        self.min_attempts_for_check = min_attempts_for_check
        self.stats = LoaderStats()
        self.loader = DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=self.sampler,
            num_workers=workers,
            collate_fn=collate_fn or collate_clips,
            pin_memory=pin_memory and torch.cuda.is_available(),
            drop_last=drop_last,
            worker_init_fn=_quiet_worker,
            persistent_workers=False,
            prefetch_factor=4 if workers > 0 else None,
        )

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.sampler.set_epoch(epoch, start)

    def __len__(self) -> int:
        return len(self.loader)

    def _account(self, batch: dict[str, Any]) -> None:
        stats = self.stats
        stats.attempts += batch["attempts"]
        stats.delivered += 0 if batch["video"] is None else len(batch["video"])
        stats.short += batch["short"]
        for path, reason, message in batch["failures"]:
            stats.failed[reason] = stats.failed.get(reason, 0) + 1
            if path not in stats.bad_files:
                stats.bad_files[path] = reason
                if len(stats.bad_files) <= 5:
                    log.warning("skipping clip: %s", message)
                elif len(stats.bad_files) == 6:
                    log.warning("more unreadable clips; the count is in the loader stats")

    def check(self, final: bool = False) -> None:
        stats = self.stats
        if stats.attempts == 0 or (not final and stats.attempts < self.min_attempts_for_check):
            return
        share = stats.skipped / stats.attempts
        if share > self.max_bad_fraction:
            examples = "; ".join(f"{reason}: {path}" for path, reason in list(stats.bad_files.items())[:3])
            raise DataError(
                f"{stats.skipped} of {stats.attempts} clips could not be read ({share:.1%} > "
                f"data.max_bad_fraction={self.max_bad_fraction:g}), e.g. {examples}. Fix or drop them "
                f"from the list (salt-budget data check), or raise data.max_bad_fraction."
            )

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for batch in self.loader:
            self._account(batch)
            self.check()
            if batch["video"] is not None:
                yield batch
        self.check(final=True)


def _quiet_worker(_: int) -> None:
    # Workers decode with their own threads; torch's intra-op pool would oversubscribe the cores.
    torch.set_num_threads(1)
