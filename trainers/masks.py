"""Context/target token masks for JEPA-style training, made per batch in the DataLoader collate.

A clip's tokens form a grid (T', H', W'), flat index t*H'*W' + h*W' + w. Each mask splits them
into CONTEXT (what the encoder sees) and TARGET (what the predictor must produce). Masks come
from a numpy Generator seeded by the batch's sample seeds, so a batch's masks are the same with
any number of workers, after a resume, and whatever the global RNG state is.

The multi-block masks follow V-JEPA (facebookresearch/jepa, src/masks/multiblock3d.py), including
its quirks, because SALT's numbers were produced with them: the block SIZE is drawn once per
batch, only the positions per sample, and with `cut_to_batch_min` every row is cut to the batch's
shortest, dropping the latest tokens, so the effective ratios depend on the batch size. The
stats returned with every batch record the ratios actually used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch

from trainers.data.dataset import collate_clips

Grid = tuple[int, int, int]

# A sample whose blocks happen to cover every token has no context and is redrawn (as in
# V-JEPA); past this many rounds the config is as good as always-empty and we say so instead of
# spinning in a DataLoader worker.
_MAX_REDRAWS = 1000


def _check_range(name: str, value: Sequence[float], low: float, high: float | None) -> None:
    """(lo, hi) with low < lo <= hi (<= high where given)."""
    if len(value) != 2:
        raise ValueError(f"{name} must be a (lo, hi) pair, got {value!r}")
    lo, hi = value
    if not low < lo <= hi or (high is not None and hi > high):
        bound = f"{low:g} < lo <= hi <= {high:g}" if high is not None else f"{low:g} < lo <= hi"
        raise ValueError(f"{name} must satisfy {bound}, got ({lo:g}, {hi:g})")


def _lerp(bounds: Sequence[float], r: float) -> float:
    lo, hi = bounds
    return lo + r * (hi - lo)


@dataclass
class BlockSpec:
    """One multi-block mask: the union of `num_blocks` boxes of one shared size."""

    num_blocks: int
    spatial_scale: tuple[float, float]  # share of the frame area per block, drawn in this range
    temporal_scale: tuple[float, float] = (1.0, 1.0)  # share of the time steps per block
    aspect_ratio: tuple[float, float] = (0.75, 1.5)  # block height / width

    def validate(self) -> None:
        if self.num_blocks < 1:
            raise ValueError(f"num_blocks must be >= 1, got {self.num_blocks}")
        _check_range("spatial_scale", self.spatial_scale, 0.0, 1.0)
        _check_range("temporal_scale", self.temporal_scale, 0.0, 1.0)
        _check_range("aspect_ratio", self.aspect_ratio, 0.0, None)


def _default_blocks() -> list[BlockSpec]:
    # V-JEPA's pair: short-range (many small blocks) and long-range (two large ones).
    return [BlockSpec(8, (0.15, 0.15)), BlockSpec(2, (0.7, 0.7))]


@dataclass
class MaskConfig:
    """Which masks a stage trains with; plain types only, as it is loaded from YAML."""

    kind: Literal["multiblock", "tube", "causal"] = "multiblock"
    blocks: list[BlockSpec] = field(default_factory=_default_blocks)  # multiblock: one mask per spec
    cut_to_batch_min: bool = True  # V-JEPA's cut; False pads rows and adds validity flags
    # Clips whose masks are drawn and cut together. V-JEPA cuts over each GPU's batch (24 clips in V-JEPA 2's
    # ViT-L config), so the ratios depend on it. null: each pass on the device (run.micro_batch clips, or a
    # process's whole batch without it). A number must be a multiple of the pass and divide a process's
    # batch: its clips are loaded and masked together, then run in passes of run.micro_batch.
    cut_batch: int | None = None
    tube_ratio: float = 0.9  # share of spatial positions masked, repeated over all time steps
    tube_masks: int = 2  # independent tube masks per clip ("x1" / "x2")
    causal_context: float = 0.5  # share of time steps, from the start, given as context
    causal_masks: int = 1

    def validate(self) -> None:
        if self.kind not in ("multiblock", "tube", "causal"):
            raise ValueError(f"kind must be 'multiblock', 'tube' or 'causal', got {self.kind!r}")
        if self.kind == "multiblock":
            if not self.blocks:
                raise ValueError("blocks is empty; multiblock needs at least one BlockSpec (one per mask)")
            for i, spec in enumerate(self.blocks):
                try:
                    spec.validate()
                except ValueError as exc:
                    raise ValueError(f"blocks[{i}]: {exc}") from None
        if not 0.0 < self.tube_ratio < 1.0:
            raise ValueError(f"tube_ratio must lie in (0, 1) (both context and target non-empty), got {self.tube_ratio}")
        if self.tube_masks < 1:
            raise ValueError(f"tube_masks must be >= 1, got {self.tube_masks}")
        if not 0.0 < self.causal_context < 1.0:
            raise ValueError(f"causal_context must lie in (0, 1), got {self.causal_context}")
        if self.causal_masks < 1:
            raise ValueError(f"causal_masks must be >= 1, got {self.causal_masks}")
        if self.cut_batch is not None and self.cut_batch < 1:
            raise ValueError(f"cut_batch must be >= 1, or null to cut over each pass (got {self.cut_batch})")


@dataclass
class MaskSet:
    """One mask for the whole batch; rows are sorted token indices."""

    context: torch.Tensor  # (B, Kc) int64
    target: torch.Tensor  # (B, Kt) int64
    # Only without the cut, and only when rows differ in length: False marks padding, which
    # repeats the row's last real index so that gathers stay in range.
    context_valid: torch.Tensor | None = None  # (B, Kc) bool
    target_valid: torch.Tensor | None = None  # (B, Kt) bool


def _index_rows(member: np.ndarray, cut: bool) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Sorted member indices per row of a (B, N) bool array: (rows, valid or None, kept counts)."""
    counts = member.sum(axis=1)
    # A stable sort of "not member" puts each row's members first, in ascending index order.
    order = np.argsort(~member, axis=1, kind="stable")
    low, high = int(counts.min()), int(counts.max())
    if cut or low == high:
        # Keeping the first `low` drops the highest indices, i.e. the latest tokens, as V-JEPA does.
        return order[:, :low], None, np.full_like(counts, low)
    rows = order[:, :high]
    valid = np.arange(high)[None, :] < counts[:, None]
    last = rows[np.arange(len(rows)), counts - 1]
    return np.where(valid, rows, last[:, None]), valid, counts


