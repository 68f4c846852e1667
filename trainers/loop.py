"""The one training loop every stage shares (V-Pixel teacher, SALT student, V-JEPA 2 baseline).

A run directory holds config.yaml, metrics.jsonl and checkpoints/step_XXXXXXXX.pt. Started
again, a run continues from its last checkpoint and, on the same device and seed, produces the
losses an uninterrupted run would have: the optimiser state is restored and the data stream
restarts at the same sample (sample order, augmentation and masks are functions of the seed).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Protocol, Sequence

import torch
import yaml
from torch import nn

from trainers.checkpoint import CheckpointError, checkpoint_path, list_checkpoints, load_checkpoint, save_checkpoint
from trainers.config import ConfigError, save_config, to_dict
from trainers.data.build import build_loader, build_pretrain_dataset, resolve_data
from trainers.data.config import DataConfig
from trainers.data.dataset import ClipLoader
from trainers.data.transforms import normalize_clips
from trainers.distributed import average_gradients, barrier, ranks_from_environment, sum_over_ranks
from trainers.masks import MaskCollator, MaskConfig, MaskGenerator, MaskSet
from trainers.provenance import record_provenance
from trainers.schedules import learning_rate, weight_decay
from trainers.stage_config import OptimConfig, RunConfig


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the step and the last good checkpoint."""


class Stage(Protocol):
    kind: str
    trainable: nn.Module
    grid: tuple[int, int, int]
    masks: MaskConfig

    def to(self, device: torch.device, frozen_dtype: torch.dtype | None = None) -> None:
        """Move to `device`; a frozen network (the SALT student's teacher) may also be cast to `frozen_dtype`
        (bf16 under bf16 autocast: half the memory, no per-step weight casts). Trained weights stay fp32."""
        ...

    def loss(self, clips: torch.Tensor, masks: list[MaskSet]) -> torch.Tensor: ...

    def flops_per_clip(self, masks: list[MaskSet]) -> float: ...

    def after_step(self, step: int) -> dict[str, float | torch.Tensor]:
        """Work that follows optimiser step `step` (1-based; the baseline's EMA update), and scalars of the
        step to average into metrics.jsonl (its target_std), as floats or 0-d tensors (read back with the
        loss, at the next log); the SALT stages do nothing."""
        ...

    def checkpoint_state(self) -> dict[str, Any]: ...

    def load_state(self, payload: dict[str, Any], path: Path | str) -> None: ...


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available; use device=cpu or auto")
    return device


def param_groups(module: nn.Module) -> list[dict[str, Any]]:
    """Biases and norm weights (1-d parameters) get no weight decay, as in V-JEPA."""
    decay, no_decay = [], []
    for name, param in module.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim <= 1 or name.endswith(".bias") else decay).append(param)
    return [{"params": decay, "apply_wd": True}, {"params": no_decay, "apply_wd": False, "weight_decay": 0.0}]


@dataclass
class LoopState:
    step: int = 0  # optimiser steps done
    epoch: int = 0
    position: int = 0  # samples of `epoch` already consumed
    flops: float = 0.0
    wall_s: float = 0.0


