"""probe.augment against cached features: what the paper protocol's probe training (train clips decoded and
augmented anew each epoch, read by the frozen encoder) costs on this machine, and what it reads.

    python benchmarks/probe_augment.py run OUT --checkpoint STUDENT.pt [--experiment experiments/first.yaml]
    python benchmarks/probe_augment.py table OUT        # the markdown table of benchmarks/probe_augment.md

Each (encoder, mode, probe seed) probes from nothing (its own feature cache, so the cached mode pays its one
extraction) and appends a line to OUT/results.jsonl; a run started again skips the lines already there. The
encoders: the checkpoint's, and a random-init encoder of the same preset (the floor, on the same readout).
The seed is the probe's (head init, batch order, augmentation draws), not a training seed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from salt_budget.experiment import load_experiment
from trainers.encoders import build_encoder, encoder_from_checkpoint
from trainers.probe.encoder import probe_encoder
from trainers.provenance import cpu_model

MODES = {"cached": [], "augment": ["probe.augment=true"]}


def _run(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    done = {(r["encoder"], r["mode"], r["seed"]) for r in map(json.loads, results.read_text().splitlines())} \
        if results.is_file() else set()
    trained, payload = encoder_from_checkpoint(Path(args.checkpoint))
    for name in ("trained", "random_init"):
        for seed in args.seeds if name == "trained" else args.floor_seeds:
            for mode, overrides in MODES.items():
                if (name, mode, seed) in done:
                    continue
                experiment = load_experiment(args.experiment, ["probe.kind=attentive", f"probe.depth={args.depth}",
                                                               f"probe.epochs={args.epochs}", *overrides])
                if name == "trained":
                    encoder = trained
                else:
                    torch.manual_seed(seed)
                    encoder = build_encoder(payload["encoder"]).eval()  # the checkpoint's preset, untrained
                cache = out / f"cache-{name}-{mode}-{seed}"
                print(f"[bench] {name} {mode} seed {seed}", file=sys.stderr, flush=True)
                wall, cpu = time.perf_counter(), time.process_time()
                result = probe_encoder(encoder, f"{name}-{seed}", experiment.data, experiment.probe, cache, seed=seed)
                row = {"encoder": name, "mode": mode, "seed": seed, "wall_s": time.perf_counter() - wall,
                       "cpu_s": time.process_time() - cpu, "machine": cpu_model(), "threads": torch.get_num_threads(),
                       "date": time.strftime("%Y-%m-%d"), "readout": result["readout"]["readout"],
                       "accuracy": {task: r["accuracy"] for task, r in result["tasks"].items()},
                       "train_accuracy": {task: r["train_accuracy"] for task, r in result["tasks"].items()}}
                with results.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")


def _table(args: argparse.Namespace) -> None:
    rows = [json.loads(line) for line in (Path(args.out) / "results.jsonl").read_text().splitlines()]
    tasks = sorted({task for row in rows for task in row["accuracy"]})
    print(f"| encoder | mode | seeds | wall s | CPU s | {' | '.join(f'{t} (mean +- sd)' for t in tasks)} |")
    print("|---|---|---|---|---|" + "---|" * len(tasks))
    for name in ("trained", "random_init"):
        for mode in MODES:
            chosen = [row for row in rows if row["encoder"] == name and row["mode"] == mode]
            if not chosen:
                continue
            cells = []
            for task in tasks:
                values = [100 * row["accuracy"][task] for row in chosen]
                sd = statistics.stdev(values) if len(values) > 1 else 0.0
                cells.append(f"{statistics.mean(values):.1f} +- {sd:.1f}")
            seeds = ",".join(str(row["seed"]) for row in chosen)
            print(f"| {name} | {mode} | {seeds} | {statistics.median(r['wall_s'] for r in chosen):.0f} | "
                  f"{statistics.median(r['cpu_s'] for r in chosen):.0f} | {' | '.join(cells)} |")
    machines = sorted({f"{row['machine']}, {row['threads']} threads, {row['date']}" for row in rows})
    print(f"\nMachine: {'; '.join(machines)}. Wall and CPU seconds: medians over the seeds.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run")
    run.add_argument("out")
    run.add_argument("--checkpoint", required=True)
    run.add_argument("--experiment", default="experiments/first.yaml")
    run.add_argument("--depth", type=int, default=1)
    run.add_argument("--epochs", type=int, default=20)
    run.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    run.add_argument("--floor-seeds", type=int, nargs="+", default=[0])
    run.set_defaults(handler=_run)
    table = commands.add_parser("table")
    table.add_argument("out")
    table.set_defaults(handler=_table)
    args = parser.parse_args()
    args.handler(args)


if __name__ == "__main__":
    main()
