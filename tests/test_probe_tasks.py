"""Evaluation tasks on their own lists, unlabelled and mixed pre-training lists, the probe protocols, and
multi-clip, multi-view reading."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from salt_budget.experiment import load_experiment
from trainers.checkpoint import load_checkpoint
from trainers.config import ConfigError
from trainers.data.build import build_dataset, pretrain_entries, resolve_data
from trainers.data.clip_list import read_clip_list
from trainers.data.config import DataConfig, PretrainList, SyntheticConfig
from trainers.data.dataset import ClipSampler
from trainers.data.sampling import eval_clip_indices, frame_indices
from trainers.data.transforms import center_crop_box, view_crop_boxes
from trainers.encoders import encoder_description
from trainers.probe.attentive import _accuracy, probe_task
from trainers.probe.checkpoints import probe_checkpoint, probe_random_init
from trainers.probe.config import ProbeConfig, ProbeTaskConfig
from trainers.stage_config import EncoderConfig, HeadConfig, OptimConfig, RunConfig
from trainers.stage_config import TeacherConfig
from trainers.masks import MaskConfig
from trainers.config import from_dict
from trainers.train import train_teacher

TASKS = ("appearance", "motion")


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """The embedded set (24 + 12 clips, 8 frames of 32 px) and its lists rewritten the way a user brings data:
    one list per task and split (path, label), and pre-training lists without labels."""
    root = tmp_path_factory.mktemp("lists")
    data = DataConfig(cache_dir=str(root / "cache"), synthetic=SyntheticConfig(train=24, val=12, frames=8, size=32),
                      frames=4, frame_step=2, resolution=32, workers=0)
    resolved = resolve_data(data, progress=False)
    for split in ("train", "val"):
        entries = read_clip_list(resolved.lists[split], resolved.list_tasks)
        for column, task in enumerate(TASKS):
            (root / f"{task}_{split}.csv").write_text("".join(f"{e.path} {e.labels[column]}\n" for e in entries))
        if split == "train":
            (root / "pretrain.csv").write_text("".join(f"{e.path}\n" for e in entries))
            # V-JEPA's pre-training lists carry a dummy label column.
            (root / "pretrain_dummy.csv").write_text("".join(f"{e.path} 0\n" for e in entries))
    return data, root


def micro_teacher():
    masks = from_dict(MaskConfig, {"blocks": [{"num_blocks": 2, "spatial_scale": [0.15, 0.15]}]})
    return TeacherConfig(encoder=EncoderConfig(preset="nano"), decoder=HeadConfig(width=32, depth=1, heads=1),
                         masks=masks, optim=OptimConfig(steps=3, batch_size=4, warmup_steps=1, grad_clip=1.0),
                         run=RunConfig(log_every=1, checkpoint_every=3))


def losses(run_dir: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def task_probe(root: Path, **kw) -> ProbeConfig:
    tasks = {task: ProbeTaskConfig(str(root / f"{task}_train.csv"), str(root / f"{task}_val.csv"), num_classes=10)
             for task in TASKS}
    return ProbeConfig(kind="ridge", tasks=tasks, **kw)


def test_per_task_lists_and_an_unlabelled_pretraining_list_reproduce_the_embedded_set(embedded, tmp_path):
    """Pre-training on the embedded clips listed without labels (a path per line, or V-JEPA's dummy label)
    trains step for step as on the embedded set, and probing each task on its own lists reads what the
    embedded set's two-task lists read."""
    data, root = embedded
    reference = train_teacher(micro_teacher(), data, tmp_path / "embedded", progress=False)
    for name in ("pretrain.csv", "pretrain_dummy.csv"):
        listed = replace(data, dataset="lists", tasks=[], pretrain=[PretrainList(str(root / name))])
        final = train_teacher(micro_teacher(), listed, tmp_path / name, progress=False)
        assert losses(tmp_path / name) == losses(tmp_path / "embedded")
        ours, theirs = load_checkpoint(final)["encoder_state"], load_checkpoint(reference)["encoder_state"]
        assert all(torch.equal(ours[key], theirs[key]) for key in theirs)
    embedded_result, _ = probe_checkpoint(reference, data, ProbeConfig(kind="ridge"), progress=False,
                                          out=tmp_path / "a.json")
    per_task, _ = probe_checkpoint(reference, listed, task_probe(root), progress=False, out=tmp_path / "b.json")
    assert set(per_task["tasks"]) == set(TASKS)
    for task in TASKS:
        ours, theirs = per_task["tasks"][task], embedded_result["tasks"][task]
        assert ours["videos"] == {"train": 24, "val": 12} and ours["num_classes"] == 10
        assert ours["accuracy"] == pytest.approx(theirs["accuracy"], abs=1 / 12 + 1e-9)
        assert ours["chance"] == theirs["chance"]


def test_without_a_probe_section_the_embedded_set_probes_its_two_tasks(embedded, tmp_path):
    data, _ = embedded
    result, _ = probe_random_init(encoder_description(EncoderConfig(preset="nano"), data), data, ProbeConfig(kind="ridge"), tmp_path, progress=False)
    assert set(result["tasks"]) == set(TASKS) and result["clips"] == {"train": 24, "val": 12}


def test_a_task_list_that_does_not_exist_fails_before_training(embedded, tmp_path):
    from trainers.data.clip_list import ClipListError
    from trainers.probe.sets import prepare_data

    data, root = embedded
    listed = replace(data, dataset="lists", tasks=[], pretrain=[PretrainList(str(root / "pretrain.csv"))])
    lines = prepare_data(listed, task_probe(root), progress=False)
    assert lines[0].startswith("pre-training: 24 clips") and any("probe task motion: 10 classes, 24 train / 12 val"
                                                                  in line for line in lines)
    broken = task_probe(root)
    broken.tasks["motion"].val_list = str(tmp_path / "missing.csv")
    with pytest.raises(ClipListError, match="missing.csv"):
        prepare_data(listed, broken, progress=False)


def test_a_weighted_mixture_draws_each_list_at_its_share_and_resumes_exactly(tmp_path):
    (tmp_path / "small.csv").write_text("".join(f"s{i}.mp4\n" for i in range(10)))
    (tmp_path / "large.csv").write_text("".join(f"l{i}.mp4 0\n" for i in range(90)))
    data = DataConfig(dataset="lists", tasks=[], pretrain=[PretrainList(str(tmp_path / "small.csv"), 3.0),
                                                           PretrainList(str(tmp_path / "large.csv"), 1.0)])
    entries, weights = pretrain_entries(data, resolve_data(data))
    assert len(entries) == 100 and weights.sum() == pytest.approx(1.0)
    sampler = ClipSampler(len(entries), shuffle=True, seed=5, weights=weights)
    drawn = []
    for epoch in range(40):
        sampler.set_epoch(epoch)
        drawn += [index for index, _ in sampler]
    small_share = np.mean(np.array(drawn) < 10)
    assert len(drawn) == 4000 and small_share == pytest.approx(0.75, abs=0.03)  # weight 3 of 4, not 10 of 100
    sampler.set_epoch(7)
    whole = list(sampler)
    sampler.set_epoch(7, start=37)
    assert list(sampler) == whole[37:]
    single, none = pretrain_entries(replace(data, pretrain=data.pretrain[:1]), resolve_data(data))
    assert len(single) == 10 and none is None  # one list: every clip once per epoch, shuffled
    with pytest.raises(ConfigError, match="weights must be > 0"):
        load_experiment(None, ["data.dataset=lists", f"data.pretrain=[{{path: {tmp_path / 'small.csv'}, weight: 0}}]"])


def test_the_protocols_name_the_papers_head_grids():
    assert ProbeConfig().head_grid() == [(1e-3, 0.01)]
    full = ProbeConfig(protocol="full").head_grid()
    assert len(full) == 20 and {lr for lr, _ in full} == {5e-3, 3e-3, 1e-3, 3e-4, 1e-4}
    assert {wd for _, wd in full} == {0.01, 0.1, 0.4, 0.8}
    assert ProbeConfig(protocol="full", lrs=[1e-3]).head_grid() == [(1e-3, wd) for wd in (0.01, 0.1, 0.4, 0.8)]


def test_the_full_protocol_chooses_among_its_20_heads_on_a_split_of_train():
    torch.manual_seed(0)
    labels = torch.randint(0, 3, (60, 1))
    features = torch.randn(60, 4, 8) + 2.0 * torch.nn.functional.one_hot(labels[:, 0], 8)[:, None, :].float()
    cfg = ProbeConfig(protocol="full", depth=1, epochs=2, batch_size=16, position="none")
    result = probe_task({"features": features, "labels": labels}, {"features": features, "labels": labels}, 0, 3, cfg,
                        seed=0, device=torch.device("cpu"), grid=(1, 2, 2))
    assert len(result["heads"]) == 20 and result["protocol"] == "full"
    best = max(result["heads"], key=lambda head: head["holdout_accuracy"])
    assert (result["lr"], result["weight_decay"]) == (best["lr"], best["weight_decay"])


def test_evaluation_clips_cover_the_video_and_views_span_its_long_side():
    clips = eval_clip_indices(100, 8, 4, 3)
    assert [int(i[0]) for i, _ in clips] == [0, 36, 71] and int(clips[-1][0][-1]) == 99
    assert np.array_equal(eval_clip_indices(100, 8, 4, 1)[0][0], frame_indices(100, 8, 4, random_start=False)[0])
    assert eval_clip_indices(10, 8, 4, 2)[0][1]  # too short: the short-clip rule, once per clip
    boxes = view_crop_boxes(32, 48, 1.0, 3)
    assert [box[1] for box in boxes] == [0, 8, 16] and all(box[0] == 0 and box[2] == 32 for box in boxes)
    assert view_crop_boxes(48, 32, 0.875, 1) == [center_crop_box(48, 32, 0.875)]
    assert [box[0] for box in view_crop_boxes(48, 32, 1.0, 2)] == [0, 16]


def test_a_multi_view_item_holds_every_clip_of_every_view(embedded):
    data, _ = embedded
    single = build_dataset(data, "val", train=False)[0]["video"]
    multi = build_dataset(data, "val", train=False, clips=2, views=3)[0]["video"]
    assert multi.shape == (6, *single.shape)
    centre_of_two = build_dataset(data, "val", train=False, clips=2)[0]["video"]
    assert torch.equal(multi[2:4], centre_of_two)  # view-major: the centre view's two clips
    assert not torch.equal(multi[0], multi[1])  # the clips of a view differ in time


class _FirstTokenLogits(nn.Module):
    def __init__(self, classes: int):
        super().__init__()
        self.head = nn.Linear(1, classes)

    def forward(self, features):
        return features[:, 0, : self.head.out_features]


def test_views_are_averaged_in_probability():
    # One video, three views: two lean weakly to class 0, one strongly to class 1; the mean softmax says 1.
    features = torch.tensor([[[0.2, 0.0]], [[0.2, 0.0]], [[0.0, 9.0]]])
    probe = _FirstTokenLogits(2)
    assert _accuracy(probe, features, torch.tensor([1]), torch.device("cpu"), 4, views=3) == 1.0
    assert _accuracy(probe, features[:1], torch.tensor([1]), torch.device("cpu"), 4, views=1) == 0.0


def test_multi_clip_multi_view_probing_of_an_encoder(embedded, tmp_path):
    data, root = embedded
    cfg = task_probe(root, clips=2, views=3, also_ridge=["mean"])
    cfg.tasks["motion"].views = 1
    result, _ = probe_random_init(encoder_description(EncoderConfig(preset="nano"), data), data, cfg, tmp_path, progress=False)
    appearance, motion = result["tasks"]["appearance"], result["tasks"]["motion"]
    assert (appearance["clips_per_video"], appearance["views"], motion["views"]) == (2, 3, 1)
    assert appearance["videos"] == {"train": 24, "val": 12} and set(result["readouts"]["ridge_mean"]) == set(TASKS)
    cached = [torch.load(path, weights_only=True) for path in (tmp_path / "features").glob("*.pt")]
    rows = sorted((len(c["features"]), c["features"].size(1), c["views"]) for c in cached)
    single_clip_tokens = 2 * 4 * 4  # nano: tubelet 2 over 4 frames, patch 8 over 32 px
    assert rows == [(12, 2 * single_clip_tokens, 1), (24, 2 * single_clip_tokens, 1),
                    (36, 2 * single_clip_tokens, 3), (72, 2 * single_clip_tokens, 3)]


def test_probe_tasks_load_from_yaml_with_absolute_paths_and_strict_keys(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_experiment(None, ["probe.tasks={k400: {train_list: k400/train.csv, val_list: k400/val.csv, "
                                 "num_classes: 400, clips: 8, views: 3}}", "probe.protocol=full"])
    task = cfg.probe.tasks["k400"]
    assert task.train_list == str(tmp_path / "k400" / "train.csv") and (task.clips, task.views) == (8, 3)
    with pytest.raises(ConfigError, match="val_list"):
        load_experiment(None, ["probe.tasks={k400: {train_list: a.csv}}"])
    with pytest.raises(ConfigError, match="labels"):
        load_experiment(None, ["probe.tasks={k400: {train_list: a.csv, val_list: b.csv, labels: 3}}"])
    with pytest.raises(ConfigError, match="protocol"):
        load_experiment(None, ["probe.protocol=slow"])
