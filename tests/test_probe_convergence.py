"""The attentive probe trained by steps until its train accuracy stops rising, and a head that never fits
its own train split reported as not converged, never as a result."""

import math

import torch

from analysis.probe_columns import probe_columns
from trainers.probe.attentive import probe_task
from trainers.probe.config import ProbeConfig

GRID, WIDTH, CLASSES = (2, 2, 2), 12, 4


def _split(count: int, seed: int) -> dict[str, torch.Tensor]:
    """Tokens whose class shifts one channel of every token: an easy, learnable signal."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % CLASSES
    features = torch.randn(count, math.prod(GRID), WIDTH, generator=generator) * 0.5
    features[torch.arange(count), :, labels] += 2.0
    return {"features": features, "labels": torch.stack([labels, labels], 1)}


def test_a_head_trained_by_steps_stops_once_its_train_accuracy_plateaus():
    cfg = ProbeConfig(steps=2000, check_every=10, patience=3, batch_size=16, lrs=[3e-3])
    result = probe_task(_split(160, 0), _split(80, 1), 0, CLASSES, cfg, seed=0, device=torch.device("cpu"),
                        grid=GRID)
    assert result["converged"] and result["train_accuracy"] > 0.9 and result["accuracy"] > 0.9
    trace = [check["train_accuracy"] for check in result["trace"]]
    assert result["steps"] == result["trace"][-1]["step"] < 2000  # stopped early, at a plateau ...
    assert max(trace[-3:]) < max(trace[:-3]) + cfg.min_gain  # ... of `patience` checks without a gain


def test_a_head_that_never_fits_its_train_split_is_not_a_result():
    cfg = ProbeConfig(steps=40, check_every=10, patience=10, batch_size=16, lrs=[1e-9])  # lr too small to move
    result = probe_task(_split(160, 0), _split(80, 1), 0, CLASSES, cfg, seed=0, device=torch.device("cpu"),
                        grid=GRID)
    assert result["steps"] == 40 and not result["converged"]
    probe = {"rankme": 1.0, "tasks": {"appearance": result, "motion": {**result, "converged": True}}}
    columns = probe_columns(probe)
    assert math.isnan(columns["acc_appearance"]) and math.isnan(columns["acc_mean"])
    assert columns["converged_appearance"] is False and columns["acc_motion"] == result["accuracy"]
    assert columns["train_acc_appearance"] == result["train_accuracy"]


def test_the_fixed_epoch_protocol_is_kept_when_steps_is_null():
    cfg = ProbeConfig(epochs=2, batch_size=16)
    result = probe_task(_split(160, 0), _split(80, 1), 0, CLASSES, cfg, seed=0, device=torch.device("cpu"),
                        grid=GRID)
    assert result["steps"] == 2 * 10 and result["trace"] == []
