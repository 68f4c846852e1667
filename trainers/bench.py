"""Trainer speed, measured: one stage's steps through the real training loop (`train`, on the data set,
so the share of time waiting for data is real) and through a bare reference step on the same modules
and batches, the FLOPs model's rate against the device's peak and its measured matmul rate, and peak
memory.

The reference is the plainest driver of the same computation: forward, backward, clip, AdamW, on
batches prepared in memory. The ratio loop / reference is what the trainer's machinery costs (data
stream, schedules, mask transfers, metrics, checkpoints), not how fast the model code itself is.
"""

from __future__ import annotations

import copy
import json
import platform
import resource
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

import torch

from trainers.checkpoint import save_checkpoint
from trainers.data.build import build_loader, build_pretrain_dataset, resolve_data
from trainers.data.config import DataConfig
from trainers.encoders import build_encoder, encoder_description
from trainers.loop import param_groups, resolve_device
from trainers.train_step import backward_in_parts
from trainers.masks import MaskCollator, MaskGenerator, split_masked_batch
from trainers.provenance import code_commit, cpu_model
from trainers.registry import stage_kind
from trainers.stage_config import RunConfig, loaded_batch
from trainers.train import train_stage

# Dense bf16 tensor-core peaks from the vendors' data sheets, TFLOP/s (no sparsity).
PEAK_BF16_TFLOPS = {"H200": 989.4, "H100": 989.4, "A100": 312.0, "L40S": 362.1, "L4": 121.0, "A10G": 70.0}


@dataclass
class BenchResult:
    stage: str
    encoder: str
    batch_size: int
    frames: int
    resolution: int
    device: str
    device_name: str
    precision: str
    compile: bool
    steps_timed: int
    loop_step_s: float  # median over the timed windows, data waits taken out
    loop_data_wait_share: float  # of the loop's wall time, waiting for the next batch
    reference_step_s: float  # median of the bare reference step, timed before and after the loop
    loop_over_reference: float
    clips_per_s: float  # the loop's, data waits included
    flops_per_step: float  # docs/paper.md section 7 (6ND trained, 2ND frozen), measured token counts
    achieved_tflops: float  # flops_per_step / loop_step_s
    matmul_tflops: float  # measured on this device in this run
    peak_tflops: float | None  # data sheet, bf16 dense; None when unknown (a CPU)
    mfu_matmul: float  # achieved / measured matmul rate
    mfu_peak: float | None
    peak_memory_bytes: int  # CUDA: max allocated by the loop's runs; CPU: the process's peak resident set
    versions: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def peak_tflops(device_name: str) -> float | None:
    return next((value for key, value in PEAK_BF16_TFLOPS.items() if key in device_name), None)