class PendingScalars:
    """Per-step scalars left on the device until a log or a checkpoint reads them back in one transfer:
    a `.item()` per step would make the host wait for every step's kernels (a GPU idles meanwhile)."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.values: list[dict[str, torch.Tensor]] = []

    def add(self, step: int, values: dict[str, torch.Tensor]) -> None:
        self.steps.append(step)
        self.values.append({key: value.detach().float().reshape(()) for key, value in values.items()})

    def read(self, kind: str, last_good: Path | None) -> dict[str, float]:
        """Sums over the pending steps; raises TrainingDiverged naming the first step whose loss is not finite."""
        if not self.steps:
            return {}
        keys = list(self.values[0])
        table = torch.stack([torch.stack([v[k] for k in keys]) for v in self.values]).cpu()
        steps, self.steps, self.values = self.steps, [], []
        losses = table[:, keys.index("loss")]
        bad = (~torch.isfinite(losses)).nonzero()
        if len(bad):
            first = int(bad[0])
            where = f"last good checkpoint: {last_good}" if last_good else "no checkpoint was written yet"
            raise TrainingDiverged(
                f"{kind} loss is {float(losses[first])} at step {steps[first]}; stopped ({where}). "
                f"Lower optim.lr or check the data."
            )
        return dict(zip(keys, table.sum(0).tolist()))


def _batches(loader: ClipLoader, state: LoopState, batch_size: int) -> Iterator[dict[str, Any]]:
    """An endless stream of batches that starts where `state` says and keeps it current."""
    while True:
        loader.set_epoch(state.epoch, state.position)
        for batch in loader:
            state.position += batch_size
            yield batch
        state.epoch += 1
        state.position = 0


def _prepare_run_dir(run_dir: Path, config: dict[str, Any]) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise ConfigError(f"run directory {run_dir} is not writable ({error.strerror}); choose another --run-dir") from error
    saved = run_dir / "config.yaml"
    if saved.is_file() and list_checkpoints(run_dir / "checkpoints"):
        if yaml.safe_load(saved.read_text()) != to_dict(config):
            raise ConfigError(
                f"{run_dir} already holds a run with a different config ({saved}); use a new run directory "
                f"or delete the old one to start over"
            )
        return
    save_config(config, saved)


def make_deterministic(device: torch.device) -> None:
    """Deterministic kernels for the rest of this process (run.deterministic)."""
    if device.type == "cuda":
        # cuBLAS needs a fixed workspace to be deterministic; it reads this before its first call.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True)


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop metrics logged after the checkpoint we resume from, so no step appears twice."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
    path.write_text("".join(line + "\n" for line in kept))


def train(
    stage: Stage,
    *,
    data: DataConfig,
    optim: OptimConfig,
    run: RunConfig,
    seed: int,
    run_dir: str | os.PathLike,
    config: dict[str, Any],
    init_from: str | os.PathLike | None = None,
    progress: bool = True,
    stop_at: int | None = None,
) -> Path:
    """Train `stage` for optim.steps steps in `run_dir`; returns the final checkpoint's path.

    `init_from` starts a fresh run from another run's checkpoint (weights, optimiser, data
    position, step): a cool-down branch off a constant-lr trunk. `stop_at` pauses the run at that
    step, with a checkpoint and a metrics row there, and returns that checkpoint: a trunk trained as far
    as a branch needs; started again, the run continues as from any checkpoint."""
    run_dir = Path(run_dir)
    ranks, device = ranks_from_environment(resolve_device(run.device))
    progress = progress and ranks.main
    if run.deterministic:
        make_deterministic(device)
    if ranks.main:  # the other processes of a data-parallel run write nothing
        _prepare_run_dir(run_dir, config)
        record_provenance(run_dir, device, world=ranks.world, deterministic=run.deterministic)
    barrier(ranks)
    ckpt_dir = run_dir / "checkpoints"
    metrics_path = run_dir / "metrics.jsonl"

    resolved = resolve_data(data, progress=progress)
    dataset, weights = build_pretrain_dataset(data, resolved)
    if len(dataset) < optim.batch_size:
        raise ConfigError(f"batch_size {optim.batch_size} exceeds the {len(dataset)} training clips")
    if optim.batch_size % ranks.world:
        raise ConfigError(f"optim.batch_size {optim.batch_size} does not split over {ranks.world} processes: "
                          f"choose a batch size that is a multiple of the process count")
    try:
        micro, passes = run.split_batch(optim.batch_size // ranks.world)
    except ValueError as error:  # configs built in code skip load_config's validation
        raise ConfigError(f"{error} (optim.batch_size {optim.batch_size} over {ranks.world} process(es))") from None
    collator = MaskCollator(MaskGenerator(stage.masks, stage.grid), seed=seed)
    loader = build_loader(data, dataset, batch_size=micro, shuffle=True, seed=seed, drop_last=True,
                          collate_fn=collator, shard=(ranks.rank, ranks.world) if ranks.world > 1 else None,
                          weights=weights)

    autocast = device.type == "cuda" and run.precision == "bf16"
    stage.to(device, torch.bfloat16 if autocast else None)
    trainable = list(stage.trainable.parameters())
    groups = param_groups(stage.trainable)
    optimizer = torch.optim.AdamW(groups, lr=optim.lr, betas=tuple(optim.betas), eps=optim.eps,
                                  fused=device.type == "cuda")
    end = optim.steps if stop_at is None else min(int(stop_at), optim.steps)
    state = LoopState()
    existing = list_checkpoints(ckpt_dir)
    source = existing[-1][1] if existing else (Path(init_from) if init_from else None)
    if source is not None:
        payload = load_checkpoint(source)
        stage.load_state(payload, source)
        try:
            optimizer.load_state_dict(payload["optimizer"])
        except (ValueError, KeyError) as error:
            raise CheckpointError(f"{source}: optimiser state does not fit this model ({error})") from error
        state = LoopState(**payload["loop"])
        if state.step > optim.steps:
            raise ConfigError(f"{source} is at step {state.step}, past optim.steps={optim.steps}")
        if ranks.main:
            _truncate_metrics(metrics_path, state.step)
        if progress:
            print(f"[{stage.kind}] continuing from {source} at step {state.step}", flush=True)

    model_step = stage.loss
    if run.compile:
        model_step = torch.compile(stage.loss)
    keep = set(run.checkpoint_steps)

    def save(step: int) -> Path:
        path = checkpoint_path(ckpt_dir, step)
        if not ranks.main:
            return path
        save_checkpoint(path, {
            "kind": stage.kind, "step": step, **stage.checkpoint_state(),
            "optimizer": optimizer.state_dict(), "loop": vars(state).copy(), "config": config,
        })
        periodic = [(s, p) for s, p in list_checkpoints(ckpt_dir) if s not in keep and s != optim.steps]
        for _, old in periodic[: max(0, len(periodic) - run.keep_last)]:
            old.unlink(missing_ok=True)
        return path

    stream = _batches(loader, state, micro * ranks.world)  # the epoch's position counts every process's clips
    last_good = existing[-1][1] if existing else None
    pending = PendingScalars()
    window: dict[str, float] = {}
    window_start = time.perf_counter()
    step_flops = 0.0  # this process's, since the last read-back
    with open(metrics_path if ranks.main else os.devnull, "a") as metrics_file:
        while state.step < end:
            started = time.perf_counter()
            parts = [next(stream) for _ in range(passes)]
            waited = time.perf_counter() - started
            lr, wd = learning_rate(state.step, optim), weight_decay(state.step, optim)
            for group in optimizer.param_groups:
                group["lr"] = lr
                if group["apply_wd"]:
                    group["weight_decay"] = wd
            flops = sum(stage.flops_per_clip(part["masks"]) * len(part["video"]) for part in parts)
            optimizer.zero_grad(set_to_none=True)
            loss = backward_in_parts(model_step, parts, data, device, autocast)
            loss = average_gradients(trainable, loss, ranks)
            grad_norm = torch.nn.utils.clip_grad_norm_(
                trainable, optim.grad_clip if optim.grad_clip > 0 else float("inf")
            )
            optimizer.step()
            state.step += 1
            logged = stage.after_step(state.step)
            on_device = {key: value for key, value in logged.items() if isinstance(value, torch.Tensor)}
            pending.add(state.step, {"loss": loss, "grad_norm": grad_norm, **on_device})
            step_flops += flops
            state.wall_s += time.perf_counter() - started
            for key, amount in [("data_wait_s", waited),
                                ("clips", sum(len(part["video"]) for part in parts) * ranks.world),
                                ("n", 1),
                                *((k, v / len(parts)) for part in parts for k, v in part["mask_stats"].items()),
                                *((k, v) for k, v in logged.items() if k not in on_device)]:
                window[key] = window.get(key, 0.0) + amount
            checkpoint_due = (state.step % run.checkpoint_every == 0 or state.step in keep
                              or state.step == optim.steps or state.step == end)
            log_due = state.step % run.log_every == 0 or state.step == optim.steps or state.step == end
            if log_due or checkpoint_due:  # never write a checkpoint before its steps' losses are known finite
                for key, amount in pending.read(stage.kind, last_good).items():
                    window[key] = window.get(key, 0.0) + amount
                state.flops += sum_over_ranks(step_flops, ranks, device)
                step_flops = 0.0
            if log_due:
                elapsed = time.perf_counter() - window_start
                n = window.pop("n")
                row = {"step": state.step, "loss": window.pop("loss") / n, "lr": lr, "wd": wd,
                       "grad_norm": window.pop("grad_norm") / n, "clips_per_s": window.pop("clips") / elapsed,
                       "data_wait_share": window["data_wait_s"] / elapsed, "data_wait_s": window.pop("data_wait_s"),
                       **{k: v / n for k, v in window.items()}, "flops": state.flops, "wall_s": state.wall_s}
                metrics_file.write(json.dumps(row) + "\n")
                metrics_file.flush()
                if progress:
                    eta = (optim.steps - state.step) * state.wall_s / max(1, state.step)
                    print(f"[{stage.kind}] step {state.step}/{optim.steps} loss {row['loss']:.4f} lr {lr:.2e} "
                          f"{row['clips_per_s']:.1f} clips/s data {row['data_wait_share']:.0%} "
                          f"eta {eta / 60:.1f} min", file=sys.stderr, flush=True)
                window, window_start = {}, time.perf_counter()
            if checkpoint_due:
                last_good = save(state.step)
    barrier(ranks)  # every process returns once the final checkpoint is written
    return checkpoint_path(ckpt_dir, max(end, state.step))


def mask_to_device(mask: MaskSet, device: torch.device) -> MaskSet:
    move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
    return MaskSet(move(mask.context), move(mask.target), move(mask.context_valid), move(mask.target_valid))


def backward_in_parts(
    loss_fn: Any, parts: Sequence[dict[str, Any]], data: DataConfig, device: torch.device, autocast: bool,
) -> torch.Tensor:
    """Backward of the mean loss of a step's micro-batches (host batches: uint8 "video" and its "masks"),
    each moved to the device and normalised only when its turn comes; returns that mean, detached. Equal
    micro-batches whose rows hold equal token counts give the gradient of one pass over their union
    (tests/test_training.py); one part is the plain step."""
    losses = []
    for part in parts:
        clips = normalize_clips(part["video"].to(device, non_blocking=True), data.mean, data.std)
        masks = [mask_to_device(mask, device) for mask in part["masks"]]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            loss = loss_fn(clips, masks)
        (loss / len(parts)).backward()
        losses.append(loss.detach())
    return losses[0] if len(parts) == 1 else torch.stack(losses).float().mean()
