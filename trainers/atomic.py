"""Writing a file whole or not at all: through a temporary file in the same folder and a rename.

The one definition every layer uses (analysis too: it imports nothing but the standard library). A reader,
another node, or a crash mid-write never sees half a file; the temporary file is removed on any failure."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Callable


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None], *, fsync: bool = False) -> Path:
    """`write(tmp)` writes the content to `tmp`; then `tmp` is renamed to `path`. With `fsync` the content is
    flushed to the disk before the rename (checkpoints, configs: a power loss keeps the previous file whole)."""
    path = Path(path)
    # A name of its own per call: processes on two nodes of a shared file system may share a pid.
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:12]}")
    try:
        write(tmp)
        if fsync:
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
