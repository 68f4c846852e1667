from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from trainers.config import ConfigError, from_dict
from trainers.masks import BlockSpec, MaskCollator, MaskConfig, MaskGenerator, MaskSet

PAPER_GRID = (8, 14, 14)  # 16 frames / tubelet 2, 224 px / patch 16
N = 8 * 14 * 14


def rows(mask: MaskSet, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample b's valid context and target indices."""
    context, target = mask.context[b].numpy(), mask.target[b].numpy()
    if mask.context_valid is not None:
        context = context[mask.context_valid[b].numpy()]
    if mask.target_valid is not None:
        target = target[mask.target_valid[b].numpy()]
    return context, target


def assert_well_formed(masks: list[MaskSet], n: int) -> None:
    for mask in masks:
        assert mask.context.dtype == torch.int64 and mask.target.dtype == torch.int64
        assert mask.context.shape[0] == mask.target.shape[0]
        for b in range(mask.context.shape[0]):
            context, target = rows(mask, b)
            for row in (context, target):
                assert len(row) > 0
                assert row.min() >= 0 and row.max() < n
                assert np.all(np.diff(row) > 0)  # sorted, no repeats
            assert not set(context.tolist()) & set(target.tolist())


def item(index: int, seed: int, skip: bool = False) -> dict:
    if skip:
        return {"skip": True, "index": index, "failures": [("x.mp4", "decode", "bad")]}
    return {
        "video": torch.zeros(3, 2, 4, 4, dtype=torch.uint8),
        "labels": torch.tensor([index % 3]),
        "index": index,
        "short": False,
        "failures": [],
        "seed": seed,
    }


def same(a: list[MaskSet], b: list[MaskSet]) -> bool:
    return len(a) == len(b) and all(
        torch.equal(x.context, y.context) and torch.equal(x.target, y.target) for x, y in zip(a, b)
    )


def test_multiblock_ratios_match_vjepa_at_batch_16():
    generator = MaskGenerator(MaskConfig(), PAPER_GRID)
    rng = np.random.default_rng(0)
    runs = [generator(16, rng) for _ in range(300)]
    mean = {key: float(np.mean([stats[key] for _, stats in runs])) for key in runs[0][1]}
    print(
        f"\nraw target short {mean['mask0_raw_target_ratio']:.3f} long {mean['mask1_raw_target_ratio']:.3f}; "
        f"context after cut short {mean['mask0_context_ratio']:.3f} long {mean['mask1_context_ratio']:.3f}; "
        f"target after cut short {mean['mask0_target_ratio']:.3f} long {mean['mask1_target_ratio']:.3f}"
    )
    # docs/paper.md section 3: raw masked about 0.63 / 0.81, kept context about 0.25 / 0.07 at batch 16.
    assert mean["mask0_raw_target_ratio"] == pytest.approx(0.63, abs=0.02)
    assert mean["mask1_raw_target_ratio"] == pytest.approx(0.81, abs=0.02)
    assert mean["mask0_context_ratio"] == pytest.approx(0.25, abs=0.04)
    assert mean["mask1_context_ratio"] == pytest.approx(0.07, abs=0.03)
    # The stats describe the tensors actually handed out.
    masks, stats = runs[-1]
    assert stats["mask0_context_ratio"] == masks[0].context.shape[1] / N
    assert stats["mask1_target_ratio"] == masks[1].target.shape[1] / N
    assert stats["context_ratio"] == pytest.approx((stats["mask0_context_ratio"] + stats["mask1_context_ratio"]) / 2)


@pytest.mark.parametrize("cut", [True, False])
def test_multiblock_rows_are_sorted_disjoint_and_in_range(cut):
    generator = MaskGenerator(MaskConfig(cut_to_batch_min=cut), PAPER_GRID)
    rng = np.random.default_rng(1)
    for _ in range(5):
        masks, _ = generator(16, rng)
        assert len(masks) == 2
        assert_well_formed(masks, N)
        for mask in masks:
            assert (mask.context_valid is None) == cut


def test_cut_keeps_the_lowest_indices_of_each_full_mask():
    # The cut does not touch the rng, so the same seed gives the same full masks in both modes.
    full, _ = MaskGenerator(MaskConfig(cut_to_batch_min=False), PAPER_GRID)(16, np.random.default_rng(2))
    cut, stats = MaskGenerator(MaskConfig(cut_to_batch_min=True), PAPER_GRID)(16, np.random.default_rng(2))
    for m, (f, c) in enumerate(zip(full, cut)):
        assert f.context_valid is not None  # 16 random samples never all tie
        context_counts = f.context_valid.sum(1)
        target_counts = f.target_valid.sum(1)
        assert c.context.shape == (16, int(context_counts.min()))
        assert c.target.shape == (16, int(target_counts.min()))
        for b in range(16):
            context, target = rows(f, b)
            assert np.array_equal(c.context[b].numpy(), context[: c.context.shape[1]])
            assert np.array_equal(c.target[b].numpy(), target[: c.target.shape[1]])
        assert stats[f"mask{m}_raw_target_ratio"] == pytest.approx(float(target_counts.float().mean()) / N)
        assert stats[f"mask{m}_target_ratio"] < stats[f"mask{m}_raw_target_ratio"]


def test_no_cut_validity_flags_mark_each_samples_full_mask():
    generator = MaskGenerator(MaskConfig(cut_to_batch_min=False), PAPER_GRID)
    masks, stats = generator(16, np.random.default_rng(3))
    for m, mask in enumerate(masks):
        assert mask.context_valid is not None and mask.target_valid is not None
        target_counts = mask.target_valid.sum(1)
        assert mask.target.shape[1] == int(target_counts.max()) > int(target_counts.min())
        assert stats[f"mask{m}_target_ratio"] == pytest.approx(stats[f"mask{m}_raw_target_ratio"])
        assert stats[f"mask{m}_target_ratio"] == pytest.approx(float(target_counts.float().mean()) / N)
        for b in range(16):
            context, target = rows(mask, b)
            # Valid entries are a partition of the clip's tokens ...
            assert np.array_equal(np.sort(np.concatenate([context, target])), np.arange(N))
            # ... valid flags are a prefix, and padding repeats the last real index.
            for values, valid in ((mask.context[b], mask.context_valid[b]), (mask.target[b], mask.target_valid[b])):
                count = int(valid.sum())
                assert bool(valid[:count].all()) and not bool(valid[count:].any())
                assert bool((values[count:] == values[count - 1]).all())


def test_block_size_is_shared_by_the_batch_and_positions_are_not():
    spec = BlockSpec(1, (0.1, 0.4), temporal_scale=(0.3, 1.0), aspect_ratio=(0.5, 2.0))
    generator = MaskGenerator(MaskConfig(blocks=[spec], cut_to_batch_min=False), PAPER_GRID)
    rng = np.random.default_rng(4)
    sizes = set()
    varied = [False, False, False]
    for _ in range(10):
        (mask,), _ = generator(16, rng)
        assert mask.target_valid is None  # one block per sample: every sample has the same count
        boxes = []
        for b in range(16):
            t, h, w = np.unravel_index(mask.target[b].numpy(), PAPER_GRID)
            extent = (np.ptp(t) + 1, np.ptp(h) + 1, np.ptp(w) + 1)
            assert int(np.prod(extent)) == len(t)  # the target is one solid box
            boxes.append((extent, (int(t.min()), int(h.min()), int(w.min()))))
        assert len({extent for extent, _ in boxes}) == 1
        for axis in range(3):
            varied[axis] |= len({corner[axis] for _, corner in boxes}) > 1
        sizes.add(boxes[0][0])
    assert len(sizes) > 1  # drawn afresh per batch
    assert all(varied)  # each sample places its blocks independently, along every axis


@pytest.mark.parametrize(
    "temporal, expected",
    # keep = int(196 * 0.15) = 29, aspect 1 -> h = w = round(sqrt(29)) = 5; t = max(1, int(8 * share)).
    [((1.0, 1.0), 8 * 25), ((0.5, 0.5), 4 * 25), ((0.01, 0.01), 1 * 25)],
)
def test_block_size_follows_vjepa_formula(temporal, expected):
    spec = BlockSpec(1, (0.15, 0.15), temporal_scale=temporal, aspect_ratio=(1.0, 1.0))
    (mask,), stats = MaskGenerator(MaskConfig(blocks=[spec]), PAPER_GRID)(4, np.random.default_rng(5))
    assert mask.target.shape == (4, expected)
    assert stats["mask0_raw_target_ratio"] == expected / N


@pytest.mark.parametrize("count", [1, 2])
def test_tube_masks_repeat_one_spatial_mask_over_time(count):
    generator = MaskGenerator(MaskConfig(kind="tube", tube_masks=count, cut_to_batch_min=False), PAPER_GRID)
    masks, stats = generator(8, np.random.default_rng(6))
    assert len(masks) == count
    assert_well_formed(masks, N)
    spatial_count = int(0.9 * 14 * 14)
    for m, mask in enumerate(masks):
        assert mask.target_valid is None and mask.context_valid is None
        assert mask.target.shape == (8, spatial_count * 8)
        assert stats[f"mask{m}_target_ratio"] == stats[f"mask{m}_raw_target_ratio"] == spatial_count * 8 / N
        grid = np.zeros((8, N), dtype=bool)
        np.put_along_axis(grid, mask.target.numpy(), True, axis=1)
        grid = grid.reshape(8, 8, 14 * 14)
        assert (grid == grid[:, :1]).all()  # the same positions at every time step
        assert len({grid[b, 0].tobytes() for b in range(8)}) == 8  # and different clips differ
    if count == 2:
        assert not torch.equal(masks[0].target, masks[1].target)


def test_causal_context_is_the_first_time_steps():
    generator = MaskGenerator(MaskConfig(kind="causal", causal_context=0.5, causal_masks=2), PAPER_GRID)
    masks, stats = generator(3, np.random.default_rng(7))
    assert len(masks) == 2
    split = 4 * 14 * 14
    for mask in masks:
        assert torch.equal(mask.context, torch.arange(split).expand(3, -1))
        assert torch.equal(mask.target, torch.arange(split, N).expand(3, -1))
    assert stats["context_ratio"] == 0.5 and stats["target_ratio"] == 0.5


def test_collator_masks_depend_only_on_the_items():
    collator = MaskCollator(MaskGenerator(MaskConfig(), PAPER_GRID), seed=11)
    items = [item(i, 1000 + i) for i in range(8)]
    first = collator(items)
    # Global RNG state must not leak in.
    np.random.seed(123)
    torch.manual_seed(123)
    np.random.random(10)
    second = collator(items)
    assert same(first["masks"], second["masks"])
    assert first["mask_stats"] == second["mask_stats"]
    assert first["video"].shape[0] == first["masks"][0].context.shape[0] == 8
    # A skipped item changes nothing: only kept items' seeds count.
    with_skip = collator(items[:3] + [item(99, 5, skip=True)] + items[3:])
    assert same(first["masks"], with_skip["masks"])
    assert not same(first["masks"], collator([item(i, 2000 + i) for i in range(8)])["masks"])
    other_seed = MaskCollator(MaskGenerator(MaskConfig(), PAPER_GRID), seed=12)
    assert not same(first["masks"], other_seed(items)["masks"])


def test_collator_handles_batches_without_kept_items_and_missing_seeds():
    collator = MaskCollator(MaskGenerator(MaskConfig(), PAPER_GRID))
    batch = collator([item(0, 0, skip=True), item(1, 0, skip=True)])
    assert batch["video"] is None and batch["masks"] == [] and batch["mask_stats"] == {}
    unseeded = item(2, 0)
    del unseeded["seed"]
    with pytest.raises(KeyError, match="seed"):
        collator([unseeded])


class _Items(Dataset):
    def __len__(self) -> int:
        return 12

    def __getitem__(self, index: int) -> dict:
        return item(index, 7919 * index + 1)


def test_collator_masks_do_not_depend_on_worker_count():
    collator = MaskCollator(MaskGenerator(MaskConfig(), PAPER_GRID), seed=3)

    def batches(workers: int) -> list[dict]:
        loader = DataLoader(
            _Items(), batch_size=4, collate_fn=collator, num_workers=workers,
            multiprocessing_context="fork" if workers else None,
        )
        return list(loader)

    serial, parallel = batches(0), batches(2)
    assert len(serial) == len(parallel) == 3
    for a, b in zip(serial, parallel):
        assert same(a["masks"], b["masks"])
    assert not same(serial[0]["masks"], serial[1]["masks"])


def test_config_loads_from_plain_data():
    cfg = from_dict(
        MaskConfig,
        {"kind": "multiblock", "cut_to_batch_min": False,
         "blocks": [{"num_blocks": 4, "spatial_scale": [0.1, 0.2], "aspect_ratio": [0.5, 2.0]}]},
    )
    assert cfg.blocks == [BlockSpec(4, (0.1, 0.2), aspect_ratio=(0.5, 2.0))]
    with pytest.raises(ConfigError, match=r"blocks\[0\].*spatial_scale"):
        from_dict(MaskConfig, {"blocks": [{"num_blocks": 4, "spatial_scale": [0.5, 0.2]}]})


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(kind="tube", tube_ratio=1.0), "tube_ratio"),
        (dict(kind="tube", tube_ratio=0.0), "tube_ratio"),
        (dict(tube_masks=0), "tube_masks"),
        (dict(blocks=[]), "blocks is empty"),
        (dict(blocks=[BlockSpec(0, (0.1, 0.2))]), r"blocks\[0\]: num_blocks"),
        (dict(blocks=[BlockSpec(2, (0.3, 0.2))]), r"blocks\[0\]: spatial_scale"),
        (dict(blocks=[BlockSpec(2, (0.0, 0.2))]), "spatial_scale"),
        (dict(blocks=[BlockSpec(2, (0.1, 1.2))]), "spatial_scale"),
        (dict(blocks=[BlockSpec(2, (0.1, 0.2), temporal_scale=(0.5, 1.5))]), "temporal_scale"),
        (dict(blocks=[BlockSpec(2, (0.1, 0.2), aspect_ratio=(-1.0, 1.0))]), "aspect_ratio"),
        (dict(blocks=[BlockSpec(2, (0.1,))]), "pair"),
        (dict(causal_context=1.0), "causal_context"),
        (dict(causal_masks=0), "causal_masks"),
        (dict(kind="random"), "kind"),
    ],
)
def test_validate_rejects_bad_configs(changes, message):
    cfg = MaskConfig(**changes)
    with pytest.raises(ValueError, match=message):
        cfg.validate()
    with pytest.raises(ValueError, match=message):
        MaskGenerator(cfg, PAPER_GRID)


