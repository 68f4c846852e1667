"""The data section of an experiment: where clips come from and how one clip is cut."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from trainers.config import to_dict
from trainers.data.synth_scene import SceneConfig
from trainers.data.transforms import IMAGENET_MEAN, IMAGENET_STD


@dataclass
class SyntheticConfig:
    """The embedded data set; every field enters the cache key."""

    train: int = 2000
    val: int = 500
    frames: int = 32  # frames per generated clip
    size: int = 64  # square frame side in pixels (even: H.264 4:2:0 needs it)
    seed: int = 0
    fps: int = 8
    crf: int = 18  # H.264 quality: low enough that compression does not erase the texture classes
    scene: SceneConfig = field(default_factory=SceneConfig)

    def validate(self) -> None:
        if self.train < 1 or self.val < 1:
            raise ValueError(f"train and val need at least one clip each (got {self.train}, {self.val})")
        if self.frames < 2:
            raise ValueError(f"frames must be >= 2 for motion to exist (got {self.frames})")
        if self.size < 16 or self.size % 2:
            raise ValueError(f"size must be even and >= 16 (got {self.size})")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"crf must lie in 0..51 (got {self.crf})")


@dataclass
class PretrainList:
    """One list of a pre-training mixture: a path per line (further columns, such as V-JEPA's dummy label,
    are ignored) and its share of the samples."""

    path: str
    weight: float = 1.0


@dataclass
class DataConfig:
    dataset: Literal["synthetic", "lists"] = "synthetic"
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    # dataset: lists -> CSV clip lists (path, then one label column per task).
    train_list: str | None = None
    val_list: str | None = None
    tasks: list[str] = field(default_factory=lambda: ["appearance", "motion"])
    # Class count per task; a task missing here takes max(label) + 1 of the train list.
    num_classes: dict[str, int] = field(default_factory=dict)
    # The pre-training data, when it is not the train list: lists of unlabelled clips mixed by weight (V-JEPA's
    # mixtures, e.g. K710 + SSv2 + a Panda70M subset). A list's weight is its share of the samples drawn
    # (normalised over the lists), whatever its length; with several lists every epoch draws as many samples
    # as the lists hold, with replacement. Evaluation never reads them: the probe reads data.train_list /
    # val_list, or the lists of probe.tasks.
    pretrain: list[PretrainList] = field(default_factory=list)
    # Where the synthetic set is generated on first use; default $SALT_BUDGET_CACHE or ~/.cache/salt-budget.
    cache_dir: str | None = None

    frames: int = 16
    frame_step: int = 2
    resolution: int = 64
    crop_scale: tuple[float, float] = (0.3, 1.0)
    crop_aspect: tuple[float, float] = (0.75, 1.35)
    hflip: bool = True
    eval_crop_fraction: float = 0.875
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    short_clip: Literal["pad", "loop"] = "pad"

    reader: Literal["auto", "decord", "pyav", "torchcodec"] = "auto"
    decode_threads: int = 1
    # torchcodec only: "cuda" decodes on the GPU (NVDEC) where one is present and the torchcodec build has
    # CUDA, else it falls back to the CPU with a warning. It frees CPU time, not GPU time: frames come back
    # to the CPU for cropping. In DataLoader workers started by fork CUDA cannot start: use workers: 0.
    decode_device: Literal["cpu", "cuda"] = "cpu"
    workers: int = 2
    # Keep each decoded video in memory (per loading process) up to this many MB, so that later epochs
    # skip decoding: for small sets such as the embedded one at 32 px (about 100 MB for 1,000 clips of
    # 32 frames), where decoding is a third of a CPU training step. 0: decode every time.
    decoded_cache_mb: float = 0
    pin_memory: bool = True
    # Past this share of unreadable clips the run stops: a broken list should not train quietly.
    max_bad_fraction: float = 0.01

    def validate(self) -> None:
        if self.dataset == "lists" and not self.train_list and not self.pretrain:
            raise ValueError("dataset 'lists' needs data.pretrain (lists of clips to pre-train on) or data.train_list "
                             "(a CSV of 'path label...' lines)")
        bad = [entry.path for entry in self.pretrain if not entry.weight > 0]
        if bad:
            raise ValueError(f"data.pretrain weights must be > 0 (not for: {', '.join(bad)})")
        if self.frames < 1 or self.frame_step < 1 or self.resolution < 8:
            raise ValueError(
                f"frames >= 1, frame_step >= 1 and resolution >= 8 required "
                f"(got {self.frames}, {self.frame_step}, {self.resolution})"
            )
        low, high = self.crop_scale
        if not 0 < low <= high <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1 (got {self.crop_scale})")
        if not 0 < self.crop_aspect[0] <= self.crop_aspect[1]:
            raise ValueError(f"crop_aspect must satisfy 0 < low <= high (got {self.crop_aspect})")
        if not 0 < self.eval_crop_fraction <= 1:
            raise ValueError(f"eval_crop_fraction must lie in (0, 1] (got {self.eval_crop_fraction})")
        if not 0 <= self.max_bad_fraction < 1:
            raise ValueError(f"max_bad_fraction must lie in [0, 1) (got {self.max_bad_fraction})")
        if self.decode_device not in ("cpu", "cuda"):
            raise ValueError(f"decode_device must be 'cpu' or 'cuda' (got {self.decode_device!r})")
        if self.workers < 0 or self.decode_threads < 1 or self.decoded_cache_mb < 0:
            raise ValueError("workers and decoded_cache_mb must be >= 0 and decode_threads >= 1")
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"task names repeat: {self.tasks}")
        unknown = set(self.num_classes) - set(self.tasks)
        if unknown:
            raise ValueError(f"num_classes names tasks not in data.tasks: {sorted(unknown)}")

    def resolved_cache_dir(self) -> Path:
        root = self.cache_dir or os.environ.get("SALT_BUDGET_CACHE") or "~/.cache/salt-budget"
        return Path(root).expanduser().resolve()


# Loader settings change how fast clips arrive, not which clips: a cache of what the clips give (an encoder's
# features) is keyed without them. The readers agree frame for frame on the CPU (tests/test_readers_torchcodec.py);
# NVDEC (decode_device cuda) converts colours its own way, close to FFmpeg's but not measured here (no GPU): it
# is left out of the key like the reader.
LOADER_ONLY = frozenset({"workers", "pin_memory", "decode_threads", "reader", "decode_device", "max_bad_fraction",
                         "cache_dir", "decoded_cache_mb"})


def data_view(data: DataConfig) -> dict[str, Any]:
    """The data section as plain data without its loader-only keys: what keys a cache of what the clips give."""
    return {k: v for k, v in to_dict(data).items() if k not in LOADER_ONLY}
