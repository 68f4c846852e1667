"""The attentive probe read off cached features: heads fitted by AdamW, one per (lr, weight decay) of the
protocol, the best chosen on a split held out from train; accuracies average a video's views."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from trainers.probe.attentive_head import AttentiveProbe

if TYPE_CHECKING:
    from trainers.probe.config import ProbeConfig


def build_probe(width: int, num_classes: int, cfg: ProbeConfig, grid: tuple[int, int, int]) -> AttentiveProbe:
    """The probe head `cfg` describes, over features of `width` on the token `grid`."""
    return AttentiveProbe(width, num_classes, depth=cfg.depth, heads=cfg.heads,
                          grid=grid if cfg.position == "sincos" else None, query_norm=cfg.query_norm,
                          out_proj=cfg.out_proj, head_norm=cfg.head_norm)


def _accuracy(probe: AttentiveProbe, features: torch.Tensor, labels: torch.Tensor, device: torch.device,
              batch_size: int, views: int = 1) -> float:
    """Accuracy over videos; with several views (adjacent rows of a video), of their mean softmax."""
    probe.eval()
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(labels), batch_size):
            rows = features[start * views : (start + batch_size) * views].to(device).float()
            probs = probe(rows).softmax(-1).view(-1, views, probe.head.out_features).mean(1)
            correct += int((probs.argmax(-1).cpu() == labels[start : start + batch_size]).sum())
    return correct / max(1, len(labels))


def view_rows(videos: torch.Tensor, views: int) -> torch.Tensor:
    """Feature rows of the given videos (rows of a video are adjacent, `views` of them)."""
    return (videos[:, None] * views + torch.arange(views)).flatten()


# A head whose train accuracy stays this close to chance has not fitted its own data: its val accuracy
# measures the probe's optimisation, not the encoder, and is never reported as a result.
CONVERGED_MARGIN = 0.05


def fit_probe(
    features: torch.Tensor, labels: torch.Tensor, num_classes: int, cfg: ProbeConfig, *, lr: float,
    weight_decay: float, seed: int, device: torch.device, grid: tuple[int, int, int],
    trace: list[dict[str, float]] | None = None,
) -> AttentiveProbe:
    """AdamW on the cached features. With `cfg.steps` null, the fast protocol: `epochs` passes, cosine lr
    without warm-up. With `cfg.steps`, constant lr until the train accuracy stops rising (ProbeConfig);
    `trace`, when given, receives each check's step and train accuracy."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    probe = build_probe(features.size(-1), num_classes, cfg, grid).to(device)
    optimizer = torch.optim.AdamW(probe.parameters(), lr=lr, weight_decay=weight_decay)
    per_epoch = math.ceil(len(features) / cfg.batch_size)
    total = cfg.epochs * per_epoch if cfg.steps is None else cfg.steps
    checked = torch.randperm(len(features), generator=torch.Generator().manual_seed(seed + 1))[:1000]
    best, stale, step = -1.0, 0, 0
    while step < total:
        probe.train()
        order = torch.randperm(len(features), generator=generator)
        for start in range(0, len(features), cfg.batch_size):
            chosen = order[start : start + cfg.batch_size]
            if cfg.steps is None:
                for group in optimizer.param_groups:
                    group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * step / total))
            logits = probe(features[chosen].to(device).float())
            loss = F.cross_entropy(logits, labels[chosen].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if cfg.steps is not None and step % cfg.check_every == 0:
                accuracy = _accuracy(probe, features[checked], labels[checked], device, cfg.batch_size)
                probe.train()
                if trace is not None:
                    trace.append({"step": step, "train_accuracy": accuracy})
                if accuracy >= best + cfg.min_gain:
                    best, stale = accuracy, 0
                else:
                    stale += 1
                if stale >= cfg.patience:
                    return probe
            if step >= total:
                break
    return probe


def probe_task(
    train: dict[str, torch.Tensor], val: dict[str, torch.Tensor], column: int, num_classes: int,
    cfg: ProbeConfig, *, seed: int, device: torch.device, grid: tuple[int, int, int],
) -> dict[str, Any]:
    """Train one head per (lr, wd) of the protocol; with several, choose on a split of videos held out from
    TRAIN. Each view of a video trains as a sample of its own; accuracies average a video's views."""
    heads = cfg.head_grid()
    views = train.get("views", 1)
    features, labels = train["features"], train["labels"][:, column]
    val_labels = val["labels"][:, column]
    tried = []
    if len(heads) == 1:
        chosen = heads[0]
        fit_videos = torch.arange(len(labels))
    else:
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
        held = max(1, int(round(cfg.holdout_fraction * len(labels))))
        fit_videos, hold_videos = order[held:], order[:held]
        fit_features, fit_labels = features[view_rows(fit_videos, views)], labels[fit_videos]
        hold_features, hold_labels = features[view_rows(hold_videos, views)], labels[hold_videos]
        for lr, wd in heads:
            probe = fit_probe(fit_features, fit_labels.repeat_interleave(views), num_classes, cfg, lr=lr,
                              weight_decay=wd, seed=seed, device=device, grid=grid)
            tried.append({"lr": lr, "weight_decay": wd, "holdout_accuracy": _accuracy(
                probe, hold_features, hold_labels, device, cfg.batch_size, views)})
        best = max(tried, key=lambda head: head["holdout_accuracy"])
        chosen = (best["lr"], best["weight_decay"])
    fit_features, fit_labels = features[view_rows(fit_videos, views)], labels[fit_videos]
    trace: list[dict[str, float]] = []
    probe = fit_probe(fit_features, fit_labels.repeat_interleave(views), num_classes, cfg, lr=chosen[0],
                      weight_decay=chosen[1], seed=seed, device=device, grid=grid, trace=trace)
    chance = float(np.bincount(val_labels.numpy(), minlength=num_classes).max() / len(val_labels))
    train_accuracy = _accuracy(probe, fit_features, fit_labels, device, cfg.batch_size, views)
    return {
        "accuracy": _accuracy(probe, val["features"], val_labels, device, cfg.batch_size, views),
        "train_accuracy": train_accuracy,
        "chance": chance,
        "converged": train_accuracy >= chance + CONVERGED_MARGIN,
        "steps": trace[-1]["step"] if trace else cfg.epochs * math.ceil(len(fit_features) / cfg.batch_size),
        "protocol": cfg.protocol,
        "trace": trace,
        "num_classes": num_classes,
        "lr": chosen[0], "weight_decay": chosen[1], "heads": tried,
    }
