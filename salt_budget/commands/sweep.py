"""`salt-budget sweep`: every allocation of a budget on Ray Tune, or its plan (--dry-run)."""

from __future__ import annotations

import argparse

from salt_budget.commands.common import (
    ValuesThenOverrides,
    add_experiment_args,
    add_ray_args,
    add_tracker_args,
    parse_flops,
    parse_fraction,
    parse_steps,
    resources,
    split_experiment,
)


def add_parser(commands) -> None:
    sweep = commands.add_parser(
        "sweep", help="train every teacher/student split of a step budget (T + S = N) on Ray Tune",
        description="Plan every allocation T + S = N, train each distinct teacher once (a checkpoint ladder with "
        "the wsd schedule), then one Ray Tune trial per allocation (student, probes at several checkpoints; with "
        "wsd the students of one teacher share a trunk); "
        "rows go to runs/<name>/results.parquet; --baselines adds baseline runs trained for each whole budget. "
        "Default teacher shares: 1/12, 1/6, 1/3, 1/2.",
    )
    several = dict(nargs="+", action=ValuesThenOverrides)
    budgets = sweep.add_mutually_exclusive_group(required=True)
    budgets.add_argument("--total-steps", convert=parse_steps, default=(), metavar="N", **several,
                         help="step budget(s) T + S, e.g. 240000 or 240k; several share their teachers")
    budgets.add_argument("--total-flops", convert=parse_flops, default=(), metavar="F", **several,
                         help="FLOPs budget(s), e.g. 1.2e21: each teacher share of F becomes T steps of that teacher "
                              "and the rest S student steps, so teachers of different sizes get equal compute")
    add_experiment_args(sweep)
    sweep.add_argument("--teacher-sizes", default=(), metavar="PRESET", **several,
                       help="teacher encoder presets (default: the experiment's teacher.encoder.preset)")
    shares = sweep.add_mutually_exclusive_group()
    shares.add_argument("--teacher-steps", convert=parse_steps, default=(), metavar="T", **several,
                        help="teacher step counts, e.g. 40k (default: the shares of --teacher-fractions)")
    shares.add_argument("--teacher-fractions", convert=parse_fraction, default=(), metavar="F", **several,
                        help="teacher shares of each budget, in (0, 1) (default 1/12 1/6 1/3 1/2)")
    sweep.add_argument("--student-size", default=None, metavar="PRESET",
                       help="student encoder preset (default: the experiment's student.encoder.preset)")
    sweep.add_argument("--seeds", convert=int, default=(), metavar="SEED", **several,
                       help="seeds (default: the experiment's seed)")
    sweep.add_argument("--search", choices=["grid", "optuna"], default="grid",
                       help="grid: every allocation; optuna: Ray Tune's OptunaSearch (seeded TPE) over the teacher "
                            "share, continuous on a log scale within --share-bounds (and the teacher size), its "
                            "study in runs/<name>/optuna.db")
    sweep.add_argument("--trials", type=int, default=None,
                       help="allocations the optuna search may train (default: none; required with optuna)")
    sweep.add_argument("--share-bounds", nargs=2, type=parse_fraction, default=None, metavar=("LO", "HI"),
                       help="optuna: the teacher share's bounds, in (0, 1), e.g. 1/24 1/2 (default 1/12 1/2)")
    sweep.add_argument("--search-seed", type=int, default=None,
                       help="optuna: the TPE sampler's seed (default: the experiment's seed)")
    sweep.add_argument("--pruning", choices=["median", "none"], default="median",
                       help="optuna: median stops a trial whose probe accuracy at a probe point falls behind the "
                            "median of the finished trials there; none trains every trial to its end")
    sweep.add_argument("--pruning-startup", type=int, default=3, metavar="K",
                       help="optuna: trials that must finish before any is pruned")
    sweep.add_argument("--teacher-schedule", choices=["wsd", "cosine"], default="wsd",
                       help="wsd: one constant-lr trunk + a cool-down branch per teacher (each step trained once); "
                            "cosine: the paper's schedule, one run per teacher")
    sweep.add_argument("--student-schedule", choices=["wsd", "cosine"], default=None,
                       help="wsd: the students of one teacher at several budgets share a constant-lr trunk, each "
                            "shorter one a cool-down branch; cosine: one run per allocation (default: the teacher "
                            "schedule)")
    sweep.add_argument("--cooldown-fraction", type=float, default=0.2,
                       help="wsd: each teacher's and student's cool-down as a share of its steps (default 0.2)")
    sweep.add_argument("--probe-points", type=int, default=4,
                       help="student checkpoints probed, evenly spaced, the final one included (default 4)")
    sweep.add_argument("--baselines", default=(), metavar="METHOD", **several,
                       help="also train each baseline for every budget N and seed, N steps, probed at as many "
                            "checkpoints as a student: vjepa2 (the V-JEPA 2 recipe, EMA target)")
    sweep.add_argument("--name", default=None, help="run folder runs/<name> (default: the experiment's name)")
    sweep.add_argument("--dry-run", action="store_true",
                       help="print the plan with predicted FLOPs and time; train nothing")
    sweep.add_argument("--resume", action="store_true", help="continue this sweep after a crash or a stop")
    sweep.add_argument("--yes", action="store_true",
                       help=f"start a sweep predicted to run longer than {LONG_RUN_H:g} h on this machine, or whose "
                            f"time cannot be predicted here")
    add_tracker_args(sweep)
    add_ray_args(sweep)
    sweep.set_defaults(handler=_cmd_sweep)


