"""The embedded data set on disk: H.264 MP4 clips, train/val lists and meta.json.

The clips go through the same decord path and list format as a user's K400 or SSv2, so the
embedded default tests the real pipeline. Each clip is rendered from its own seed
(seed, split, index), so the set is identical whatever the number of generating processes.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from trainers.config import config_hash, to_dict
from trainers.data.clip_list import write_clip_list
from trainers.data.config import SyntheticConfig
from trainers.data.synth_scene import (
    APPEARANCE_CLASSES,
    APPEARANCE_MIRROR,
    APPEARANCE_REVERSE,
    MOTION_CLASSES,
    MOTION_MIRROR,
    MOTION_REVERSE,
    render_clip,
)
from trainers.locks import file_lock

# Bump when the renderer or the encoding changes what a given config produces: it is part of the cache key.
GENERATOR_VERSION = 2
SPLITS = {"train": 0, "val": 1}
TASKS = {
    "appearance": (APPEARANCE_CLASSES, APPEARANCE_MIRROR, APPEARANCE_REVERSE),
    "motion": (MOTION_CLASSES, MOTION_MIRROR, MOTION_REVERSE),
}


def encode_h264(path: str | os.PathLike, frames: np.ndarray, fps: int, options: dict[str, str],
                container_options: dict[str, str] | None = None, thread_count: int | None = None) -> None:
    """(T, H, W, 3) uint8 RGB -> H.264 (yuv420p) with libx264 `options`, frame i at timestamp i."""
    import av

    with av.open(str(path), "w", options=container_options or {}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        if thread_count is not None:
            stream.codec_context.thread_count = thread_count
        stream.options = options
        for index, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            picture.pts = index
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_mp4(path: str | os.PathLike, frames: np.ndarray, fps: int = 8, crf: int = 18) -> None:
    """(T, H, W, 3) uint8 RGB -> H.264 MP4 (yuv420p), the same bytes for the same frames.

    x264's macroblock tree made the bytes of a clip depend on what the process had encoded
    before (seen on 64 px clips), so it is off; one encoder thread, explicit timestamps and
    bit-exact muxing remove the other sources of variation."""
    encode_h264(path, frames, fps, {"crf": str(crf), "preset": "veryfast", "threads": "1", "x264-params": "mbtree=0"},
                {"fflags": "+bitexact"}, thread_count=1)


def split_labels(cfg: SyntheticConfig, split: str) -> np.ndarray:
    """(n, 2) appearance and motion labels, each balanced over its classes and shuffled."""
    count = cfg.train if split == "train" else cfg.val
    rng = np.random.default_rng([cfg.seed, SPLITS[split], 1_000_003])
    appearance = rng.permutation(np.arange(count) % len(APPEARANCE_CLASSES))
    motion = rng.permutation(np.arange(count) % len(MOTION_CLASSES))
    return np.stack([appearance, motion], axis=1)


def clip_seed(cfg: SyntheticConfig, split: str, index: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([cfg.seed, SPLITS[split], index])


def render_split_clip(cfg: SyntheticConfig, split: str, index: int, appearance: int, motion: int) -> np.ndarray:
    return render_clip(appearance, motion, clip_seed(cfg, split, index), cfg.frames, cfg.size, cfg.scene).frames


WriteJob = tuple[SyntheticConfig, str, int, int, int, str]


def _write_job(job: WriteJob) -> None:
    cfg, split, index, appearance, motion, path = job
    write_mp4(path, render_split_clip(cfg, split, index, appearance, motion), cfg.fps, cfg.crf)


def _jobs(cfg: SyntheticConfig, out: Path) -> Iterator[WriteJob]:
    for split in SPLITS:
        for index, (appearance, motion) in enumerate(split_labels(cfg, split).tolist()):
            yield cfg, split, index, appearance, motion, str(out / split / f"{index:06d}.mp4")


_SINGLE_THREADED = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for processes started inside the block (spawned children read them at start)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class SynthSummary:
    out: Path
    clips: int
    seconds: float

    @property
    def clips_per_second(self) -> float:
        return self.clips / self.seconds if self.seconds > 0 else float("inf")


def generate_synthetic(
    cfg: SyntheticConfig, out: str | os.PathLike, *, workers: int | None = None, progress: bool = True
) -> SynthSummary:
    """Write the data set into `out` (created; must be empty). meta.json is written last: its presence
    means the set is complete."""
    from trainers.progress import progress as progress_bar

    cfg.validate()
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; choose a new folder or remove it first")
    for split in SPLITS:
        (out / split).mkdir(parents=True, exist_ok=True)
    total = cfg.train + cfg.val
    workers = max(1, min(workers or os.cpu_count() or 1, total))
    start = time.perf_counter()
    jobs = _jobs(cfg, out)
    with progress_bar(total=total, desc=f"synthesising clips into {out}", unit="clip", enabled=progress) as bar:
        if workers == 1:
            for job in jobs:
                _write_job(job)
                bar.update()
        else:
            # spawn, not fork: the caller may hold threads (torch, Ray) that a fork would copy mid-lock.
            # One BLAS thread per process: the renderer's matmuls otherwise oversubscribe the cores
            # (measured: 2 processes were no faster than 1).
            # An executor, not a Pool: a child that dies raises BrokenProcessPool instead of hanging.
            context = multiprocessing.get_context("spawn")
            with _environment(_SINGLE_THREADED), ProcessPoolExecutor(workers, mp_context=context) as pool:
                for _ in pool.map(_write_job, jobs, chunksize=8):
                    bar.update()
    seconds = time.perf_counter() - start
    for split in SPLITS:
        labels = split_labels(cfg, split)
        rows = [(f"{split}/{index:06d}.mp4", labels[index].tolist()) for index in range(len(labels))]
        write_clip_list(out / f"{split}.csv", rows)
    meta = {
        "generator_version": GENERATOR_VERSION,
        "config": to_dict(cfg),
        "tasks": {
            name: {"classes": list(classes), "mirror": list(mirror), "reverse": list(reverse)}
            for name, (classes, mirror, reverse) in TASKS.items()
        },
        "lists": {split: f"{split}.csv" for split in SPLITS},
        "clips": {"train": cfg.train, "val": cfg.val},
        "generation_seconds": round(seconds, 3),
    }
    tmp = out / ".meta.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, out / "meta.json")
    return SynthSummary(out, total, seconds)


def read_meta(folder: str | os.PathLike) -> dict:
    path = Path(folder) / "meta.json"
    if not path.is_file():
        raise FileNotFoundError(f"{folder} holds no complete synthetic data set (no meta.json)")
    return json.loads(path.read_text())


def cache_key(cfg: SyntheticConfig) -> str:
    return f"synth-v{GENERATOR_VERSION}-{config_hash(cfg)}"


def ensure_synthetic(cfg: SyntheticConfig, cache_dir: str | os.PathLike, *, workers: int | None = None,
                     progress: bool = True) -> Path:
    """The cached set for `cfg`, generated on first use. Concurrent callers (parallel trials) wait
    on a lock instead of generating twice; a crash mid-generation leaves only a temporary folder."""
    cache_dir = Path(cache_dir)
    target = cache_dir / cache_key(cfg)
    if (target / "meta.json").is_file():
        return target
    with file_lock(cache_dir / f".{target.name}.lock"):
        if (target / "meta.json").is_file():
            return target
        # Holding the lock, any partial folder is the remains of a crashed generation.
        for stale in cache_dir.glob(f".{target.name}.partial*"):
            shutil.rmtree(stale, ignore_errors=True)
        staging = cache_dir / f".{target.name}.partial{os.getpid()}"
        generate_synthetic(cfg, staging, workers=workers, progress=progress)
        os.replace(staging, target)
    return target
