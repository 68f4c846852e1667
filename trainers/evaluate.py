"""Frozen-backbone evaluation: cached features, the attentive probe per task, RankMe.

Features of an encoder are extracted once per (encoder, data view) and cached; every probe head
and task then trains on the cache, which is what makes probing many checkpoints affordable.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from trainers.config import config_hash, to_dict
from trainers.data.build import ResolvedData, build_dataset, pretrain_entries, read_split, resolve_data
from trainers.data.config import DataConfig
from trainers.data.dataset import ClipLoader
from trainers.data.transforms import normalize_clips
from trainers.loop import resolve_device
from trainers.memory import release_memory
from trainers.models.probe import AttentiveProbe
from trainers.ridge_probe import ridge_readout
from trainers.models.vit import VisionTransformer
from trainers.provenance import provenance
from trainers.stage_config import ProbeConfig


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


# The readers agree frame for frame on the CPU (tests/test_readers_torchcodec.py). NVDEC (decode_device cuda)
# converts colours its own way, close to FFmpeg's but not measured here (no GPU); it is keyed like the reader.
_LOADER_ONLY = {"workers", "pin_memory", "decode_threads", "reader", "decode_device", "max_bad_fraction",
                "cache_dir", "decoded_cache_mb"}


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


def rankme(embeddings: torch.Tensor) -> float:
    """RankMe (Garrido et al.): exp of the entropy of the normalised singular values of the raw
    (uncentred) N x K embedding matrix."""
    singular = torch.linalg.svdvals(embeddings.double())
    p = singular / singular.sum() + 1e-7
    return float(torch.exp(-(p * p.log()).sum()))


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
    clip_view = {k: v for k, v in to_dict(data).items() if k not in _LOADER_ONLY}
    view = {"encoder": encoder_key, "data": clip_view, "split": split, "single_frame": single_frame}
    if clips * views > 1:  # one clip, one view keys as before, so earlier caches stay valid
        view.update(clips=clips, views=views)
    path = cache_dir / f"{split}-{config_hash(view)}.pt"
    if path.is_file():
        return torch.load(path, weights_only=True)
    result = extract_features(encoder, data, resolved, split, batch_size=batch_size, device=device,
                              single_frame=single_frame, progress=progress, clips=clips, views=views)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(result, tmp)
    os.replace(tmp, path)
    return result


def _accuracy(probe: AttentiveProbe, features: torch.Tensor, labels: torch.Tensor, device: torch.device,
              batch_size: int, views: int = 1) -> float:
    """Accuracy over videos; with several views (adjacent rows of a video), of their mean softmax."""
    probe.eval()
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(labels), batch_size):
            rows = features[start * views : (start + batch_size) * views].to(device).float()
            probs = probe(rows).softmax(-1).view(-1, views, probe.head.out_features).mean(1)
            correct += int((probs.argmax(-1).cpu() == labels[start : start + batch_size]).sum())
    return correct / max(1, len(labels))


def view_rows(videos: torch.Tensor, views: int) -> torch.Tensor:
    """Feature rows of the given videos (rows of a video are adjacent, `views` of them)."""
    return (videos[:, None] * views + torch.arange(views)).flatten()


# A head whose train accuracy stays this close to chance has not fitted its own data: its val accuracy
# measures the probe's optimisation, not the encoder, and is never reported as a result.
CONVERGED_MARGIN = 0.05


def fit_probe(
    features: torch.Tensor, labels: torch.Tensor, num_classes: int, cfg: ProbeConfig, *, lr: float,
    weight_decay: float, seed: int, device: torch.device, grid: tuple[int, int, int],
    trace: list[dict[str, float]] | None = None,
) -> AttentiveProbe:
    """AdamW on the cached features. With `cfg.steps` null, the fast protocol: `epochs` passes, cosine lr
    without warm-up. With `cfg.steps`, constant lr until the train accuracy stops rising (ProbeConfig);
    `trace`, when given, receives each check's step and train accuracy."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    probe = AttentiveProbe(features.size(-1), num_classes, depth=cfg.depth, heads=cfg.heads,
                           grid=grid if cfg.position == "sincos" else None).to(device)
    optimizer = torch.optim.AdamW(probe.parameters(), lr=lr, weight_decay=weight_decay)
    per_epoch = math.ceil(len(features) / cfg.batch_size)
    total = cfg.epochs * per_epoch if cfg.steps is None else cfg.steps
    checked = torch.randperm(len(features), generator=torch.Generator().manual_seed(seed + 1))[:1000]
    best, stale, step = -1.0, 0, 0
    while step < total:
        probe.train()
        order = torch.randperm(len(features), generator=generator)
        for start in range(0, len(features), cfg.batch_size):
            chosen = order[start : start + cfg.batch_size]
            if cfg.steps is None:
                for group in optimizer.param_groups:
                    group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * step / total))
            logits = probe(features[chosen].to(device).float())
            loss = F.cross_entropy(logits, labels[chosen].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if cfg.steps is not None and step % cfg.check_every == 0:
                accuracy = _accuracy(probe, features[checked], labels[checked], device, cfg.batch_size)
                probe.train()
                if trace is not None:
                    trace.append({"step": step, "train_accuracy": accuracy})
                if accuracy >= best + cfg.min_gain:
                    best, stale = accuracy, 0
                else:
                    stale += 1
                if stale >= cfg.patience:
                    return probe
            if step >= total:
                break
    return probe


def probe_task(
    train: dict[str, torch.Tensor], val: dict[str, torch.Tensor], column: int, num_classes: int,
    cfg: ProbeConfig, *, seed: int, device: torch.device, grid: tuple[int, int, int],
) -> dict[str, Any]:
    """Train one head per (lr, wd) of the protocol; with several, choose on a split of videos held out from
    TRAIN. Each view of a video trains as a sample of its own; accuracies average a video's views."""
    heads = cfg.head_grid()
    views = train.get("views", 1)
    features, labels = train["features"], train["labels"][:, column]
    val_labels = val["labels"][:, column]
    tried = []
    if len(heads) == 1:
        chosen = heads[0]
        fit_videos = torch.arange(len(labels))
    else:
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
        held = max(1, int(round(cfg.holdout_fraction * len(labels))))
        fit_videos, hold_videos = order[held:], order[:held]
        fit_features, fit_labels = features[view_rows(fit_videos, views)], labels[fit_videos]
        hold_features, hold_labels = features[view_rows(hold_videos, views)], labels[hold_videos]
        for lr, wd in heads:
            probe = fit_probe(fit_features, fit_labels.repeat_interleave(views), num_classes, cfg, lr=lr,
                              weight_decay=wd, seed=seed, device=device, grid=grid)
            tried.append({"lr": lr, "weight_decay": wd, "holdout_accuracy": _accuracy(
                probe, hold_features, hold_labels, device, cfg.batch_size, views)})
        best = max(tried, key=lambda head: head["holdout_accuracy"])
        chosen = (best["lr"], best["weight_decay"])
    fit_features, fit_labels = features[view_rows(fit_videos, views)], labels[fit_videos]
    trace: list[dict[str, float]] = []
    probe = fit_probe(fit_features, fit_labels.repeat_interleave(views), num_classes, cfg, lr=chosen[0],
                      weight_decay=chosen[1], seed=seed, device=device, grid=grid, trace=trace)
    chance = float(np.bincount(val_labels.numpy(), minlength=num_classes).max() / len(val_labels))
    train_accuracy = _accuracy(probe, fit_features, fit_labels, device, cfg.batch_size, views)
    return {
        "accuracy": _accuracy(probe, val["features"], val_labels, device, cfg.batch_size, views),
        "train_accuracy": train_accuracy,
        "chance": chance,
        "converged": train_accuracy >= chance + CONVERGED_MARGIN,
        "steps": trace[-1]["step"] if trace else cfg.epochs * math.ceil(len(fit_features) / cfg.batch_size),
        "protocol": cfg.protocol,
        "trace": trace,
        "num_classes": num_classes,
        "lr": chosen[0], "weight_decay": chosen[1], "heads": tried,
    }


def probe_encoder(
    encoder: VisionTransformer, encoder_key: str, data: DataConfig, cfg: ProbeConfig, cache_dir: str | os.PathLike,
    *, seed: int = 0, progress: bool = True,
) -> dict[str, Any]:
    """Probe every task (probe.tasks, each on its own lists, or the data section's) on the frozen `encoder`;
    also RankMe of the first set's mean-pooled val features."""
    device = resolve_device(cfg.device)
    tasks: dict[str, Any] = {}
    readouts: dict[str, dict[str, Any]] = {f"ridge_{pooling}": {} for pooling in cfg.also_ridge}
    first: dict[str, Any] | None = None
    for probe_set in probe_sets(data, cfg, progress=progress):
        views = {
            split: cached_features(encoder, encoder_key, probe_set.data, probe_set.resolved, split, Path(cache_dir),
                                   batch_size=cfg.extract_batch_size, device=device, single_frame=cfg.single_frame,
                                   progress=progress, clips=probe_set.clips, views=probe_set.views)
            for split in ("train", "val")
        }
        first = first or views
        set_tasks = probe_set.resolved.tasks
        # The clips of a video sit side by side in time: the probe's position code and the pooling see C x T steps.
        grid = (encoder.grid[0] * probe_set.clips, *encoder.grid[1:])

        def ridge(pooling: str) -> dict[str, Any]:
            results = ridge_readout(
                views["train"]["features"], views["train"]["labels"], views["val"]["features"], views["val"]["labels"],
                [task.num_classes for task in set_tasks], lambdas=cfg.ridge_lambdas, folds=cfg.ridge_folds,
                seed=seed, time_steps=grid[0], pooling=pooling, views=probe_set.views)
            return dict(zip([task.name for task in set_tasks], results))

        for pooling in cfg.also_ridge:
            readouts[f"ridge_{pooling}"].update(ridge(pooling))
        if cfg.kind == "ridge":
            found = ridge(cfg.pooling)
        else:
            found = {task.name: probe_task(views["train"], views["val"], column, task.num_classes, cfg, seed=seed,
                                           device=device, grid=grid)
                     for column, task in enumerate(set_tasks)}
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
    return {
        "tasks": tasks,
        "rankme": rankme(pooled),
        "single_frame": cfg.single_frame,
        "probe": cfg.kind,
        "pooling": cfg.pooling if cfg.kind == "ridge" else None,
        "readouts": readouts,
        "readout": cfg.readout(),
        "provenance": provenance(device),
        "position": cfg.position,
        "clips": {split: len(view["labels"]) for split, view in first.items()},
        "tokens": int(first["val"]["features"].size(1)),
        "width": int(first["val"]["features"].size(2)),
    }


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, path)


