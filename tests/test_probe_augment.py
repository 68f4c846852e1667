"""probe.augment (V-JEPA 2's probe training): the train clips are decoded and augmented anew every epoch and
read by the frozen encoder; val stays on the cached evaluation crops; every head trains on the same batches."""

from __future__ import annotations

import pytest
import torch

from trainers.config import ConfigError, from_dict
from trainers.data.config import DataConfig, SyntheticConfig
from trainers.models.presets import encoder_spec
from trainers.models.vit import VisionTransformer
from trainers.probe.augmented import AugmentedTrain, erase_boxes
from trainers.probe.config import ProbeConfig
from trainers.probe.encoder import probe_encoder
from trainers.probe.sets import probe_sets


@pytest.fixture(scope="module")
def micro_data(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return DataConfig(cache_dir=str(cache), synthetic=SyntheticConfig(train=24, val=12, frames=8, size=32),
                      frames=4, frame_step=2, resolution=32, workers=0)


def nano_encoder() -> VisionTransformer:
    torch.manual_seed(0)
    return VisionTransformer(encoder_spec("nano", 8, 2), 4, 32)


def test_each_epoch_reads_new_views_of_the_same_videos(micro_data):
    cfg = ProbeConfig(batch_size=8, erase_prob=0.0)
    source = AugmentedTrain(nano_encoder(), probe_sets(micro_data, cfg, progress=False)[0], torch.device("cpu"))
    videos = torch.arange(24)
    first = list(source.batches(videos, 0, cfg, seed=0))
    again = list(source.batches(videos, 0, cfg, seed=0))
    second = list(source.batches(videos, 1, cfg, seed=0))
    assert [f.shape for f, _ in first] == [(8, 32, 64)] * 3 and not first[0][0].requires_grad
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(first, again))  # an epoch is seeded
    assert not torch.allclose(torch.cat([f for f, _ in first]), torch.cat([f for f, _ in second]))
    # the same videos each epoch, in another order (labels as multisets; flips may mirror a motion label)
    assert sorted(torch.cat([l[:, 0] for _, l in first]).tolist()) == sorted(torch.cat([l[:, 0] for _, l in second]).tolist())
    # one loader serves every epoch, so its dataset's decoded-frame cache is not thrown away between epochs
    assert source.loader(videos, cfg, seed=0) is source.loader(videos, cfg, seed=0)


def test_random_erasing_replaces_one_box_per_chosen_clip():
    clips = torch.zeros(64, 3, 4, 32, 32)
    erased = erase_boxes(clips, 0.25, torch.Generator().manual_seed(0))
    changed = (erased != 0).flatten(1).any(1)
    assert 8 <= int(changed.sum()) <= 24  # about a quarter of 64
    row = erased[int(changed.nonzero()[0])]
    hit = (row != 0).any(0)  # (T, H, W): the same box on every frame
    assert torch.equal(hit[0], hit[-1]) and 0.02 * 1024 * 0.5 <= int(hit[0].sum()) <= 1024 / 3 * 1.5
    assert torch.equal(erase_boxes(clips, 0.0, torch.Generator()), clips)


def test_an_augmented_probe_trains_its_heads_and_reads_val_on_cached_features(micro_data, tmp_path):
    cfg = from_dict(ProbeConfig, {"augment": True, "epochs": 2, "batch_size": 8, "protocol": "full",
                                  "lrs": [1e-3, 3e-3], "weight_decays": [0.01]})
    result = probe_encoder(nano_encoder(), "nano-random", micro_data, cfg, tmp_path, progress=False)
    for task in result["tasks"].values():
        assert task["augment"] and task["steps"] == 2 * 3  # 22 fit videos (2 held out) in batches of 8, twice
        assert len(task["heads"]) == 2 and (task["lr"], task["weight_decay"]) in [(1e-3, 0.01), (3e-3, 0.01)]
        assert 0 <= task["accuracy"] <= 1
    assert "augmented anew each epoch" in result["readout"]["readout"]
    assert len(list(tmp_path.glob("*.pt"))) == 2  # train and val evaluation crops cached; no augmented view is


def test_augment_is_refused_where_it_cannot_apply():
    with pytest.raises(ConfigError, match="trains by epochs.*probe.steps=null"):
        from_dict(ProbeConfig, {"augment": True, "steps": 100})
    with pytest.raises(ConfigError, match="one clip per video"):
        from_dict(ProbeConfig, {"augment": True, "clips": 2})
    with pytest.raises(ConfigError, match="erase_prob"):
        from_dict(ProbeConfig, {"erase_prob": 1.5})
