"""Probing a saved encoder (a run's checkpoint) or an untrained one (the random-init floor): its features are
cached beside it and the result is written as JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from trainers.atomic import write_text
from trainers.data.config import DataConfig
from trainers.memory import release_memory
from trainers.probe.config import ProbeConfig
from trainers.probe.encoder import probe_encoder


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(payload, indent=2))


def probe_checkpoint(
    path: str | os.PathLike, data: DataConfig, cfg: ProbeConfig, *, seed: int = 0, out: Path | None = None,
    progress: bool = True,
) -> tuple[dict[str, Any], Path]:
    """Probe the encoder a checkpoint evaluates; features are cached in its run's features/ folder and
    the result goes to <run>/probes/step_XXXXXXXX[-single_frame].json unless `out` says otherwise."""
    from trainers.encoders import encoder_from_checkpoint

    path = Path(path).resolve()
    encoder, payload = encoder_from_checkpoint(path)
    stat = path.stat()
    key = f"{path}:{stat.st_size}:{stat.st_mtime_ns}"
    run_dir = path.parent.parent
    result = probe_encoder(encoder, key, data, cfg, run_dir / "features", seed=seed, progress=progress)
    result.update(checkpoint=str(path), kind=payload.get("kind"), step=payload.get("step"),
                  encoder=payload["encoder"]["preset"])
    suffix = "-single_frame" if cfg.single_frame else ""
    out = out or run_dir / "probes" / f"{path.stem}{suffix}.json"
    write_json(out, result)
    release_memory()  # the features and the readout's matrices: a sweep's process probes unit after unit
    return result, out


def probe_random_init(
    description: dict[str, Any], data: DataConfig, cfg: ProbeConfig, out_dir: str | os.PathLike, *, seed: int = 0,
    progress: bool = True,
) -> tuple[dict[str, Any], Path]:
    """The baseline every trained encoder is read against: the same architecture, untrained."""
    from trainers.encoders import build_encoder

    torch.manual_seed(seed)
    encoder = build_encoder(description)
    out_dir = Path(out_dir)
    result = probe_encoder(encoder, f"random:{json.dumps(description, sort_keys=True)}:{seed}", data, cfg,
                           out_dir / "features", seed=seed, progress=progress)
    result.update(checkpoint=None, kind="random_init", step=0, encoder=description["preset"])
    suffix = "-single_frame" if cfg.single_frame else ""
    out = out_dir / "probes" / f"random_init-{description['preset']}-seed{seed}{suffix}.json"
    write_json(out, result)
    release_memory()  # the features and the readout's matrices: a sweep's process probes unit after unit
    return result, out
