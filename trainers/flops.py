"""Compute accounting: the paper's 6ND / 2ND rule (docs/paper.md section 7) and exact matmul counts."""

from __future__ import annotations

from torch import nn

from trainers.models.presets import ViTSpec
from trainers.models.vit import VisionTransformer

TRAIN_FACTOR = 6  # forward 2ND + backward 4ND
FORWARD_FACTOR = 2


def param_count(module: nn.Module) -> int:
    """All parameters, embedding and mask token included, as the paper's N counts them."""
    return sum(p.numel() for p in module.parameters())


def _block_params(width: int, mlp_hidden: int) -> int:
    norms = 2 * 2 * width
    attn = (width * 3 * width + 3 * width) + (width * width + width)
    mlp = (width * mlp_hidden + mlp_hidden) + (mlp_hidden * width + width)
    return norms + attn + mlp


def vit_param_count(spec: ViTSpec, in_channels: int = 3) -> int:
    """Parameters of VisionTransformer(spec, ...) without building it (independent of the clip size)."""
    embed = spec.width * in_channels * spec.tubelet_size * spec.patch_size**2 + spec.width
    return embed + spec.depth * _block_params(spec.width, spec.mlp_hidden) + 2 * spec.width


def predictor_param_count(
    in_width: int, out_width: int, width: int = 384, depth: int = 12, mlp_ratio: float = 4.0
) -> int:
    """Parameters of Predictor(in_width, out_width, grid, width, depth, heads, mlp_ratio) (any grid, any heads)."""
    embed = in_width * width + width
    mask_token = width
    blocks = depth * _block_params(width, int(width * mlp_ratio))
    return embed + mask_token + blocks + 2 * width + (width * out_width + out_width)


def teacher_step_flops(n_encoder: int, n_decoder: int, encoder_tokens: float, decoder_tokens: float) -> float:
    """V-Pixel FLOPs per clip: encoder and decoder both trained."""
    return TRAIN_FACTOR * n_encoder * encoder_tokens + TRAIN_FACTOR * n_decoder * decoder_tokens


def student_step_flops(
    n_student: int,
    n_predictor: int,
    n_teacher: int,
    student_tokens: float,
    predictor_tokens: float,
    teacher_tokens: float,
) -> float:
    """SALT student FLOPs per clip: student and predictor trained, frozen teacher forward only."""
    return (
        TRAIN_FACTOR * n_student * student_tokens
        + TRAIN_FACTOR * n_predictor * predictor_tokens
        + FORWARD_FACTOR * n_teacher * teacher_tokens
    )


def vjepa2_step_flops(
    n_encoder: int, n_predictor: int, encoder_tokens: float, predictor_tokens: float, ema_tokens: float
) -> float:
    """V-JEPA 2 FLOPs per clip: encoder and predictor trained, the EMA copy of the encoder forward only on
    every token of the clip. The EMA update itself (a few FLOPs per parameter per step, not per clip) is
    not counted, as the paper does not."""
    return student_step_flops(n_encoder, n_predictor, n_encoder, encoder_tokens, predictor_tokens, ema_tokens)


def paper_token_counts(
    tokens_per_clip: int, masks: int = 2, context_ratio: float = 0.1
) -> tuple[float, float, float]:
    """(encoder, predictor, teacher) tokens per clip as the paper assumes; real runs pass measured counts."""
    predictor = float(masks * tokens_per_clip)
    return context_ratio * predictor, predictor, float(tokens_per_clip)


def forward_matmul_flops(
    model: VisionTransformer | ViTSpec, tokens: int, embedded_tokens: int | None = None
) -> int:
    """Exact forward FLOPs of one clip through a VisionTransformer, as FlopCounterMode counts them.

    Linear layers (2*in*out per token), the two attention matmuls (2*2*L*L*head_dim*heads) and the
    Conv3d embedding. The embedding runs on every token of the clip before `keep` drops any, so
    `embedded_tokens` defaults to the model's full grid (or to `tokens` when given a bare spec).
    Norms, activations, biases and RoPE are not matmuls and are not counted.
    """
    if isinstance(model, VisionTransformer):
        spec = model.spec
        embedded = model.num_tokens if embedded_tokens is None else embedded_tokens
    else:
        spec = model
        embedded = tokens if embedded_tokens is None else embedded_tokens
    w, m = spec.width, spec.mlp_hidden
    patch_pixels = 3 * spec.tubelet_size * spec.patch_size**2
    embed = 2 * embedded * patch_pixels * w
    linear = 2 * tokens * (w * 3 * w + w * w + w * m + m * w)
    attention = 2 * 2 * tokens * tokens * w  # head_dim * heads == width
    return embed + spec.depth * (linear + attention)
