"""What changes a number: the same teacher trained and probed under settings that should not matter
(a second identical run, two threads instead of one, another CPU instruction set, deterministic kernels),
each against the first. Another instruction set is how this machine stands in for another CPU kind: torch
and oneDNN pick AVX-512/AMX or AVX2 kernels by the CPU, and their sums round differently.

    python benchmarks/reproducibility.py [--experiment experiments/first.yaml] [--steps 320] [--out DIR]

Each variant runs in its own process (the settings are read when torch starts): `salt-budget train teacher`
then `salt-budget probe` on its final checkpoint. Prints a markdown table (loss at the last step, the
largest weight difference from the first variant, probe accuracies) and writes it with the raw numbers to
DIR/reproducibility.json. docs/reproducibility.md quotes its output.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from trainers.checkpoint import checkpoint_path
from trainers.encoders import encoder_from_checkpoint
from trainers.provenance import cpu_model

# name: (environment, extra overrides). OMP_NUM_THREADS=1 is a sweep unit's default (--cpus-per-trial 1).
VARIANTS: dict[str, tuple[dict[str, str], list[str]]] = {
    "reference": ({"OMP_NUM_THREADS": "1"}, []),
    "same again": ({"OMP_NUM_THREADS": "1"}, []),
    "2 threads": ({"OMP_NUM_THREADS": "2"}, []),
    "AVX2 kernels": ({"OMP_NUM_THREADS": "1", "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}, []),
    "deterministic": ({"OMP_NUM_THREADS": "1"}, ["teacher.run.deterministic=true"]),
}


def run_variant(name: str, experiment: str, steps: int, out: Path) -> dict:
    env_extra, overrides = VARIANTS[name]
    env = {**os.environ, **env_extra}
    run_dir = out / name.replace(" ", "_")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "salt_budget.cli", "train", "teacher", experiment,
                    f"teacher.optim.steps={steps}", *overrides, "--run-dir", str(run_dir)],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    checkpoint = checkpoint_path(run_dir / "checkpoints", steps)
    probe_out = run_dir / "probe.json"
    subprocess.run([sys.executable, "-m", "salt_budget.cli", "probe", str(checkpoint), experiment,
                    "--out", str(probe_out)], env=env, check=True, stdout=subprocess.DEVNULL)
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
    losses = [[row["step"], row["loss"]] for row in logged]
    probe = json.loads(probe_out.read_text())
    accuracies = {task: result["accuracy"] for task, result in probe["tasks"].items()}
    return {"variant": name, "env": env_extra, "overrides": overrides, "loss_last": losses[-1][1], "losses": losses,
            "accuracy": accuracies, "accuracy_mean": sum(accuracies.values()) / len(accuracies),
            "checkpoint": str(checkpoint), "wall_s": time.perf_counter() - started}


def weight_gap(a: str, b: str) -> float:
    first, second = (encoder_from_checkpoint(path)[0].state_dict() for path in (a, b))
    return max(float((first[k].float() - second[k].float()).abs().max()) for k in first)


def first_divergence(a: list[list[float]], b: list[list[float]]) -> int | None:
    """The first logged step whose loss differs, None if none does."""
    return next((int(x[0]) for x, y in zip(a, b) if x != y), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="experiments/first.yaml")
    parser.add_argument("--steps", type=int, default=320)
    parser.add_argument("--out", type=Path, default=Path("runs/reproducibility"))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in args.variants:
        print(f"[reproducibility] {name} ...", file=sys.stderr, flush=True)
        results.append(run_variant(name, args.experiment, args.steps, args.out))
    reference = results[0]
    for result in results:
        result["weight_gap"] = weight_gap(reference["checkpoint"], result["checkpoint"])
        result["first_divergent_log"] = first_divergence(reference["losses"], result["losses"])
    header = (f"{args.steps}-step teacher of {args.experiment}, probed on its readout; {cpu_model()}, "
              f"torch {torch.__version__}; {time.strftime('%Y-%m-%d')}")
    lines = [header, "", "| variant | loss at the last step | largest weight gap | first logged step that differs | "
             + " | ".join(reference["accuracy"]) + " | mean |", "|---" * (5 + len(reference["accuracy"])) + "|"]
    for r in results:
        lines.append(f"| {r['variant']} | {r['loss_last']:.6f} | {r['weight_gap']:.2e} | "
                     f"{r['first_divergent_log'] or 'none'} | "
                     + " | ".join(f"{100 * v:.1f}" for v in r["accuracy"].values())
                     + f" | {100 * r['accuracy_mean']:.1f} |")
    print("\n".join(lines))
    (args.out / "reproducibility.json").write_text(json.dumps({"header": header, "results": results}, indent=2))


if __name__ == "__main__":
    main()
