"""How much of a sweep's seed-to-seed spread is the readout's sampling of val clips, and what a larger val set buys.

Reads the final checkpoints of a finished sweep (students, teachers, and the random-init encoder of each seed),
extracts their features on a val set of --val clips (the experiment's embedded set with only the val count
changed; the train clips stay the same, checked by their labels), fits the sweep's ridge readout once per
encoder and keeps every val clip's verdict. From those:

* the readout's sampling sd at 500 val clips, measured over disjoint 500-clip parts of the large val set;
* per seed, the paired difference between each pair of teacher shares of one budget, on each part and on
  the whole set; its spread over parts is the readout's share of a paired difference, its spread over seeds
  (on the whole set) what a study at this val size meets;
* with --last K, the same for each student read as the clip-by-clip mean of its last K probed checkpoints;
* a JSON of every number, for docs/study_tiny.md's power design.

    python benchmarks/readout_noise.py runs/first2 --experiment experiments/first.yaml --val 2000 [--last 2]

Cost: features of 1,500 train + N val clips per encoder and a ridge fit, about 15 s an encoder at 32 px and
2,000 val clips (2026-12-05, Intel Xeon, one core; longer beside other work).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from salt_budget.experiment import load_experiment
from trainers.data.build import resolve_data
from trainers.encoders import (
    build_encoder,
    encoder_description,
    encoder_from_checkpoint,
)
from trainers.probe.features import extract_features
from trainers.probe.ridge import ridge_readout

PART = 500  # the val size of the study so far


def encoders_of(sweep: Path, last: int) -> list[dict]:
    """Every final teacher of the sweep's results table, the last `last` probed checkpoints of every student,
    and a random-init encoder per seed."""
    frame = pd.read_csv(sweep / "results.csv")
    frame = frame[frame["checkpoint"].notna()].sort_values("step")
    final = pd.concat([frame[frame["role"] == "teacher"].groupby("unit_key").tail(1),
                       frame[frame["role"] == "student"].groupby("unit_key").tail(last)])
    rows = []
    for _, row in final.iterrows():
        final_step = int(frame[frame["unit_key"] == row["unit_key"]]["step"].max())
        rows.append({"role": row["role"], "key": row["unit_key"], "seed": int(row["seed"]),
                     "step": int(row["step"]), "final": int(row["step"]) == final_step,
                     "budget": int(row["budget"]) if row["role"] == "student" else None,
                     "teacher_steps": int(row["teacher_steps"]), "checkpoint": row["checkpoint"]})
    for seed in sorted(final["seed"].astype(int).unique()):
        rows.append({"role": "random_init", "key": f"random{seed}", "seed": int(seed), "budget": None,
                     "teacher_steps": 0, "checkpoint": None, "step": 0, "final": True})
    return rows


def verdicts(encoder, data, resolved, probe, seed: int) -> dict[str, np.ndarray]:
    """Per task, whether the readout got each val clip right (val order), and the train labels seen."""
    features = {split: extract_features(encoder, data, resolved, split, batch_size=probe.extract_batch_size,
                                        device=torch.device("cpu"), single_frame=False, progress=False)
                for split in ("train", "val")}
    tasks = [task.name for task in resolved.tasks]
    results = ridge_readout(features["train"]["features"], features["train"]["labels"], features["val"]["features"],
                            features["val"]["labels"], [task.num_classes for task in resolved.tasks],
                            lambdas=probe.ridge_lambdas, folds=probe.ridge_folds, seed=seed,
                            time_steps=encoder.grid[0], pooling=probe.pooling, predictions=True)
    labels = features["val"]["labels"].numpy()
    out = {task: (np.asarray(result["val_predicted"]) == labels[:, t]) for t, (task, result) in
           enumerate(zip(tasks, results))}
    out["train_labels"] = features["train"]["labels"].numpy()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path, help="a finished sweep folder (results.csv with checkpoints)")
    parser.add_argument("--experiment", required=True, help="the sweep's experiment file")
    parser.add_argument("--val", type=int, default=2000, help="val clips (a multiple of 500)")
    parser.add_argument("--last", type=int, default=1,
                        help="probed student checkpoints to read, counted back from the last (their mean is one reading)")
    parser.add_argument("--out", type=Path, default=None, help="JSON of the numbers (default <sweep>/readout_noise.json)")
    args = parser.parse_args()
    if args.val % PART:
        parser.error(f"--val {args.val}: give a multiple of {PART}")
    experiment = load_experiment(args.experiment, [])
    data = replace(experiment.data, synthetic=replace(experiment.data.synthetic, val=args.val), workers=0)
    resolved = resolve_data(data)
    probe = experiment.probe
    torch.set_num_threads(1)
    clips = {}
    reference_train = None
    for number, unit in enumerate(encoders_of(args.sweep, args.last), 1):
        if unit["checkpoint"] is None:
            torch.manual_seed(unit["seed"])
            description = encoder_description(experiment.student.encoder, experiment.data)
            encoder = build_encoder(description)
        else:
            encoder, _ = encoder_from_checkpoint(unit["checkpoint"])
        found = verdicts(encoder, data, resolved, probe, seed=unit["seed"])
        train = found.pop("train_labels")
        if reference_train is None:
            reference_train = train
        if train.shape != reference_train.shape or not (train == reference_train).all():
            raise SystemExit(f"the train clips' labels differ between encoders ({unit['key']}): the val count must "
                             f"be the only change to the experiment's data")
        clips[f"{unit['key']}@{unit.get('step', 0)}"] = {**unit, "correct": found}
        accuracy = {task: float(c.mean()) for task, c in found.items()}
        print(f"[noise] {number}: {unit['role']} {unit['key']} seed {unit['seed']}: "
              + ", ".join(f"{t} {a:.1%}" for t, a in accuracy.items()), file=sys.stderr, flush=True)
    report = summarise(clips, args.val)
    out = args.out or args.sweep / "readout_noise.json"
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report["summary"], indent=2))
    print(f"written to {out}")
    return 0


def _mean_task(correct: dict[str, np.ndarray]) -> np.ndarray:
    return np.mean([c.astype(float) for c in correct.values()], axis=0)


def _readings(clips: dict[str, dict], tasks: list[str], final_only: bool) -> list[dict]:
    """One reading per student run: per task (and the task mean) the per-clip score, from its final checkpoint
    or averaged over every checkpoint read (a clip right at 2 of 4 checkpoints scores 0.5)."""
    runs: dict[str, list[dict]] = {}
    for unit in clips.values():
        if unit["role"] == "student" and (unit["final"] or not final_only):
            runs.setdefault(unit["key"], []).append(unit)
    readings = []
    for units in runs.values():
        scores = {t: np.mean([u["correct"][t].astype(float) for u in units], axis=0) for t in tasks}
        scores["mean"] = np.mean([scores[t] for t in tasks], axis=0)
        readings.append({**{k: units[0][k] for k in ("seed", "budget", "teacher_steps")}, "scores": scores,
                         "checkpoints": len(units)})
    return readings


def _differences(readings: list[dict], parts: int) -> pd.DataFrame:
    """Paired differences between teacher lengths of one budget and seed: what the study compares."""
    rows = []
    key = lambda r: (r["budget"], r["seed"])
    for (budget, seed), group in itertools.groupby(sorted(readings, key=key), key=key):
        for a, b in itertools.combinations(sorted(group, key=lambda r: r["teacher_steps"]), 2):
            for task, score in a["scores"].items():
                d = score - b["scores"][task]
                rows.append({"budget": budget, "seed": seed, "pair": f"T{a['teacher_steps']}-T{b['teacher_steps']}",
                             "task": task, "all": float(d.mean()),
                             "parts": [float(d[i * PART:(i + 1) * PART].mean()) for i in range(parts)]})
    return pd.DataFrame(rows)


def _noise(frame: pd.DataFrame, task: str, val: int, parts: int) -> dict[str, float]:
    own = frame[frame["task"] == task]
    part_sd = [np.std(p, ddof=1) for p in own["parts"]]
    # Over seeds, each (budget, pair) gives one variance of the paired difference; pooled as their mean.
    seed_var_all, seed_var_part = [], []
    for _, group in own.groupby(["budget", "pair"]):
        if len(group) > 1:
            seed_var_all.append(np.var(group["all"], ddof=1))
            seed_var_part.append(np.mean([np.var([p[i] for p in group["parts"]], ddof=1) for i in range(parts)]))
    return {
        f"readout sd of a paired difference at {PART} val clips (rms over pairs and seeds)":
            float(np.sqrt(np.mean(np.square(part_sd)))),
        f"seed sd of a paired difference at {PART} val clips (pooled)": float(np.sqrt(np.mean(seed_var_part))),
        f"seed sd of a paired difference at {val} val clips (pooled)": float(np.sqrt(np.mean(seed_var_all))),
        "pooled (budget, pair) groups": len(seed_var_all),
    }


def summarise(clips: dict[str, dict], val: int) -> dict:
    parts = val // PART
    tasks = list(next(iter(clips.values()))["correct"])
    per_encoder = []
    for unit in clips.values():
        correct = {**{t: unit["correct"][t].astype(float) for t in tasks}, "mean": _mean_task(unit["correct"])}
        row = {k: unit[k] for k in ("role", "key", "seed", "budget", "teacher_steps", "step", "final")}
        for task, c in correct.items():
            by_part = [c[i * PART:(i + 1) * PART].mean() for i in range(parts)]
            row[f"{task}_all"] = float(c.mean())
            row[f"{task}_parts"] = [float(v) for v in by_part]
            row[f"{task}_part_sd"] = float(np.std(by_part, ddof=1))
        per_encoder.append(row)
    summary: dict = {"val": val, "parts": parts, "encoders": len(per_encoder)}
    for task in (*tasks, "mean"):
        summary[f"{task}: readout sd of one encoder at {PART} val clips (median over encoders)"] = \
            float(np.median([r[f"{task}_part_sd"] for r in per_encoder]))
    kinds = {"final checkpoint": True}
    if any(not unit["final"] for unit in clips.values()):
        kinds["mean of the checkpoints read"] = False
    for kind, final_only in kinds.items():
        frame = _differences(_readings(clips, tasks, final_only), parts)
        for task in (*tasks, "mean"):
            summary.update({f"{kind}, {task}: {name}": value for name, value in _noise(frame, task, val, parts).items()})
    return {"summary": summary, "encoders": per_encoder}


if __name__ == "__main__":
    sys.exit(main())
