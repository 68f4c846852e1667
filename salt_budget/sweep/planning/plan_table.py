"""The plan as a table: runs/<name>/plan.csv (the allocations) and the `--dry-run` printout (with the baselines)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.markdown import budget_name
from trainers.atomic import atomic_write

from salt_budget.sweep.planning.costs import ASSUMED_EFFICIENCY, flops_per_clip, measured_rates, predicted_seconds, stage_flops
from salt_budget.sweep.planning.plan import Plan
from salt_budget.sweep.planning.search_space import search_space_text
from salt_budget.sweep.planning.teacher_ladders import ladders


def plan_frame(plan: Plan, workers: int = 1) -> pd.DataFrame:
    """One row per allocation: predicted FLOPs by stage, relative compute and, where earlier runs in
    the runs folder measured a FLOP rate for the same stage and shapes, predicted training seconds on
    `workers` data-parallel processes per unit (costs.predicted_seconds)."""
    data = plan.experiment.data
    rates = measured_rates(plan.sweep_dir.parent, plan.experiment.data.resolved_cache_dir())
    rows = []
    for allocation in plan.allocations:
        student = plan.students[allocation.id]
        teacher = student.teacher.cfg
        flops_t = stage_flops(flops_per_clip("teacher", teacher, data), teacher.optim.batch_size,
                              allocation.teacher_steps)
        flops_s = stage_flops(flops_per_clip("student", student.cfg, data, teacher), student.cfg.optim.batch_size,
                              allocation.student_steps)
        seconds_t, assumed_t = predicted_seconds(rates, "teacher", teacher, data, flops_t, workers)
        seconds_s, assumed_s = predicted_seconds(rates, "student", student.cfg, data, flops_s, workers)
        rows.append({
            "allocation_id": allocation.id, "budget": allocation.budget_value, "budget_kind": allocation.budget_kind,
            "steps": allocation.budget, "teacher_size": allocation.teacher_size,
            "teacher_steps": allocation.teacher_steps, "teacher_share": allocation.teacher_share,
            "student_size": allocation.student_size, "student_steps": allocation.student_steps,
            "seed": allocation.seed, "teacher_key": student.teacher.key, "student_key": student.key,
            "flops_teacher": flops_t, "flops_student": flops_s, "flops_total": flops_t + flops_s,
            "predicted_s": seconds_t + seconds_s if seconds_t is not None and seconds_s is not None else None,
            "workers": workers, "efficiency_assumed": assumed_t or assumed_s,
        })
    frame = pd.DataFrame(rows)
    frame.insert(frame.columns.get_loc("flops_total") + 1, "relative_compute",
                 frame["flops_total"] / frame["flops_total"].min())
    return frame


def baseline_frame(plan: Plan, cheapest: float, workers: int = 1) -> pd.DataFrame:
    """One row per baseline: predicted FLOPs, relative to `cheapest` (the cheapest allocation's), and time."""
    data = plan.experiment.data
    rates = measured_rates(plan.sweep_dir.parent, plan.experiment.data.resolved_cache_dir())
    rows = []
    for unit in plan.baselines.values():
        flops = stage_flops(flops_per_clip(unit.kind, unit.cfg, data), unit.cfg.optim.batch_size, unit.budget)
        rows.append({"baseline": unit.id, "budget": budget_name(unit.budget_value, unit.budget_kind),
                     "encoder": unit.size, "steps": unit.budget, "seed": unit.seed, "flops_total": flops,
                     "relative_compute": flops / cheapest,
                     "predicted_s": predicted_seconds(rates, unit.method, unit.cfg, data, flops, workers)[0]})
    return pd.DataFrame(rows)


def _unlike(plan: Plan) -> list[str]:
    """What each baseline sets differently from the student: the comparison then is not like for like."""
    notes, student = [], plan.experiment.student
    for method in dict.fromkeys(plan.options.baselines):
        baseline = plan.experiment.stage_config(method)
        differ = [name for name in ("predictor", "masks", "optim.batch_size")
                  if _setting(baseline, name) is not None and _setting(student, name) != _setting(baseline, name)]
        if differ:
            notes.append(f"note: the baseline's {', '.join(differ)} {'differs' if len(differ) == 1 else 'differ'} "
                         f"from the student's (the {method} section): it does not train like for like")
    return notes


def _setting(cfg: object, dotted: str) -> object:
    for name in dotted.split("."):
        cfg = getattr(cfg, name, None)
    return cfg


def teacher_steps_summary(plan: Plan) -> tuple[int, int, int]:
    """(steps the sweep trains for its teachers, steps of its distinct teachers, steps summed over allocations)."""
    return (sum(ladder.steps_to_train() for ladder in ladders(plan)),
            sum(tid.steps for tid in plan.teachers), sum(a.teacher_steps for a in plan.allocations))


def _ladder_counts(by_unit: dict, units, step_flops) -> dict[str, float]:
    """Steps and FLOPs the ladders of `by_unit` train, against the sum over `units`; `step_flops(unit)`."""
    ladders_ = list({id(ladder): ladder for ladder in by_unit.values()}.values())
    return {"steps": sum(ladder.steps_to_train() for ladder in ladders_),
            "steps_summed": sum(unit.steps for unit in units),
            "flops": sum(ladder.steps_to_train() * step_flops(ladder.trunk) for ladder in ladders_),
            "flops_summed": sum(unit.steps * step_flops(unit) for unit in units)}


def ladder_savings(plan: Plan) -> dict[str, dict[str, float]]:
    """Steps and FLOPs the sweep trains for each stage against the sum over its allocations (and baseline runs):
    {"teacher" | "student" | "baseline": {"steps", "steps_summed", "flops", "flops_summed"}}."""
    data = plan.experiment.data
    trained, _, summed = teacher_steps_summary(plan)
    per_step = {tid: stage_flops(flops_per_clip("teacher", unit.cfg, data), unit.cfg.optim.batch_size, 1)
                for tid, unit in plan.teachers.items()}
    out = {"teacher": {
        "steps": trained, "steps_summed": summed,
        "flops": sum(ladder.steps_to_train() * per_step[ladder.trunk.id] for ladder in ladders(plan)),
        "flops_summed": sum(a.teacher_steps * per_step[a.teacher_id] for a in plan.allocations)}}
    out["student"] = _ladder_counts(plan.student_ladders, plan.students.values(), lambda unit: stage_flops(
        flops_per_clip("student", unit.cfg, data, unit.teacher.cfg), unit.cfg.optim.batch_size, 1))
    if plan.baselines:
        out["baseline"] = _ladder_counts(plan.baseline_ladders, plan.baselines.values(), lambda unit: stage_flops(
            flops_per_clip(unit.kind, unit.cfg, data), unit.cfg.optim.batch_size, 1))
    return out


def _saving_lines(plan: Plan) -> list[str]:
    """What the ladders save: each stage's steps and FLOPs trained against their sum over the allocations."""
    summary = ladder_savings(plan)
    _, distinct, _ = teacher_steps_summary(plan)
    lines = []
    for stage, counts in summary.items():
        runs = "allocations" if stage != "baseline" else "baseline runs"
        extra = f" for {len(plan.teachers)} teachers ({distinct:,} if each were its own run)" if stage == "teacher" else ""
        lines.append(f"{stage} steps: {counts['steps']:,} trained{extra}, {counts['steps_summed']:,} summed over the "
                     f"{runs} ({counts['flops']:.3g} against {counts['flops_summed']:.3g} FLOPs)")
    trained = sum(stage["flops"] for stage in summary.values())
    summed = sum(stage["flops_summed"] for stage in summary.values())
    lines.append(f"in all: {trained:.3g} FLOPs trained against {summed:.3g} summed over the allocations"
                 + (" and baseline runs" if plan.baselines else "") + f" ({1 - trained / summed:.0%} less)")
    return lines


def _duration(seconds: float) -> str:
    if pd.isna(seconds):
        return "-"
    if seconds >= 48 * 3600:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


def format_plan(plan: Plan, frame: pd.DataFrame) -> str:
    """The --dry-run printout: every allocation's steps, FLOPs and predicted time, and what they rest on."""
    options = plan.options
    workers = int(frame["workers"].iloc[0])
    schedule = (f"wsd ladder, cool-down {options.cooldown_fraction:.0%} of each teacher"
                if options.teacher_schedule == "wsd" else "cosine, one run per teacher")
    schedule += ("; students: wsd ladders (the students of a teacher share a trunk)"
                 if options.students_schedule == "wsd" else "; students: cosine, one run per allocation")
    search = "grid" if options.search == "grid" else search_space_text(plan)
    shown = frame.assign(
        budget=[budget_name(v, k) for v, k in zip(frame["budget"], frame["budget_kind"])],
        teacher_share=frame["teacher_share"].map("{:.3f}".format),
        relative_compute=frame["relative_compute"].map("{:.2f}".format),
        predicted_s=frame["predicted_s"].map(_duration),
        **{c: frame[c].map("{:.3g}".format) for c in ("flops_teacher", "flops_student", "flops_total")},
    ).rename(columns={"allocation_id": "allocation", "teacher_share": "share", "flops_teacher": "FLOPs T",
                      "flops_student": "FLOPs S", "flops_total": "FLOPs total", "relative_compute": "rel",
                      "predicted_s": "time", "teacher_steps": "T", "student_steps": "S", "teacher_size": "teacher",
                      "student_size": "student"})
    columns = ["allocation", "budget", "teacher", "T", "share", "student", "S", "seed", "FLOPs T", "FLOPs S",
               "FLOPs total", "rel", "time"]
    kind = "flops" if options.total_flops else "steps"
    known = frame["predicted_s"].notna()
    on = "one process per unit" if workers == 1 else f"{workers} data-parallel workers per unit"
    if known.all():
        total = frame["predicted_s"].sum()
        timing = (f"predicted training time per allocation on {on} (probes not included): "
                  f"{_duration(total)} in all, serially ({_duration(total * workers)} of device time: {workers} "
                  f"device(s) per unit), from FLOP rates measured by earlier runs in {plan.sweep_dir.parent} or, where none "
                  f"did, calibrated on this machine (salt_budget/sweep/planning/calibration.py)")
        if frame["efficiency_assumed"].any():
            timing += (f"; no run there was measured with {workers} workers, so {workers} workers are taken at "
                       f"{ASSUMED_EFFICIENCY:.0%} parallel efficiency ({workers} x one process's rate x "
                       f"{ASSUMED_EFFICIENCY:g})")
    else:
        timing = (f"time '-': no earlier run in {plan.sweep_dir.parent} measured this stage at these shapes "
                  f"(stage, encoder, frames, resolution, batch) and it was not calibrated here (too large for this "
                  f"machine, or the sweep runs on a cluster); a finished sweep fills it in for the next plan")
    lines = [
        f"sweep '{plan.name}' -> {plan.sweep_dir}",
        f"{len(plan.allocations)} allocations over budgets {', '.join(budget_name(b, kind) for b in options.budgets)}"
        + (" (each split between teacher and student by the FLOPs model: T and S differ by teacher size)"
           if kind == "flops" else " (steps: T + S = N)") + "; "
        f"teacher schedule: {schedule}; search: {search}; student probed at {options.probe_points} checkpoints",
        shown[columns].to_string(index=False),
        "FLOPs: docs/paper.md section 7 with the mask generator's expected token counts; rel = total / the "
        "cheapest allocation's.",
        *(_saving_lines(plan) if options.search == "grid" else [
            f"a search: the rows above are its bounds' allocations; each of its {options.trials} trials trains one "
            f"allocation between them (a teacher, branched from its size's search trunk where it can, and its "
            f"student), so the whole search costs about {options.trials} times a row's time, less what pruning "
            f"stops"]),
        timing,
    ]
    if plan.baselines:
        baselines = baseline_frame(plan, float(frame["flops_total"].min()), workers)
        lines += [
            f"{len(baselines)} baseline run(s), each the student's encoder trained the whole budget (N steps), probed "
            f"at {options.probe_points} checkpoints; FLOPs include the EMA encoder's forward (2ND on every token):",
            baselines.assign(
                relative_compute=baselines["relative_compute"].map("{:.2f}".format),
                predicted_s=baselines["predicted_s"].map(_duration),
                flops_total=baselines["flops_total"].map("{:.3g}".format),
            ).rename(columns={"flops_total": "FLOPs", "relative_compute": "rel", "predicted_s": "time"})
            .to_string(index=False),
            *_unlike(plan),
        ]
    return "\n".join(lines)


def write_plan_csv(frame: pd.DataFrame, path: Path) -> None:
    """plan.csv lists every allocation planned in this folder: this plan's rows replace older ones."""
    if path.is_file():
        old = pd.read_csv(path)
        frame = pd.concat([old[~old["allocation_id"].isin(frame["allocation_id"])], frame], ignore_index=True)
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))
