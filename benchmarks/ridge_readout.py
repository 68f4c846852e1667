"""Diagnostic readout of the features `salt-budget probe` caches: ridge regression on per-time-step
pooled features (mean and std over each time step's tokens, standardised on train), with the lambda
that does best on val among {1, 10, 100, 1000}: optimistic, but the same rule for every encoder.
The honest version, lambda chosen on a split of train, is the probe `probe.kind: ridge` (trainers/probe/ridge.py).

    python benchmarks/ridge_readout.py RUN_DIR [RUN_DIR ...] [--time-steps 4]

Each RUN_DIR holds features/ (train-*.pt, val-*.pt); the oldest pair is read (the full-clip
features, written before any single-frame ones).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from trainers.probe.ridge import time_pooled


def ridge_accuracy(train: torch.Tensor, train_y: torch.Tensor, val: torch.Tensor, val_y: torch.Tensor) -> float:
    onehot = torch.nn.functional.one_hot(train_y).float()
    best = 0.0
    for lam in (1.0, 10.0, 100.0, 1000.0):
        weights = torch.linalg.solve(train.T @ train + lam * torch.eye(train.size(1)), train.T @ onehot)
        best = max(best, float(((val @ weights).argmax(1) == val_y).float().mean()))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--time-steps", type=int, default=4)
    args = parser.parse_args()
    for run in args.runs:
        oldest = {split: min(Path(run, "features").glob(f"{split}-*.pt"), key=lambda p: p.stat().st_mtime)
                  for split in ("train", "val")}
        train, val = (torch.load(oldest[split], weights_only=True) for split in ("train", "val"))
        a, b = time_pooled(train["features"], args.time_steps), time_pooled(val["features"], args.time_steps)
        mean, std = a.mean(0), a.std(0) + 1e-6
        a, b = (a - mean) / std, (b - mean) / std
        scores = [ridge_accuracy(a, train["labels"][:, t], b, val["labels"][:, t]) for t in range(train["labels"].size(1))]
        print(run, " ".join(f"task{t} {s:.1%}" for t, s in enumerate(scores)), flush=True)


if __name__ == "__main__":
    main()
