"""The one training loop every stage shares (V-Pixel teacher, SALT student, V-JEPA 2 baseline).

A run directory holds config.yaml, metrics.jsonl and checkpoints/step_XXXXXXXX.pt. Started
again, a run continues from its last checkpoint and, on the same device and seed, produces the
losses an uninterrupted run would have: the optimiser state is restored and the data stream
restarts at the same sample (sample order, augmentation and masks are functions of the seed).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from trainers.checkpoint import CheckpointError, checkpoint_path, list_checkpoints, load_checkpoint, save_checkpoint
from trainers.config import ConfigError, to_dict
from trainers.config_files import save_config
from trainers.data.build import build_loader, build_pretrain_dataset, resolve_data
from trainers.data.config import DataConfig
from trainers.data.dataset import ClipLoader
from trainers.distributed import Ranks, barrier, ranks_from_environment, sum_over_ranks
from trainers.masks import MaskCollator, MaskGenerator, split_masked_batch
from trainers.provenance import record_provenance
from trainers.stage_config import OptimConfig, RunConfig, loaded_batch
from trainers.stage_protocol import Stage
from trainers.step_metrics import StepLog, truncate_metrics
from trainers.tracking.sinks import open_sink
from trainers.tracking.spec import TrackingSpec
from trainers.train_step import train_step


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




def _resume(
    stage: Stage, optimizer: torch.optim.Optimizer, ckpt_dir: Path, init_from: str | os.PathLike | None, *,
    optim: OptimConfig, metrics_path: Path, ranks: Ranks, progress: bool,
) -> tuple[LoopState, Path | None]:
    """The loop's state, and the run's last good checkpoint: loaded from the run's last checkpoint, or for a
    fresh run from `init_from` where given (a branch), else a new state."""
    existing = list_checkpoints(ckpt_dir)
    last_good = existing[-1][1] if existing else None
    source = last_good or (Path(init_from) if init_from else None)
    if source is None:
        return LoopState(), None
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
        truncate_metrics(metrics_path, state.step)
    if progress:
        print(f"[{stage.kind}] continuing from {source} at step {state.step}", flush=True)
    return state, last_good


def _save(
    stage: Stage, optimizer: torch.optim.Optimizer, state: LoopState, ckpt_dir: Path, *, config: dict[str, Any],
    run: RunConfig, final_step: int, ranks: Ranks,
) -> Path:
    """The checkpoint of the step `state` is at (written by the main process only), then the periodic ones
    beyond the last run.keep_last removed: those of run.checkpoint_steps and the final step are kept."""
    path = checkpoint_path(ckpt_dir, state.step)
    if not ranks.main:
        return path
    save_checkpoint(path, {
        "kind": stage.kind, "step": state.step, **stage.checkpoint_state(),
        "optimizer": optimizer.state_dict(), "loop": vars(state).copy(), "config": config,
    })
    keep = set(run.checkpoint_steps)
    periodic = [(s, p) for s, p in list_checkpoints(ckpt_dir) if s not in keep and s != final_step]
    for _, old in periodic[: max(0, len(periodic) - run.keep_last)]:
        old.unlink(missing_ok=True)
    return path


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
    tracking: TrackingSpec | None = None,
) -> Path:
    """Train `stage` for optim.steps steps in `run_dir`; returns the final checkpoint's path.

    `init_from` starts a fresh run from another run's checkpoint (weights, optimiser, data
    position, step): a cool-down branch off a constant-lr trunk. `stop_at` pauses the run at that
    step, with a checkpoint and a metrics row there, and returns that checkpoint: a trunk trained as far
    as a branch needs; started again, the run continues as from any checkpoint. `tracking`: also log each
    metrics row to these trackers (trainers/tracking/), from the main process; a run trained in several calls
    continues one tracker run."""
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
        group, micro, passes = loaded_batch(run, stage.masks, optim.batch_size // ranks.world)
    except ValueError as error:  # configs built in code skip load_config's validation
        raise ConfigError(f"{error} (optim.batch_size {optim.batch_size} over {ranks.world} process(es))") from None
    collator = MaskCollator(MaskGenerator(stage.masks, stage.grid), seed=seed)
    loader = build_loader(data, dataset, batch_size=group, shuffle=True, seed=seed, drop_last=True,
                          collate_fn=collator, shard=(ranks.rank, ranks.world) if ranks.world > 1 else None,
                          weights=weights)

    autocast = device.type == "cuda" and run.precision == "bf16"
    stage.to(device, torch.bfloat16 if autocast else None)
    trainable = list(stage.trainable.parameters())
    groups = param_groups(stage.trainable)
    optimizer = torch.optim.AdamW(groups, lr=optim.lr, betas=tuple(optim.betas), eps=optim.eps,
                                  fused=device.type == "cuda")
    end = optim.steps if stop_at is None else min(int(stop_at), optim.steps)
    state, last_good = _resume(stage, optimizer, ckpt_dir, init_from, optim=optim, metrics_path=metrics_path,
                               ranks=ranks, progress=progress)
    loss_fn = torch.compile(stage.loss) if run.compile else stage.loss
    keep = set(run.checkpoint_steps)

    stream = _batches(loader, state, group * ranks.world)  # the epoch's position counts every process's clips
    log = StepLog(stage.kind, optim.steps, progress)
    step_flops = 0.0  # this process's, since the last read-back
    with (open(metrics_path if ranks.main else os.devnull, "a") as metrics_file,
          open_sink(tracking if ranks.main else None, start_step=state.step) as sink):
        while state.step < end:
            started = time.perf_counter()
            parts = [part for _ in range(passes * micro // group) for part in split_masked_batch(next(stream), micro)]
            waited = time.perf_counter() - started
            result = train_step(stage, loss_fn, optimizer, trainable, parts, step=state.step, optim=optim, data=data,
                                device=device, autocast=autocast, ranks=ranks)
            state.step += 1
            log.add(state.step, result, parts, waited, ranks.world)
            step_flops += result.flops
            state.wall_s += time.perf_counter() - started
            checkpoint_due = (state.step % run.checkpoint_every == 0 or state.step in keep
                              or state.step == optim.steps or state.step == end)
            log_due = state.step % run.log_every == 0 or state.step == optim.steps or state.step == end
            if log_due or checkpoint_due:  # never write a checkpoint before its steps' losses are known finite
                log.read_back(last_good)
                state.flops += sum_over_ranks(step_flops, ranks, device)
                step_flops = 0.0
            if log_due:
                row = log.write(metrics_file, state.step, result.lr, result.wd, state.flops, state.wall_s)
                sink.log({f"train/{key}": value for key, value in row.items() if key != "step"}, state.step)
            if checkpoint_due:
                last_good = _save(stage, optimizer, state, ckpt_dir, config=config, run=run, final_step=optim.steps,
                                  ranks=ranks)
    barrier(ranks)  # every process returns once the final checkpoint is written
    return checkpoint_path(ckpt_dir, max(end, state.step))
