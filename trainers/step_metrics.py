"""The training loop's metrics: each step's scalars, kept on the device until a log or a checkpoint reads them
back, summed over the steps since the last row and written to metrics.jsonl as their means."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import torch

from trainers.train_step import StepResult


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the step and the last good checkpoint."""


class PendingScalars:
    """Per-step scalars left on the device until a log or a checkpoint reads them back in one transfer:
    a `.item()` per step would make the host wait for every step's kernels (a GPU idles meanwhile)."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.values: list[dict[str, torch.Tensor]] = []

    def add(self, step: int, values: dict[str, torch.Tensor]) -> None:
        self.steps.append(step)
        self.values.append({key: value.detach().float().reshape(()) for key, value in values.items()})

    def read(self, kind: str, last_good: Path | None) -> dict[str, float]:
        """Sums over the pending steps; raises TrainingDiverged naming the first step whose loss is not finite."""
        if not self.steps:
            return {}
        keys = list(self.values[0])
        table = torch.stack([torch.stack([v[k] for k in keys]) for v in self.values]).cpu()
        steps, self.steps, self.values = self.steps, [], []
        losses = table[:, keys.index("loss")]
        bad = (~torch.isfinite(losses)).nonzero()
        if len(bad):
            first = int(bad[0])
            where = f"last good checkpoint: {last_good}" if last_good else "no checkpoint was written yet"
            raise TrainingDiverged(
                f"{kind} loss is {float(losses[first])} at step {steps[first]}; stopped ({where}). "
                f"Lower optim.lr or check the data."
            )
        return dict(zip(keys, table.sum(0).tolist()))


class StepLog:
    """The scalars of the steps since the last metrics row: those on the device pending, the rest summed."""

    def __init__(self, kind: str, total_steps: int, progress: bool) -> None:
        self.kind = kind
        self.total_steps = total_steps
        self.progress = progress
        self.pending = PendingScalars()
        self.window: dict[str, float] = {}
        self.window_start = time.perf_counter()

    def _sum(self, key: str, amount: float) -> None:
        self.window[key] = self.window.get(key, 0.0) + amount

    def add(self, step: int, result: StepResult, parts: Sequence[dict[str, Any]], waited: float, world: int) -> None:
        """Step `step` (1-based), after `waited` seconds for its micro-batches `parts` (this process's of `world`)."""
        on_device = {key: value for key, value in result.logged.items() if isinstance(value, torch.Tensor)}
        self.pending.add(step, {"loss": result.loss, "grad_norm": result.grad_norm, **on_device})
        for key, amount in [("data_wait_s", waited),
                            ("clips", sum(len(part["video"]) for part in parts) * world),
                            ("n", 1),
                            *((k, v / len(parts)) for part in parts for k, v in part["mask_stats"].items()),
                            *((k, v) for k, v in result.logged.items() if k not in on_device)]:
            self._sum(key, amount)

    def read_back(self, last_good: Path | None) -> None:
        """The pending scalars into the window; TrainingDiverged where a loss is not finite."""
        for key, amount in self.pending.read(self.kind, last_good).items():
            self._sum(key, amount)

    def write(self, file: IO[str], step: int, lr: float, wd: float, flops: float, wall_s: float) -> dict[str, float]:
        """The window's row (means per step, rates over its wall time), then a new window; returns the row."""
        elapsed = time.perf_counter() - self.window_start
        window = self.window
        n = window.pop("n")
        row = {"step": step, "loss": window.pop("loss") / n, "lr": lr, "wd": wd,
               "grad_norm": window.pop("grad_norm") / n, "clips_per_s": window.pop("clips") / elapsed,
               "data_wait_share": window["data_wait_s"] / elapsed, "data_wait_s": window.pop("data_wait_s"),
               **{k: v / n for k, v in window.items()}, "flops": flops, "wall_s": wall_s}
        file.write(json.dumps(row) + "\n")
        file.flush()
        if self.progress:
            eta = (self.total_steps - step) * wall_s / max(1, step)
            print(f"[{self.kind}] step {step}/{self.total_steps} loss {row['loss']:.4f} lr {lr:.2e} "
                  f"{row['clips_per_s']:.1f} clips/s data {row['data_wait_share']:.0%} "
                  f"eta {eta / 60:.1f} min", file=sys.stderr, flush=True)
        self.window, self.window_start = {}, time.perf_counter()
        return row


def truncate_metrics(path: Path, step: int) -> None:
    """Drop metrics logged after the checkpoint we resume from, so no step appears twice."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
    path.write_text("".join(line + "\n" for line in kept))