def probe_checkpoint(
    path: str | os.PathLike, data: DataConfig, cfg: ProbeConfig, *, seed: int = 0, out: Path | None = None,
    progress: bool = True,
) -> tuple[dict[str, Any], Path]:
    """Probe the encoder a checkpoint evaluates; features are cached in its run's features/ folder and
    the result goes to <run>/probes/step_XXXXXXXX[-single_frame].json unless `out` says otherwise."""
    from trainers.encoders import encoder_from_checkpoint

    path = Path(path).resolve()
    encoder, payload = encoder_from_checkpoint(path)
    stat = path.stat()
    key = f"{path}:{stat.st_size}:{stat.st_mtime_ns}"
    run_dir = path.parent.parent
    result = probe_encoder(encoder, key, data, cfg, run_dir / "features", seed=seed, progress=progress)
    result.update(checkpoint=str(path), kind=payload.get("kind"), step=payload.get("step"),
                  encoder=payload["encoder"]["preset"])
    suffix = "-single_frame" if cfg.single_frame else ""
    out = out or run_dir / "probes" / f"{path.stem}{suffix}.json"
    write_json(out, result)
    release_memory()  # the features and the readout's matrices: a sweep's process probes unit after unit
    return result, out


def probe_random_init(
    description: dict[str, Any], data: DataConfig, cfg: ProbeConfig, out_dir: str | os.PathLike, *, seed: int = 0,
    progress: bool = True,
) -> tuple[dict[str, Any], Path]:
    """The baseline every trained encoder is read against: the same architecture, untrained."""
    from trainers.encoders import build_encoder

    torch.manual_seed(seed)
    encoder = build_encoder(description)
    out_dir = Path(out_dir)
    result = probe_encoder(encoder, f"random:{json.dumps(description, sort_keys=True)}:{seed}", data, cfg,
                           out_dir / "features", seed=seed, progress=progress)
    result.update(checkpoint=None, kind="random_init", step=0, encoder=description["preset"])
    suffix = "-single_frame" if cfg.single_frame else ""
    out = out_dir / "probes" / f"random_init-{description['preset']}-seed{seed}{suffix}.json"
    write_json(out, result)
    release_memory()  # the features and the readout's matrices: a sweep's process probes unit after unit
    return result, out
