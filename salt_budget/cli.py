"""The `salt-budget` command line: the parser of every command (salt_budget/commands/), and main."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable, Sequence

from salt_budget import __version__
from salt_budget.commands import bench, data, recommend, report, study, sweep, train
from salt_budget.commands.common import complete_help


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="salt-budget",
        description="Plan, train and analyse SALT teacher/student compute allocations.",
    )
    parser.add_argument("--version", action="version", version=f"salt-budget {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    for command in (data, train, sweep, report, recommend, study, bench):
        command.add_parser(commands)
    complete_help(parser)
    return parser


# Errors a user can fix; they print as one line, not a traceback.
def _user_errors() -> tuple[type[BaseException], ...]:
    from analysis.tables import ReportError
    from trainers.checkpoint import CheckpointError
    from trainers.config import ConfigError
    from trainers.data.clip_list import ClipListError
    from trainers.data.dataset import DataError
    from trainers.step_metrics import TrainingDiverged

    return (ConfigError, ClipListError, DataError, CheckpointError, TrainingDiverged, FileExistsError,
            FileNotFoundError, ReportError)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # An override after an option (`probe CK exp.yaml --encoder teacher data.frames=8`) is left over by
    # argparse, which ends a positional list at the first option.
    late = [item for item in extra if "=" in item and not item.startswith("-")]
    unknown = [item for item in extra if item not in late]
    if unknown or (late and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(unknown or late)}")
    if late:
        args.overrides = [*args.overrides, *late]
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except _user_errors() as error:
        print(f"salt-budget: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:  # a sweep's SweepInterrupted carries the signal: 130 Ctrl-C, 143 SIGTERM
        print("salt-budget: interrupted", file=sys.stderr)
        return 128 + int(getattr(interrupt, "signum", signal.SIGINT))


if __name__ == "__main__":
    sys.exit(main())