LONG_RUN_H = 3.0


def read_lists(experiment) -> tuple[list[str], float]:
    """Every clip list read (format, labels) and a sample of its clips statted, without generating the embedded
    set: a wrong path fails here in seconds, on the login node. Lines to print, and the rows one probe caches."""
    from trainers.data_lists import check_clips_exist, clip_sets, describe, probe_rows

    sets = clip_sets(experiment.data, experiment.probe, generate=False, progress=False)
    lines = [f"data: {line}" for line in describe(sets)]
    checked = check_clips_exist(sets)
    if checked:
        lines.append(f"data: {len(checked)} list(s) read; a sample of each list's clip paths exists on this machine")
    return lines, probe_rows(sets, experiment.data, experiment.probe)


def refuse_long_run(plan, frame, workers: int) -> None:
    """A sweep of many hours on this machine, or of a time this machine cannot price, starts only with --yes."""
    import math

    from salt_budget.sweep.planning.options import PlanError
    from salt_budget.sweep.planning.plan_table import _duration, baseline_frame

    seconds = list(frame["predicted_s"])
    if plan.options.search != "grid":  # the rows are the search's bounds; it trains --trials allocations between
        seconds = [s * plan.options.trials / len(seconds) for s in seconds]
    if plan.baselines:
        seconds += list(baseline_frame(plan, float(frame["flops_total"].min()), workers)["predicted_s"])
    known = [s for s in seconds if s is not None and not math.isnan(s)]
    command = "salt-budget sweep ... --yes"
    if len(known) < len(seconds):
        raise PlanError(f"this sweep's time cannot be predicted on this machine (see the plan above); it is meant "
                        f"for GPUs: run it on a cluster (experiments/cluster/slurm_sweep.sbatch, "
                        f"experiments/cluster/rayjob_sweep.yaml, with --address), or add --yes to start it here "
                        f"anyway ({command})")
    if sum(known) > LONG_RUN_H * 3600:
        raise PlanError(f"this sweep is predicted to train for {_duration(sum(known))} on this machine (probes not "
                        f"included), more than {LONG_RUN_H:g} h: add --yes to start it ({command}), shrink it "
                        f"(fewer budgets, shares or seeds; experiments/quick.yaml for a first try), or run it on "
                        f"GPUs (experiments/paper_vitl_240k.yaml on a cluster: experiments/cluster/)")


def _cmd_sweep(args: argparse.Namespace) -> int:
    from salt_budget.experiment import load_experiment
    from salt_budget.sweep.planning.calibration import calibrate_plan
    from salt_budget.sweep.planning.disk import disk_lines
    from salt_budget.sweep.planning.plan import build_plan
    from salt_budget.sweep.planning.options import SweepOptions
    from salt_budget.sweep.planning.plan_table import format_plan, plan_frame
    from trainers.tracking.check import check_trackers

    options = SweepOptions(
        total_steps=args.total_steps, total_flops=args.total_flops, name=args.name, teacher_sizes=args.teacher_sizes,
        teacher_steps=args.teacher_steps, teacher_fractions=args.teacher_fractions,
        student_size=args.student_size, seeds=args.seeds, search=args.search, trials=args.trials,
        teacher_schedule=args.teacher_schedule, student_schedule=args.student_schedule,
        cooldown_fraction=args.cooldown_fraction,
        probe_points=args.probe_points, baselines=args.baselines,
        share_bounds=tuple(float(b) for b in args.share_bounds) if args.share_bounds else None,
        search_seed=args.search_seed, pruning=args.pruning, pruning_startup=args.pruning_startup,
        trackers=tuple(dict.fromkeys(args.trackers)),
    )
    check_trackers(options.trackers)
    resources(args).validate()  # a wrong resource flag fails in the dry run too, not only once Ray has started
    experiment, overrides = split_experiment(args)
    plan = build_plan(load_experiment(experiment, overrides), options)
    data_lines, rows = read_lists(plan.experiment)
    calibration = calibrate_plan(plan) if not args.address else []
    frame = plan_frame(plan, args.workers_per_trial)
    print(format_plan(plan, frame), flush=True)
    for line in [*calibration, *data_lines, *disk_lines(plan, rows)]:
        print(line, flush=True)
    if args.dry_run:
        print("dry run: nothing trained, nothing written")
        return 0
    if not args.address and not args.yes:
        refuse_long_run(plan, frame, args.workers_per_trial)
    from salt_budget.sweep.running.runner import run_sweep

    return run_sweep(plan, resume=args.resume, address=args.address, resources=resources(args))
