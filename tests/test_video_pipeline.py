"""The data path end to end: synthetic clips written as H.264, decoded, sampled, cropped."""

import json

import numpy as np
import pytest
import torch

from trainers.data.build import build_dataset, resolve_data
from trainers.data.clip_list import ClipEntry, TaskClasses, read_clip_list
from trainers.data.config import DataConfig, SyntheticConfig
from trainers.data.dataset import ClipLoader, ClipSpec, DataError, VideoClipDataset
from trainers.data.readers import DecordReader, PyAVReader, UnreadableVideo, open_video
from trainers.data.synthetic import generate_synthetic, read_meta, render_split_clip, split_labels

TASKS = [TaskClasses("appearance", 10), TaskClasses("motion", 10)]


def entries_of(folder, split="train"):
    return read_clip_list(folder / f"{split}.csv", TASKS)


def test_round_trip_synth_mp4_decord_clip(small_synth):
    cfg, folder = small_synth
    meta = read_meta(folder)
    assert list(meta["tasks"]) == ["appearance", "motion"] and meta["clips"] == {"train": 12, "val": 6}
    entries = entries_of(folder)
    assert len(entries) == cfg.train and len(entries_of(folder, "val")) == cfg.val
    # decoded H.264 is close to what was rendered (lossy, but not destroyed)
    labels = split_labels(cfg, "train")
    rendered = render_split_clip(cfg, "train", 0, int(labels[0, 0]), int(labels[0, 1]))
    decoded = open_video(entries[0].path).get_frames(range(cfg.frames))
    assert decoded.shape == rendered.shape == (cfg.frames, cfg.size, cfg.size, 3) and decoded.dtype == np.uint8
    mse = np.mean((decoded.astype(np.float64) - rendered) ** 2)
    assert 10 * np.log10(255**2 / mse) > 28, "H.264 round trip lost too much (PSNR)"
    spec = ClipSpec(frames=8, frame_step=2, resolution=24, train=True)
    item = VideoClipDataset(entries, TASKS, spec)[(0, 123)]
    assert item["video"].shape == (3, 8, 24, 24) and item["video"].dtype == torch.uint8
    assert item["labels"].dtype == torch.int64 and item["labels"].shape == (2,)


def test_pyav_reader_matches_decord(small_synth):
    _, folder = small_synth
    path = entries_of(folder)[1].path
    indices = [0, 3, 7, 15]
    a = open_video(path, "decord").get_frames(indices)
    b = PyAVReader(path).get_frames(indices)
    assert np.array_equal(a, b)


def test_generator_is_deterministic(small_synth, tmp_path):
    cfg, _ = small_synth
    # 64 px: large enough that a thread-count-dependent BLAS kernel would change the pixels
    cfg = SyntheticConfig(train=4, val=2, frames=8, size=64, seed=5)
    generate_synthetic(cfg, tmp_path / "one", workers=1, progress=False)  # in this process
    generate_synthetic(cfg, tmp_path / "two", workers=2, progress=False)  # in single-threaded children
    for name in ["train.csv", "val.csv", "meta.json", "train/000000.mp4", "train/000003.mp4", "val/000001.mp4"]:
        one, two = (tmp_path / "one" / name).read_bytes(), (tmp_path / "two" / name).read_bytes()
        if name == "meta.json":  # holds the generation time
            one, two = (json.loads(x) for x in (one, two))
            one.pop("generation_seconds"), two.pop("generation_seconds")
        assert one == two, name
    other = SyntheticConfig(**{**cfg.__dict__, "seed": cfg.seed + 1})
    labels = split_labels(other, "train")
    assert not np.array_equal(
        render_split_clip(other, "train", 0, int(labels[0, 0]), int(labels[0, 1])),
        render_split_clip(cfg, "train", 0, int(labels[0, 0]), int(labels[0, 1])),
    )


def test_labels_are_balanced(small_synth):
    cfg, _ = small_synth
    labels = split_labels(SyntheticConfig(train=40, val=10), "train")
    for column in range(2):
        counts = np.bincount(labels[:, column], minlength=10)
        assert counts.min() == counts.max() == 4


