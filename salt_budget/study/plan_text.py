"""The study's `--dry-run` table: per sweep its units, its baseline runs, how it runs (alone or beside
others, on how many cores) and the sweep planner's predicted training time (plan_table.py: from FLOP rates
that earlier runs in the runs folder measured; '-' where none did)."""

from __future__ import annotations

import pandas as pd

from salt_budget.study.plan import StudyPlan
from salt_budget.study.schedule import cpus_needed, sweep_width
from salt_budget.sweep.planning.plan_table import _duration, baseline_frame, plan_frame
from salt_budget.sweep.running.resources import Resources


def predicted_seconds(sweep_plan, workers: int = 1) -> float | None:
    """The planner's predicted training seconds of the sweep, one unit at a time (probes not included): its
    allocations' and baseline runs' sum, as `salt-budget sweep --dry-run` prints it; None where one is unknown."""
    frame = plan_frame(sweep_plan, workers)
    seconds = list(frame["predicted_s"])
    if sweep_plan.baselines:
        seconds += list(baseline_frame(sweep_plan, float(frame["flops_total"].min()), workers)["predicted_s"])
    return None if any(s is None or pd.isna(s) for s in seconds) else float(sum(seconds))


def study_table(plan: StudyPlan, order: list[int], resources: Resources, cores: int, side_by_side: bool) -> str:
    rows = []
    for index in order:
        sweep, sweep_plan = plan.sweeps[index], plan.plans[index]
        need = cpus_needed(sweep_plan, resources, cores) if side_by_side else cores
        seconds = predicted_seconds(sweep_plan, resources.workers_per_trial)
        rows.append({"sweep": f"{sweep.ablation}/{sweep.variant}", "folder": sweep.folder,
                     "allocations": len(sweep_plan.allocations), "baselines": len(sweep_plan.baselines),
                     "units at once": sweep_width(sweep_plan),
                     "runs": "alone" if need >= cores else f"beside others, {need} of {cores} cores",
                     "predicted": _duration(seconds) if seconds is not None else "-"})
    known = [predicted_seconds(plan.plans[i], resources.workers_per_trial) for i in order]
    total = (f"{_duration(sum(known))} of training summed over these sweeps, one unit at a time (a unit two sweeps "
             f"of one folder share is counted in each; the cores run several at once)" if all(
                 s is not None for s in known) else "'-': no earlier run in the runs folder measured that stage")
    return "\n".join([
        pd.DataFrame(rows).to_string(index=False),
        ("units at once: the sweep's widest phase (teacher ladders, student ladders or baseline ladders); a sweep "
         "that cannot fill the cores alone runs beside others, each on a local Ray of its own; sweeps of one folder "
         "run in the file's order."),
        (f"predicted: the sweep planner's training time (probes not included), from FLOP rates measured by earlier "
         f"runs; {total}"),
    ])
