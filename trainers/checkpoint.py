"""Checkpoints: atomic writes, loading with weights_only=True, and errors that say what to do."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

FORMAT = "salt-budget-checkpoint/1"
_STEP_FILE = re.compile(r"^step_(\d{8})\.pt$")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used here; the message names the file and the fix."""


def checkpoint_path(folder: Path, step: int) -> Path:
    return folder / f"step_{step:08d}.pt"


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """(step, path) of the complete checkpoints in `folder`, by step."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), folder / name) for name in os.listdir(folder) if (m := _STEP_FILE.match(name))]
    return sorted(found)


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write to a temporary file and rename: a crash mid-write never leaves a half checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save({"format": FORMAT, **payload}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(
            f"{path} cannot be read as a salt-budget checkpoint ({type(error).__name__}: {str(error)[:200]})"
        ) from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a salt-budget checkpoint (expected format {FORMAT!r})")
    return payload


def load_state(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str, path: Path | str) -> None:
    """load_state_dict with a message that names the mismatch instead of a wall of keys."""
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        first = str(error).splitlines()[1:3]
        raise CheckpointError(
            f"{path}: the {what} weights do not fit the configured architecture "
            f"({'; '.join(line.strip() for line in first)[:300]}); configure the architecture the checkpoint "
            f"was trained with (its config.yaml) or use a matching checkpoint"
        ) from error
