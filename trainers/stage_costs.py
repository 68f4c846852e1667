"""What a stage will cost, predicted from its config before anything is built: its token grid, the mask
generator's expected token counts and the bytes of one checkpoint. Each stage's own FLOPs per training clip
and checkpoint size (beside its stage, registered in trainers/registry.py) are built from these and the
parameter counts of trainers/flops.py."""

from __future__ import annotations

import functools
import json
import math

import numpy as np

from trainers.config import from_dict, to_dict
from trainers.data.config import DataConfig
from trainers.masks import MaskConfig, MaskGenerator
from trainers.models.presets import ViTSpec, encoder_spec
from trainers.stage_config import EncoderConfig, loaded_batch

FP32 = 4
ADAM_COPIES = 3  # weights, exp_avg, exp_avg_sq
# Enough sampled clips that the mean token count is stable to a fraction of a percent.
_SAMPLED_CLIPS = 2048


def config_spec(encoder: EncoderConfig) -> ViTSpec:
    return encoder_spec(encoder.preset, encoder.patch_size, encoder.tubelet_size)


def token_grid(spec: ViTSpec, data: DataConfig) -> tuple[int, int, int]:
    side = data.resolution // spec.patch_size
    return data.frames // spec.tubelet_size, side, side


@functools.lru_cache(maxsize=64)
def _mask_tokens(masks_json: str, grid: tuple[int, int, int], batch_size: int) -> tuple[float, float]:
    masks = from_dict(MaskConfig, json.loads(masks_json))
    generator = MaskGenerator(masks, grid)
    rng = np.random.default_rng(0)
    draws = min(64, max(4, math.ceil(_SAMPLED_CLIPS / batch_size)))
    context = target = 0.0
    for _ in range(draws):
        mask_sets, _ = generator(batch_size, rng)
        for mask in mask_sets:
            context += _kept(mask.context, mask.context_valid)
            target += _kept(mask.target, mask.target_valid)
    return context / draws, target / draws


def _kept(index, valid) -> float:
    # As the training loop counts them: rows cut to the batch minimum, or their valid entries.
    return float(index.size(1)) if valid is None else float(valid.sum(1).float().mean())


def mask_tokens(masks: MaskConfig, grid: tuple[int, int, int], batch_size: int) -> tuple[float, float]:
    """Expected (context, target) tokens per clip summed over the masks, as the batch cut leaves them."""
    return _mask_tokens(json.dumps(to_dict(masks), sort_keys=True), grid, batch_size)


def stage_mask_tokens(cfg, data: DataConfig) -> tuple[ViTSpec, tuple[int, int, int], float, float]:
    """(encoder spec, token grid, expected context tokens, expected target tokens) of a stage config with
    encoder, masks, optim and run sections, at the clips masked together (a pass, or masks.cut_batch)."""
    spec = config_spec(cfg.encoder)
    grid = token_grid(spec, data)
    context, target = mask_tokens(cfg.masks, grid, loaded_batch(cfg.run, cfg.masks, cfg.optim.batch_size)[0])
    return spec, grid, context, target


def checkpoint_bytes(trained: int, saved_frozen: int = 0) -> float:
    """A checkpoint's fp32 tensors: the trained parameters with AdamW's two moments, and any parameters it
    keeps without an optimiser state (the V-JEPA 2 baseline's EMA copy)."""
    return FP32 * (ADAM_COPIES * trained + saved_frozen)
