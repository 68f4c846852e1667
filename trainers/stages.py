"""The two SALT stages as losses over a batch of normalised clips and its masks.

Stage 1, V-Pixel (docs/paper.md section 4): the encoder sees the context tokens, the decoder
reconstructs the per-token, per-channel normalised pixels of the masked tokens (MSE).
Stage 2, SALT (section 5): a frozen teacher encodes the whole clip once; the student sees the
context, the predictor predicts layer_norm(teacher output) at the target tokens (L1).
One encoder + head pass per mask; the loss is the mean over masks. The latent target and loss are
shared with the V-JEPA 2 baseline (trainers/vjepa2.py), whose target encoder is an EMA copy instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trainers.checkpoint import CheckpointError, load_checkpoint, load_state
from trainers.config import ConfigError
from trainers.data.config import DataConfig
from trainers.encoders import build_encoder, encoder_description
from trainers.flops import (
    param_count, predictor_param_count, student_step_flops, teacher_step_flops, vit_param_count,
)
from trainers.masks import MaskSet
from trainers.models.predictor import Predictor, pixel_decoder
from trainers.models.vit import patchify
from trainers.stage_config import StudentConfig, TeacherConfig
from trainers.stage_costs import checkpoint_bytes, config_spec, stage_mask_tokens


def _gather(tokens: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return torch.gather(tokens, 1, index.unsqueeze(-1).expand(-1, -1, tokens.size(-1)))


def _masked_mean(per_token: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    if valid is None:
        return per_token.mean()
    weights = valid.to(per_token.dtype)
    return (per_token * weights).sum() / weights.sum().clamp_min(1.0)


def _valid_count(index: torch.Tensor, valid: torch.Tensor | None) -> float:
    return float(index.size(1)) if valid is None else valid.sum(1).float().mean().item()


def token_counts(masks: list[MaskSet]) -> tuple[float, float]:
    """(encoder, head) tokens per clip summed over the masks: the encoder sees the context, the predictor
    or decoder the context and the targets."""
    context = sum(_valid_count(m.context, m.context_valid) for m in masks)
    return context, context + sum(_valid_count(m.target, m.target_valid) for m in masks)


def latent_targets(encoder: nn.Module, clips: torch.Tensor) -> torch.Tensor:
    """Non-affine layer_norm of `encoder`'s output on the whole clip, without gradient: the target of the
    SALT student (frozen teacher) and of the V-JEPA 2 baseline (EMA copy)."""
    # no_grad, not inference_mode: torch.compile's AOT autograd cannot trace inference tensors ("Cannot set
    # version_counter for inference tensor", pytorch/pytorch#180823), so a compiled student or V-JEPA 2 step
    # failed (tests/test_training.py compiles both).
    with torch.no_grad():
        latents = encoder(clips.to(next(encoder.parameters()).dtype))
        return F.layer_norm(latents.float(), (latents.size(-1),))


def latent_prediction_loss(encoder: nn.Module, predictor: nn.Module, clips: torch.Tensor, targets: torch.Tensor,
                           masks: list[MaskSet]) -> torch.Tensor:
    """L1 between the predictor's output and `targets` at each mask's target tokens; mean over masks."""
    losses = []
    for mask in masks:
        context = encoder(clips, mask.context, mask.context_valid)
        predicted = predictor(context, mask.context, mask.target, mask.context_valid, mask.target_valid)
        error = (predicted.float() - _gather(targets, mask.target)).abs().mean(-1)
        losses.append(_masked_mean(error, mask.target_valid))
    return torch.stack(losses).mean()


def pixel_targets(clips: torch.Tensor, tubelet: int, patch: int, per_token: bool = True) -> torch.Tensor:
    """(B, N, 3 * tubelet * patch^2): each token's pixels normalised per channel (VideoMAE), or with
    per_token=False the (ImageNet-normalised) pixels as they are.

    Computing them from the ImageNet-normalised clip is the same as from raw pixels: a per-channel
    affine map cancels in (x - mean) / std, up to the 1e-6."""
    pixels = patchify(clips.float(), tubelet, patch)  # B, N, 3, P
    if not per_token:
        return pixels.flatten(2)
    mean = pixels.mean(-1, keepdim=True)
    std = pixels.var(-1, unbiased=True, keepdim=True).sqrt()
    return ((pixels - mean) / (std + 1e-6)).flatten(2)


class TeacherStage:
    kind = "teacher"

    def __init__(self, cfg: TeacherConfig, data: DataConfig):
        self.description = encoder_description(cfg.encoder, data)
        self.encoder = build_encoder(self.description)
        self.encoder.activation_checkpointing = cfg.run.activation_checkpointing
        spec = self.encoder.spec
        self.decoder = pixel_decoder(
            spec.width, self.encoder.grid, spec.patch_size, spec.tubelet_size,
            width=cfg.decoder.width, depth=cfg.decoder.depth, heads=cfg.decoder.heads, position=cfg.decoder.position,
        )
        self.trainable = nn.ModuleDict({"encoder": self.encoder, "decoder": self.decoder})
        self.grid = self.encoder.grid
        self.masks = cfg.masks
        self.per_token_norm = cfg.pixel_norm == "token"
        self._params = (param_count(self.encoder), param_count(self.decoder))

    def to(self, device: torch.device, frozen_dtype: torch.dtype | None = None) -> None:
        self.trainable.to(device)

    def loss(self, clips: torch.Tensor, masks: list[MaskSet]) -> torch.Tensor:
        spec = self.encoder.spec
        targets = pixel_targets(clips, spec.tubelet_size, spec.patch_size, self.per_token_norm)
        losses = []
        for mask in masks:
            context = self.encoder(clips, mask.context, mask.context_valid)
            predicted = self.decoder(context, mask.context, mask.target, mask.context_valid, mask.target_valid)
            error = (predicted.float() - _gather(targets, mask.target)).pow(2).mean(-1)
            losses.append(_masked_mean(error, mask.target_valid))
        return torch.stack(losses).mean()

    def flops_per_clip(self, masks: list[MaskSet]) -> float:
        return teacher_step_flops(*self._params, *token_counts(masks))

    def after_step(self, step: int) -> dict[str, float]:
        return {}

    def checkpoint_state(self) -> dict[str, Any]:
        return {
            "encoder": self.description,
            "encoder_state": self.encoder.state_dict(),
            "head_state": self.decoder.state_dict(),
        }

    def load_state(self, payload: dict[str, Any], path: Path | str) -> None:
        check_kind(payload, self.kind, path)
        load_state(self.encoder, payload["encoder_state"], "encoder", path)
        load_state(self.decoder, payload["head_state"], "decoder", path)


class StudentStage:
    kind = "student"

    def __init__(self, cfg: StudentConfig, data: DataConfig):
        if not cfg.teacher_checkpoint:
            raise ConfigError(
                "student.teacher_checkpoint is not set: train a teacher first (salt-budget train teacher) "
                "and pass its checkpoint (student.teacher_checkpoint=PATH or --teacher PATH)"
            )
        payload = load_checkpoint(cfg.teacher_checkpoint)
        if "encoder_state" not in payload:
            raise CheckpointError(f"{cfg.teacher_checkpoint} holds no encoder to serve as a teacher")
        self.teacher = build_encoder(payload["encoder"])
        load_state(self.teacher, payload["encoder_state"], "teacher encoder", cfg.teacher_checkpoint)
        self.teacher.eval().requires_grad_(False)
        self.teacher_source = {"path": str(Path(cfg.teacher_checkpoint).resolve()), "step": payload.get("step"),
                               "kind": payload.get("kind"), "encoder": payload["encoder"]}

        self.description = encoder_description(cfg.encoder, data)
        self.encoder = build_encoder(self.description)
        self.encoder.activation_checkpointing = cfg.run.activation_checkpointing
        if self.teacher.grid != self.encoder.grid:
            raise ConfigError(
                f"the teacher's token grid {self.teacher.grid} cannot serve the student's {self.encoder.grid}: "
                f"choose patch and tubelet sizes (and data.frames / data.resolution) that give equal grids"
            )
        self.predictor = Predictor(
            self.encoder.width, self.teacher.width, self.encoder.grid,
            width=cfg.predictor.width, depth=cfg.predictor.depth, heads=cfg.predictor.heads,
            position=cfg.predictor.position,
        )
        self.trainable = nn.ModuleDict({"encoder": self.encoder, "predictor": self.predictor})
        self.grid = self.encoder.grid
        self.masks = cfg.masks
        self._params = (param_count(self.encoder), param_count(self.predictor), param_count(self.teacher))

    def to(self, device: torch.device, frozen_dtype: torch.dtype | None = None) -> None:
        self.trainable.to(device)
        self.teacher.to(device, dtype=frozen_dtype)

    def loss(self, clips: torch.Tensor, masks: list[MaskSet]) -> torch.Tensor:
        targets = latent_targets(self.teacher, clips)
        return latent_prediction_loss(self.encoder, self.predictor, clips, targets, masks)

    def flops_per_clip(self, masks: list[MaskSet]) -> float:
        return student_step_flops(*self._params, *token_counts(masks), float(self.teacher.num_tokens))

    def after_step(self, step: int) -> dict[str, float]:
        return {}

    def checkpoint_state(self) -> dict[str, Any]:
        return {
            "encoder": self.description,
            "encoder_state": self.encoder.state_dict(),
            "head_state": self.predictor.state_dict(),
            "teacher": self.teacher_source,
        }

    def load_state(self, payload: dict[str, Any], path: Path | str) -> None:
        check_kind(payload, self.kind, path)
        load_state(self.encoder, payload["encoder_state"], "student encoder", path)
        load_state(self.predictor, payload["head_state"], "predictor", path)


def _teacher_params(cfg: TeacherConfig) -> tuple[int, int]:
    spec = config_spec(cfg.encoder)
    pixels = 3 * spec.tubelet_size * spec.patch_size**2
    return vit_param_count(spec), predictor_param_count(spec.width, pixels, width=cfg.decoder.width,
                                                        depth=cfg.decoder.depth)


def _student_params(cfg: StudentConfig, teacher: TeacherConfig) -> tuple[int, int]:
    spec, teacher_spec = config_spec(cfg.encoder), config_spec(teacher.encoder)
    return vit_param_count(spec), predictor_param_count(spec.width, teacher_spec.width, width=cfg.predictor.width,
                                                        depth=cfg.predictor.depth)


def teacher_flops_per_clip(cfg: TeacherConfig, data: DataConfig, teacher: None = None) -> float:
    """TeacherStage.flops_per_clip at the mask generator's expected token counts, before anything is built."""
    _, _, context, target = stage_mask_tokens(cfg, data)
    return teacher_step_flops(*_teacher_params(cfg), context, context + target)


def student_flops_per_clip(cfg: StudentConfig, teacher: TeacherConfig, data: DataConfig) -> float:
    """StudentStage.flops_per_clip against a teacher of config `teacher`, before anything is built."""
    _, grid, context, target = stage_mask_tokens(cfg, data)
    return student_step_flops(*_student_params(cfg, teacher), vit_param_count(config_spec(teacher.encoder)),
                              context, context + target, float(grid[0] * grid[1] * grid[2]))


def teacher_checkpoint_bytes(cfg: TeacherConfig, teacher: None = None) -> float:
    return checkpoint_bytes(sum(_teacher_params(cfg)))


def student_checkpoint_bytes(cfg: StudentConfig, teacher: TeacherConfig) -> float:
    return checkpoint_bytes(sum(_student_params(cfg, teacher)))  # the frozen teacher stays in its own file


def check_kind(payload: dict[str, Any], kind: str, path: Path | str) -> None:
    if payload.get("kind") != kind:
        raise CheckpointError(f"{path} is a {payload.get('kind')!r} checkpoint; a {kind} run cannot continue from it")
