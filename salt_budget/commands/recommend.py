"""`salt-budget recommend`: the best split for a budget nobody can afford to sweep, from sweeps at smaller ones."""

from __future__ import annotations

import argparse
from pathlib import Path

from salt_budget.commands.common import parse_flops, parse_steps


def _steps(text: str) -> int:
    value = parse_steps(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"{text}: a step budget needs at least 2 steps")
    return value


def add_parser(commands) -> None:
    recommend = commands.add_parser(
        "recommend", help="the best teacher/student split for a budget you cannot afford to sweep, with an interval",
        description="Read the results tables of sweeps at two or more budgets, fit how each budget's best teacher "
        "share and its accuracy move with the budget (a power law in the budget for the share, a line in log budget "
        "for the accuracy), and predict the split at the budget asked for, with a 90% interval from a bootstrap "
        "over seeds. Says when the budget is too far beyond the sweeps to trust, which extra sweep would narrow the "
        "interval most, and what the sweeps cost against one run. --check fits all budgets but the largest and "
        "predicts the largest, to test the method on your own sweeps.",
    )
    recommend.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                           help="sweep run folder(s), e.g. runs/<name>, or a study folder (its allocation sweeps)")
    budget = recommend.add_mutually_exclusive_group(required=True)
    budget.add_argument("--total-steps", type=_steps, default=None, metavar="N", help="the step budget to advise on")
    budget.add_argument("--total-flops", type=parse_flops, default=None, metavar="F",
                        help="the FLOPs budget to advise on (sweeps run with --total-flops)")
    budget.add_argument("--check", action="store_true",
                        help="fit on every budget but the largest and compare the prediction there with what was measured")
    recommend.add_argument("--task", default="mean", help="the accuracy to optimise: a task name, or 'mean' (default)")
    recommend.add_argument("--draws", type=int, default=400, help="bootstrap draws (default 400)")
    recommend.set_defaults(handler=_cmd_recommend)


def _sweep_dirs(run_dirs: list[Path]) -> list[Path]:
    """The folders to read: a study folder stands for the sweeps of its allocation ablation (its other
    ablations change the teacher or its masks, which a fit across budgets must not mix in)."""
    import json

    from analysis.study_data import is_study
    from analysis.tables import ReportError

    if len(run_dirs) != 1 or not is_study(run_dirs[0]):
        return run_dirs
    sweeps = json.loads((run_dirs[0] / "study.json").read_text())["sweeps"]
    folders = list(dict.fromkeys(s["folder"] for s in sweeps if s["ablation"] == "allocation"))
    if not folders:
        raise ReportError(f"{run_dirs[0]} is a study without an allocation ablation: give the sweep folders to "
                          f"fit instead")
    return [run_dirs[0] / folder for folder in folders]


def _cmd_recommend(args: argparse.Namespace) -> int:
    from analysis.recommend import check_largest, recommend
    from analysis.recommend_text import format_check, format_recommendation
    from analysis.results import load_results
    from analysis.tables import ReportError

    results = load_results(_sweep_dirs([Path(d) for d in args.run_dirs]))
    column = f"acc_{args.task}"
    if column not in results.rows:
        raise ReportError(f"--task {args.task}: no {column} column; the tasks are {', '.join(results.tasks)} or mean")
    if args.draws < 50:
        raise ReportError(f"--draws {args.draws}: a 90% interval needs at least 50 draws")
    if args.check:
        predicted, measured = check_largest(results, column, args.draws)
        print("\n".join(format_check(predicted, measured)))
        return 0
    kind, budget = ("flops", args.total_flops) if args.total_flops is not None else ("steps", float(args.total_steps))
    print("\n".join(format_recommendation(recommend(results, budget, kind, column, args.draws))))
    return 0
