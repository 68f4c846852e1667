"""Attentive probe: a few self-attention blocks, then one learnable query pools the tokens, then a Linear.

By default it is V-JEPA 2's AttentiveClassifier (facebookresearch/vjepa2, src/models/attentive_pooler.py):
the same modules, parameter count (49,514,670 at ViT-L width 1024, depth 4, 16 heads, 174 classes), init and
LayerNorm eps (torch's 1e-5), so its outputs equal upstream's given the same weights (tests/test_probe_parity.py).
Three pieces earlier versions of this project added are options, off by default: a LayerNorm on the query
before cross-attention (`query_norm`), an output projection after it (`out_proj`, +1.05M parameters at
ViT-L) and a LayerNorm before the Linear (`head_norm`).

Encoders with RoPE emit tokens that carry no absolute position of their own: position only shapes
their attention. A briefly trained encoder does not write it into its outputs, so a pooling probe
reads a bag of tokens and cannot tell "left, then right" from "right, then left". Given the token
grid, the probe adds a fixed 3D sin-cos code of (t, h, w) to the layer-normalised features
(measured on the synthetic motion task: a random-init tiny encoder probes at 30.6% without it and
66.2% with it; benchmarks/training.md). Upstream adds nothing (probe.position=none).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainers.models.position import sincos_position_code
from trainers.models.vit import Block, Mlp, init_weights, rescale_blocks, trunc_normal_


def default_heads(width: int) -> int:
    """About 64 dims per head, lowered until the heads divide the width."""
    heads = max(1, width // 64)
    while width % heads:
        heads -= 1
    return heads


class CrossAttention(nn.Module):
    """Queries attend to the tokens; upstream has no output projection (`out_proj` adds one)."""

    def __init__(self, width: int, heads: int, out_proj: bool = False) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.proj = nn.Linear(width, width) if out_proj else None

    def forward(self, query: Tensor, tokens: Tensor) -> Tensor:
        q = self.q(query).unflatten(-1, (self.heads, -1)).transpose(1, 2)
        k, v = self.kv(tokens).unflatten(-1, (2, self.heads, -1)).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)
        return out if self.proj is None else self.proj(out)


class CrossAttentionBlock(nn.Module):
    """query + xattn(query, norm1(tokens)), then query + mlp(norm2(query)): upstream normalises the tokens
    but not the query (`query_norm` adds a LayerNorm on it)."""

    def __init__(self, width: int, heads: int, mlp_hidden: int, *, eps: float, query_norm: bool = False,
                 out_proj: bool = False) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(width, eps=eps) if query_norm else nn.Identity()
        self.norm1 = nn.LayerNorm(width, eps=eps)
        self.xattn = CrossAttention(width, heads, out_proj)
        self.norm2 = nn.LayerNorm(width, eps=eps)
        self.mlp = Mlp(width, mlp_hidden)

    def forward(self, query: Tensor, tokens: Tensor) -> Tensor:
        query = query + self.xattn(self.norm_q(query), self.norm1(tokens))
        return query + self.mlp(self.norm2(query))


# torch's LayerNorm default, which upstream's probe uses (the encoders use 1e-6).
PROBE_LN_EPS = 1e-5


class AttentiveProbe(nn.Module):
    def __init__(
        self,
        in_width: int,
        num_classes: int,
        depth: int = 4,
        heads: int | None = None,
        mlp_ratio: float = 4,
        grid: tuple[int, int, int] | None = None,
        *,
        query_norm: bool = False,
        out_proj: bool = False,
        head_norm: bool = False,
        eps: float = PROBE_LN_EPS,
    ) -> None:
        super().__init__()
        # With a grid, the features get the position code (see the module docstring).
        self.register_buffer("position", None if grid is None else sincos_position_code(grid, in_width))
        if depth < 1:
            raise ValueError("the probe needs at least its cross-attention block (depth >= 1)")
        heads = default_heads(in_width) if heads is None else heads
        hidden = int(in_width * mlp_ratio)
        self.blocks = nn.ModuleList(Block(in_width, heads, hidden, eps=eps) for _ in range(depth - 1))
        self.query = nn.Parameter(torch.zeros(1, 1, in_width))
        self.pool = CrossAttentionBlock(in_width, heads, hidden, eps=eps, query_norm=query_norm, out_proj=out_proj)
        self.norm = nn.LayerNorm(in_width, eps=eps) if head_norm else nn.Identity()
        self.head = nn.Linear(in_width, num_classes)
        init_weights(self)
        rescale_blocks(self.blocks)
        with torch.no_grad():
            # As upstream: the pooling block's residual outputs are scaled as the last self-attention block's
            # (as the first one's when there is none).
            scale = math.sqrt(2.0 * max(1, depth - 1))
            self.pool.mlp.fc2.weight.div_(scale)
            if self.pool.xattn.proj is not None:
                self.pool.xattn.proj.weight.div_(scale)
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
