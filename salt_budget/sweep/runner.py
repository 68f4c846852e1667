"""Running a plan on Ray: the run folder, Ray start-up, teachers as Ray tasks (one per ladder), then
the students on Ray Tune (tuning.py), the baselines as Ray tasks (baselines.py) and the summary (summary.py).

Locally Ray starts in-process without a dashboard and with quiet logs; `--address HOST:PORT` (or
`auto`) joins an existing cluster, checked first so that a wrong address fails in seconds (paths are
absolute, so runs/<name> must be on storage every node sees). With --workers-per-trial W > 1 every unit
trains on W Ray Train workers (workers.py).
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import yaml

from trainers.config import save_config, to_dict

from salt_budget.sweep.baselines import train_baselines
from salt_budget.sweep.floor import probe_floors
from salt_budget.sweep.plan import Plan, PlanError
from salt_budget.sweep.plan_table import plan_frame, write_plan_csv
from salt_budget.sweep.ray_tasks import run_as_tasks
from salt_budget.sweep.results import FAILED_STEP, append_rows, read_results
from salt_budget.sweep.rows import failed_row
from salt_budget.sweep.summary import SweepTimes, covered, say, summarize
from salt_budget.sweep.teachers import Ladder, ladder_on_workers, ladders, train_ladder
from salt_budget.sweep.tuning import check_resume, train_students
from salt_budget.sweep.workers import Workers


ADDRESS_TIMEOUT_S = 5  # a head node answers a TCP connection at once
GCS_TIMEOUT_S = 15  # and its GCS within a second or two


@dataclass(frozen=True)
class Resources:
    cpus_per_trial: float = 1.0
    gpus_per_trial: float | None = None  # None: 1 where the Ray cluster has GPUs, else 0
    max_failures: int = 1  # retries of a failed trial or teacher task, each from its last checkpoint
    workers_per_trial: int = 1  # > 1: every unit trains on that many Ray Train workers (workers.py)
    cpus_per_worker: float = 1.0
    gpus_per_worker: float | None = None  # None: 1 where the Ray cluster has GPUs, else 0

    def validate(self) -> None:
        if self.cpus_per_trial <= 0:
            raise PlanError(f"--cpus-per-trial {self.cpus_per_trial:g} must be > 0")
        if self.gpus_per_trial is not None and self.gpus_per_trial < 0:
            raise PlanError(f"--gpus-per-trial {self.gpus_per_trial:g} must be >= 0 (a fraction shares a GPU)")
        if self.max_failures < 0:
            raise PlanError(f"--max-failures {self.max_failures} must be >= 0")
        if self.workers_per_trial < 1:
            raise PlanError(f"--workers-per-trial {self.workers_per_trial} must be >= 1 (1: one process per unit)")
        if self.cpus_per_worker <= 0:
            raise PlanError(f"--cpus-per-worker {self.cpus_per_worker:g} must be > 0")
        if self.gpus_per_worker is not None and self.gpus_per_worker < 0:
            raise PlanError(f"--gpus-per-worker {self.gpus_per_worker:g} must be >= 0")
        if self.workers_per_trial == 1 and (self.cpus_per_worker != 1.0 or self.gpus_per_worker is not None):
            raise PlanError("--cpus-per-worker / --gpus-per-worker apply with --workers-per-trial W > 1; one process "
                            "per unit takes --cpus-per-trial / --gpus-per-trial")


@dataclass(frozen=True)
class UnitResources:
    """What a unit's own process holds (a Tune trial or Ray task), its workers, and how many units fit at once."""

    cpus: float
    gpus: float
    workers: Workers
    slots: int
    max_failures: int


