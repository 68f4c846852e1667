"""What several commands share: the experiment argument and its overrides, value lists followed by
overrides, the Ray resource options, and progress bars."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from fractions import Fraction


def add_experiment_args(parser: argparse.ArgumentParser) -> None:
    """The experiment file, positional in every command (`--experiment FILE` kept as an alias), then overrides."""
    parser.add_argument(
        "experiment", nargs="?", default=None,
        help="experiment YAML file (default: the embedded tiny experiment on synthetic data)",
    )
    parser.add_argument("--experiment", dest="experiment_option", default=None, metavar="FILE",
                        help="the experiment file, as an option (same as the positional EXPERIMENT)")
    parser.add_argument("overrides", nargs="*", metavar="key.path=value",
                        help="dotted config overrides, e.g. data.frames=8 (default: none)")


def split_experiment(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    """argparse cannot tell an optional positional from the first override: a '=' decides."""
    from trainers.config import ConfigError

    experiment, overrides = args.experiment, [*getattr(args, "late_overrides", []), *args.overrides]
    if experiment is not None and "=" in experiment:
        overrides.insert(0, experiment)
        experiment = None
    option = getattr(args, "experiment_option", None) or getattr(args, "yaml_value", None)
    if option and experiment and option != experiment:
        raise ConfigError(f"two experiment files given ({experiment} and {option}); give one")
    return experiment or option, overrides


def load(args: argparse.Namespace):
    from salt_budget.experiment import load_experiment

    experiment, overrides = split_experiment(args)
    return load_experiment(experiment, overrides)


def progress(iterable, desc: str, unit: str = "batch", total: int | None = None):
    from trainers.progress import progress as progress_bar

    return progress_bar(iterable, desc=desc, unit=unit, total=total)


_SUFFIXES = {"k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}


def _amount(text: str) -> float:
    """240000, 240k, 1.2M, 1.5e21: how the plan prints budgets, read back."""
    body, scale = text.strip().replace("_", "").replace(",", ""), 1.0
    if body and body[-1] in _SUFFIXES:
        body, scale = body[:-1], _SUFFIXES[body[-1]]
    elif body and body[-1] == "K":
        body, scale = body[:-1], 1e3
    return float(body) * scale


def parse_steps(text: str) -> int:
    try:
        value = _amount(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of steps (e.g. 240000, 240k, 1.2M)") from None
    if value != int(value):
        raise argparse.ArgumentTypeError(f"{text}: a step count must be a whole number (it reads {value:g})")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: a step count must be >= 1")
    return int(value)


def parse_flops(text: str) -> float:
    try:
        value = _amount(text)
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
        # An experiment file after the values (`sweep --total-steps 240k exp.yaml`) is the positional one.
        files = [value for value in values if "=" not in value and value.endswith((".yaml", ".yml"))]
        if files and self.dest != "yaml_value":
            namespace.yaml_value = files[-1]
            values = [value for value in values if value not in files]
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


TRACKERS = ("tensorboard", "wandb", "mlflow")


def _tracker(name: str) -> str:
    if name not in TRACKERS:
        raise argparse.ArgumentTypeError(f"unknown tracker {name!r}; choose from {', '.join(TRACKERS)}")
    return name


def add_tracker_args(parser: argparse.ArgumentParser) -> None:
    """--tracker: where each run is also logged as it trains (trainers/tracking/)."""
    parser.add_argument("--tracker", dest="trackers", nargs="+", action=ValuesThenOverrides, default=(),
                        convert=_tracker, metavar="NAME",
                        help="also log every run to these trackers: tensorboard, wandb, mlflow (several allowed; "
                             "each needs its extra, e.g. pip install 'salt-budget[wandb]')")


def resources(args: argparse.Namespace):
    from salt_budget.sweep.running.resources import Resources

    return Resources(cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
                     max_failures=args.max_failures, workers_per_trial=args.workers_per_trial,
                     cpus_per_worker=args.cpus_per_worker, gpus_per_worker=args.gpus_per_worker)


def complete_help(parser: argparse.ArgumentParser) -> None:
    """Every command gets a description (its help line where it has none) and every option's help its default,
    unless the help already says what the default is; walked once over the whole tree of commands."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                if not sub.description:
                    sub.description = helps.get(name)
                complete_help(sub)
            continue
        if not action.option_strings or action.help in (None, argparse.SUPPRESS) or action.nargs == 0:
            continue
        if "default" not in action.help:
            default = action.default
            shown = "none" if default in (None, (), []) else (
                " ".join(map(str, default)) if isinstance(default, (list, tuple)) else default)
            action.help = f"{action.help} (default: {shown})"
