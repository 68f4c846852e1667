"""Learning-rate and weight-decay schedules as pure functions of the step (V-JEPA's forms)."""

from __future__ import annotations

import math

from trainers.stage_config import OptimConfig


def learning_rate(step: int, cfg: OptimConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.start_lr + (cfg.lr - cfg.start_lr) * step / cfg.warmup_steps
    if cfg.schedule == "wsd":
        decay_start = cfg.steps - cfg.cooldown_steps
        if step < decay_start:
            return cfg.lr
        progress = min(1.0, (step - decay_start) / cfg.cooldown_steps)
        return cfg.lr + (cfg.final_lr - cfg.lr) * progress
    span = max(1, cfg.steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.final_lr + (cfg.lr - cfg.final_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def weight_decay(step: int, cfg: OptimConfig) -> float:
    # A wsd run must not depend on its own length before the cool-down, so its decay stays constant.
    if cfg.schedule == "wsd":
        return cfg.weight_decay
    progress = min(1.0, step / cfg.steps)
    return cfg.final_weight_decay + (cfg.weight_decay - cfg.final_weight_decay) * 0.5 * (1.0 + math.cos(math.pi * progress))
