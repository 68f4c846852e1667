"""The attentive probe trained as V-JEPA 2 trains it (probe.augment): every epoch the train clips are decoded
anew with the training augmentation (the data section's random-resized crop and horizontal flip, then random
erasing) and read by the frozen encoder, so the probe never sees the same view twice; without it the probe
trains on features cached once from the evaluation crop. Every (task, lr, weight decay) head trains on the
same batches, each batch encoded once. With several heads the choice is made on a split of train held out
from training (read on its cached evaluation crops) and only the chosen head is read on val; upstream reports
the best head on val, which this project does not (docs/paper.md section 9).

Left out, against upstream: RandAugment (upstream's auto_augment), and more than one clip per video."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from trainers.data.build import build_dataset
from trainers.data.dataset import ClipLoader, VideoClipDataset
from trainers.data.transforms import normalize_clips
from trainers.probe.attentive import CONVERGED_MARGIN, _accuracy, build_probe, view_rows

if TYPE_CHECKING:
    from trainers.models.vit import VisionTransformer
    from trainers.probe.config import ProbeConfig
    from trainers.probe.sets import ProbeSet


def erase_boxes(clips: torch.Tensor, prob: float, generator: torch.Generator) -> torch.Tensor:
    """Random erasing as V-JEPA 2's probe training uses it (timm's, one box, the same on every frame): with
    probability `prob` a box of 2%-33% of the frame, aspect log-uniform in [0.3, 3.3], is replaced by
    standard-normal noise; `clips` are normalised (B, 3, T, H, W)."""
    out = clips.clone()
    height, width = clips.shape[-2:]
    for row in range(len(clips)):
        if float(torch.rand((), generator=generator)) >= prob:
            continue
        for _ in range(10):  # as timm: up to 10 tries for a box that fits
            area = height * width * float(torch.empty(()).uniform_(0.02, 1 / 3, generator=generator))
            aspect = math.exp(float(torch.empty(()).uniform_(math.log(0.3), math.log(1 / 0.3), generator=generator)))
            h, w = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
            if 0 < h < height and 0 < w < width:
                top = int(torch.randint(0, height - h + 1, (), generator=generator))
                left = int(torch.randint(0, width - w + 1, (), generator=generator))
                noise = torch.randn((clips.size(1), 1, h, w), generator=generator).to(clips.device, clips.dtype)
                out[row, :, :, top : top + h, left : left + w] = noise
                break
    return out


@dataclass
class AugmentedTrain:
    """A probe set's train clips under the training augmentation, read by the frozen encoder a batch at a time."""

    encoder: VisionTransformer
    probe_set: ProbeSet
    device: torch.device
    _loaders: dict[tuple, ClipLoader] = field(default_factory=dict, repr=False)

    def loader(self, videos: torch.Tensor, cfg: ProbeConfig, seed: int) -> ClipLoader:
        """The augmented loader of `videos` (indices of the train list), built once and read every epoch, so that
        its dataset's decoded-frame cache (data.decoded_cache_mb) serves every epoch after the first."""
        key = (tuple(videos.tolist()), cfg.batch_size, seed)
        if key not in self._loaders:
            data = self.probe_set.data
            full = build_dataset(data, "train", train=True, resolved=self.probe_set.resolved)
            subset = VideoClipDataset([full.entries[i] for i in key[0]], full.tasks, full.spec, full.label_mirror)
            self._loaders[key] = ClipLoader(subset, batch_size=cfg.batch_size, shuffle=True, seed=seed,
                                            workers=data.workers, pin_memory=data.pin_memory,
                                            max_bad_fraction=data.max_bad_fraction)
        return self._loaders[key]

    def batches(self, videos: torch.Tensor, epoch: int, cfg: ProbeConfig, seed: int):
        """(features, labels) of `videos` (indices of the train list), shuffled and augmented as epoch `epoch`."""
        loader = self.loader(videos, cfg, seed)
        loader.set_epoch(epoch)
        generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        for batch in loader:
            yield self._encode(batch["video"], cfg.erase_prob, generator), batch["labels"]

    @torch.no_grad()  # not inference_mode: the probe trains on these features (and a mode set around a yield leaks)
    def _encode(self, video: torch.Tensor, erase_prob: float, generator: torch.Generator) -> torch.Tensor:
        data = self.probe_set.data
        clips = erase_boxes(normalize_clips(video.to(self.device), data.mean, data.std), erase_prob, generator)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            return self.encoder(clips).float()


