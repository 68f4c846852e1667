"""Starting Ray for a sweep: in-process on this machine, or joining a cluster at --address, checked first so that a
wrong address fails in seconds with one line instead of ray.init's minutes of retries."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys

from trainers.registry import PLUGINS_VARIABLE

from salt_budget.sweep.planning.options import PlanError

ADDRESS_TIMEOUT_S = 5  # a head node answers a TCP connection at once
GCS_TIMEOUT_S = 15  # and its GCS within a second or two


def check_address(address: str) -> None:
    """Fail in seconds, with one line, where nothing listens at `address`: ray.init would retry for minutes."""
    if address == "auto":
        return  # ray.init says at once when no cluster runs on this machine
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise PlanError(f"--address {address!r} is not HOST:PORT (or 'auto'); give the head node's address as "
                        f"`ray start --head` printed it, e.g. 10.0.0.1:6379")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=ADDRESS_TIMEOUT_S).close()
    except OSError as error:
        raise PlanError(
            f"--address {address}: no Ray cluster answers there ({error.strerror or error}); check that "
            f"`ray start --head` runs on {host}, that port {port} is open from this machine, and that the address "
            f"is the one `ray status` prints on the head node"
        ) from None
    if address.startswith("ray://"):
        return  # a Ray Client server, not a GCS: ray.init's own handshake times out
    # Something listens there; ray.init would retry forever if it is not a Ray head, so ask in a process we
    # can stop. A head answers in a second; any quick error is left to ray.init, which explains its own.
    probe = ("import ray._raylet as r; r.GcsClient(address=%r).internal_kv_get(b'session_name', namespace=None, "
             "timeout=%d)" % (address, ADDRESS_TIMEOUT_S))
    try:
        subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=GCS_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise PlanError(f"--address {address}: something listens there but no Ray head answered within "
                        f"{GCS_TIMEOUT_S} s; check that it is the head node's GCS port (default 6379, as "
                        f"`ray start --head` printed it), not another service") from None


def start_ray(address: str | None, cpus: int | None = None) -> bool:
    """ray.init unless a connection exists (a test or a notebook may have made one); True if we started it.
    `cpus` caps a local Ray (a study runs sweeps side by side, each on its share of the cores); a cluster
    joined at `address` has its own."""
    import ray

    if ray.is_initialized():
        return False
    if address:
        check_address(address)
    # Workers a cluster started before this driver do not inherit its environment: a stage kind registered by
    # a plug-in (trainers/registry.py) must be named to them too.
    plugins = os.environ.get(PLUGINS_VARIABLE)
    runtime_env = {"env_vars": {PLUGINS_VARIABLE: plugins}} if address and plugins else None
    try:
        ray.init(address=address, num_cpus=None if address else cpus, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING, runtime_env=runtime_env)
    except (ConnectionError, TimeoutError, RuntimeError) as error:
        if not address:
            raise
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise PlanError(f"--address {address}: could not join a Ray cluster there ({first}); check that "
                        f"`ray start --head` runs there and that this machine runs the same Ray version "
                        f"({ray.__version__})") from None
    return True
