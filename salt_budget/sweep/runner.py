"""Running a plan on Ray: the run folder, Ray start-up, teachers as Ray tasks (one per ladder), then
the students on Ray Tune (tuning.py), the baselines as Ray tasks (baselines.py) and the summary (summary.py).

Locally Ray starts in-process without a dashboard and with quiet logs; `--address HOST:PORT` (or
`auto`) joins an existing cluster, checked first so that a wrong address fails in seconds (paths are
absolute, so runs/<name> must be on storage every node sees). With --workers-per-trial W > 1 every unit
trains on W Ray Train workers (workers.py).
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import yaml

from trainers.config import save_config, to_dict

from salt_budget.sweep.baselines import train_baselines
from salt_budget.sweep.floor import probe_floors
from salt_budget.sweep.holder import hold, release
from salt_budget.sweep.plan import Plan, PlanError
from salt_budget.sweep.plan_table import plan_frame, write_plan_csv
from salt_budget.sweep.ray_tasks import run_as_tasks
from salt_budget.sweep.results import FAILED_STEP, append_rows, compile_results, read_results
from salt_budget.sweep.rows import failed_row
from salt_budget.sweep.summary import SweepTimes, covered, say, summarize, sweep_progress
from salt_budget.sweep.teachers import Ladder, ladder_on_workers, ladders, train_ladder
from salt_budget.sweep.tuning import SweepInterrupted, TuneStop, check_resume, running_fit, train_students
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


class _Signals:
    """While a sweep runs: SIGTERM stops it as Ctrl-C does, and the signal that stopped it is remembered.

    SIGTERM raises SweepInterrupted; inside Tuner.fit at the fit's next step (TuneStop), where Tune is between two
    saves of its state. Installed after ray.init too, which sets a SIGTERM handler of its own (sys.exit(15)), and
    restored when the sweep ends. A second SIGTERM raises at once.

    Tune's SIGINT handler stays installed after a fit it did not stop (a later Ctrl-C would only stop a finished
    fit): run_sweep puts the one before it back."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.late: list[int] | None = None  # signals noted, not raised, once the sweep is winding down
        self._previous: Any = None
        self._installed = False

    def note_from_now(self) -> None:
        """From now on (Ray shutting down, the summary) a Ctrl-C or SIGTERM is noted, not raised."""
        self.late = []
        if self.main:
            signal.signal(signal.SIGINT, lambda signum, frame: self.late.append(signum))

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        if self.late is not None:
            self.late.append(signal.SIGTERM)
            return
        fit = running_fit()
        if fit is not None and self.signum is None:
            self.signum, fit.terminate = signal.SIGTERM, True  # stop at the fit's next step
            return
        self.signum = signal.SIGTERM
        raise SweepInterrupted(signal.SIGTERM)

    @property
    def main(self) -> bool:
        return threading.current_thread() is threading.main_thread()

    def install(self) -> None:
        if self.main:
            previous = signal.signal(signal.SIGTERM, self._on_sigterm)
            if not self._installed:
                self._previous, self._installed = previous, True

    def restore(self) -> None:
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous)
            self._installed = False


class _NoTuneRestoreHint(logging.Filter):
    """Tune's "Resume experiment with: Tuner.restore(...)" is not a command of ours: the sweep prints its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tuner.restore(" not in record.getMessage()


def run_sweep(plan: Plan, *, resume: bool = False, address: str | None = None,
              resources: Resources = Resources(), cpus: int | None = None) -> int:
    """Run every unit of `plan` that is not done; 0 when every allocation finished, 1 when some failed, 130 / 143
    when Ctrl-C / SIGTERM stopped it (it says how many finished and the command that continues it).
    `cpus`: the CPUs a local Ray started here may use (None: all of this machine's).

    The driver holds the sweep folder while it runs (holder.py): a second driver of the same folder is refused."""
    resources.validate()
    existed = plan.sweep_dir.exists()
    holder = hold(plan.sweep_dir, warn=say)  # first: a running sweep is reported as running, not as resumable
    try:
        check_resume(plan, resume)
        if resume:
            # The table rebuilt from the units' own rows before anything runs: a results.parquet cut by a crash
            # or a full disk is replaced, an unreadable old one refused with what to do (TableDamaged).
            from salt_budget.sweep.trial import reprobe_lost_students  # imports Ray

            compile_results(plan.sweep_dir)
            lost = reprobe_lost_students(plan)
            if lost:
                say(f"probed again {len(lost)} trained student(s) whose rows were lost: {', '.join(lost)}")
        return _run_held(plan, address=address, resources=resources, cpus=cpus)
    finally:
        release(holder)
        if not existed:
            try:
                plan.sweep_dir.rmdir()  # a sweep refused before it wrote anything leaves no folder behind
            except OSError:
                pass


def _run_held(plan: Plan, *, address: str | None, resources: Resources, cpus: int | None) -> int:
    started = time.perf_counter()
    signals, sigint = _Signals(), signal.getsignal(signal.SIGINT)
    try:
        return _run_units(plan, address, resources, cpus, started, signals)
    finally:
        if signals.main:
            signal.signal(signal.SIGINT, sigint)  # Python's again, not Tune's nor the one _run_units leaves
        signals.restore()


def _run_units(plan: Plan, address: str | None, resources: Resources, cpus: int | None, started: float,
               signals: _Signals) -> int:
    from trainers.evaluate import prepare_data

    times = SweepTimes()
    tune_logger, hint_filter = logging.getLogger("ray.tune.tune"), _NoTuneRestoreHint()
    trials: list[str] | None = None
    stopped_by: int | None = None
    owns_ray = False
    try:
        signals.install()
        owns_ray = _start_ray(address, cpus)  # first: a cluster that cannot be reached leaves nothing behind
        signals.install()  # again: ray.init sets its own
        tune_logger.addFilter(hint_filter)
        times.ray_start_s = time.perf_counter() - started
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
        stop, sigint = TuneStop(), signal.getsignal(signal.SIGINT)
        try:
            grid = train_students(plan, units, times, stop)
        finally:
            if signals.main:
                signal.signal(signal.SIGINT, sigint)  # Tune leaves its handler installed after a fit it did not stop
        if plan.options.search != "grid":
            trials = [plan.student_for(result.config).allocation.id for result in grid if result.config]
        # Tune caught a Ctrl-C (or the SIGTERM passed on to it), stopped the trials and returned. It returns with
        # trials not done only so: Tune's handler also fires on SIGUSR1, or may not have been wrapped (an
        # experiment saved by an older version of this code, whose callback does not wrap it).
        if stop.caught or signals.signum is not None or sweep_progress(plan, trials=trials).not_run:
            raise SweepInterrupted(signals.signum or signal.SIGINT)
        train_baselines(plan, units, times)
    except KeyboardInterrupt as interrupt:
        stopped_by = getattr(interrupt, "signum", None) or signals.signum or signal.SIGINT
    finally:
        # While Ray shuts down and the summary is written, a Ctrl-C (or a SIGTERM, passed on to it) is noted, not
        # raised: the summary then says the sweep was interrupted, with what finished.
        signals.note_from_now()
        try:
            if owns_ray:
                import ray

                ray.shutdown()
        finally:
            tune_logger.removeFilter(hint_filter)
    if signals.late and stopped_by is None:
        stopped_by = signals.signum or signals.late[0]
    compile_results(plan.sweep_dir)  # no unit writes now: results.parquet holds every unit's rows
    return summarize(plan, times, time.perf_counter() - started, trials, stopped_by)
