"""The probe stage's speed: feature extraction (the frozen encoder over the clips, through features.py's
extract_features itself, so the data wait is real) and the probe head's fit on cached features
(attentive.py's fit_probe, or the ridge readout), with what a whole probe of the experiment would take.

Extraction is a forward pass only (2ND FLOPs), run as a probe runs it: bf16 autocast on CUDA, fp32
on a CPU. The attentive head trains in fp32 on the cached features; its FLOPs per step are counted by
torch's FlopCounterMode on one step (forward and backward), so no formula of ours stands between the
head and its rate.
"""

from __future__ import annotations

import copy
import math
import resource
import time
from dataclasses import asdict, dataclass, field
from statistics import median
from typing import Any

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from trainers.bench import cpu_name, matmul_tflops, peak_tflops, run_versions
from trainers.config import ConfigError
from trainers.data.build import build_dataset
from trainers.encoders import build_encoder, encoder_description
from trainers.flops import forward_matmul_flops
from trainers.loop import resolve_device
from trainers.probe.attentive import build_probe, fit_probe
from trainers.probe.attentive_head import AttentiveProbe
from trainers.probe.features import extract_features
from trainers.probe.ridge import ridge_probe_task
from trainers.probe.sets import probe_sets

HEAD_STEPS = 24  # timed steps of the head, at least: a CPU's step time wanders by 20% over a handful


@dataclass
class ProbeBenchResult:
    stage: str
    encoder: str
    probe: str  # attentive | ridge
    batch_size: int  # extraction batch
    frames: int
    resolution: int
    device: str
    device_name: str
    precision: str  # of extraction
    batches_timed: int
    extract_step_s: float  # median seconds of a batch, its wait for data taken out
    extract_data_wait_share: float  # of the timed batches' wall time, waiting for the next batch
    extract_clips_per_s: float  # data waits included
    extract_flops_per_clip: float  # forward matmul FLOPs of the encoder on all tokens
    extract_tflops: float  # per batch, data waits taken out
    head_batch_size: int
    head_step_s: float | None  # attentive: mean seconds of a training step over one fit (None for ridge)
    head_flops_per_step: float | None  # attentive: FlopCounterMode's count of one step's forward and backward
    head_tflops: float | None
    head_fit_s: float  # one head fit (one task, one lr/wd pair or the whole lambda grid) on the timed clips
    train_clips: int  # of the experiment's probe splits
    val_clips: int
    # Estimate of probing one checkpoint: extraction of both splits + every task's head fits (the heads'
    # accuracy passes and RankMe, forward passes over cached features, are left out).
    full_probe_s: float
    matmul_tflops: float  # measured here, in the extraction's precision
    peak_tflops: float | None
    mfu_matmul: float  # extraction's achieved / measured matmul rate
    mfu_peak: float | None
    peak_memory_bytes: int
    versions: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def head_step_flops(probe: AttentiveProbe, features: torch.Tensor, labels: torch.Tensor) -> int:
    """FLOPs of one training step's forward and backward, as torch counts them (the optimizer's are not matmuls).
    Counted on SDPA's math backend: FlopCounterMode has no formula for the CPU flash kernel (it counts 0)."""
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        F.cross_entropy(probe(features.float()), labels).backward()
    probe.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def _head_fits(cfg: Any) -> int:
    """Fits per task: one per (lr, wd) pair and the refit of the chosen one, or a single fit."""
    pairs = len(cfg.head_grid())
    return 1 if pairs == 1 else pairs + 1


