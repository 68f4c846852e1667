"""One optimisation step of the training loop, apart from the loop (as torchtitan's train_step): the step's
learning rate and weight decay, the backward of its micro-batches, the gradients averaged over processes
and clipped, the optimiser's update and the stage's work after it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from trainers.data.config import DataConfig
from trainers.data.transforms import normalize_clips
from trainers.distributed import Ranks, average_gradients
from trainers.masks import MaskSet
from trainers.schedules import learning_rate, weight_decay
from trainers.stage_config import OptimConfig
from trainers.stage_protocol import Stage


@dataclass
class StepResult:
    loss: torch.Tensor  # the step's mean loss over its micro-batches and processes, on the device
    grad_norm: torch.Tensor  # before clipping, on the device
    logged: dict[str, float | torch.Tensor]  # the stage's scalars of the step (Stage.after_step)
    lr: float
    wd: float
    flops: float  # this process's, of the step's clips


def train_step(
    stage: Stage, loss_fn: Callable[..., torch.Tensor], optimizer: torch.optim.Optimizer,
    trainable: list[torch.nn.Parameter], parts: Sequence[dict[str, Any]], *, step: int, optim: OptimConfig,
    data: DataConfig, device: torch.device, autocast: bool, ranks: Ranks,
) -> StepResult:
    """The optimiser step that follows `step` steps, on this process's micro-batches `parts` (host batches);
    `loss_fn` is the stage's loss (compiled or not), `trainable` its parameters in the module's order (the
    order gradients are averaged and their norm is summed in)."""
    lr, wd = learning_rate(step, optim), weight_decay(step, optim)
    for group in optimizer.param_groups:
        group["lr"] = lr
        if group["apply_wd"]:
            group["weight_decay"] = wd
    flops = sum(stage.flops_per_clip(part["masks"]) * len(part["video"]) for part in parts)
    optimizer.zero_grad(set_to_none=True)
    loss = backward_in_parts(loss_fn, parts, data, device, autocast)
    loss = average_gradients(trainable, loss, ranks)
    grad_norm = torch.nn.utils.clip_grad_norm_(trainable, optim.grad_clip if optim.grad_clip > 0 else float("inf"))
    optimizer.step()
    logged = stage.after_step(step + 1)
    return StepResult(loss, grad_norm, logged, lr, wd, flops)


def mask_to_device(mask: MaskSet, device: torch.device) -> MaskSet:
    move = lambda t: None if t is None else t.to(device, non_blocking=True)
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
