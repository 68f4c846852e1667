"""The video Vision Transformer (V-JEPA 2 style): Conv3d tubelets, 3D RoPE, pre-norm blocks."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from trainers.models.presets import ViTSpec
from trainers.models.rope import apply_rope, rope_tables

INIT_STD = 0.02
LN_EPS = 1e-6

Rope = tuple[Tensor, Tensor]


def key_padding_mask(valid: Tensor | None) -> Tensor | None:
    """(B, L) True-for-real-token -> SDPA boolean mask (B, 1, 1, L) that hides padded keys."""
    return None if valid is None else valid[:, None, None, :]


class Attention(nn.Module):
    def __init__(self, width: int, heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width, bias=qkv_bias)
        self.proj = nn.Linear(width, width)

    def forward(self, x: Tensor, rope: Rope | None = None, valid: Tensor | None = None) -> Tensor:
        q, k, v = self.qkv(x).unflatten(-1, (3, self.heads, -1)).permute(2, 0, 3, 1, 4)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=key_padding_mask(valid))
        return self.proj(out.transpose(1, 2).flatten(2))


class Mlp(nn.Module):
    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, width: int, heads: int, mlp_hidden: int, qkv_bias: bool = True, eps: float = LN_EPS) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=eps)
        self.attn = Attention(width, heads, qkv_bias)
        self.norm2 = nn.LayerNorm(width, eps=eps)
        self.mlp = Mlp(width, mlp_hidden)

    def forward(self, x: Tensor, rope: Rope | None = None, valid: Tensor | None = None) -> Tensor:
        x = x + self.attn(self.norm1(x), rope, valid)
        return x + self.mlp(self.norm2(x))


def trunc_normal_(tensor: Tensor, std: float = INIT_STD) -> Tensor:
    # As V-JEPA's code does it: the cut is at +-2 in absolute value, which at std 0.02 leaves the
    # normal effectively uncut, so the weights have the std 0.02 the paper's recipe was tuned with.
    return nn.init.trunc_normal_(tensor, std=std, a=-2.0, b=2.0)


def init_weights(module: nn.Module) -> None:
    """V-JEPA init for every Linear, Conv3d and LayerNorm inside `module`."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv3d)):
            trunc_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


@torch.no_grad()
def rescale_blocks(blocks: nn.ModuleList) -> None:
    """Shrink each block's residual-branch outputs by 1/sqrt(2(i+1)) so deep stacks start near identity."""
    for i, block in enumerate(blocks):
        block.attn.proj.weight.div_(math.sqrt(2.0 * (i + 1)))
        block.mlp.fc2.weight.div_(math.sqrt(2.0 * (i + 1)))


def gather_tokens(x: Tensor, idx: Tensor) -> Tensor:
    """x (B, N, D) at idx (B, K) -> (B, K, D)."""
    return torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def gather_rope(cos: Tensor, sin: Tensor, idx: Tensor | None) -> Rope:
    """Full-grid tables (N, head_dim) -> per-sample angles (B|1, 1, L, head_dim) at idx (B, L)."""
    if idx is None:
        return cos[None, None], sin[None, None]
    return cos[idx].unsqueeze(1), sin[idx].unsqueeze(1)


class VisionTransformer(nn.Module):
    def __init__(self, spec: ViTSpec, frames: int, resolution: int) -> None:
        super().__init__()
        if frames % spec.tubelet_size or resolution % spec.patch_size:
            raise ValueError(
                f"{frames} frames at {resolution} px do not tile into tubelets of "
                f"{spec.tubelet_size} x {spec.patch_size} x {spec.patch_size}"
            )
        self.spec = spec
        self.frames = frames
        self.resolution = resolution
        self.width = spec.width
        side = resolution // spec.patch_size
        self.grid: tuple[int, int, int] = (frames // spec.tubelet_size, side, side)
        self.num_tokens = self.grid[0] * self.grid[1] * self.grid[2]
        kernel = (spec.tubelet_size, spec.patch_size, spec.patch_size)
        self.patch_embed = nn.Conv3d(3, spec.width, kernel_size=kernel, stride=kernel)
        self.blocks = nn.ModuleList(Block(spec.width, spec.heads, spec.mlp_hidden) for _ in range(spec.depth))
        self.norm = nn.LayerNorm(spec.width, eps=LN_EPS)
        # Non-persistent: derived from the config, so checkpoints stay independent of the grid.
        cos, sin = rope_tables(self.grid, spec.width // spec.heads)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        # Recompute each block's activations in the backward pass instead of keeping them: about a third
        # more compute for memory that no longer grows with depth (RunConfig.activation_checkpointing).
        self.activation_checkpointing = False
        init_weights(self)
        rescale_blocks(self.blocks)

    def embed(self, clips: Tensor) -> Tensor:
        """(B, 3, T, H, W) -> (B, N, width) in token order (t, h, w)."""
        expected = (3, self.frames, self.resolution, self.resolution)
        if clips.ndim != 5 or tuple(clips.shape[1:]) != expected:
            raise ValueError(
                f"clips of shape {tuple(clips.shape)} do not match this encoder: expected "
                f"(B, {', '.join(map(str, expected))}) for grid {self.grid}"
            )
        return self.patch_embed(clips).flatten(2).transpose(1, 2)

    def forward(self, clips: Tensor, keep: Tensor | None = None, valid: Tensor | None = None) -> Tensor:
        x = self.embed(clips)
        if keep is not None:
            x = gather_tokens(x, keep)
        if valid is not None and valid.shape != x.shape[:2]:
            raise ValueError(f"valid of shape {tuple(valid.shape)} does not match tokens {tuple(x.shape[:2])}")
        rope = gather_rope(self.rope_cos, self.rope_sin, keep)
        recompute = self.activation_checkpointing and torch.is_grad_enabled()
        for block in self.blocks:
            x = checkpoint(block, x, rope, valid, use_reentrant=False) if recompute else block(x, rope, valid)
        return self.norm(x)


def patchify(clips: Tensor, tubelet: int, patch: int) -> Tensor:
    """(B, 3, T, H, W) -> (B, N, 3, tubelet*patch*patch): tokens (t, h, w), pixels (dt, dy, dx)."""
    b, c, t, h, w = clips.shape
    x = clips.reshape(b, c, t // tubelet, tubelet, h // patch, patch, w // patch, patch)
    x = x.permute(0, 2, 4, 6, 1, 3, 5, 7)
    return x.reshape(b, -1, c, tubelet * patch * patch)


def unpatchify(tokens: Tensor, grid: tuple[int, int, int], tubelet: int, patch: int) -> Tensor:
    """Inverse of patchify: (B, N, C, tubelet*patch*patch) -> (B, C, T, H, W)."""
    b, _, c, _ = tokens.shape
    x = tokens.reshape(b, *grid, c, tubelet, patch, patch)
    x = x.permute(0, 4, 1, 5, 2, 6, 3, 7)
    return x.reshape(b, c, grid[0] * tubelet, grid[1] * patch, grid[2] * patch)
