"""A linear readout of frozen features in closed form: ridge regression onto one-hot labels of the
mean and standard deviation of each time step's tokens (the time axis kept, so motion stays readable).

Why beside the attentive probe: on small CPU studies a depth-1 attentive probe trained for a few
epochs fits trained encoders' features badly (benchmarks/training.md: 8% against 65% by this
readout on the same features), which turns differences between encoders into noise. Ridge has no
optimiser, so two encoders differ only by their features. Lambda is chosen on a split held out
from train, never on val.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch


def time_pooled(features: torch.Tensor, time_steps: int) -> torch.Tensor:
    """(B, T*H*W, D) tokens in (t, h, w) order -> (B, 2*T*D): per time step, the tokens' mean and std."""
    x = features.float().view(features.size(0), time_steps, -1, features.size(-1))
    return torch.cat([x.mean(2).flatten(1), x.std(2, unbiased=False).flatten(1)], 1)


def _standardiser(train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = train.mean(0)
    std = train.std(0, unbiased=False).clamp_min(1e-6)
    return mean, std


def fit_ridge(x: torch.Tensor, labels: torch.Tensor, num_classes: int, lam: float) -> torch.Tensor:
    """Weights (with a bias row) minimising |[x 1] W - onehot|^2 + lam |W without bias|^2, in float64."""
    x = torch.cat([x.double(), torch.ones(len(x), 1, dtype=torch.float64)], 1)
    onehot = torch.nn.functional.one_hot(labels, num_classes).double()
    penalty = torch.eye(x.size(1), dtype=torch.float64) * lam
    penalty[-1, -1] = 0.0  # the bias is not shrunk
    return torch.linalg.solve(x.T @ x + penalty, x.T @ onehot)


def predict(weights: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    x = torch.cat([x.double(), torch.ones(len(x), 1, dtype=torch.float64)], 1)
    return (x @ weights).argmax(1)


def ridge_probe_task(
    train: torch.Tensor, train_labels: torch.Tensor, val: torch.Tensor, val_labels: torch.Tensor, num_classes: int,
    *, lambdas: Sequence[float], holdout_fraction: float, seed: int, time_steps: int,
) -> dict[str, Any]:
    """Accuracy of the ridge readout on val, with the lambda that does best on the held-out part of train."""
    x_train, x_val = time_pooled(train, time_steps), time_pooled(val, time_steps)
    order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(seed))
    held = max(1, int(round(holdout_fraction * len(x_train))))
    fit, hold = order[held:], order[:held]
    mean, std = _standardiser(x_train[fit])
    x_fit, x_hold = (x_train[fit] - mean) / std, (x_train[hold] - mean) / std
    tried = []
    for lam in lambdas:
        weights = fit_ridge(x_fit, train_labels[fit], num_classes, lam)
        accuracy = float((predict(weights, x_hold) == train_labels[hold]).double().mean())
        tried.append({"lambda": float(lam), "holdout_accuracy": accuracy})
    chosen = max(tried, key=lambda t: t["holdout_accuracy"])["lambda"]
    weights = fit_ridge(x_fit, train_labels[fit], num_classes, chosen)
    return {
        "accuracy": float((predict(weights, (x_val - mean) / std) == val_labels).double().mean()),
        "train_accuracy": float((predict(weights, x_fit) == train_labels[fit]).double().mean()),
        "chance": float(np.bincount(val_labels.numpy(), minlength=num_classes).max() / len(val_labels)),
        "num_classes": num_classes,
        "lambda": chosen, "heads": tried,
    }
