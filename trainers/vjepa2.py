"""The V-JEPA 2 baseline (docs/paper.md section 10) as a third stage of the one training loop.

The online encoder sees each mask's context and the predictor predicts, at the target tokens,
layer_norm of the EMA encoder's output on the whole clip (L1, one pass per mask, mean over masks):
the SALT student's loss (trainers/stages.py) with an EMA copy of the encoder where SALT has a frozen
teacher. After every optimiser step the copy moves toward the online encoder (after_step).

A checkpoint's encoder_state is the EMA copy, the encoder V-JEPA evaluates and the one `salt-budget
probe` (and a SALT student using the checkpoint as its teacher) reads; online_state is the encoder
being trained. Both, with the predictor and the optimiser, make a resumed run continue exactly.

Collapse: a target that moves with the model can collapse (every token mapped to one vector), a
frozen one cannot. Every step measures target_std, the standard deviation of each target channel
over all tokens of the batch, averaged over channels. The targets are layer-normalised per token, so
the channels' mean squares average 1: target_std lies in [0, 1] whatever the width, and is 0 when
every token has the same target.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainers.checkpoint import load_state
from trainers.data.config import DataConfig
from trainers.encoders import build_encoder, encoder_description
from trainers.flops import param_count, predictor_param_count, vit_param_count, vjepa2_step_flops
from trainers.masks import MaskSet
from trainers.models.predictor import Predictor
from trainers.stage_config import VJEPA2Config
from trainers.stage_costs import checkpoint_bytes, config_spec, stage_mask_tokens
from trainers.stages import check_kind, latent_prediction_loss, latent_targets, token_counts


def ema_momentum(step: int, momentum: tuple[float, float], steps: int) -> float:
    """Momentum of the EMA update after optimiser step `step` (1-based): `start` at the first update,
    then linear toward `final` over `steps` updates, as V-JEPA's momentum scheduler counts."""
    start, final = momentum
    return start + (final - start) * (step - 1) / steps


@torch.no_grad()
def ema_update(ema: list[torch.Tensor], online: list[torch.Tensor], momentum: float) -> None:
    """ema <- momentum * ema + (1 - momentum) * online, over every tensor in one fused pass (as V-JEPA 2)."""
    torch._foreach_mul_(ema, momentum)
    torch._foreach_add_(ema, online, alpha=1 - momentum)


def target_std(targets: torch.Tensor) -> torch.Tensor:
    """Per-channel standard deviation over every token of the batch (B, N, C), averaged over channels."""
    return targets.detach().flatten(0, -2).std(0).mean()


class VJEPA2Stage:
    kind = "vjepa2"

    def __init__(self, cfg: VJEPA2Config, data: DataConfig):
        self.description = encoder_description(cfg.encoder, data)
        self.encoder = build_encoder(self.description)
        self.encoder.activation_checkpointing = cfg.run.activation_checkpointing
        self.ema = copy.deepcopy(self.encoder).requires_grad_(False)
        width = self.encoder.width
        self.predictor = Predictor(width, width, self.encoder.grid, width=cfg.predictor.width,
                                   depth=cfg.predictor.depth, heads=cfg.predictor.heads,
                                   position=cfg.predictor.position)
        # The EMA copy is not trainable: the optimiser, gradient clipping and weight decay never see it.
        self.trainable = nn.ModuleDict({"encoder": self.encoder, "predictor": self.predictor})
        self.grid = self.encoder.grid
        self.masks = cfg.masks
        self.momentum = (float(cfg.momentum[0]), float(cfg.momentum[1]))
        self.steps = cfg.optim.steps
        self._params = (param_count(self.encoder), param_count(self.predictor))
        self._target_std = torch.zeros(())  # of the last loss() call

    def to(self, device: torch.device, frozen_dtype: torch.dtype | None = None) -> None:
        self.trainable.to(device)
        self.ema.to(device)  # fp32 whatever frozen_dtype says: the EMA update accumulates small steps

    def loss(self, clips: torch.Tensor, masks: list[MaskSet]) -> torch.Tensor:
        targets = latent_targets(self.ema, clips)
        # Copied to the host in stream order: done once the loop's loss.item() has synchronised, so reading
        # it in after_step costs no second synchronisation per step.
        self._target_std = target_std(targets).detach()
        return latent_prediction_loss(self.encoder, self.predictor, clips, targets, masks)

    def flops_per_clip(self, masks: list[MaskSet]) -> float:
        return vjepa2_step_flops(*self._params, *token_counts(masks), float(self.ema.num_tokens))

    def after_step(self, step: int) -> dict[str, float | torch.Tensor]:
        momentum = ema_momentum(step, self.momentum, self.steps)
        ema_update(list(self.ema.parameters()), list(self.encoder.parameters()), momentum)
        return {"momentum": momentum, "target_std": self._target_std}  # a 0-d tensor: read back at the next log

    def checkpoint_state(self) -> dict[str, Any]:
        return {
            "encoder": self.description,
            "encoder_state": self.ema.state_dict(),
            "online_state": self.encoder.state_dict(),
            "head_state": self.predictor.state_dict(),
            "momentum": list(self.momentum),
        }

    def load_state(self, payload: dict[str, Any], path: Path | str) -> None:
        check_kind(payload, self.kind, path)
        load_state(self.ema, payload["encoder_state"], "EMA encoder", path)
        load_state(self.encoder, payload["online_state"], "online encoder", path)
        load_state(self.predictor, payload["head_state"], "predictor", path)


def _params(cfg: VJEPA2Config) -> tuple[int, int]:
    spec = config_spec(cfg.encoder)
    return vit_param_count(spec), predictor_param_count(spec.width, spec.width, width=cfg.predictor.width,
                                                        depth=cfg.predictor.depth)


def vjepa2_flops_per_clip(cfg: VJEPA2Config, data: DataConfig, teacher: None = None) -> float:
    """VJEPA2Stage.flops_per_clip at the mask generator's expected token counts, before anything is built."""
    _, grid, context, target = stage_mask_tokens(cfg, data)
    return vjepa2_step_flops(*_params(cfg), context, context + target, float(grid[0] * grid[1] * grid[2]))


def vjepa2_checkpoint_bytes(cfg: VJEPA2Config, teacher: None = None) -> float:
    encoder, predictor = _params(cfg)
    return checkpoint_bytes(encoder + predictor, saved_frozen=encoder)  # + the EMA copy