def augmented_tasks(cached: Any, source: AugmentedTrain, cfg: ProbeConfig,
                    progress: bool = True) -> dict[str, dict[str, Any]]:
    """Every task of the set (`cached`, a readouts.CachedSet: its cached evaluation-crop features, tasks, grid, seed
    and device), each head trained on augmented clips for cfg.epochs epochs (cosine lr, no warm-up); a result per
    task as attentive.probe_task's."""
    heads = cfg.head_grid()
    videos = len(cached.train["labels"])
    views = cached.train.get("views", 1)
    order = torch.randperm(videos, generator=torch.Generator().manual_seed(cached.seed))
    held = max(1, int(round(cfg.holdout_fraction * videos))) if len(heads) > 1 else 0
    fit_videos, hold_videos = order[held:].sort().values, order[:held]
    torch.manual_seed(cached.seed)
    probes = {(column, head): build_probe(cached.train["features"].size(-1), task.num_classes, cfg, cached.grid).to(
        cached.device) for column, task in enumerate(cached.tasks) for head in heads}
    optimizers = {key: torch.optim.AdamW(probe.parameters(), lr=key[1][0], weight_decay=key[1][1])
                  for key, probe in probes.items()}
    per_epoch = math.ceil(len(fit_videos) / cfg.batch_size)
    total, step = cfg.epochs * per_epoch, 0
    for epoch in range(cfg.epochs):
        for probe in probes.values():
            probe.train()
        for features, labels in source.batches(fit_videos, epoch, cfg, cached.seed):
            labels = labels.to(cached.device)
            cosine = 0.5 * (1.0 + math.cos(math.pi * step / total))
            for (column, (lr, wd)), probe in probes.items():
                optimizer = optimizers[(column, (lr, wd))]
                for group in optimizer.param_groups:
                    group["lr"] = lr * cosine
                loss = F.cross_entropy(probe(features), labels[:, column])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            step += 1
        if progress:
            print(f"[probe] augmented epoch {epoch + 1}/{cfg.epochs}: {len(probes)} head(s)", file=sys.stderr, flush=True)
    results = {}
    for column, task in enumerate(cached.tasks):
        labels, val_labels = cached.train["labels"][:, column], cached.val["labels"][:, column]
        tried = []
        if held:
            hold_rows = cached.train["features"][view_rows(hold_videos, views)]
            tried = [{"lr": lr, "weight_decay": wd, "holdout_accuracy": _accuracy(
                probes[(column, (lr, wd))], hold_rows, labels[hold_videos], cached.device, cfg.batch_size, views)}
                for lr, wd in heads]
            best = max(tried, key=lambda head: head["holdout_accuracy"])
            chosen = (best["lr"], best["weight_decay"])
        else:
            chosen = heads[0]
        probe = probes[(column, chosen)]
        chance = float(np.bincount(val_labels.numpy(), minlength=task.num_classes).max() / len(val_labels))
        train_accuracy = _accuracy(probe, cached.train["features"][view_rows(fit_videos, views)], labels[fit_videos],
                                   cached.device, cfg.batch_size, views)
        results[task.name] = {
            "accuracy": _accuracy(probe, cached.val["features"], val_labels, cached.device, cfg.batch_size, views),
            "train_accuracy": train_accuracy, "chance": chance,
            "converged": train_accuracy >= chance + CONVERGED_MARGIN, "steps": step, "protocol": cfg.protocol,
            "augment": True, "trace": [], "num_classes": task.num_classes, "lr": chosen[0],
            "weight_decay": chosen[1], "heads": tried,
        }
    return results
