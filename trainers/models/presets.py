"""Encoder sizes by name: the paper's ViTs and CPU-sized ones for the embedded default."""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class ViTSpec:
    width: int
    depth: int
    heads: int
    mlp_hidden: int
    patch_size: int = 16
    tubelet_size: int = 2

    @property
    def head_dim(self) -> int:
        return self.width // self.heads


def _cpu(width: int, depth: int) -> ViTSpec:
    # Head dim 32 keeps the RoPE segments (10/10/10) meaningful at small widths; patch 8 keeps
    # enough tokens per frame at the 32-64 px clips the laptop default uses.
    return ViTSpec(width, depth, width // 32, 4 * width, patch_size=8, tubelet_size=2)


ENCODER_PRESETS: dict[str, ViTSpec] = {
    "vit_base": ViTSpec(768, 12, 12, 3072),
    "vit_large": ViTSpec(1024, 24, 16, 4096),
    "vit_huge": ViTSpec(1280, 32, 16, 5120),
    "vit_giant": ViTSpec(1408, 40, 16, 6144),
    "vit_gigantic": ViTSpec(1664, 48, 16, 8192),
    "nano": _cpu(64, 2),
    "micro": _cpu(96, 3),
    "tiny": _cpu(128, 4),
    "small": _cpu(192, 6),
}


def encoder_spec(name: str, patch_size: int | None = None, tubelet_size: int | None = None) -> ViTSpec:
    """The preset `name`, optionally with another patch or tubelet size."""
    if name not in ENCODER_PRESETS:
        close = difflib.get_close_matches(name, ENCODER_PRESETS, n=1, cutoff=0.0)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"unknown encoder preset {name!r}; {hint}known: {', '.join(ENCODER_PRESETS)}")
    spec = ENCODER_PRESETS[name]
    changes: dict[str, int] = {}
    if patch_size is not None:
        changes["patch_size"] = patch_size
    if tubelet_size is not None:
        changes["tubelet_size"] = tubelet_size
    return dataclasses.replace(spec, **changes) if changes else spec
