"""One driver per sweep folder: runs/<name>/driver.json names the process that runs the sweep there.

The driver creates the file when it starts, in one atomic step (a complete file linked into place, or
O_CREAT|O_EXCL where the file system has no hard links), and removes it when it stops, whatever stops it.
A second driver finds the file and is refused with the holder's host and pid. A holder on this host whose
process is gone (a killed driver, a machine that rebooted) is stale: the next driver takes the folder over
with a warning. A holder on another host cannot be checked from here: the user is told how to release it.
No flock: the folder may be on a shared file system (NFS), where locks are unreliable and die with no one.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from salt_budget.sweep.planning.options import PlanError

HOLDER_FILE = "driver.json"


@dataclass(frozen=True)
class Holder:
    """The folder this process holds, and the token that tells its holder file from a successor's."""

    path: Path
    token: str


def holder_path(sweep_dir: Path) -> Path:
    return sweep_dir / HOLDER_FILE


def _process_start(pid: int) -> str | None:
    """The start time of a process in clock ticks since boot (Linux /proc), to tell it from a later process that
    reuses its pid; None where there is no /proc or no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]  # field 22, counted after the command name (which may hold spaces)


def _alive(pid: int, started: str | None) -> bool:
    """Whether process `pid` of this host still runs (and is the one that wrote the file, where /proc says)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    now = _process_start(pid)
    return started is None or now is None or now == started


def _describe(info: dict[str, Any]) -> str:
    command = " ".join(str(a) for a in info.get("argv", []))
    command = command if len(command) <= 160 else command[:157] + "..."
    return (f"host {info.get('host', '?')}, pid {info.get('pid', '?')}, started {info.get('started', '?')}"
            + (f": {command}" if command else ""))


def _read(path: Path) -> dict[str, Any] | None:
    """The holder's record; None when the file is gone; {} when it cannot be read as one."""
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _create(path: Path, info: dict[str, Any]) -> bool:
    """Put a complete holder file at `path` unless one is there; True if this call made it."""
    text = json.dumps(info, indent=2) + "\n"
    tmp = path.with_name(f".{path.name}.{info['token']}")
    tmp.write_text(text)
    try:
        os.link(tmp, path)  # atomic, and a reader never sees half a file
        return True
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links: exclusive create, then write
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(descriptor, "w") as file:
            file.write(text)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _take_over(path: Path, stale: dict[str, Any]) -> None:
    """Move a stale holder file aside, unless another driver replaced it meanwhile (then put that one back)."""
    aside = path.with_name(f".{path.name}.stale-{uuid.uuid4().hex[:8]}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return  # another driver moved it first
    moved = _read(aside) or {}
    if moved.get("token") != stale.get("token"):
        try:
            os.link(aside, path)  # a live driver's file, taken over between our read and our rename
        except OSError:
            pass
    aside.unlink(missing_ok=True)


def hold(sweep_dir: Path, *, argv: list[str] | None = None, warn: Callable[[str], None] = print) -> Holder:
    """Hold `sweep_dir` for this process, or raise PlanError naming the driver that holds it."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    path = holder_path(sweep_dir)
    host, pid = socket.gethostname(), os.getpid()
    info = {"host": host, "pid": pid, "process_start": _process_start(pid),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "argv": list(sys.argv if argv is None else argv),
            "token": uuid.uuid4().hex}
    for _ in range(5):
        if _create(path, info):
            return Holder(path, info["token"])
        current = _read(path)
        if current is None:
            continue  # released meanwhile: try again
        if not current:
            raise PlanError(f"{sweep_dir} is held by a sweep driver whose record {path} cannot be read; if no sweep "
                            f"runs in this folder, delete {path} and run the command again")
        if current.get("host") != host:
            raise PlanError(
                f"{sweep_dir} is in use by another sweep driver ({_describe(current)}); wait for it or stop it. "
                f"This machine cannot check a process on {current.get('host')}: if that job is gone, delete {path} "
                f"and run this command again with --resume")
        if _alive(int(current.get("pid", 0)), current.get("process_start")):
            raise PlanError(
                f"{sweep_dir} is in use by another sweep driver ({_describe(current)}); wait for it or stop it "
                f"(kill {current.get('pid')}: it stops cleanly and says how to continue); if that process is gone, "
                f"delete {path} and run this command again with --resume")
        warn(f"taking over {sweep_dir} from a sweep driver that is gone ({_describe(current)})")
        _take_over(path, current)
    raise PlanError(f"{sweep_dir}: could not take hold of the folder ({path} keeps changing); is another sweep "
                    f"starting there at this moment? Run the command again")


def release(holder: Holder) -> None:
    """Remove the holder file, if it is still this process's (a successor that took it over keeps its own)."""
    current = _read(holder.path)
    if current is not None and current.get("token") == holder.token:
        holder.path.unlink(missing_ok=True)