def unit_resources(resources: Resources, cluster: dict[str, float]) -> UnitResources:
    """Resolve the GPU defaults against the cluster and count the units that fit. With several workers the
    unit's process only waits for them, so it holds nothing and the workers' resources set the slots."""
    has_gpus = bool(cluster.get("GPU", 0))
    if resources.workers_per_trial > 1:
        gpus = resources.gpus_per_worker if resources.gpus_per_worker is not None else float(has_gpus)
        workers = Workers(resources.workers_per_trial, resources.cpus_per_worker, gpus)
        need_cpus, need_gpus = workers.count * workers.cpus, workers.count * workers.gpus
        cpus, gpus = 0.0, 0.0
    else:
        workers = Workers()
        cpus = need_cpus = resources.cpus_per_trial
        gpus = need_gpus = (resources.gpus_per_trial if resources.gpus_per_trial is not None else float(has_gpus))
    if need_cpus > cluster.get("CPU", 0) or need_gpus > cluster.get("GPU", 0):
        raise PlanError(
            f"one unit needs {need_cpus:g} CPU(s) and {need_gpus:g} GPU(s) but the Ray cluster has "
            f"{cluster.get('CPU', 0):g} and {cluster.get('GPU', 0):g}: ask for fewer workers or resources per "
            f"unit, or add nodes"
        )
    slots = int(cluster.get("CPU", 0) // need_cpus)
    if need_gpus:
        slots = min(slots, int(cluster.get("GPU", 0) // need_gpus))
    return UnitResources(cpus, gpus, workers, max(1, slots), resources.max_failures)


def _differences(saved: Any, current: Any, path: str = "") -> list[str]:
    """Settings whose value differs. A key the saved file lacks is not one: the file predates that setting
    (the vjepa2 section, say), and no unit in the folder was trained with it."""
    if isinstance(saved, dict) and isinstance(current, dict):
        return [d for key in saved
                for d in _differences(saved[key], current.get(key), f"{path}.{key}" if path else key)]
    return [] if saved == current else [path]


def prepare_sweep_dir(plan: Plan, workers: int = 1) -> None:
    """config.yaml (the experiment every unit here was trained with) and plan.csv."""
    path = plan.sweep_dir / "config.yaml"
    if path.is_file():
        changed = _differences(yaml.safe_load(path.read_text()), to_dict(plan.experiment))
        if changed:
            raise PlanError(
                f"{plan.sweep_dir} holds a sweep of another experiment config (it differs in "
                f"{', '.join(changed[:5])}); give this one another --name, or repeat the first sweep's experiment "
                f"and overrides"
            )
    save_config(plan.experiment, path)  # with the settings an older file lacks, as this sweep uses them
    write_plan_csv(plan_frame(plan, workers), plan.sweep_dir / "plan.csv")


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


def _start_ray(address: str | None, cpus: int | None = None) -> bool:
    """ray.init unless a connection exists (a test or a notebook may have made one); True if we started it.
    `cpus` caps a local Ray (a study runs sweeps side by side, each on its share of the cores); a cluster
    joined at `address` has its own."""
    import ray

    if ray.is_initialized():
        return False
    if address:
        check_address(address)
    try:
        ray.init(address=address, num_cpus=None if address else cpus, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
    except (ConnectionError, TimeoutError, RuntimeError) as error:
        if not address:
            raise
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise PlanError(f"--address {address}: could not join a Ray cluster there ({first}); check that "
                        f"`ray start --head` runs there and that this machine runs the same Ray version "
                        f"({ray.__version__})") from None
    return True


def _record_teacher_failure(plan: Plan, ladder: Ladder, reason: str) -> None:
    """Failed rows for a ladder's unfinished teachers, unless the task already wrote its own (more precise) ones."""
    table = read_results(plan.sweep_dir)
    rows = []
    for unit in ladder.units:
        mine = table[table["unit_key"] == unit.key]
        if unit.final_checkpoint.is_file() or (mine["step"] == FAILED_STEP).any():
            continue
        rows.append(failed_row(unit, reason, sweep=plan.name, config_hash=plan.config_hash))
    append_rows(plan.sweep_dir, rows)


def train_teachers(plan: Plan, resources: UnitResources, times: SweepTimes) -> None:
    """One Ray task per ladder with something left to train; a ladder that fails for good marks its teachers."""
    todo = [ladder for ladder in ladders(plan) if not all(u.final_checkpoint.is_file() for u in ladder.units)]
    done = len(ladders(plan)) - len(todo)
    if done:
        say(f"{done} teacher ladder(s) already trained: reused")
    if not todo:
        return
    started, started_at = time.perf_counter(), time.time()
    intervals = []
    say(f"training {len(todo)} teacher ladder(s) ({sum(len(ladder.units) for ladder in todo)} teachers) as Ray tasks")
    function, args = train_ladder, ()
    if resources.workers.distributed:
        function, args = ladder_on_workers, (resources.workers, resources.max_failures)
    for ladder, outcome, reason in run_as_tasks(function, todo, plan, cpus=resources.cpus, gpus=resources.gpus,
                                                retries=resources.max_failures, args=args,
                                                max_concurrent=resources.slots):
        if reason is not None:
            _record_teacher_failure(plan, ladder, reason)
            say(f"teachers {ladder.name}: FAILED ({reason}); their allocations will be marked failed")
            continue
        intervals.append((outcome["started_at"], outcome["ended_at"]))
        times.teacher_steps_trained += outcome["trained_steps"]
        times.teacher_train_s += outcome["train_s"]
        steps = ", ".join(str(unit.id.steps) for unit in ladder.units)
        say(f"teachers {ladder.name} ready (T = {steps}): {outcome['trained_steps']} steps trained in "
            f"{outcome['train_s']:.1f} s")
    times.teachers_s = time.perf_counter() - started
    times.teachers_idle_s = times.teachers_s - covered([(max(a, started_at), b) for a, b in intervals])


def run_sweep(plan: Plan, *, resume: bool = False, address: str | None = None,
              resources: Resources = Resources(), cpus: int | None = None) -> int:
    """Run every unit of `plan` that is not done; 0 when every allocation finished, 1 when some failed.
    `cpus`: the CPUs a local Ray started here may use (None: all of this machine's)."""
    from trainers.evaluate import prepare_data

    resources.validate()
    check_resume(plan, resume)
    started = time.perf_counter()
    times = SweepTimes()
    owns_ray = _start_ray(address, cpus)  # first: a cluster that cannot be reached leaves nothing behind
    times.ray_start_s = time.perf_counter() - started
    try:
        import ray

        units = unit_resources(resources, ray.cluster_resources())
        prepare_sweep_dir(plan, units.workers.count)
        # Generate the synthetic set once, here, with every core, before trials would each wait on it; and read
        # every clip list now, so that a wrong path or label fails before hours of training.
        for line in prepare_data(plan.experiment.data, plan.experiment.probe):
            say(line)
        if units.workers.distributed:
            say(f"each unit trains on {units.workers.count} Ray Train workers ({units.workers.cpus:g} CPU, "
                f"{units.workers.gpus:g} GPU each); {units.slots} unit(s) at a time")
        train_teachers(plan, units, times)
        probe_floors(plan, units)
        grid = train_students(plan, units, times)
        train_baselines(plan, units, times)
    except KeyboardInterrupt:
        say("interrupted: run the same command with --resume to continue; finished units are kept")
        raise
    finally:
        if owns_ray:
            import ray

            ray.shutdown()
    # The grid attempts every allocation; a search those it proposed (one may come twice).
    attempted = sorted({plan.student_for(result.config).allocation.id for result in grid if result.config})
    return summarize(plan, attempted, times, time.perf_counter() - started)
