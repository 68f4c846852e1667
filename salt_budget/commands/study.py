"""`salt-budget study`: the paper's ablations as sweeps, and the study report."""

from __future__ import annotations

import argparse
from pathlib import Path

from salt_budget.commands.common import ValuesThenOverrides, add_ray_args, add_tracker_args, resources


def add_parser(commands) -> None:
    study = commands.add_parser(
        "study", help="the paper's ablations (allocation, teacher size, teacher masks, loss-accuracy) as sweeps",
        description="Run every ablation of a study file (experiments/study_tiny.yaml) as sweeps in runs/<study>/: a "
        "random-init encoder probed per seed, then each ablation's variants in order (those that cannot fill the "
        "machine alone side by side, each on its share of the cores), then the study report "
        "(runs/<study>/report: study.md, study.html, and the sweep report of the shared sweep). Overrides whose "
        "first key is a study field (name, seeds, ablations...) change the study; the rest (data..., teacher..., "
        "probe...) change the experiment of every sweep.",
    )
    study.add_argument("study_file", help="study YAML, e.g. experiments/study_tiny.yaml")
    study.add_argument("overrides", nargs="*", metavar="key.path=value", help="dotted study or experiment overrides")
    study.add_argument("--dry-run", action="store_true", help="print every sweep's plan, FLOPs and time; train nothing")
    study.add_argument("--resume", action="store_true", help="continue this study after a crash or a stop, or run "
                       "another part of it (--ablations): finished units are not trained again")
    study.add_argument("--ablations", nargs="+", action=ValuesThenOverrides, default=None, metavar="NAME",
                       help="run only these ablations of the file (a part of the study; the report reads whatever "
                            "has finished); default all")
    study.add_argument("--cpus", type=int, default=None, metavar="N",
                       help="cores the study's sweeps share on this machine (default: all this process may use)")
    study.add_argument("--one-at-a-time", action="store_true",
                       help="run the sweeps one after another, each with every core, even those that cannot fill "
                            "the machine alone")
    add_tracker_args(study)
    add_ray_args(study)
    study.set_defaults(handler=_cmd_study)


def _cmd_study(args: argparse.Namespace) -> int:
    import dataclasses

    from salt_budget.study.config import (
        StudyConfig,
        load_study,
        select_ablations,
        study_sweeps,
    )
    from salt_budget.study.plan import plan_study
    from salt_budget.study.plan_text import study_table
    from salt_budget.study.runner import run_study
    from salt_budget.study.schedule import machine_cpus
    from salt_budget.sweep.planning.options import PlanError
    from salt_budget.sweep.planning.plan_table import format_plan, plan_frame
    from trainers.tracking.check import check_trackers

    check_trackers(args.trackers)
    if args.cpus is not None and args.cpus < 1:
        raise PlanError(f"--cpus {args.cpus}: give at least 1 core")
    overrides = [*getattr(args, "late_overrides", []), *args.overrides]
    fields = {f.name for f in dataclasses.fields(StudyConfig)}
    mine = [o for o in overrides if o.split("=", 1)[0].split(".", 1)[0] in fields]
    experiment_overrides = [o for o in overrides if o not in mine]
    study = load_study(args.study_file, mine)
    study.overrides = [*study.overrides, *experiment_overrides]
    # The whole study is planned (study.json lists every sweep) even when a part of it runs.
    plan = plan_study(study, study_sweeps(study, Path(args.study_file), args.trackers))
    ablations = select_ablations(study, args.ablations) if args.ablations else None
    order = [i for i, s in enumerate(plan.sweeps) if ablations is None or s.ablation in ablations]
    flops = {}  # by (folder, allocation): an allocation two ablations share is trained, and counted, once
    for sweep, sweep_plan in ((plan.sweeps[i], plan.plans[i]) for i in order):
        frame = plan_frame(sweep_plan, args.workers_per_trial)
        flops.update({(sweep.folder, a): float(f) for a, f in zip(frame["allocation_id"], frame["flops_total"])})
        print(f"== ablation {sweep.ablation}, variant {sweep.variant}"
              + (f" ({' '.join(sweep.overrides)})" if sweep.overrides else ""))
        print(format_plan(sweep_plan, frame), flush=True)
    part = f" (ablations {', '.join(ablations)} of {len(study.ablations)})" if ablations else ""
    print(f"study '{study.name}' -> {plan.study_dir}: {len(order)} sweeps{part}, {len(flops)} distinct "
          f"allocations; FLOPs summed over them {sum(flops.values()):.3g} (a teacher shared by allocations counted "
          f"in each)")
    cores = args.cpus or machine_cpus()
    print(study_table(plan, order, resources(args), cores, side_by_side=not args.one_at_a_time and not args.address),
          flush=True)
    # Every distinct data section's lists read now, as `sweep` does: a wrong path fails on the login node.
    from salt_budget.commands.sweep import read_lists
    from trainers.config import config_hash

    seen = set()
    for sweep_plan in (plan.plans[i] for i in order):
        key = config_hash({"data": sweep_plan.experiment.data, "probe": sweep_plan.experiment.probe})
        if key not in seen:
            seen.add(key)
            for line in read_lists(sweep_plan.experiment)[0]:
                print(line, flush=True)
    if args.dry_run:
        print("dry run: nothing trained, nothing written")
        return 0
    from analysis.study_report import write_study_report

    code = run_study(plan, resume=args.resume, address=args.address, resources=resources(args), cores=cores,
                     side_by_side=not args.one_at_a_time, ablations=ablations)
    written = write_study_report(plan.study_dir)
    print(f"study report written to {written.out}:")
    for path in written.files:
        print(f"  {path.relative_to(written.out)}")
    for note in written.notes:
        print(note)
    return code
