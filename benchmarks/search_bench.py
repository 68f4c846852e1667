"""How many trials and how much time the optuna search needs to land within one seed sd of the grid's best share,
with and without pruning, against the grid (benchmarks/search.md).

    python benchmarks/search_bench.py run OUT          # every sweep below into OUT/runs (resumable: run it again)
    python benchmarks/search_bench.py table OUT        # the measurement, as markdown, from what OUT holds
    python benchmarks/search_bench.py trials OUT       # each finished search's trials in the order they finished

The setting of experiments/first.yaml at 960 steps, seed 0. The grid: the teacher shares of the shipped tiny study
(1/6, 1/3, 2/3 of 960 steps). The searches: --trials 8 over the share in [1/12, 2/3] on a log scale, search seeds
0, 1, 2, each with median pruning and without. Every sweep has its own folder (nothing one trains is reused by
another), probes each student at 2 checkpoints (pruning decides at the first), and runs 2 trials at a time on this
machine's 2 cores. The target comes from the shipped study (docs/study_tiny/data/main: 4 seeds per share): the best
share's mean accuracy less the seed sd pooled over the three shares.

CPU time is the sweep's whole process tree (the driver, Ray's services and workers) read from /proc every 2 s, so
it holds where other work shares the machine and wall time does not; a process that ends between two reads loses
at most its last 2 s. Linux only.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

BUDGET = 960
GRID = ("1/6", "1/3", "2/3")
BOUNDS = ("1/12", "2/3")
TRIALS = 8
SEEDS = (0, 1, 2)
PROBE_POINTS = 2
ROOT = Path(__file__).resolve().parent.parent
STUDY = ROOT / "docs" / "study_tiny" / "data" / "main" / "results.parquet"


def variants() -> dict[str, list[str]]:
    common = ["experiments/first.yaml", "--total-steps", str(BUDGET), "--seeds", "0", "--probe-points",
              str(PROBE_POINTS)]
    runs = {"grid": [*common, "--teacher-fractions", *GRID]}
    for seed in SEEDS:
        for pruning in ("median", "none"):
            runs[f"search-s{seed}-{pruning}"] = [*common, "--search", "optuna", "--trials", str(TRIALS),
                                                 "--share-bounds", *BOUNDS, "--search-seed", str(seed),
                                                 "--pruning", pruning]
    return runs


def run(out: Path) -> None:
    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    # This checkout's code, in the driver and in Ray's workers, whatever is installed.
    env = {**os.environ, "SALT_BUDGET_CACHE": str(out / "cache"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    for name, args in variants().items():
        done = out / f"{name}.done"
        if done.is_file():
            continue
        resume = ["--resume"] if (runs / name / "config.yaml").is_file() else []
        command = [sys.executable, "-m", "salt_budget.cli", "sweep", *args, "--name", name, "--yes", *resume, f"runs_dir={runs}"]
        print(" ".join(command), flush=True)
        started = time.time()
        with open(out / f"{name}.log", "a") as log, open(out / f"{name}.cpu.jsonl", "a") as cpu_log:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            code = _watch(process, cpu_log)
        if code != 0:
            sys.exit(f"{name}: exit {code}; see {out / f'{name}.log'}; run again to resume")
        done.write_text(json.dumps({"wall_s": time.time() - started, "started_epoch": started,
                                    "cpu_s": _cpu_series(out / f"{name}.cpu.jsonl")[-1][1]}))


def _tree_cpu(root: int) -> dict[tuple[int, int], float]:
    """CPU seconds (user + system) of `root` and every process below it, keyed by (pid, start time)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # ended while we looked
            # After the command's name: state, ppid, ... utime (12th), stime (13th), ... starttime (20th).
            stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick, int(fields[19]))
    below = {root}
    grew = True
    while grew:
        grew = False
        for pid, (parent, _, _) in stats.items():
            if parent in below and pid not in below:
                below.add(pid)
                grew = True
    return {(pid, stats[pid][2]): stats[pid][1] for pid in below if pid in stats}


def _watch(process: subprocess.Popen, cpu_log) -> int:
    """Wait for `process`, logging its tree's CPU seconds so far every 2 s as {"t": wall s, "cpu_s": ...}; a run
    resumed appends from where the last one ended."""
    offset = _cpu_series(Path(cpu_log.name))[-1] if Path(cpu_log.name).stat().st_size else (0.0, 0.0)
    seen: dict[tuple[int, int], float] = {}
    started = time.time()
    while True:
        code = process.poll()
        seen.update(_tree_cpu(process.pid))
        cpu_log.write(json.dumps({"t": offset[0] + time.time() - started, "cpu_s": offset[1] + sum(seen.values())})
                      + "\n")
        cpu_log.flush()
        if code is not None:
            return code
        time.sleep(2)


def _cpu_series(path: Path) -> list[tuple[float, float]]:
    return [(row["t"], row["cpu_s"]) for row in map(json.loads, path.read_text().splitlines())] or [(0.0, 0.0)]


def _cpu_at(out: Path, name: str, at_s: float) -> float:
    """The sweep's CPU seconds `at_s` wall seconds after its start (the first reading at or after it)."""
    series = _cpu_series(out / f"{name}.cpu.jsonl")
    return next((cpu for t, cpu in series if t >= at_s), series[-1][1])


