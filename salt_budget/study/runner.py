"""Running a study: every plan checked first, the random-init floor probed once per seed, then the sweeps
(`run_sweep`): in the file's order, those that cannot fill the machine alone side by side, each in a
process of its own on its share of the cores (schedule.py), the wall time of each logged; then the report.

The study's folder: salt_budget/study/plan.py.
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from salt_budget.study.config import StudySweep
from salt_budget.study.plan import StudyPlan, log_record, prepare_folder
from salt_budget.study.schedule import cpus_needed, machine_cpus, startable
from salt_budget.study.sweep_process import (
    CRASHED,
    INTERRUPTED,
    INTERRUPTED_CODES,
    TERMINATED,
    SweepJob,
    run_job,
    write_job,
)
from salt_budget.sweep.running.resources import Resources
from salt_budget.sweep.running.ray_start import check_address
from salt_budget.sweep.running.tuning import SweepInterrupted


def say(message: str) -> None:
    print(f"[study] {message}", flush=True)


def probe_random_floor(plan: StudyPlan) -> None:
    """A random-init encoder of the first sweep's student size, probed once per seed: what training has to beat."""
    from trainers.encoders import encoder_description
    from trainers.probe.checkpoints import probe_random_init

    experiment = plan.plans[0].experiment
    size = plan.sweeps[0].options.student_size or experiment.student.encoder.preset
    encoder = experiment.student.encoder
    description = encoder_description(type(encoder)(preset=size, patch_size=encoder.patch_size,
                                                    tubelet_size=encoder.tubelet_size), experiment.data)
    for seed in plan.study.seeds:
        out_dir = plan.study_dir / "random_init" / f"seed{seed}"
        if (out_dir / "probes" / f"random_init-{size}-seed{seed}.json").is_file():
            continue
        started = time.perf_counter()
        result, _ = probe_random_init(description, experiment.data, experiment.probe, out_dir, seed=seed,
                                      progress=False)
        accuracies = ", ".join(f"{name} {task['accuracy']:.1%}" for name, task in result["tasks"].items())
        say(f"random-init {size} (seed {seed}): {accuracies}, in {time.perf_counter() - started:.0f} s")


@dataclass
class _Running:
    """A sweep started in a process of its own."""

    index: int
    process: subprocess.Popen
    log: Path
    started: float  # time.time()
    cpus: int


def _name(sweep: StudySweep) -> str:
    return f"{sweep.ablation}/{sweep.variant}"


def _death_signal():
    """A preexec_fn that makes a sweep process end with the study (a stopped session, a killed study), not live on
    as an orphan that keeps training while a resumed study starts the same sweep again. prctl is looked up here,
    in the study: the forked child, before exec, only calls it (no import, no lock). Linux only; elsewhere None."""
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _start_process(plan: StudyPlan, index: int, job: SweepJob) -> _Running:
    sweep = plan.sweeps[index]
    logs = plan.study_dir / "logs"
    job_path, log_path = logs / f"{index + 1}-{sweep.folder}.job", logs / f"{index + 1}-{sweep.folder}.log"
    write_job(job, job_path)
    with open(log_path, "a") as log:
        process = subprocess.Popen([sys.executable, "-u", "-m", "salt_budget.study.sweep_process", str(job_path)],
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   preexec_fn=_death_signal())  # noqa: PLW1509
    return _Running(index, process, log_path, time.time(), job.cpus or 0)


def _outcome_lines(log: Path, name: str) -> None:
    """The sweep's per-unit outcome lines from its log, so that the study's own output says what finished."""
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("[sweep]") and (": done," in line or "FAILED" in line or line.startswith(
                ("[sweep] done in", "[sweep] interrupted", "[sweep] stopped", "[sweep] continue with"))):
            say(f"{name}: {line.removeprefix('[sweep] ')}")


def _describe_code(code: int) -> str:
    return {0: "done", 1: "done, some allocations failed", CRASHED: "CRASHED", INTERRUPTED: "interrupted",
            TERMINATED: "interrupted (SIGTERM)"}.get(code, f"CRASHED (exit {code})")


def _continue_command() -> str:
    argv = sys.argv[1:]
    if argv[:1] != ["study"]:
        return "run the same command again with --resume"
    return shlex.join(["salt-budget", *argv, *([] if "--resume" in argv else ["--resume"])])


def _on_sigterm(signum, frame) -> None:
    raise SweepInterrupted(signal.SIGTERM)


