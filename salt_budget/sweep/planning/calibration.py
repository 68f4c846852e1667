"""Pricing a plan's time where no earlier run measured a stage at its shapes: a few steps of that stage on random
clips on this machine (trainers/calibrate.py), cached per machine in calibration.jsonl of the data cache
($SALT_BUDGET_CACHE, beside the embedded set: a cache of this machine, not a result of the runs folder, so a
dry run writes nothing there), which costs.measured_rates reads after the rates of real runs (a real run's
rate wins)."""

from __future__ import annotations

import json
import time

from salt_budget.sweep.planning.costs import _rate_key, calibration_machine, flops_per_clip, measured_rates, stage_flops
from salt_budget.sweep.planning.plan import Plan
from trainers.config import to_dict

CALIBRATION_FILE = "calibration.jsonl"
# The plan's own clips per pass, up to this many: at 2 clips a tiny stage ran at a tenth of its rate at 16
# (2.0-4.3 against 27-42 GFLOP/s measured by real runs, 2026-12-05, 2 cores), so a smaller batch would err long.
CALIBRATION_BATCH = 16
# Past this many FLOPs per calibration step on a CPU (about 10 s on two cores) the calibration is skipped: the
# stage is meant for GPUs (experiments/paper_vitl_240k.yaml), and minutes of CPU steps would price nothing useful.
CPU_CALIBRATION_MAX_FLOPS = 3e11


def _stages(plan: Plan) -> list[tuple[str, object, float]]:
    """(kind, stage config, FLOPs per clip) of every distinct stage shape the plan trains."""
    data, seen, out = plan.experiment.data, set(), []
    units = [("teacher", u.cfg, flops_per_clip("teacher", u.cfg, data)) for u in plan.teachers.values()]
    units += [("student", u.cfg, flops_per_clip("student", u.cfg, data, u.teacher.cfg)) for u in plan.students.values()]
    units += [(u.method, u.cfg, flops_per_clip(u.method, u.cfg, data)) for u in plan.baselines.values()]
    for kind, cfg, per_clip in units:
        key = _rate_key(kind, cfg.encoder.preset, to_dict(data), cfg.run.split_batch(cfg.optim.batch_size)[0])
        if key not in seen:
            seen.add(key)
            out.append((kind, cfg, per_clip))
    return out


def calibrate_plan(plan: Plan) -> list[str]:
    """Calibrate every stage shape of `plan` that no run (or earlier calibration here) priced; what was done."""
    from trainers.calibrate import calibrate_stage
    from trainers.loop import resolve_device

    data = plan.experiment.data
    cache = data.resolved_cache_dir()
    rates, lines = measured_rates(plan.sweep_dir.parent, cache), []
    for kind, cfg, per_clip in _stages(plan):
        on_device = cfg.run.split_batch(cfg.optim.batch_size)[0]
        key = _rate_key(kind, cfg.encoder.preset, to_dict(data), on_device)
        if key in rates:
            continue
        batch = min(on_device, CALIBRATION_BATCH)
        step = stage_flops(per_clip, batch, 1)
        if resolve_device(cfg.run.device).type == "cpu" and step > CPU_CALIBRATION_MAX_FLOPS:
            lines.append(f"time of the {kind} ({cfg.encoder.preset}) not calibrated: one step of {batch} "
                         f"clips is {step:.2g} FLOPs, minutes on this CPU; this experiment is meant for GPUs "
                         f"(see experiments/cluster/): a first short sweep there prices it")
            continue
        started = time.perf_counter()
        rate = calibrate_stage(kind, cfg, data, batch=batch)
        record = {"kind": kind, "preset": cfg.encoder.preset, "frames": data.frames, "resolution": data.resolution,
                  "batch": on_device, "world": 1, "flops_per_s": rate, "machine": calibration_machine(),
                  "calibrated_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "calibration_batch": batch}
        cache.mkdir(parents=True, exist_ok=True)
        with open(cache / CALIBRATION_FILE, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        lines.append(f"calibrated the {kind} ({cfg.encoder.preset}) on this machine: {rate / 1e9:.1f} GFLOP/s at "
                     f"{batch} clips on random input, in {time.perf_counter() - started:.1f} s "
                     f"(cached in {cache / CALIBRATION_FILE})")
    return lines
