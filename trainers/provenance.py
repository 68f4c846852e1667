"""Where a number came from: the code (package version, git commit, a dirty flag), the library versions, the
machine (CPU model or GPU name) and the threads of the process that produced it.

The same experiment gives the same table on one machine, but not across CPU kinds or onto GPUs
(docs/reproducibility.md): every results row and every run folder carries this record, so that two numbers
can be told apart by where they were read.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

PROVENANCE_FILE = "provenance.jsonl"  # one line per process that started or resumed a run


def code_commit(folder: Path | None = None) -> str:
    """The checkout's commit, "-dirty" when code differs from it; "" outside a git checkout (an installed
    package). benchmarks/ does not count: each benchmark --record appends to a file there, and a second run
    of the same code is not other code."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=folder or Path(__file__).parent,
                              timeout=10, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ":/", ":(exclude,top)benchmarks")
    except (OSError, subprocess.SubprocessError):
        return ""
    return f"{commit}-dirty" if changed else commit


@functools.lru_cache(maxsize=1)
def _code() -> tuple[str, str]:
    # Once per process: the code a process runs does not change under it.
    try:
        version = metadata.version("salt-budget")
    except metadata.PackageNotFoundError:
        version = ""
    return version, code_commit()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def machine_name(device: torch.device | str | None = None) -> str:
    """The GPU's name for a CUDA device, else the CPU model."""
    device = torch.device(device) if device is not None else None
    if device is not None and device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_model()


def _version(package: str) -> str:
    # By metadata, not import: trainers/ never imports Ray.
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""


def provenance(device: torch.device | str | None = None) -> dict[str, Any]:
    """The record of this process: flat, so that it becomes results-table columns as it is."""
    version, commit = _code()
    return {
        "code_version": version, "git_commit": commit.removesuffix("-dirty"), "git_dirty": commit.endswith("-dirty"),
        "torch_version": torch.__version__, "ray_version": _version("ray"),
        "machine": machine_name(device), "threads": torch.get_num_threads(),
        # The instruction set torch's CPU kernels dispatch to (AVX512, AVX2, ...): two machines that differ here
        # round sums differently, and a training run amplifies that (docs/reproducibility.md).
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def record_provenance(run_dir: Path, device: torch.device | str | None = None, **extra: Any) -> None:
    """Append this process's record to run_dir/provenance.jsonl: a run resumed elsewhere shows both machines."""
    line = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "host": platform.node(),
            "pid": os.getpid(), **provenance(device), **extra}
    with open(Path(run_dir) / PROVENANCE_FILE, "a") as handle:
        handle.write(json.dumps(line) + "\n")