def run_study(plan: StudyPlan, *, resume: bool = False, address: str | None = None,
              resources: Resources = Resources(), cores: int | None = None, side_by_side: bool = True,
              ablations: list[str] | None = None) -> int:
    """The random-init floor, then the sweeps of `ablations` (all when None): those that cannot fill the
    `cores` alone side by side (schedule.py), the others alone, in this process. 0 when every sweep finished
    with every allocation, else 1; a sweep that fails or crashes stops no other, and the last line names it.

    Side by side only on a local Ray (without --address: a cluster schedules the units of one sweep over its
    nodes) and without GPUs (each sweep's Ray would see every GPU)."""
    if address:
        check_address(address)  # before the floor's probes: an unreachable cluster fails in seconds
    resources.validate()
    prepare_folder(plan, resume)
    started = time.perf_counter()
    if plan.study.random_init_probe:
        probe_random_floor(plan)
    cores = cores or machine_cpus()
    order = [i for i, sweep in enumerate(plan.sweeps) if ablations is None or sweep.ablation in ablations]
    parallel = side_by_side and not address and not _has_gpus(resources)
    needs = [cpus_needed(p, resources, cores) if parallel else cores for p in plan.plans]
    folders = [sweep.folder for sweep in plan.sweeps]
    pending, running, codes = list(order), [], {}

    def job(index: int, cpus: int | None) -> SweepJob:
        sweep_plan = plan.plans[index]
        # A resumed study continues the sweeps it started and starts the others.
        started_before = (sweep_plan.sweep_dir / "config.yaml").is_file()
        return SweepJob(sweep_plan, resume and started_before, resources, cpus)

    def finished(index: int, code: int, began: float, cpus: int, log: Path | None) -> None:
        codes[index] = code
        sweep = plan.sweeps[index]
        wall = time.time() - began
        log_record(plan, {"ablation": sweep.ablation, "variant": sweep.variant, "folder": sweep.folder,
                          "exit_code": code, "wall_s": round(wall, 1), "started": round(began, 3),
                          "ended": round(time.time(), 3), "cpus": cpus, **({"log": str(log)} if log else {})})
        others = ", ".join(_name(plan.sweeps[r.index]) for r in running)
        say(f"sweep {order.index(index) + 1}/{len(order)} {_name(sweep)}: {_describe_code(code)} in {wall:.0f} s"
            + (f"; still running: {others}" if others else ""))
        if code not in (0, 1) and log is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-8:]
            say(f"{_name(sweep)}: the end of {log}:\n" + "\n".join(f"    {line}" for line in tail))

    # SIGTERM (a scheduler) stops the study as Ctrl-C does: its sweeps are stopped and say what finished.
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if threading.current_thread() is threading.main_thread() \
        else None
    try:
        while pending or running:
            chosen = startable(pending, [r.index for r in running], folders, needs, cores)
            for index in chosen:
                pending.remove(index)
            if len(chosen) == 1 and not running:
                # Alone on the machine: in this process, its output here, as `salt-budget sweep` prints it.
                [index] = chosen
                sweep, sweep_plan = plan.sweeps[index], plan.plans[index]
                say(f"sweep {order.index(index) + 1}/{len(order)}: ablation {sweep.ablation}, variant "
                    f"{sweep.variant} ({len(sweep_plan.allocations)} allocations"
                    + (f", {len(sweep_plan.baselines)} baseline runs" if sweep_plan.baselines else "")
                    + f") -> {sweep_plan.sweep_dir}")
                began = time.time()
                code = run_job(job(index, None if address else cores))
                if code in INTERRUPTED_CODES:
                    raise SweepInterrupted(code - 128)
                finished(index, code, began, needs[index], None)
                continue
            for index in chosen:
                running.append(_start_process(plan, index, job(index, needs[index])))
            if chosen:
                say("running side by side: " + "; ".join(
                    f"{order.index(r.index) + 1}/{len(order)} {_name(plan.sweeps[r.index])} ({r.cpus} of {cores} "
                    f"cores, output in {r.log})" for r in running))
            if not running:
                raise RuntimeError(f"no sweep can start on {cores} cores: {[_name(plan.sweeps[i]) for i in pending]}")
            done = _wait_for_one(running)
            running.remove(done)
            _outcome_lines(done.log, _name(plan.sweeps[done.index]))
            finished(done.index, done.process.returncode, done.started, done.cpus, done.log)
    except KeyboardInterrupt as interrupt:
        _stop(running, getattr(interrupt, "signum", signal.SIGINT))
        done = [i for i in order if codes.get(i) in (0, 1)]
        say(f"interrupted: {len(done)} of {len(order)} sweeps ran to their end; finished units are kept; continue "
            f"with: {_continue_command()}")
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    wall = time.perf_counter() - started
    exit_codes = [codes[i] for i in order]
    failed = [_name(plan.sweeps[i]) for i in order if codes[i]]
    whole = ablations is None or set(ablations) == set(plan.study.ablations)
    # "study": the whole study's wall time (the report reads it); "part": a run of some of its ablations.
    log_record(plan, {("study" if whole else "part"): plan.study.name, "wall_s": round(wall, 1),
                      "exit_codes": exit_codes, **({} if whole else {"ablations": list(ablations)}), "failed": failed})
    short = [i for i in order if codes[i] not in (0, 1)]  # interrupted or crashed: not a finished sweep
    say((f"all {len(order)} sweeps done" if not short else
         f"study stopped short: {len(order) - len(short)} of {len(order)} sweeps ran to their end")
        + f" in {wall:.0f} s ({wall / 60:.1f} min)"
        + ("" if not failed else f"; {len(failed)} did not finish every allocation: "
           + ", ".join(f"{name} ({_describe_code(codes[i])})" for name, i in zip(failed, [i for i in order if codes[i]]))
           + " (see above; --resume retries what is missing)"))
    return 1 if failed else 0


def _has_gpus(resources: Resources) -> bool:
    if (resources.gpus_per_trial or 0) > 0 or (resources.gpus_per_worker or 0) > 0:
        return True
    import torch

    return torch.cuda.is_available()


def _wait_for_one(running: list[_Running]) -> _Running:
    while True:
        for run in running:
            if run.process.poll() is not None:
                return run
        time.sleep(0.5)


def _stop(running: list[_Running], signum: int = signal.SIGINT) -> None:
    """Ctrl-C reaches the sweep processes too (one process group); a signal sent to the study alone does not: it is
    passed on. Each sweep stops as on Ctrl-C and says what finished."""
    for run in running:
        if run.process.poll() is None:
            run.process.send_signal(signum)
    for run in running:
        try:
            run.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            run.process.kill()
