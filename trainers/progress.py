"""Progress of long work: a tqdm bar on a terminal; on anything else (a sweep's log, a SLURM output file)
a plain line at most every 10% of the work or every 30 s, so that a log holds a handful of lines instead
of hundreds of carriage-return updates."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, TypeVar

T = TypeVar("T")

LOG_EVERY_FRACTION = 0.10
LOG_EVERY_S = 30.0


class LogProgress:
    """tqdm's small interface (update, close, context manager, iteration) for a stream that is not a terminal."""

    def __init__(self, iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
                 unit: str = "it", stream: IO[str] | None = None, clock=time.monotonic, enabled: bool = True) -> None:
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total, self.desc, self.unit = total, desc, unit
        self.stream = stream or sys.stderr
        self.clock, self.enabled = clock, enabled
        self.n = 0
        self._start = self._last_time = clock()
        self._last_n = 0
        self._closed = False

    def _line(self) -> str:
        elapsed = self.clock() - self._start
        done = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        share = f" ({self.n / self.total:.0%})" if self.total else ""
        return f"{self.desc}: {done} {self.unit}{share} in {elapsed:.0f} s"

    def _emit(self) -> None:
        if self.enabled:
            print(self._line(), file=self.stream, flush=True)
        self._last_time, self._last_n = self.clock(), self.n

    def update(self, n: int = 1) -> None:
        self.n += n
        by_share = bool(self.total) and (self.n - self._last_n) >= LOG_EVERY_FRACTION * self.total
        if by_share or self.clock() - self._last_time >= LOG_EVERY_S:
            self._emit()

    def close(self) -> None:
        if not self._closed and self.n != self._last_n:
            self._emit()
        self._closed = True

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self) -> Iterator:
        try:
            for item in self.iterable or ():
                yield item
                self.update()
        finally:
            self.close()


def progress(iterable: Iterable[T] | None = None, *, total: int | None = None, desc: str = "", unit: str = "it",
             enabled: bool = True, stream: IO[str] | None = None):
    """A tqdm bar when `stream` (default stderr) is a terminal, else LogProgress; nothing when not `enabled`."""
    stream = stream or sys.stderr
    if enabled and hasattr(stream, "isatty") and stream.isatty():
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, file=stream)
    return LogProgress(iterable, total=total, desc=desc, unit=unit, stream=stream, enabled=enabled)