def bench_probe(experiment: Any, *, encoder_preset: str | None = None, warmup: int = 2, batches: int = 8,
                matmul_size: int | None = None) -> ProbeBenchResult:
    """Time probing the experiment's student encoder (random weights: speed does not depend on them; or
    `encoder_preset`): `warmup` then `batches` extraction batches of the train split, then the head."""
    data = experiment.data
    cfg = copy.deepcopy(experiment.probe)
    encoder_cfg = copy.deepcopy(experiment.student.encoder)
    if encoder_preset:
        encoder_cfg.preset = encoder_preset
    device = resolve_device(cfg.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    # The first task's lists (probe.tasks, or the data section's), read one clip and one view a video.
    probe_set = probe_sets(data, cfg, progress=False)[0]
    data, resolved = probe_set.data, probe_set.resolved
    sizes = {split: len(build_dataset(data, split, train=False, resolved=resolved)) for split in ("train", "val")}
    needed = (warmup + batches) * cfg.extract_batch_size
    if sizes["train"] < needed:
        raise ConfigError(f"the train split has {sizes['train']} clips; {warmup} + {batches} batches of "
                         f"{cfg.extract_batch_size} need {needed}: lower --batches or probe.extract_batch_size")
    torch.manual_seed(0)
    encoder = build_encoder(encoder_description(encoder_cfg, data))
    timings: list[tuple[float, float]] = []
    extracted = extract_features(encoder, data, resolved, "train", batch_size=cfg.extract_batch_size, device=device,
                                 single_frame=cfg.single_frame, progress=False, max_batches=warmup + batches,
                                 timings=timings)
    timed = timings[warmup:]
    step = median(compute for _, compute in timed)
    wall = sum(wait + compute for wait, compute in timed)
    flops_per_clip = forward_matmul_flops(encoder, encoder.num_tokens)
    achieved = flops_per_clip * cfg.extract_batch_size / step / 1e12

    features = extracted["features"][warmup * cfg.extract_batch_size:]
    labels = extracted["labels"][warmup * cfg.extract_batch_size:, 0]
    num_classes = resolved.tasks[0].num_classes
    # attentive.probe_task's split: with several heads, a share of train is held out to choose one.
    held = max(1, round(cfg.holdout_fraction * sizes["train"])) if _head_fits(cfg) > 1 else 0
    fit_train = sizes["train"] - held
    if cfg.kind == "ridge":
        split = len(features) // 2
        started = time.perf_counter()
        ridge_probe_task(features[:split], labels[:split], features[split:], labels[split:], num_classes,
                         lambdas=cfg.ridge_lambdas, folds=cfg.ridge_folds, seed=0,
                         time_steps=encoder.grid[0], pooling=cfg.pooling)
        head_fit = time.perf_counter() - started
        head_step = head_flops = head_tflops = None
        # Linear in the clips for the pooled readouts; the flat grid's dual solve grows faster, so this is a floor.
        heads = head_fit * len(resolved.tasks) * sizes["train"] / split
    else:
        probe = build_probe(features.size(-1), num_classes, cfg, encoder.grid).to(device)
        batch = features[: cfg.batch_size].to(device)
        head_flops = float(head_step_flops(probe, batch, labels[: cfg.batch_size].to(device)))
        fit_cfg = copy.deepcopy(cfg)
        fit_cfg.epochs = 1
        lr, wd = cfg.head_grid()[0]
        fit_probe(features, labels, num_classes, fit_cfg, lr=lr, weight_decay=wd, seed=0,
                  device=device, grid=encoder.grid)  # warm-up
        fit_cfg.epochs = max(1, math.ceil(HEAD_STEPS * cfg.batch_size / len(features)))
        steps = fit_cfg.epochs * math.ceil(len(features) / cfg.batch_size)
        started = time.perf_counter()
        fit_probe(features, labels, num_classes, fit_cfg, lr=lr, weight_decay=wd, seed=0,
                  device=device, grid=encoder.grid)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        head_fit = time.perf_counter() - started
        head_step = head_fit / steps
        head_tflops = head_flops / head_step / 1e12
        heads = (len(resolved.tasks) * _head_fits(cfg) * cfg.epochs * math.ceil(fit_train / cfg.batch_size)
                 * head_step)

    clips_per_s = len(timed) * cfg.extract_batch_size / wall
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    matmul = matmul_tflops(device, dtype, matmul_size or (8192 if device.type == "cuda" else 1024))
    peak = peak_tflops(device_name) if device.type == "cuda" else None
    memory = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
              else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return ProbeBenchResult(
        stage="probe", encoder=encoder_cfg.preset, probe=cfg.kind, batch_size=cfg.extract_batch_size,
        frames=data.frames, resolution=data.resolution, device=str(device), device_name=device_name,
        precision=str(dtype).split(".")[-1], batches_timed=len(timed), extract_step_s=step,
        extract_data_wait_share=sum(wait for wait, _ in timed) / wall, extract_clips_per_s=clips_per_s,
        extract_flops_per_clip=float(flops_per_clip), extract_tflops=achieved, head_batch_size=cfg.batch_size,
        head_step_s=head_step, head_flops_per_step=head_flops, head_tflops=head_tflops, head_fit_s=head_fit,
        train_clips=sizes["train"], val_clips=sizes["val"],
        full_probe_s=(sizes["train"] + sizes["val"]) / clips_per_s + heads, matmul_tflops=matmul,
        peak_tflops=peak, mfu_matmul=achieved / matmul, mfu_peak=achieved / peak if peak else None,
        peak_memory_bytes=int(memory), versions=run_versions(),
    )
