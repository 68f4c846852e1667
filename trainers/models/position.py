"""A fixed 3D sin-cos code of token grid positions, for the modules that need absolute positions beside RoPE
(the attentive probe's input, optionally the predictor's and pixel decoder's tokens)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def sincos_position_code(grid: tuple[int, int, int], width: int) -> Tensor:
    """(t*h*w, width) fixed code, token order (t, h, w): for each axis an equal share of the width
    (an even number of dims) as [sin, cos] at geometric frequencies; leftover dims are zero."""
    share = 2 * (width // 6)
    if share == 0:
        raise ValueError(f"width {width} is too small for a 3D position code (needs at least 6)")
    t, h, w = torch.meshgrid(*(torch.arange(n, dtype=torch.float64) for n in grid), indexing="ij")
    frequencies = 1.0 / 10000 ** (torch.arange(share // 2, dtype=torch.float64) / (share // 2))
    parts = []
    for axis in (t, h, w):
        angles = axis.flatten()[:, None] * frequencies
        parts += [angles.sin(), angles.cos()]
    code = torch.cat(parts, dim=1)
    return F.pad(code, (0, width - code.size(1))).float()
