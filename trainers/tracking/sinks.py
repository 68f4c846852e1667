"""open_sink: the tracker run of a spec, as one sink whatever trackers it names (none, one or several).

A tracker is a window on a run, not part of it: a tracker that cannot open, or fails while logging, is reported
on stderr once and dropped, and the run trains on. A run of days is not lost to a dashboard's outage; a missing
library is caught before training by check.py."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Protocol

from trainers.config import ConfigError
from trainers.tracking.spec import TRACKERS, TrackingSpec


class Sink(Protocol):
    def log(self, metrics: dict[str, float], step: int) -> None: ...

    def add_text(self, name: str, text: str) -> None: ...

    def add_file(self, path: Path) -> None: ...

    def close(self, failed: bool = False) -> None: ...


class NullSink:
    """No tracker named: every call does nothing."""

    def log(self, metrics: dict[str, float], step: int) -> None:
        pass

    def add_text(self, name: str, text: str) -> None:
        pass

    def add_file(self, path: Path) -> None:
        pass

    def close(self, failed: bool = False) -> None:
        pass

    def __enter__(self) -> NullSink:
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        self.close(failed=error is not None)


def _warn(tracker: str, spec: TrackingSpec, what: str, error: BaseException) -> None:
    print(f"[tracking] {tracker}: {what} failed for run {spec.name} ({spec.run_id}): {type(error).__name__}: "
          f"{error}; the run goes on without {tracker}", file=sys.stderr, flush=True)


class MultiSink(NullSink):
    """Each tracker's sink, called in turn; one that raises is dropped with a warning (module docstring)."""

    def __init__(self, spec: TrackingSpec, sinks: dict[str, Sink]) -> None:
        self.spec = spec
        self.sinks = sinks

    def _each(self, what: str, call: Any) -> None:
        for tracker, sink in list(self.sinks.items()):
            try:
                call(sink)
            except Exception as error:
                _warn(tracker, self.spec, what, error)
                del self.sinks[tracker]

    def log(self, metrics: dict[str, float], step: int) -> None:
        self._each("logging", lambda sink: sink.log(metrics, step))

    def add_text(self, name: str, text: str) -> None:
        self._each("adding text", lambda sink: sink.add_text(name, text))

    def add_file(self, path: Path) -> None:
        self._each("adding a file", lambda sink: sink.add_file(path))

    def close(self, failed: bool = False) -> None:
        self._each("closing", lambda sink: sink.close(failed))
        self.sinks = {}


def _open_one(tracker: str, spec: TrackingSpec, start_step: int | None) -> Sink:
    # Imported here: a run without this tracker never imports its library.
    if tracker == "tensorboard":
        from trainers.tracking.tensorboard_sink import TensorBoardSink

        return TensorBoardSink(spec, start_step)
    if tracker == "wandb":
        from trainers.tracking.wandb_sink import WandbSink

        return WandbSink(spec, announce=start_step is not None)
    if tracker == "mlflow":
        from trainers.tracking.mlflow_sink import MlflowSink

        return MlflowSink(spec)
    raise AssertionError(tracker)


def open_sink(spec: TrackingSpec | None, *, start_step: int | None = None) -> NullSink:
    """The run of `spec` on each of its trackers, continued where it exists. `start_step`: the optimiser step a
    training process starts from; what a tracker holds past it (logged before a crash, after the checkpoint the
    run resumes from) is superseded where the tracker can (TensorBoard). None: a process that only adds records
    (probe results), superseding nothing."""
    if spec is None or not spec.trackers:
        return NullSink()
    unknown = [tracker for tracker in spec.trackers if tracker not in TRACKERS]
    if unknown:
        raise ConfigError(f"unknown tracker {unknown[0]!r}; choose from {', '.join(TRACKERS)}")
    sinks: dict[str, Sink] = {}
    for tracker in dict.fromkeys(spec.trackers):
        try:
            sinks[tracker] = _open_one(tracker, spec, start_step)
        except Exception as error:
            _warn(tracker, spec, "opening the run", error)
    return MultiSink(spec, sinks)