def _target() -> tuple[float, float, str]:
    import pandas as pd

    table = pd.read_parquet(STUDY)
    final = table[(table["role"] == "student") & table["is_final"].fillna(False) & (table["status"] == "ok")
                  & (table["budget"] == BUDGET)]
    by_share = final.groupby("teacher_share")["acc_mean"].agg(["mean", "std", "count"])
    best = by_share["mean"].idxmax()
    sd = math.sqrt((by_share["std"] ** 2).mean())
    shares = ", ".join(f"{s:.3f}: {100 * r['mean']:.1f} +- {100 * r['std']:.1f} (n={int(r['count'])})"
                       for s, r in by_share.iterrows())
    return float(by_share.loc[best, "mean"]), sd, f"best share {best:.3f}; by share {shares}"


def _search_rows(sweep: Path, started: float) -> list[dict]:
    """The study's finished trials in the order they finished, `at_s` seconds after the sweep started."""
    import optuna

    storage = f"sqlite:///{sweep / 'optuna.db'}"
    [summary] = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    trials = [t for t in study.trials if t.datetime_complete is not None]
    rows = []
    for trial in sorted(trials, key=lambda t: t.datetime_complete):
        rows.append({"share": trial.params["teacher_share"], "state": trial.state.name.lower(), "value": trial.value,
                     "at_s": trial.datetime_complete.timestamp() - started})
    return rows


def work(sweep: Path) -> tuple[int, int]:
    """(optimiser steps trained, checkpoints probed) by a sweep, from its folders: the machine-free cost. A branch
    counts from the trunk checkpoint it started at; a trunk and a run alone from 0."""
    import pandas as pd

    steps = 0
    for run_dir in [*(sweep / "teachers").glob("*"), *(sweep / "trials").glob("*")]:
        reached = [int(path.stem.split("_")[1]) for path in (run_dir / "checkpoints").glob("step_*.pt")]
        branch = run_dir / "branch.json"
        start = json.loads(branch.read_text())["step"] if branch.is_file() else 0
        steps += max(reached, default=start) - start
    table = pd.read_parquet(sweep / "results.parquet")
    probes = int(((table["status"] == "ok") & (table["role"] != "random_init")).sum())
    return steps, probes


def table(out: Path) -> str:
    import pandas as pd

    best, sd, described = _target()
    target = best - sd
    lines = [f"Target: {100 * target:.1f}% = the grid's best mean {100 * best:.1f}% less one seed sd "
             f"{100 * sd:.1f} points (shipped study, {described}).", "",
             "| sweep | trials run | pruned | trials to target | CPU s to target | CPU s in all | wall s in all | "
             "steps trained | probes | best share | best accuracy |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    runs = out / "runs"
    grid_dir = runs / "grid"
    if grid_dir.is_dir():
        frame = pd.read_parquet(grid_dir / "results.parquet")
        final = frame[(frame["role"] == "student") & frame["is_final"].fillna(False)]
        done = json.loads((out / "grid.done").read_text())
        # In the order the grid's trials finished, seconds after the sweep started (a resumed sweep counts from its
        # last start).
        final = final.assign(at_s=[pd.Timestamp(t).timestamp() - done["started_epoch"]
                                   for t in final["written_at"]]).sort_values("at_s")
        hit = next((i for i, acc in enumerate(final["acc_mean"], 1) if acc >= target), None)
        top = final.loc[final["acc_mean"].idxmax()]
        steps, probes = work(grid_dir)
        reached = f"{hit} | {_cpu_at(out, 'grid', final['at_s'].iloc[hit - 1]):.0f}" if hit else "not reached | -"
        lines.append(f"| grid ({len(GRID)} shares) | {len(final)} | - | {reached} | {done['cpu_s']:.0f} | "
                     f"{done['wall_s']:.0f} | {steps} | "
                     f"{probes} | {top['teacher_share']:.3f} | {100 * top['acc_mean']:.1f}% |")
    for name in variants():
        if name == "grid" or not (runs / name / "optuna.db").is_file():
            continue
        done = json.loads((out / f"{name}.done").read_text()) if (out / f"{name}.done").is_file() else {}
        if not done:
            continue  # still running
        rows = _search_rows(runs / name, done["started_epoch"])
        complete = [r for r in rows if r["state"] == "complete" and r["value"] is not None]
        hit = next((i for i, r in enumerate(rows, 1) if r["state"] == "complete" and r["value"] >= target), None)
        top = max(complete, key=lambda r: r["value"]) if complete else None
        steps, probes = work(runs / name)
        reached = f"{hit} | {_cpu_at(out, name, rows[hit - 1]['at_s']):.0f}" if hit else "not reached | -"
        lines.append(f"| {name} | {len(rows)} | {sum(r['state'] == 'pruned' for r in rows)} | {reached} | "
                     f"{done['cpu_s']:.0f} | {done['wall_s']:.0f} | {steps} | {probes} | "
                     + (f"{top['share']:.3f} | {100 * top['value']:.1f}% |" if top else "- | - |"))
    return "\n".join(lines)


def trials(out: Path) -> str:
    lines = ["| sweep | trials in the order they finished: share (state) accuracy at the last probe point, CPU s so far |",
             "|---|---|"]
    for name in variants():
        done = out / f"{name}.done"
        if name == "grid" or not done.is_file():
            continue
        rows = _search_rows(out / "runs" / name, json.loads(done.read_text())["started_epoch"])
        lines.append(f"| {name} | " + "; ".join(
            f"{r['share']:.3f}{' (pruned)' if r['state'] == 'pruned' else ''} {100 * r['value']:.1f}% "
            f"{_cpu_at(out, name, r['at_s']):.0f}" for r in rows) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    commands = {"run": run, "table": lambda out: print(table(out)), "trials": lambda out: print(trials(out))}
    if len(sys.argv) != 3 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](Path(sys.argv[2]).resolve())
