"""Spatial transforms of one clip, applied identically to all of its frames.

Clips stay uint8 from the decoder through the DataLoader (4x less to copy and pin than float);
normalisation happens on the batch tensor where it is consumed, on the GPU when there is one.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

Box = tuple[int, int, int, int]  # top, left, height, width in source pixels

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def random_resized_crop_box(
    height: int,
    width: int,
    scale: Sequence[float],
    aspect: Sequence[float],
    rng: np.random.Generator,
) -> Box:
    """torchvision's RandomResizedCrop sampling: area share in `scale`, log-uniform aspect in `aspect`."""
    area = height * width
    log_lo, log_hi = math.log(aspect[0]), math.log(aspect[1])
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        ratio = math.exp(rng.uniform(log_lo, log_hi))
        crop_w = int(round(math.sqrt(target * ratio)))
        crop_h = int(round(math.sqrt(target / ratio)))
        if 0 < crop_w <= width and 0 < crop_h <= height:
            top = int(rng.integers(0, height - crop_h + 1))
            left = int(rng.integers(0, width - crop_w + 1))
            return top, left, crop_h, crop_w
    # Fallback as torchvision: the largest centred crop whose aspect lies in range.
    in_ratio = width / height
    if in_ratio < aspect[0]:
        crop_w, crop_h = width, int(round(width / aspect[0]))
    elif in_ratio > aspect[1]:
        crop_h, crop_w = height, int(round(height * aspect[1]))
    else:
        crop_w, crop_h = width, height
    return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w


def center_crop_box(height: int, width: int, crop_fraction: float) -> Box:
    """The centred square that evaluation keeps: the short side times `crop_fraction`
    (0.875 = resize to 256 and crop 224, V-JEPA's evaluation)."""
    side = max(1, int(round(min(height, width) * crop_fraction)))
    return (height - side) // 2, (width - side) // 2, side, side


def view_crop_boxes(height: int, width: int, crop_fraction: float, views: int) -> list[Box]:
    """The spatial views of multi-view evaluation: squares of center_crop_box's size, centred on the short
    axis and evenly spaced along the long one (3 views: the two ends and the centre, V-JEPA's three
    crops); one view is the centre crop."""
    top, left, side, _ = center_crop_box(height, width, crop_fraction)
    if views == 1:
        return [(top, left, side, side)]
    along = np.rint(np.linspace(0, max(height, width) - side, views)).astype(int)
    if width >= height:
        return [(top, int(offset), side, side) for offset in along]
    return [(int(offset), left, side, side) for offset in along]


def crop_resize(frames: np.ndarray, box: Box, size: int, flip: bool = False) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (3, T, size, size) uint8: crop `box`, resize with antialiasing, flip."""
    top, left, crop_h, crop_w = box
    clip = torch.from_numpy(np.ascontiguousarray(frames[:, top : top + crop_h, left : left + crop_w]))
    clip = clip.permute(0, 3, 1, 2)  # T, C, h, w
    if (crop_h, crop_w) != (size, size):
        resized = F.interpolate(clip.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        clip = resized.round_().clamp_(0, 255).to(torch.uint8)
    if flip:
        clip = clip.flip(-1)
    return clip.permute(1, 0, 2, 3).contiguous()


def normalize_clips(
    clips: torch.Tensor,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """(B, 3, T, H, W) uint8 -> normalised float on the clips' own device."""
    shape = (1, 3, 1, 1, 1)
    mean_t = torch.tensor(mean, device=clips.device, dtype=torch.float32).view(shape) * 255.0
    inv_std = 1.0 / (torch.tensor(std, device=clips.device, dtype=torch.float32).view(shape) * 255.0)
    return ((clips.float() - mean_t) * inv_std).to(dtype)
