"""Tokens of every clip of a split under a frozen encoder, extracted once per (encoder, data view) and cached:
every probe head and task then trains on the cache, which is what makes probing many checkpoints affordable."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import torch

from trainers.atomic import atomic_write
from trainers.config import config_hash
from trainers.data.build import ResolvedData, build_dataset
from trainers.data.config import DataConfig, data_view
from trainers.data.dataset import ClipLoader
from trainers.data.transforms import normalize_clips
from trainers.models.vit import VisionTransformer


def centre_frame_clips(clips: torch.Tensor) -> torch.Tensor:
    """Every frame replaced by the centre one: the encoder sees appearance but no motion."""
    centre = clips[:, :, clips.size(2) // 2 : clips.size(2) // 2 + 1]
    return centre.expand_as(clips).contiguous()


def extract_features(
    encoder: VisionTransformer, data: DataConfig, resolved: ResolvedData, split: str, *,
    batch_size: int, device: torch.device, single_frame: bool, progress: bool = True,
    max_batches: int | None = None, timings: list[tuple[float, float]] | None = None, clips: int = 1,
    views: int = 1,
) -> dict[str, Any]:
    """Tokens of every clip of `split` (of its first `max_batches` batches when given). `timings`, when
    given, receives per batch (seconds waiting for it, seconds computing it): what `salt-budget bench
    --stage probe` reads. With several clips or views, `features` has a row per (video, view), views of a
    video adjacent, and each row the tokens of the video's clips side by side (clips x tokens); `labels`
    and `index` keep a row per video."""
    dataset = build_dataset(data, split, train=False, resolved=resolved, clips=clips, views=views)
    loader = ClipLoader(dataset, batch_size=batch_size, shuffle=False, workers=data.workers,
                        pin_memory=data.pin_memory, max_bad_fraction=data.max_bad_fraction)
    features, labels, indices = [], [], []
    encoder = encoder.to(device).eval()
    waiting = time.perf_counter()
    with torch.inference_mode():
        for number, batch in enumerate(loader, start=1):
            arrived = time.perf_counter()
            video = batch["video"]
            videos = video.size(0)
            if video.dim() == 6:  # (videos, views x clips, 3, T, H, W): the encoder reads one clip at a time
                video = video.flatten(0, 1)
            batch_clips = normalize_clips(video.to(device), data.mean, data.std)
            if single_frame:
                batch_clips = centre_frame_clips(batch_clips)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                tokens = encoder(batch_clips)
            tokens = tokens.reshape(videos * views, clips * tokens.size(1), tokens.size(2))
            features.append(tokens.to(torch.float16).cpu())  # a blocking copy: the device is done with the batch
            labels.append(batch["labels"])
            indices.append(batch["index"])
            if timings is not None:
                done = time.perf_counter()
                timings.append((arrived - waiting, done - arrived))
                waiting = done
            if progress and (number % 20 == 0 or number == len(loader)):
                print(f"[probe] features of {split}: {number}/{len(loader)} batches", file=sys.stderr, flush=True)
            if max_batches is not None and number >= max_batches:
                break
    return {"features": torch.cat(features), "labels": torch.cat(labels), "index": torch.cat(indices), "views": views}


def cached_features(
    encoder: VisionTransformer, encoder_key: str, data: DataConfig, resolved: ResolvedData, split: str,
    cache_dir: Path, *, batch_size: int, device: torch.device, single_frame: bool, progress: bool = True,
    clips: int = 1, views: int = 1,
) -> dict[str, Any]:
    # Only what changes the features keys the cache: loader settings (workers, threads...) do not.
    view = {"encoder": encoder_key, "data": data_view(data), "split": split, "single_frame": single_frame}
    if clips * views > 1:  # one clip, one view keys as before, so earlier caches stay valid
        view.update(clips=clips, views=views)
    path = cache_dir / f"{split}-{config_hash(view)}.pt"
    if path.is_file():
        return torch.load(path, weights_only=True)
    result = extract_features(encoder, data, resolved, split, batch_size=batch_size, device=device,
                              single_frame=single_frame, progress=progress, clips=clips, views=views)
    cache_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: torch.save(result, tmp))
    return result
