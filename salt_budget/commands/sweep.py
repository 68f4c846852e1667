"""`salt-budget sweep`: every allocation of a budget on Ray Tune, or its plan (--dry-run)."""

from __future__ import annotations

import argparse

from salt_budget.commands.common import ValuesThenOverrides, add_ray_args, parse_flops, parse_fraction, resources


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
    budgets.add_argument("--total-steps", convert=int, default=(), metavar="N", **several,
                         help="step budget(s) T + S; several share their teachers")
    budgets.add_argument("--total-flops", convert=parse_flops, default=(), metavar="F", **several,
                         help="FLOPs budget(s), e.g. 1.2e21: each teacher share of F becomes T steps of that teacher "
                              "and the rest S student steps, so teachers of different sizes get equal compute")
    sweep.add_argument("--experiment", default=None, help="experiment YAML (default: the embedded tiny experiment)")
    sweep.add_argument("--teacher-sizes", default=(), metavar="PRESET", **several,
                       help="teacher encoder presets (default: the experiment's teacher.encoder.preset)")
    shares = sweep.add_mutually_exclusive_group()
    shares.add_argument("--teacher-steps", convert=int, default=(), metavar="T", **several, help="teacher step counts")
    shares.add_argument("--teacher-fractions", convert=parse_fraction, default=(), metavar="F", **several,
                        help="teacher shares of each budget, in (0, 1) (default 1/12 1/6 1/3 1/2)")
    sweep.add_argument("--student-size", default=None, metavar="PRESET",
                       help="student encoder preset (default: the experiment's student.encoder.preset)")
    sweep.add_argument("--seeds", convert=int, default=(), metavar="SEED", **several,
                       help="seeds (default: the experiment's seed)")
    sweep.add_argument("--search", choices=["grid", "optuna"], default="grid",
                       help="grid: every allocation; optuna: Ray Tune's OptunaSearch (TPE) over teacher share and size")
    sweep.add_argument("--trials", type=int, default=None, help="allocations the optuna search may train")
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
    add_ray_args(sweep)
    sweep.add_argument("overrides", nargs="*", metavar="key.path=value", help="dotted experiment overrides")
    sweep.set_defaults(handler=_cmd_sweep)


def _cmd_sweep(args: argparse.Namespace) -> int:
    from salt_budget.experiment import load_experiment
    from salt_budget.sweep.plan import SweepOptions, build_plan
    from salt_budget.sweep.plan_table import format_plan, plan_frame

    options = SweepOptions(
        total_steps=args.total_steps, total_flops=args.total_flops, name=args.name, teacher_sizes=args.teacher_sizes,
        teacher_steps=args.teacher_steps, teacher_fractions=args.teacher_fractions,
        student_size=args.student_size, seeds=args.seeds, search=args.search, trials=args.trials,
        teacher_schedule=args.teacher_schedule, student_schedule=args.student_schedule,
        cooldown_fraction=args.cooldown_fraction,
        probe_points=args.probe_points, baselines=args.baselines,
    )
    overrides = [*getattr(args, "late_overrides", []), *args.overrides]
    plan = build_plan(load_experiment(args.experiment, overrides), options)
    print(format_plan(plan, plan_frame(plan, args.workers_per_trial)), flush=True)
    if args.dry_run:
        print("dry run: nothing trained, nothing written")
        return 0
    from salt_budget.sweep.runner import run_sweep

    return run_sweep(plan, resume=args.resume, address=args.address, resources=resources(args))
