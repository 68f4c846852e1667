"""Checkpoints: atomic writes, loading with weights_only=True, and errors that say what to do."""

from __future__ import annotations

import errno
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch

FORMAT = "salt-budget-checkpoint/1"
_STEP_FILE = re.compile(r"^step_(\d{8})\.pt$")
# Below this, a write that torch reports only as failed is taken for a full disk.
LOW_SPACE_BYTES = 64 * 2**20


class CheckpointError(ValueError):
    """A checkpoint that cannot be used here; the message names the file and the fix."""


def checkpoint_path(folder: Path, step: int) -> Path:
    return folder / f"step_{step:08d}.pt"


def checkpoint_step(path: str | os.PathLike) -> int:
    """The step a checkpoint file holds, from its name (checkpoint_path's inverse)."""
    match = _STEP_FILE.match(Path(path).name)
    if match is None:
        raise CheckpointError(f"{path} is not named as a checkpoint (step_NNNNNNNN.pt)")
    return int(match.group(1))


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """(step, path) of the complete checkpoints in `folder`, by step."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), folder / name) for name in os.listdir(folder) if (m := _STEP_FILE.match(name))]
    return sorted(found)


def _tensor_bytes(value: Any) -> int:
    """Bytes of the tensors in a payload: about the size of its checkpoint file."""
    if isinstance(value, torch.Tensor):
        return value.nelement() * value.element_size()
    if isinstance(value, dict):
        return sum(_tensor_bytes(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(item) for item in value)
    return 0


def _out_of_space(error: BaseException, folder: Path) -> bool:
    """A write that failed because the file system is full (or the user's quota spent). Written through a file
    object, torch passes the OSError on; its own writer says only "unexpected pos" or "iostream error"."""
    if isinstance(error, OSError):
        return error.errno in (errno.ENOSPC, errno.EDQUOT)
    message = str(error)
    if "No space left" in message or "Disk quota exceeded" in message:
        return True
    if any(marker in message for marker in ("unexpected pos", "iostream error", "file write failed")):
        try:
            return shutil.disk_usage(folder).free < LOW_SPACE_BYTES
        except OSError:
            return False
    return False


def _no_space_message(path: Path, payload: dict[str, Any], error: BaseException) -> str:
    try:
        free = f"{shutil.disk_usage(path.parent).free / 1e6:.0f} MB free on its file system"
    except OSError:
        free = "free space unknown"
    what = "disk quota exceeded" if getattr(error, "errno", None) == errno.EDQUOT else "no space left on device"
    if path.is_file():
        kept = f"the earlier {path.name} is kept"
    else:
        earlier = [(step, p) for step, p in list_checkpoints(path.parent) if p != path]
        kept = (f"the previous checkpoint {earlier[-1][1]} (step {earlier[-1][0]}) is kept to resume from" if earlier
                else f"{path.parent} holds no earlier checkpoint, so the run would start over")
    return (f"{what} writing {path} ({free}; the checkpoint needs about {_tensor_bytes(payload) / 1e6:.0f} MB); "
            f"{kept}; free some space and run the same command again (a sweep or study with --resume): "
            f"training continues from the last checkpoint")


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write to a temporary file, flush it to disk and rename: a crash or a full disk mid-write never leaves a half
    checkpoint, and the previous checkpoints stay as they were. A full disk raises CheckpointError with the path,
    the free space and the checkpoint to resume from; the temporary file is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as file:
            torch.save({"format": FORMAT, **payload}, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as error:
        tmp.unlink(missing_ok=True)
        if _out_of_space(error, path.parent):
            raise CheckpointError(_no_space_message(path, payload, error)) from error
        raise
    except BaseException:  # an interrupt mid-write leaves no partial file behind either
        tmp.unlink(missing_ok=True)
        raise


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
