"""Which processes trained a unit: <run dir>/processes.jsonl, a line per process (rank, node, pid, time) before it
trains. The sweep's record of where each unit ran, and the measured rates' source of its world size (costs.py)."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

PROCESSES_FILE = "processes.jsonl"  # in a unit's run directory: each process that trained it, and where


def record_process(run_dir: Path) -> None:
    """Append this process (rank, node, pid, time) to the unit's processes.jsonl before it trains: which node
    trained which unit. The rank is Ray Train's (or torchrun's) from the environment; a single process is 0 of 1."""
    import ray

    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    node_id = ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    line = {"rank": rank, "world": world, "node_id": node_id, "node_ip": _node_ip(), "hostname": socket.gethostname(),
            "pid": os.getpid(), "at": time.time()}
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / PROCESSES_FILE, "a") as handle:  # one short line per write: appends do not interleave
        handle.write(json.dumps(line) + "\n")


def _node_ip() -> str | None:
    import ray

    try:
        return ray.util.get_node_ip_address()
    except Exception:  # outside Ray, or a node without a routable address: the node id still says which
        return None


def read_processes(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / PROCESSES_FILE
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.is_file() else []
