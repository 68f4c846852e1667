"""What the training loop (trainers/loop.py) and its step (trainers/train_step.py) need of a stage: the contract a
stage kind implements (docs/adding_a_stage.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from trainers.masks import MaskConfig, MaskSet


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
