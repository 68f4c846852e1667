"""A process that probes checkpoint after checkpoint (a reused Ray trial actor): its resident memory after
each probe, with trainers/memory.py's release after every probe and without it (--no-release).

Each round deletes the run's cached features first, so every probe extracts them again as a sweep's new
checkpoint would. On 2026-12-05 (Intel Xeon AVX-512, 2 threads, the study's checkpoint
N1280_T160-tiny_S1120-tiny_seed0 step 900, 2,000 val clips) 6 probes went 795 -> 1,655 MB without the release
and 437 -> 482 MB with it:

    OMP_NUM_THREADS=2 python benchmarks/probe_memory.py CHECKPOINT runs/study-tiny/main/config.yaml [--no-release]

CHECKPOINT is copied to a scratch run folder: the original run's features and probes are left alone.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from salt_budget.experiment import load_experiment
from trainers.probe import checkpoints as evaluate


def resident_mb() -> int:
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith("VmRSS:")).split()[1]) // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="a student or teacher checkpoint (.pt)")
    parser.add_argument("experiment", help="the experiment file of its run (the data and probe it is read on)")
    parser.add_argument("--rounds", type=int, default=6, help="probes in this process (default 6)")
    parser.add_argument("--no-release", action="store_true", help="probe without handing freed memory back")
    args = parser.parse_args()
    if not args.checkpoint.is_file():
        parser.error(f"no checkpoint at {args.checkpoint}")
    exp = load_experiment(args.experiment)
    if args.no_release:
        evaluate.release_memory = lambda: False
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "run" / "checkpoints" / args.checkpoint.name
        copy.parent.mkdir(parents=True)
        shutil.copy2(args.checkpoint, copy)
        for round_ in range(1, args.rounds + 1):
            shutil.rmtree(copy.parent.parent / "features", ignore_errors=True)
            evaluate.probe_checkpoint(copy, exp.data, exp.probe, out=Path(scratch) / "probe.json", progress=False)
            print(f"probe {round_}: {resident_mb()} MB resident", flush=True)


if __name__ == "__main__":
    main()
