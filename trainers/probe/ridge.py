"""Linear readouts of frozen features in closed form: ridge regression onto one-hot labels.

Three poolings of the (B, T*H*W, D) token grid, because the readout decides the verdict:
- "flat": the whole token grid, every token's features side by side (T*H*W*D numbers). It keeps
  where and when each feature is, so it neither rewards nor penalises an encoder for how it mixes
  positions: the position-neutral readout, and the default.
- "mean": each time step's token mean (T*D numbers).
- "mean_std": each time step's token mean and std (2*T*D). The std of even a random encoder's tokens
  carries much of the motion (how much changes where), so on this readout a random encoder already
  scores high and trained encoders land near it (docs/calibration.md).

Why beside the attentive probe: ridge has no optimiser, so two encoders differ only by their
features, and it takes seconds on a CPU. It is solved through the eigendecomposition of the
smaller Gram matrix (the dual, N x N kernel when features outnumber clips), so every lambda of
the grid costs one matrix product. Features are standardised on the fit split; lambdas are
multiples of the number of feature dimensions (the trace of the standardised Gram matrix divided
by the clips), so one grid fits every pooling. Lambda is chosen by cross-validation on train,
never on val.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch

from trainers.probe.config import POOLINGS

Pooling = Literal["flat", "mean", "mean_std"]


def time_pooled(features: torch.Tensor, time_steps: int) -> torch.Tensor:
    """(B, T*H*W, D) tokens in (t, h, w) order -> (B, 2*T*D): per time step, the tokens' mean and std."""
    x = features.float().view(features.size(0), time_steps, -1, features.size(-1))
    return torch.cat([x.mean(2).flatten(1), x.std(2, unbiased=False).flatten(1)], 1)


def pooled_features(features: torch.Tensor, time_steps: int, pooling: str) -> torch.Tensor:
    """The readout's input for one pooling (module docstring)."""
    if pooling == "flat":
        return features.float().flatten(1)
    if pooling == "mean":
        return features.float().view(features.size(0), time_steps, -1, features.size(-1)).mean(2).flatten(1)
    if pooling == "mean_std":
        return time_pooled(features, time_steps)
    raise ValueError(f"unknown pooling {pooling!r}: choose one of {', '.join(POOLINGS)}")


def view_mean(x: torch.Tensor, views: int) -> torch.Tensor:
    """A video's `views` adjacent rows averaged: a linear readout of the mean is the mean of the views' scores,
    which is how multi-view evaluation averages predictions."""
    return x if views == 1 else x.view(-1, views, x.size(-1)).mean(1)