@pytest.mark.parametrize(
    "cfg, grid, message",
    [
        (MaskConfig(kind="tube", tube_ratio=0.1), (2, 3, 3), "tube_ratio"),  # int(0.9) = 0 positions
        (MaskConfig(kind="causal", causal_context=0.9), (4, 4, 4), "no target"),
        (MaskConfig(blocks=[BlockSpec(1, (1.0, 1.0), aspect_ratio=(0.75, 1.5))]), PAPER_GRID, "whole grid"),
        (MaskConfig(blocks=[BlockSpec(1, (0.001, 0.02))]), PAPER_GRID, "empty block"),
        (MaskConfig(), (8, 14), "grid"),
    ],
)
def test_generator_rejects_configs_that_do_not_fit_the_grid(cfg, grid, message):
    with pytest.raises(ValueError, match=message):
        MaskGenerator(cfg, grid)


def test_full_width_blocks_with_time_gaps_are_fine():
    # A full-frame block over part of the time leaves context: allowed, and never empty.
    spec = BlockSpec(1, (1.0, 1.0), temporal_scale=(0.5, 0.5), aspect_ratio=(1.0, 1.0))
    (mask,), _ = MaskGenerator(MaskConfig(blocks=[spec]), PAPER_GRID)(16, np.random.default_rng(8))
    assert mask.context.shape == (16, N // 2)


def test_samples_left_without_context_are_redrawn():
    # Four 1x1 blocks on a 2x2 frame cover it all with probability 4!/4^4 (about 9%).
    spec = BlockSpec(4, (0.25, 0.25), aspect_ratio=(1.0, 1.0))
    generator = MaskGenerator(MaskConfig(blocks=[spec], cut_to_batch_min=False), (1, 2, 2))
    masks, _ = generator(200, np.random.default_rng(10))
    assert_well_formed(masks, 4)
    # Fifty 1x1 blocks on two positions essentially always cover both: a clear error, not a hang.
    spec = BlockSpec(50, (0.5, 0.5), aspect_ratio=(1.0, 1.0))
    with pytest.raises(RuntimeError, match="no context"):
        MaskGenerator(MaskConfig(blocks=[spec]), (1, 1, 2))(2, np.random.default_rng(11))


# Non-square token grids (T', H', W'): every other test here runs on a square frame, where a swap of height and
# width changes nothing. H' < W' and H' > W', each with blocks taller than wide and wider than tall.
NON_SQUARE = [(4, 6, 10), (8, 10, 6)]


def boxes(mask: MaskSet, grid: tuple[int, int, int]) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Per sample of a one-block mask: the (t, h, w) extent of its target and the box's first corner, read
    from the flat index t*H*W + h*W + w; asserts that the target is one solid box."""
    found = []
    for b in range(mask.target.shape[0]):
        _, target = rows(mask, b)
        t, h, w = np.unravel_index(target, grid)
        extent = (int(np.ptp(t)) + 1, int(np.ptp(h)) + 1, int(np.ptp(w)) + 1)
        assert int(np.prod(extent)) == len(target), f"sample {b}: not one solid box on grid {grid}"
        found.append((extent, (int(t.min()), int(h.min()), int(w.min()))))
    return found


@pytest.mark.parametrize("grid", NON_SQUARE)
@pytest.mark.parametrize("aspect", [2.0, 0.5])
def test_a_tall_or_wide_block_lands_on_its_own_axes_of_a_non_square_grid(grid, aspect):
    T, H, W = grid
    # As V-JEPA: keep = int(H*W * 0.14) = int(8.4) = 8 tokens a frame; aspect = height / width, so
    # h = round(sqrt(8 * aspect)), w = round(sqrt(8 / aspect)): 4 x 2 at aspect 2, 2 x 4 at 1/2; t = int(T / 2).
    expected = (T // 2, 4, 2) if aspect == 2.0 else (T // 2, 2, 4)
    spec = BlockSpec(1, (0.14, 0.14), temporal_scale=(0.5, 0.5), aspect_ratio=(aspect, aspect))
    generator = MaskGenerator(MaskConfig(blocks=[spec]), grid)
    rng = np.random.default_rng(12)
    corners = []
    for _ in range(4):
        (mask,), stats = generator(64, rng)
        assert_well_formed([mask], T * H * W)
        found = boxes(mask, grid)
        assert {extent for extent, _ in found} == {expected}
        corners += [corner for _, corner in found]
        assert stats["mask0_raw_target_ratio"] == stats["mask0_target_ratio"] == np.prod(expected) / (T * H * W)
    # Each box is placed anywhere it fits, along each axis: its start runs over 0 .. (axis - extent).
    for axis, (size, extent) in enumerate(zip(grid, expected)):
        assert {corner[axis] for corner in corners} == set(range(size - extent + 1)), ("T", "H", "W")[axis]


@pytest.mark.parametrize("grid", NON_SQUARE)
@pytest.mark.parametrize("cut", [True, False])
def test_multiblock_ratios_on_a_non_square_grid_are_the_masks_handed_out(grid, cut):
    T, H, W = grid
    n = T * H * W
    generator = MaskGenerator(MaskConfig(cut_to_batch_min=cut), grid)
    rng = np.random.default_rng(13)
    for _ in range(5):
        masks, stats = generator(16, rng)
        assert len(masks) == 2
        assert_well_formed(masks, n)
        for m, mask in enumerate(masks):
            context = [len(rows(mask, b)[0]) for b in range(16)]
            target = [len(rows(mask, b)[1]) for b in range(16)]
            assert stats[f"mask{m}_context_ratio"] == pytest.approx(np.mean(context) / n)
            assert stats[f"mask{m}_target_ratio"] == pytest.approx(np.mean(target) / n)
            if not cut:  # uncut, each sample's context and target partition its clip
                assert all(c + t == n for c, t in zip(context, target))
                assert stats[f"mask{m}_raw_target_ratio"] == pytest.approx(np.mean(target) / n)
            # Every sample's target is a union of equal boxes of the batch's size: (t, h, w) within the grid.
            _, target_rows = rows(mask, 0)
            t, h, w = np.unravel_index(target_rows, grid)
            assert t.max() < T and h.max() < H and w.max() < W


@pytest.mark.parametrize(
    "grid, aspect",
    # keep = all 60 tokens of a frame: aspect 0.6 gives 6 x 10 (round(sqrt(36)), round(sqrt(100))), the whole
    # 6 x 10 frame; aspect 1/0.6 the whole 10 x 6 one. The aspect range (0.5, 0.7) holds 0.6.
    [((4, 6, 10), (0.5, 0.7)), ((8, 10, 6), (1 / 0.7, 1 / 0.5))],
)
def test_a_block_that_can_cover_a_non_square_frame_is_refused(grid, aspect):
    covering = BlockSpec(1, (1.0, 1.0), aspect_ratio=aspect)
    with pytest.raises(ValueError, match="whole grid"):
        MaskGenerator(MaskConfig(blocks=[covering]), grid)
    # The same block on the transposed frame cannot cover it: it is refused on no grid but its own.
    T, H, W = grid
    generator = MaskGenerator(MaskConfig(blocks=[covering], cut_to_batch_min=False), (T, W, H))
    (mask,), _ = generator(8, np.random.default_rng(14))
    assert_well_formed([mask], T * H * W)


@pytest.mark.parametrize("grid", NON_SQUARE)
def test_tube_and_causal_masks_on_a_non_square_grid(grid):
    T, H, W = grid
    n = T * H * W
    tube = MaskGenerator(MaskConfig(kind="tube", tube_ratio=0.9, cut_to_batch_min=False), grid)
    masks, stats = tube(8, np.random.default_rng(15))
    spatial = int(0.9 * H * W)
    for m, mask in enumerate(masks):
        assert mask.target.shape == (8, spatial * T)
        assert stats[f"mask{m}_target_ratio"] == spatial * T / n
        t, hw = np.divmod(mask.target.numpy(), H * W)  # flat index t*H*W + (h*W + w)
        for b in range(8):
            positions = [set(hw[b][t[b] == step].tolist()) for step in range(T)]
            assert all(p == positions[0] for p in positions) and len(positions[0]) == spatial
    causal = MaskGenerator(MaskConfig(kind="causal", causal_context=0.5), grid)
    (mask,), stats = causal(2, np.random.default_rng(16))
    split = (T // 2) * H * W
    assert torch.equal(mask.context, torch.arange(split).expand(2, -1))
    assert torch.equal(mask.target, torch.arange(split, n).expand(2, -1))
    assert stats["context_ratio"] == 0.5
