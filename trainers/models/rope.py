"""3D rotary position embedding over (t, h, w) with tables precomputed for a whole token grid."""

from __future__ import annotations

import torch
from torch import Tensor


def rope_segment(head_dim: int) -> int:
    """Dims per axis: an even share of a third of the head; the remainder stays unrotated."""
    return 2 * ((head_dim // 3) // 2)


def grid_positions(grid: tuple[int, int, int]) -> Tensor:
    """(N, 3) integer (t, h, w) of every token, in token order index = t*H*W + h*W + w."""
    t, h, w = torch.meshgrid(
        torch.arange(grid[0]), torch.arange(grid[1]), torch.arange(grid[2]), indexing="ij"
    )
    return torch.stack([t.flatten(), h.flatten(), w.flatten()], dim=1)


def rope_tables(grid: tuple[int, int, int], head_dim: int, base: float = 10000.0) -> tuple[Tensor, Tensor]:
    """cos, sin of shape (N, head_dim), float32; the unrotated tail has cos 1 and sin 0."""
    if head_dim % 2:
        raise ValueError(f"RoPE rotates pairs of dims; head_dim {head_dim} is odd")
    seg = rope_segment(head_dim)
    if seg == 0:
        raise ValueError(f"head_dim {head_dim} is too small for 3D RoPE (needs at least 6)")
    positions = grid_positions(grid).to(torch.float64)
    inv_freq = 1.0 / base ** (torch.arange(seg // 2, dtype=torch.float64) * 2 / seg)
    # Each frequency is repeated for its two consecutive dims (x[2i], x[2i+1]) — repeat_interleave,
    # not V-JEPA 2's `repeat`, which would pair dim i with dim i + seg/2 at mismatched frequencies.
    angles = [(positions[:, axis, None] * inv_freq).repeat_interleave(2, dim=1) for axis in range(3)]
    tail = torch.zeros(positions.shape[0], head_dim - 3 * seg, dtype=torch.float64)
    theta = torch.cat([*angles, tail], dim=1)
    # float64 angles keep large positions x high frequencies accurate before the cast.
    return theta.cos().float(), theta.sin().float()


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate consecutive pairs of x (B, heads, L, head_dim) by the gathered angles (B|1, 1, L, head_dim)."""
    pairs = x.unflatten(-1, (-1, 2))
    rotated = torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).flatten(-2)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)
