"""The predictor (SALT student) and pixel decoder (V-Pixel teacher): context + mask tokens -> targets."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from trainers.models.position import sincos_position_code
from trainers.models.rope import rope_tables
from trainers.models.vit import LN_EPS, Block, gather_rope, init_weights, rescale_blocks, trunc_normal_


class Predictor(nn.Module):
    def __init__(
        self,
        in_width: int,
        out_width: int,
        grid: tuple[int, int, int],
        width: int = 384,
        depth: int = 12,
        heads: int = 16,
        mlp_ratio: float = 4.0,
        position: str = "rope",
    ) -> None:
        super().__init__()
        self.grid = grid
        # A fixed absolute code per grid position added to every input token ("sincos"), beside RoPE.
        self.register_buffer("position_code", sincos_position_code(grid, width) if position == "sincos" else None,
                             persistent=False)
        self.embed = nn.Linear(in_width, width)
        # One shared mask token: what tells target positions apart is their RoPE angle and, with "sincos",
        # the position code added to it.
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.blocks = nn.ModuleList(Block(width, heads, int(width * mlp_ratio)) for _ in range(depth))
        self.norm = nn.LayerNorm(width, eps=LN_EPS)
        self.proj = nn.Linear(width, out_width)
        cos, sin = rope_tables(grid, width // heads)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        init_weights(self)
        rescale_blocks(self.blocks)
        trunc_normal_(self.mask_token)

    def forward(
        self,
        context: Tensor,
        context_idx: Tensor,
        target_idx: Tensor,
        context_valid: Tensor | None = None,
        target_valid: Tensor | None = None,
    ) -> Tensor:
        b, k, _ = context.shape
        m = target_idx.shape[1]
        masks = self.mask_token.expand(b, m, -1).to(context.dtype)
        x = torch.cat([self.embed(context), masks], dim=1)
        if self.position_code is not None:
            x = x + self.position_code.to(x.dtype)[torch.cat([context_idx, target_idx], dim=1)]
        # RoPE carries each token's original grid position, so the concat order is free
        # (attention is permutation-equivariant and there is no causal mask).
        rope = gather_rope(self.rope_cos, self.rope_sin, torch.cat([context_idx, target_idx], dim=1))
        valid = None
        if context_valid is not None or target_valid is not None:
            ones = context.new_ones
            cv = context_valid if context_valid is not None else ones(b, k, dtype=torch.bool)
            tv = target_valid if target_valid is not None else ones(b, m, dtype=torch.bool)
            valid = torch.cat([cv, tv], dim=1)
        for block in self.blocks:
            x = block(x, rope, valid)
        return self.proj(self.norm(x[:, k:]))


def pixel_decoder(
    in_width: int,
    grid: tuple[int, int, int],
    patch: int,
    tubelet: int,
    width: int = 384,
    depth: int = 12,
    heads: int = 16,
    position: str = "rope",
) -> Predictor:
    """The V-Pixel decoder: a predictor whose output is one token's pixels (3 x tubelet x patch x patch)."""
    return Predictor(in_width, 3 * tubelet * patch * patch, grid, width=width, depth=depth, heads=heads,
                     position=position)