def _optional_tensor(array: np.ndarray | None) -> torch.Tensor | None:
    return None if array is None else torch.from_numpy(array)


class MaskGenerator:
    """Draws a batch's masks from a given rng; all checks that depend on the grid happen here, once."""

    def __init__(self, cfg: MaskConfig, grid: Grid):
        cfg.validate()
        if len(grid) != 3 or any(int(g) < 1 for g in grid):
            raise ValueError(f"grid must be three positive sizes (T', H', W'), got {grid!r}")
        self.cfg = cfg
        self.grid: Grid = (int(grid[0]), int(grid[1]), int(grid[2]))
        T, H, W = self.grid
        self.num_tokens = T * H * W
        if cfg.kind == "multiblock":
            for i, spec in enumerate(cfg.blocks):
                self._check_block(i, spec)
        elif cfg.kind == "tube":
            self.tube_count = int(cfg.tube_ratio * H * W)
            if not 0 < self.tube_count < H * W:
                raise ValueError(
                    f"tube_ratio={cfg.tube_ratio} masks {self.tube_count} of {H * W} spatial positions on grid "
                    f"{self.grid}; context and target must both be non-empty"
                )
        else:
            self.causal_steps = max(1, round(cfg.causal_context * T))
            if self.causal_steps >= T:
                raise ValueError(
                    f"causal_context={cfg.causal_context} gives all {T} time steps of grid {self.grid} to the "
                    f"context, leaving no target; lower it or use more time steps"
                )

    def _block_size(self, spec: BlockSpec, r: np.ndarray) -> tuple[int, int, int]:
        # As multiblock3d._sample_block_size: one uniform draw each for time, area and aspect.
        T, H, W = self.grid
        t = max(1, int(T * _lerp(spec.temporal_scale, float(r[0]))))
        keep = int(H * W * _lerp(spec.spatial_scale, float(r[1])))
        aspect = _lerp(spec.aspect_ratio, float(r[2]))
        h = min(int(round(math.sqrt(keep * aspect))), H)
        w = min(int(round(math.sqrt(keep / aspect))), W)
        return t, h, w

    def _check_block(self, i: int, spec: BlockSpec) -> None:
        T, H, W = self.grid
        # h and w grow with the area share and t with the time share, so the range ends bound them.
        _, h, _ = self._block_size(spec, np.array([0.0, 0.0, 0.0]))
        _, _, w = self._block_size(spec, np.array([0.0, 0.0, 1.0]))
        if h < 1 or w < 1:
            raise ValueError(
                f"blocks[{i}]: spatial_scale {spec.spatial_scale} with aspect_ratio {spec.aspect_ratio} can give an "
                f"empty block ({h}x{w}) on grid {self.grid}; raise the lower spatial scale"
            )
        # A block spanning the whole grid leaves every sample without context, which V-JEPA would
        # redraw forever. h >= H needs aspect >= (H-1/2)^2/keep and w >= W needs aspect <= keep/(W-1/2)^2.
        t_max = max(1, int(T * spec.temporal_scale[1]))
        keep_max = int(H * W * spec.spatial_scale[1])
        lo = max(spec.aspect_ratio[0], (H - 0.5) ** 2 / keep_max)
        hi = min(spec.aspect_ratio[1], keep_max / (W - 0.5) ** 2)
        if t_max >= T and lo <= hi:
            raise ValueError(
                f"blocks[{i}]: a block can cover the whole grid {self.grid} (temporal_scale {spec.temporal_scale}, "
                f"spatial_scale {spec.spatial_scale}, aspect_ratio {spec.aspect_ratio}), leaving no context; "
                f"lower the upper scales"
            )

    def _multiblock(self, spec: BlockSpec, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        T, H, W = self.grid
        t, h, w = self._block_size(spec, rng.random(3))
        n = spec.num_blocks
        target = np.zeros((batch_size, T, H, W), dtype=bool)
        todo = np.arange(batch_size)
        for _ in range(_MAX_REDRAWS):
            k = len(todo)
            # Box membership per axis, then their outer product: (k, blocks, T, H, W) in one go.
            start = rng.integers(0, T - t + 1, (k, n, 1))
            top = rng.integers(0, H - h + 1, (k, n, 1))
            left = rng.integers(0, W - w + 1, (k, n, 1))
            in_t = (np.arange(T) >= start) & (np.arange(T) < start + t)
            in_h = (np.arange(H) >= top) & (np.arange(H) < top + h)
            in_w = (np.arange(W) >= left) & (np.arange(W) < left + w)
            union = (in_t[:, :, :, None, None] & in_h[:, :, None, :, None] & in_w[:, :, None, None, :]).any(axis=1)
            empty = union.reshape(k, -1).all(axis=1)
            target[todo[~empty]] = union[~empty]
            todo = todo[empty]
            if not len(todo):
                return target.reshape(batch_size, -1)
        raise RuntimeError(
            f"{len(todo)} samples still had no context after {_MAX_REDRAWS} redraws of {n} blocks of size "
            f"{(t, h, w)} on grid {self.grid}; use fewer or smaller blocks"
        )

    def _tube(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        T, H, W = self.grid
        # The ranks of i.i.d. uniforms are a uniform permutation: its first k are a draw without replacement.
        chosen = np.argsort(rng.random((batch_size, H * W)), axis=1)[:, : self.tube_count]
        spatial = np.zeros((batch_size, H * W), dtype=bool)
        np.put_along_axis(spatial, chosen, True, axis=1)
        return np.broadcast_to(spatial[:, None, :], (batch_size, T, H * W)).reshape(batch_size, -1)

    def _causal(self, batch_size: int) -> np.ndarray:
        _, H, W = self.grid
        target = np.zeros((batch_size, self.num_tokens), dtype=bool)
        target[:, self.causal_steps * H * W :] = True
        return target

    def _targets(self, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
        cfg = self.cfg
        if cfg.kind == "multiblock":
            return [self._multiblock(spec, batch_size, rng) for spec in cfg.blocks]
        if cfg.kind == "tube":
            return [self._tube(batch_size, rng) for _ in range(cfg.tube_masks)]
        return [self._causal(batch_size) for _ in range(cfg.causal_masks)]

    def __call__(self, batch_size: int, rng: np.random.Generator) -> tuple[list[MaskSet], dict[str, float]]:
        """The batch's masks and their token shares (context/target after any cut, raw target before it)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        cut = self.cfg.cut_to_batch_min
        masks: list[MaskSet] = []
        stats: dict[str, float] = {}
        for m, target in enumerate(self._targets(batch_size, rng)):
            context_rows, context_valid, context_kept = _index_rows(~target, cut)
            target_rows, target_valid, target_kept = _index_rows(target, cut)
            masks.append(
                MaskSet(
                    context=torch.from_numpy(context_rows.astype(np.int64)),
                    target=torch.from_numpy(target_rows.astype(np.int64)),
                    context_valid=_optional_tensor(context_valid),
                    target_valid=_optional_tensor(target_valid),
                )
            )
            stats[f"mask{m}_context_ratio"] = float(context_kept.mean()) / self.num_tokens
            stats[f"mask{m}_target_ratio"] = float(target_kept.mean()) / self.num_tokens
            stats[f"mask{m}_raw_target_ratio"] = float(target.sum(axis=1).mean()) / self.num_tokens
        for name in ("context_ratio", "target_ratio", "raw_target_ratio"):
            stats[name] = float(np.mean([stats[f"mask{m}_{name}"] for m in range(len(masks))]))
        return masks, stats


class MaskCollator:
    """collate_fn: the base batch plus "masks" and "mask_stats", seeded only by the batch's sample seeds."""

    def __init__(
        self,
        generator: MaskGenerator,
        seed: int = 0,
        base_collate: Callable[[Sequence[dict[str, Any]]], dict[str, Any]] = collate_clips,
    ):
        self.generator = generator
        self.seed = seed
        self.base_collate = base_collate

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
        batch = self.base_collate(items)
        kept = [item for item in items if not item.get("skip")]
        if not kept:
            batch["masks"], batch["mask_stats"] = [], {}
            return batch
        missing = [item.get("index") for item in kept if "seed" not in item]
        if missing:
            raise KeyError(f"items {missing} carry no 'seed'; the mask collator needs each sample's seed")
        rng = np.random.default_rng([self.seed, *(int(item["seed"]) for item in kept)])
        batch["masks"], batch["mask_stats"] = self.generator(len(kept), rng)
        return batch


def split_masked_batch(batch: dict[str, Any], size: int) -> list[dict[str, Any]]:
    """A collated batch and its masks cut into passes of `size` clips (the last may be shorter where the loader
    dropped clips). Each pass keeps the whole group's masks rows and ratios: the cut was over the group. The
    loader's bookkeeping (attempts, failures) stays with the first pass."""
    rows = len(batch["video"])
    if rows <= size:
        return [batch]
    parts = []
    for start in range(0, rows, size):
        chosen = slice(start, start + size)
        part = {key: value for key, value in batch.items() if start == 0 or key not in ("attempts", "failures", "short")}
        part.update(video=batch["video"][chosen], labels=batch["labels"][chosen], index=batch["index"][chosen],
                    masks=[_mask_rows(mask, chosen) for mask in batch["masks"]])
        parts.append(part)
    return parts


def _mask_rows(mask: MaskSet, chosen: slice) -> MaskSet:
    pick = lambda t: None if t is None else t[chosen]
    return MaskSet(mask.context[chosen], mask.target[chosen], pick(mask.context_valid), pick(mask.target_valid))