class RidgeFit:
    """Ridge of one-hot labels (several tasks side by side) on features standardised over all of train,
    for every lambda and every cross-validation fold at the price of one Gram matrix: the N x N kernel
    when features outnumber clips (dual), the D x D covariance otherwise (primal). The intercept is the
    fit rows' mean one-hot, never shrunk."""

    def __init__(self, x: torch.Tensor):
        x = x.float()
        self.mean = x.mean(0)
        self.scale = x.std(0, unbiased=False).clamp_min(1e-6)
        self.x = (x - self.mean) / self.scale
        self.dims = self.x.size(1)
        self.dual = self.dims > len(self.x)
        # float32 products of standardised features, float64 from there on.
        self.gram = (self.x @ self.x.T if self.dual else self.x.T @ self.x).double()

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() - self.mean) / self.scale

    def solve(self, rows: torch.Tensor, targets: torch.Tensor, lambdas: Sequence[float]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per relative lambda (lambda = value x feature dimensions): (coefficients, offset) fitted on train
        rows `rows` to `targets` (N_rows, C): dual coefficients over those rows, or primal weights."""
        offset = targets.mean(0)
        centred = targets - offset
        if self.dual:
            gram, rhs = self.gram[rows][:, rows], centred
        else:
            fitted = self.x[rows].double()
            gram, rhs = fitted.T @ fitted, fitted.T @ centred
        values, vectors = torch.linalg.eigh(gram)
        projected = vectors.T @ rhs
        return [(vectors @ (projected / (values.clamp_min(0.0) + lam * self.dims)[:, None]), offset) for lam in lambdas]

    def scores(self, solution: tuple[torch.Tensor, torch.Tensor], rows: torch.Tensor, x: torch.Tensor | None = None,
               at: torch.Tensor | None = None) -> torch.Tensor:
        """Scores of train rows `at`, or of new standardised features `x`, under a solution fitted on `rows`."""
        coefficients, offset = solution
        if self.dual:
            kernel = self.gram[at][:, rows] if x is None else (x @ self.x[rows].T).double()
            return kernel @ coefficients + offset
        features = self.x[at] if x is None else x
        return features.double() @ coefficients + offset


def _onehots(labels: torch.Tensor, num_classes: Sequence[int]) -> torch.Tensor:
    return torch.cat([torch.nn.functional.one_hot(labels[:, t], n).double() for t, n in enumerate(num_classes)], 1)


def _task_predictions(scores: torch.Tensor, num_classes: Sequence[int]) -> list[torch.Tensor]:
    return [part.argmax(1) for part in scores.split(list(num_classes), dim=1)]


def fit_ridge(x: torch.Tensor, labels: torch.Tensor, num_classes: int, lam: float) -> torch.Tensor:
    """Weights (with a bias row) minimising |[x 1] W - onehot|^2 + lam |W without bias|^2, in float64: the
    plain primal solution, which RidgeFit must equal (tests)."""
    x = torch.cat([x.double(), torch.ones(len(x), 1, dtype=torch.float64)], 1)
    onehot = torch.nn.functional.one_hot(labels, num_classes).double()
    penalty = torch.eye(x.size(1), dtype=torch.float64) * lam
    penalty[-1, -1] = 0.0  # the bias is not shrunk
    return torch.linalg.solve(x.T @ x + penalty, x.T @ onehot)


def _accuracy(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    return float((predicted == labels).double().mean())


def ridge_readout(
    train: torch.Tensor, train_labels: torch.Tensor, val: torch.Tensor, val_labels: torch.Tensor,
    num_classes: Sequence[int], *, lambdas: Sequence[float], folds: int, seed: int, time_steps: int,
    pooling: str = "flat", views: int = 1, predictions: bool = False,
) -> list[dict[str, Any]]:
    """Per task (a column of the (N, tasks) labels): accuracy on val of the ridge readout of `pooling`, with
    the lambda (a multiple of the feature dimensions) that does best over `folds`-fold cross-validation on
    train, refitted on all of train. Cross-validation rather than one held-out split: with a thousand clips,
    one split of a hundred moved the chosen lambda, and the val accuracy with it, by several points.
    `views` adjacent rows per video (multi-view evaluation) are read as their mean. With `predictions`, each
    task's result also holds `val_predicted`, the class read for every val video (benchmarks/readout_noise.py)."""
    x_train = view_mean(pooled_features(train, time_steps, pooling), views)
    model = RidgeFit(x_train)
    targets = _onehots(train_labels, num_classes)
    everything = torch.arange(len(x_train))
    order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(seed))
    correct = torch.zeros(len(lambdas), len(num_classes))
    for part in order.tensor_split(folds):
        rest = order[~torch.isin(order, part)]
        for i, solution in enumerate(model.solve(rest, targets[rest], lambdas)):
            predicted = _task_predictions(model.scores(solution, rest, at=part), num_classes)
            correct[i] += torch.tensor([float((p == train_labels[part, t]).sum()) for t, p in enumerate(predicted)])
    solutions = model.solve(everything, targets, lambdas)
    x_val = model.standardise(view_mean(pooled_features(val, time_steps, pooling), views))
    results = []
    for t, classes in enumerate(num_classes):
        tried = [{"lambda": float(lam), "holdout_accuracy": float(correct[i, t]) / len(x_train)}
                 for i, lam in enumerate(lambdas)]
        # Ties go to the larger lambda: the simpler readout.
        best = max(reversed(range(len(lambdas))), key=lambda i: tried[i]["holdout_accuracy"])
        val_predicted = _task_predictions(model.scores(solutions[best], everything, x=x_val), num_classes)[t]
        train_predicted = _task_predictions(model.scores(solutions[best], everything, at=everything), num_classes)[t]
        results.append({
            "accuracy": _accuracy(val_predicted, val_labels[:, t]),
            "train_accuracy": _accuracy(train_predicted, train_labels[:, t]),
            "chance": float(np.bincount(val_labels[:, t].numpy(), minlength=classes).max() / len(val_labels)),
            "num_classes": classes,
            "pooling": pooling,
            "lambda": float(lambdas[best]), "heads": tried,
        })
        if predictions:
            results[-1]["val_predicted"] = val_predicted.tolist()
    return results


def ridge_probe_task(
    train: torch.Tensor, train_labels: torch.Tensor, val: torch.Tensor, val_labels: torch.Tensor, num_classes: int,
    **kwargs: Any,
) -> dict[str, Any]:
    """ridge_readout for one task: labels (N,)."""
    return ridge_readout(train, train_labels[:, None], val, val_labels[:, None], [num_classes], **kwargs)[0]
