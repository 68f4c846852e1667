"""Is each asked-for tracker's library installed? Checked by the commands before anything trains: a sweep should
not find out after its first teacher that a package is missing."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from trainers.config import ConfigError
from trainers.tracking.spec import EXTRAS, TRACKERS

# What each tracker imports to write its records (tensorboard: torch's SummaryWriter, which needs the package).
_MODULES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}


def check_trackers(names: Iterable[str]) -> None:
    """A ConfigError naming the tracker and its extra where a name is unknown or its library does not import."""
    for name in names:
        if name not in TRACKERS:
            raise ConfigError(f"unknown tracker {name!r}; choose from {', '.join(TRACKERS)}")
        try:
            importlib.import_module(_MODULES[name])
        except ImportError as error:
            raise ConfigError(f"--tracker {name} needs the {_MODULES[name]} package: pip install "
                              f"'salt-budget[{EXTRAS[name]}]' ({error})") from None