def matmul_tflops(device: torch.device, dtype: torch.dtype, size: int, seconds: float = 1.0) -> float:
    """The rate of one square matmul, repeated for about `seconds`: what this device gives plain GEMMs."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    torch.matmul(a, b)
    sync(device)
    repeats, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        torch.matmul(a, b)
        repeats += 1
        if repeats % 8 == 0:
            sync(device)
    sync(device)
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e12


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _random_teacher(cfg: Any, data: DataConfig, folder: Path) -> Path:
    """A teacher checkpoint with random weights of the stage's encoder size, for a stage that needs a teacher
    (the SALT student): its step costs the same as against a trained one."""
    description = encoder_description(cfg.encoder, data)
    path = folder / "random_teacher.pt"
    save_checkpoint(path, {"kind": "teacher", "step": 0, "encoder": description,
                           "encoder_state": build_encoder(description).state_dict()})
    return path


def _loop_times(kind: str, cfg: Any, data: DataConfig, folder: Path, warmup: int, windows: int,
                per_window: int) -> tuple[list[float], list[float], list[float]]:
    """Per timed window: (seconds per step without data waits, data-wait share, clips/s), from metrics.jsonl."""
    cfg.optim.steps = warmup + windows * per_window
    cfg.optim.warmup_steps = min(cfg.optim.warmup_steps, warmup)
    cfg.optim.cooldown_steps = 0
    cfg.run = RunConfig(device=cfg.run.device, precision=cfg.run.precision, compile=cfg.run.compile,
                        activation_checkpointing=cfg.run.activation_checkpointing,
                        micro_batch=cfg.run.micro_batch, log_every=per_window,
                        checkpoint_every=10**9, keep_last=1)
    if warmup % per_window:
        raise ValueError(f"warm-up steps {warmup} must be a multiple of the window {per_window}")
    train_stage(kind, cfg, data, folder, seed=0, progress=False)
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    timed = [row for row in rows if row["step"] > warmup]
    walls = [b["wall_s"] - a["wall_s"] for a, b in zip(rows, rows[1:]) if b["step"] > warmup]
    compute = [(wall - row["data_wait_s"]) / per_window for wall, row in zip(walls, timed)]
    waits = [row["data_wait_share"] for row in timed]
    rates = [row["clips_per_s"] for row in timed]
    return compute, waits, rates


def _reference_times(stage: Any, cfg: Any, data: DataConfig, device: torch.device, warmup: int,
                     steps: int) -> tuple[list[float], float]:
    """Seconds of each timed bare step and the mean FLOPs of a timed step. The batches are the loop's own
    (the same loader, seed and mask draws, so the same token counts step for step), each decoded just before
    its step and off the clock, as the loop's are with data.workers 0; the step moves it to the device and
    normalises it, as the loop does."""
    resolved = resolve_data(data, progress=False)
    dataset, weights = build_pretrain_dataset(data, resolved)
    group, micro, passes = loaded_batch(cfg.run, cfg.masks, cfg.optim.batch_size)
    loader = build_loader(data, dataset, batch_size=group, shuffle=True, seed=0, drop_last=True,
                          collate_fn=MaskCollator(MaskGenerator(stage.masks, stage.grid), seed=0), weights=weights)

    def batches():  # a step's micro-batches; epochs continue as the loop's stream does
        epoch, parts = 0, []
        while True:
            loader.set_epoch(epoch, 0)
            for loaded in loader:
                parts.extend(split_masked_batch(loaded, micro))
                if len(parts) >= passes:
                    yield parts
                    parts = []
            epoch += 1

    autocast = device.type == "cuda" and cfg.run.precision == "bf16"
    stage.to(device, torch.bfloat16 if autocast else None)
    optimizer = torch.optim.AdamW(param_groups(stage.trainable), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas),
                                  fused=device.type == "cuda")
    loss_fn = torch.compile(stage.loss) if cfg.run.compile else stage.loss
    times, flops = [], []
    for step, parts in zip(range(warmup + steps), batches()):
        if step >= warmup:
            flops.append(sum(stage.flops_per_clip(part["masks"]) * len(part["video"]) for part in parts))
        sync(device)
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        backward_in_parts(loss_fn, parts, data, device, autocast)
        torch.nn.utils.clip_grad_norm_(stage.trainable.parameters(), cfg.optim.grad_clip or float("inf"))
        optimizer.step()
        stage.after_step(step + 1)
        sync(device)
        if step >= warmup:
            times.append(time.perf_counter() - started)
    return times, sum(flops) / len(flops)


def cpu_name() -> str:
    return f"{cpu_model()} ({torch.get_num_threads()} threads)"


def run_versions() -> dict[str, str]:
    commit = code_commit()
    return {"torch": torch.__version__, "python": platform.python_version(), "commit": commit,
            "cuda": torch.version.cuda or "", "threads": str(torch.get_num_threads()), "host": platform.node()}


def bench_stage(kind: str, experiment: Any, *, warmup: int = 4, windows: int = 3, per_window: int = 4,
                repeats: int = 1, matmul_size: int | None = None) -> BenchResult:
    """Time stage kind `kind` (trainers/registry.py) as the experiment configures it: `repeats` loop runs of
    `windows` x `per_window` timed steps after `warmup`, each followed by a reference run."""
    entry = stage_kind(kind)
    data = experiment.data
    cfg = copy.deepcopy(experiment.stage_config(kind))
    device = resolve_device(cfg.run.device)
    loop_memory = 0
    with tempfile.TemporaryDirectory(prefix="salt-bench-") as tmp:
        folder = Path(tmp)
        if entry.needs_teacher:
            cfg.teacher_checkpoint = str(_random_teacher(cfg, data, folder))
        torch.manual_seed(0)
        stage = entry.stage_class(cfg, data)
        # Reference and loop alternate, the reference first and last: a machine's speed drifts (clock boost,
        # caches, a neighbour's load) by as much as the difference measured, and alternating spreads the drift
        # over both sides of the ratio.
        reference, flops = _reference_times(stage, cfg, data, device, warmup, windows * per_window)
        compute, waits, rates = [], [], []
        for repeat in range(repeats):
            if device.type == "cuda":  # the loop's peak memory alone: the reference's copy leaves the device
                stage.to(torch.device("cpu"))
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            times = _loop_times(kind, copy.deepcopy(cfg), data, folder / f"loop{repeat}", warmup, windows, per_window)
            if device.type == "cuda":
                loop_memory = max(loop_memory, torch.cuda.max_memory_allocated(device))
            compute, waits, rates = compute + times[0], waits + times[1], rates + times[2]
            reference += _reference_times(stage, cfg, data, device, warmup, windows * per_window)[0]
    dtype = torch.bfloat16 if device.type == "cuda" and cfg.run.precision == "bf16" else torch.float32
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    matmul = matmul_tflops(device, dtype, matmul_size or (8192 if device.type == "cuda" else 1024))
    loop_step, reference_step = median(compute), median(reference)
    achieved = flops / loop_step / 1e12
    peak = peak_tflops(device_name) if device.type == "cuda" else None
    memory = loop_memory if device.type == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return BenchResult(
        stage=kind, encoder=cfg.encoder.preset, batch_size=cfg.optim.batch_size, frames=data.frames,
        resolution=data.resolution, device=str(device), device_name=device_name, precision=str(dtype).split(".")[-1],
        compile=cfg.run.compile, steps_timed=repeats * windows * per_window, loop_step_s=loop_step,
        loop_data_wait_share=median(waits), reference_step_s=reference_step,
        loop_over_reference=loop_step / reference_step, clips_per_s=median(rates), flops_per_step=flops,
        achieved_tflops=achieved, matmul_tflops=matmul, peak_tflops=peak, mfu_matmul=achieved / matmul,
        mfu_peak=achieved / peak if peak else None, peak_memory_bytes=int(memory), versions=run_versions(),
    )