@pytest.fixture()
def list_with_bad_clips(small_synth, tmp_path):
    _, folder = small_synth
    good = entries_of(folder)[:6]
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    truncated = tmp_path / "truncated.mp4"
    data = open(good[0].path, "rb").read()
    truncated.write_bytes(data[: len(data) * 6 // 10])
    bad = [ClipEntry(str(p), (0, 0), 0) for p in [corrupt, truncated, tmp_path / "missing.mp4"]]
    return good, bad


def test_bad_clips_are_skipped_and_counted_in_evaluation(list_with_bad_clips):
    good, bad = list_with_bad_clips
    spec = ClipSpec(frames=8, frame_step=2, resolution=16, train=False)
    dataset = VideoClipDataset(good[:3] + bad + good[3:], TASKS, spec)
    loader = ClipLoader(dataset, batch_size=4, shuffle=False, max_bad_fraction=0.5)
    indices = torch.cat([batch["index"] for batch in loader]).tolist()
    assert indices == [0, 1, 2, 6, 7, 8]
    stats = loader.stats.as_dict()
    assert stats["skipped"] == 3 and stats["delivered"] == 6 and stats["attempts"] == 9
    assert stats["skipped_by_reason"]["missing"] == 1
    assert set(loader.stats.bad_files) == {e.path for e in bad}


def test_bad_clips_are_replaced_in_training_and_the_batch_stays_full(list_with_bad_clips):
    good, bad = list_with_bad_clips
    dataset = VideoClipDataset(good + bad, TASKS, ClipSpec(frames=8, frame_step=2, resolution=16))
    loader = ClipLoader(dataset, batch_size=3, shuffle=True, drop_last=True, max_bad_fraction=0.9)
    sizes = [len(batch["video"]) for batch in loader]
    assert sizes == [3, 3, 3]
    assert loader.stats.skipped >= 3 and loader.stats.delivered == 9


def test_too_many_bad_clips_stop_with_a_clear_error(list_with_bad_clips):
    good, bad = list_with_bad_clips
    dataset = VideoClipDataset(good + bad, TASKS, ClipSpec(frames=8, frame_step=2, resolution=16, train=False))
    loader = ClipLoader(dataset, batch_size=4, shuffle=False, max_bad_fraction=0.1)
    with pytest.raises(DataError, match="could not be read .* data.max_bad_fraction=0.1"):
        list(loader)


def test_open_video_names_the_reason(list_with_bad_clips):
    _, bad = list_with_bad_clips
    reasons = []
    for entry in bad:
        with pytest.raises(UnreadableVideo) as caught:
            open_video(entry.path).get_frames([0, 1])
        reasons.append(caught.value.reason)
    assert reasons[2] == "missing" and reasons[0] == "unreadable"


def test_short_clip_is_padded_and_counted(small_synth):
    _, folder = small_synth
    spec = ClipSpec(frames=12, frame_step=2, resolution=16, train=False)  # needs 23 frames, clips have 16
    dataset = VideoClipDataset(entries_of(folder)[:2], TASKS, spec)
    loader = ClipLoader(dataset, batch_size=2, shuffle=False)
    batch = next(iter(loader))
    assert loader.stats.short == 2
    video = batch["video"]
    assert torch.equal(video[:, :, 7], video[:, :, 11])  # frames 14, 14, ...: the last strided frame repeats


def test_batches_do_not_depend_on_worker_count(small_synth):
    cfg, folder = small_synth
    dataset = VideoClipDataset(entries_of(folder), TASKS, ClipSpec(frames=8, frame_step=1, resolution=16))
    runs = []
    for workers in (0, 2):
        loader = ClipLoader(dataset, batch_size=4, shuffle=True, seed=7, workers=workers)
        loader.set_epoch(1)
        runs.append([(b["index"], b["video"], b["labels"]) for b in loader])
    for (i0, v0, l0), (i1, v1, l1) in zip(*runs):
        assert torch.equal(i0, i1) and torch.equal(v0, v1) and torch.equal(l0, l1)


def test_horizontal_flip_mirrors_the_motion_label(small_synth):
    _, folder = small_synth
    meta = read_meta(folder)
    mirror = [meta["tasks"]["appearance"]["mirror"], meta["tasks"]["motion"]["mirror"]]
    # a full-frame crop, so the only difference between the two datasets is the flip
    base = dict(frames=8, frame_step=2, resolution=32, crop_scale=(1.0, 1.0), crop_aspect=(1.0, 1.0))
    plain = VideoClipDataset(entries_of(folder), TASKS, ClipSpec(hflip=False, **base), mirror)
    flipping = VideoClipDataset(entries_of(folder), TASKS, ClipSpec(hflip=True, **base), mirror)
    flipped_seen = kept_seen = 0
    for seed in range(12):
        a, b = plain[(seed % 12, seed)], flipping[(seed % 12, seed)]
        if torch.equal(b["video"], a["video"]):
            kept_seen += 1
            assert torch.equal(b["labels"], a["labels"])
        else:
            assert torch.equal(b["video"], a["video"].flip(-1))
            flipped_seen += 1
            assert b["labels"].tolist() == [a["labels"][0].item(), mirror[1][a["labels"][1].item()]]
    assert flipped_seen and kept_seen


def test_experiment_names_embedded_set_and_it_is_cached(tmp_path, monkeypatch):
    cfg = DataConfig(cache_dir=str(tmp_path), synthetic=SyntheticConfig(train=3, val=2, frames=8, size=32),
                     tasks=["motion"])
    resolved = resolve_data(cfg, progress=False)
    assert [t.name for t in resolved.tasks] == ["motion"] and resolved.tasks[0].num_classes == 10
    dataset = build_dataset(cfg, "val", train=False, resolved=resolved)
    assert len(dataset) == 2 and dataset[0]["labels"].shape == (1,)
    meta_file = resolved.lists["train"].parent / "meta.json"
    stamp = meta_file.stat().st_mtime_ns

    def must_not_generate(*args, **kwargs):
        raise AssertionError("the cached set was generated again")

    monkeypatch.setattr("trainers.data.synthetic.generate_synthetic", must_not_generate)
    again = resolve_data(cfg, progress=False)
    assert again.lists == resolved.lists and meta_file.stat().st_mtime_ns == stamp
    with pytest.raises(Exception, match="does not have"):
        resolve_data(DataConfig(cache_dir=str(tmp_path), synthetic=cfg.synthetic, tasks=["k400"]), progress=False)


def test_pyav_stands_in_when_no_seeking_reader_is_installed(small_synth, monkeypatch):
    _, folder = small_synth
    path = entries_of(folder)[2].path
    monkeypatch.setattr("trainers.data.readers.decord_available", lambda: False)
    monkeypatch.setattr("trainers.data.readers.torchcodec_available", lambda: False)
    reader = open_video(path)
    assert isinstance(reader, PyAVReader) and len(reader) == 16
    assert np.array_equal(reader.get_frames([1, 5]), DecordReader(path).get_frames([1, 5]))


def test_decoded_cache_gives_the_same_clips_and_skips_decoding(small_synth, monkeypatch):
    _, folder = small_synth
    entries = entries_of(folder)
    spec = ClipSpec(frames=4, frame_step=2, resolution=24, train=True)
    plain = VideoClipDataset(entries, TASKS, spec)
    cached = VideoClipDataset(entries, TASKS, ClipSpec(frames=4, frame_step=2, resolution=24, train=True,
                                                       decoded_cache_mb=64))
    keys = [(i, 1000 + i) for i in range(len(entries))]
    first = [cached[key] for key in keys]  # decodes each video once, whole
    import trainers.data.dataset as dataset

    def no_decoding(*args, **kwargs):
        raise AssertionError("a cached video was decoded again")

    monkeypatch.setattr(dataset, "open_video", no_decoding)
    for key, item in zip(keys, first):
        again = cached[key]
        assert torch.equal(again["video"], item["video"]) and torch.equal(again["labels"], item["labels"])
    monkeypatch.undo()
    for key, item in zip(keys, first):  # the same crops, flips and frames as without the cache
        assert torch.equal(plain[key]["video"], item["video"])


def test_decoded_cache_stops_at_its_size(small_synth):
    cfg, folder = small_synth
    one_video = cfg.frames * cfg.size * cfg.size * 3
    dataset = VideoClipDataset(entries_of(folder), TASKS, ClipSpec(frames=4, frame_step=2, resolution=24,
                                                                   decoded_cache_mb=0.2))
    for i in range(len(dataset)):
        dataset[(i, i)]
    assert len(dataset._decoded) == int(0.2 * 2**20) // one_video == 4
