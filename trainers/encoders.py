"""Building encoders from configs and rebuilding them from checkpoints."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from trainers.checkpoint import CheckpointError, load_checkpoint, load_state
from trainers.config import ConfigError
from trainers.data.config import DataConfig
from trainers.models.presets import ViTSpec, encoder_spec
from trainers.models.vit import VisionTransformer
from trainers.stage_config import EncoderConfig


def encoder_description(cfg: EncoderConfig, data: DataConfig) -> dict[str, Any]:
    """Everything needed to rebuild the encoder; stored in every checkpoint."""
    try:
        spec = encoder_spec(cfg.preset, cfg.patch_size, cfg.tubelet_size)
    except ValueError as error:
        raise ConfigError(f"encoder.preset: {error}") from None
    if data.frames % spec.tubelet_size or data.resolution % spec.patch_size:
        raise ConfigError(
            f"data.frames={data.frames} must be a multiple of the tubelet size {spec.tubelet_size} and "
            f"data.resolution={data.resolution} a multiple of the patch size {spec.patch_size}"
        )
    return {"preset": cfg.preset, "spec": asdict(spec), "frames": data.frames, "resolution": data.resolution}


def build_encoder(description: dict[str, Any]) -> VisionTransformer:
    return VisionTransformer(ViTSpec(**description["spec"]), description["frames"], description["resolution"])


def encoder_from_checkpoint(path: str | Path) -> tuple[VisionTransformer, dict[str, Any]]:
    """The encoder a checkpoint evaluates (the student's, the teacher's for a teacher run, the EMA copy for a
    V-JEPA 2 run: its encoder_state), in eval mode."""
    payload = load_checkpoint(path)
    if "encoder" not in payload or "encoder_state" not in payload:
        raise CheckpointError(f"{path} holds no encoder (kind {payload.get('kind')!r})")
    encoder = build_encoder(payload["encoder"])
    load_state(encoder, payload["encoder_state"], "encoder", path)
    return encoder.eval(), payload
