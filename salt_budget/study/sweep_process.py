"""One sweep of a study in a process of its own: `python -m salt_budget.study.sweep_process JOB`.

A local Ray is one per process (ray.init starts it for the process that calls it), so sweeps that run side
by side each run here, on a Ray capped at their share of the cores. The study writes the job (the sweep's
plan and how to run it) as a pickle next to the sweep's log and reads the exit code: run_sweep's (0: every
allocation finished, 1: some failed, 130 / 143: stopped by Ctrl-C / SIGTERM, which it handles itself), CRASHED
when the sweep stopped on an error (its traceback in the log), INTERRUPTED on a Ctrl-C it did not handle.
"""

from __future__ import annotations

import pickle
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from salt_budget.sweep.planning.plan import Plan
from salt_budget.sweep.running.resources import Resources

CRASHED = 3
INTERRUPTED = 130  # the shell's code for a process stopped by SIGINT
TERMINATED = 143  # and by SIGTERM (a scheduler, the study's end: see runner._death_signal)
INTERRUPTED_CODES = (INTERRUPTED, TERMINATED)


@dataclass(frozen=True)
class SweepJob:
    plan: Plan
    resume: bool
    resources: Resources
    cpus: int | None  # the local Ray's cores


def write_job(job: SweepJob, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(job))


def run_job(job: SweepJob) -> int:
    """run_sweep's exit code, or CRASHED with the traceback printed: the study goes on with its other sweeps."""
    from salt_budget.sweep.running.runner import run_sweep

    try:
        return run_sweep(job.plan, resume=job.resume, resources=job.resources, cpus=job.cpus)
    except KeyboardInterrupt as interrupt:
        return 128 + getattr(interrupt, "signum", 2)
    except Exception:  # any error of this sweep: the study reports it and keeps the others running
        traceback.print_exc()
        return CRASHED


def main(argv: list[str]) -> int:
    [path] = argv
    job: SweepJob = pickle.loads(Path(path).read_bytes())
    return run_job(job)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
