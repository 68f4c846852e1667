"""What several commands share: the experiment argument and its overrides, value lists followed by
overrides, the Ray resource options, and progress bars."""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from typing import Callable


def add_experiment_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "experiment", nargs="?", default=None,
        help="experiment YAML file (default: the embedded tiny experiment on synthetic data)",
    )
    parser.add_argument("overrides", nargs="*", metavar="key.path=value", help="dotted config overrides")


def split_experiment(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    """argparse cannot tell an optional positional from the first override: a '=' decides."""
    experiment, overrides = args.experiment, list(args.overrides)
    if experiment is not None and "=" in experiment:
        overrides.insert(0, experiment)
        experiment = None
    return experiment, overrides


def load(args: argparse.Namespace):
    from salt_budget.experiment import load_experiment

    experiment, overrides = split_experiment(args)
    return load_experiment(experiment, overrides)


def progress(iterable, desc: str):
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, unit="batch", file=sys.stderr)


def parse_flops(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of FLOPs (e.g. 1.2e21)") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text}: a FLOPs budget must be > 0")
    return value


def parse_fraction(text: str) -> Fraction:
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"{text!r} is not a fraction (write 1/12 or 0.25)") from None


class ValuesThenOverrides(argparse.Action):
    """A several-values option that hands on the key=value overrides argparse would read as its values
    (`--teacher-steps 4 8 data.frames=8`), so that overrides may come anywhere on the line."""

    def __init__(self, *args, convert: Callable = str, **kwargs):
        super().__init__(*args, **kwargs)
        self.convert = convert

    def __call__(self, parser, namespace, values, option_string=None):
        items = [value for value in values if "=" not in value]
        if not items:
            parser.error(f"argument {option_string}: expected at least one value")
        try:
            setattr(namespace, self.dest, tuple(self.convert(item) for item in items))
        except (ValueError, argparse.ArgumentTypeError) as error:
            parser.error(f"argument {option_string}: {error}")
        namespace.late_overrides = [*getattr(namespace, "late_overrides", []), *(v for v in values if "=" in v)]


def add_ray_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", default=None, help="Ray cluster to join ('auto': the running one); default local")
    parser.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs per trial and teacher task (default 1)")
    parser.add_argument("--gpus-per-trial", type=float, default=None,
                        help="GPUs per trial, a fraction shares one (default 1 where the cluster has GPUs, else 0)")
    parser.add_argument("--max-failures", type=int, default=1,
                        help="retries of a failed trial, teacher or baseline task, each from its last checkpoint "
                             "(default 1)")
    parser.add_argument("--workers-per-trial", type=int, default=1, metavar="W",
                        help="train every trial, teacher ladder and baseline on W data-parallel Ray Train workers "
                             "(default 1: one process per unit)")
    parser.add_argument("--cpus-per-worker", type=float, default=1.0, help="CPUs per Ray Train worker (default 1)")
    parser.add_argument("--gpus-per-worker", type=float, default=None,
                        help="GPUs per Ray Train worker (default 1 where the cluster has GPUs, else 0)")


def resources(args: argparse.Namespace):
    from salt_budget.sweep.runner import Resources

    return Resources(cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
                     max_failures=args.max_failures, workers_per_trial=args.workers_per_trial,
                     cpus_per_worker=args.cpus_per_worker, gpus_per_worker=args.gpus_per_worker)
