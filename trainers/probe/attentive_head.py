"""Attentive probe: a few self-attention blocks, then one learnable query pools the tokens.

Encoders with RoPE emit tokens that carry no absolute position of their own: position only shapes
their attention. A briefly trained encoder does not write it into its outputs, so a pooling probe
reads a bag of tokens and cannot tell "left, then right" from "right, then left". Given the token
grid, the probe adds a fixed 3D sin-cos code of (t, h, w) to the layer-normalised features
(measured on the synthetic motion task: a random-init tiny encoder probes at 30.6% without it and
66.2% with it; benchmarks/training.md).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainers.models.position import sincos_position_code
from trainers.models.vit import LN_EPS, Block, Mlp, init_weights, rescale_blocks, trunc_normal_


def default_heads(width: int) -> int:
    """About 64 dims per head, lowered until the heads divide the width."""
    heads = max(1, width // 64)
    while width % heads:
        heads -= 1
    return heads


class CrossAttention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, query: Tensor, tokens: Tensor) -> Tensor:
        q = self.q(query).unflatten(-1, (self.heads, -1)).transpose(1, 2)
        k, v = self.kv(tokens).unflatten(-1, (2, self.heads, -1)).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).flatten(2))


class CrossAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int, mlp_hidden: int) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(width, eps=LN_EPS)
        self.norm_x = nn.LayerNorm(width, eps=LN_EPS)
        self.xattn = CrossAttention(width, heads)
        self.norm2 = nn.LayerNorm(width, eps=LN_EPS)
        self.mlp = Mlp(width, mlp_hidden)

    def forward(self, query: Tensor, tokens: Tensor) -> Tensor:
        query = query + self.xattn(self.norm_q(query), self.norm_x(tokens))
        return query + self.mlp(self.norm2(query))


class AttentiveProbe(nn.Module):
    def __init__(
        self,
        in_width: int,
        num_classes: int,
        depth: int = 4,
        heads: int | None = None,
        mlp_ratio: float = 4,
        grid: tuple[int, int, int] | None = None,
    ) -> None:
        super().__init__()
        # With a grid, the features get the position code (see the module docstring).
        self.register_buffer("position", None if grid is None else sincos_position_code(grid, in_width))
        if depth < 1:
            raise ValueError("the probe needs at least its cross-attention block (depth >= 1)")
        heads = default_heads(in_width) if heads is None else heads
        hidden = int(in_width * mlp_ratio)
        # Frozen features carry their own positional information; the probe adds none.
        self.blocks = nn.ModuleList(Block(in_width, heads, hidden) for _ in range(depth - 1))
        self.query = nn.Parameter(torch.zeros(1, 1, in_width))
        self.pool = CrossAttentionBlock(in_width, heads, hidden)
        self.norm = nn.LayerNorm(in_width, eps=LN_EPS)
        self.head = nn.Linear(in_width, num_classes)
        init_weights(self)
        rescale_blocks(self.blocks)
        with torch.no_grad():
            # The pooling block is the last layer of the stack for the residual rescaling.
            self.pool.xattn.proj.weight.div_(math.sqrt(2.0 * depth))
            self.pool.mlp.fc2.weight.div_(math.sqrt(2.0 * depth))
        trunc_normal_(self.query)

    def forward(self, features: Tensor) -> Tensor:
        x = features
        if self.position is not None:
            if x.size(1) != self.position.size(0):
                raise ValueError(f"{x.size(1)} tokens do not match the probe's grid of {self.position.size(0)} tokens")
            x = F.layer_norm(x, x.shape[-1:]) + self.position.to(x.dtype)
        for block in self.blocks:
            x = block(x)
        pooled = self.pool(self.query.expand(x.shape[0], -1, -1).to(x.dtype), x)
        return self.head(self.norm(pooled[:, 0]))
