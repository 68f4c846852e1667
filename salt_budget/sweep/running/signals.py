"""Signals while a sweep runs: SIGTERM handled as Ctrl-C is, the signal that stopped the sweep remembered, and
Tune's own resume hint kept out of the sweep's output (it prints its own command)."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from salt_budget.sweep.running.tuning import SweepInterrupted, running_fit


class Signals:
    """While a sweep runs: SIGTERM stops it as Ctrl-C does, and the signal that stopped it is remembered.

    SIGTERM raises SweepInterrupted; inside Tuner.fit at the fit's next step (TuneStop), where Tune is between two
    saves of its state. Installed after ray.init too, which sets a SIGTERM handler of its own (sys.exit(15)), and
    restored when the sweep ends. A second SIGTERM raises at once.

    Tune's SIGINT handler stays installed after a fit it did not stop (a later Ctrl-C would only stop a finished
    fit): run_sweep puts the one before it back."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.late: list[int] | None = None  # signals noted, not raised, once the sweep is winding down
        self._previous: Any = None
        self._installed = False

    def note_from_now(self) -> None:
        """From now on (Ray shutting down, the summary) a Ctrl-C or SIGTERM is noted, not raised."""
        self.late = []
        if self.main:
            signal.signal(signal.SIGINT, lambda signum, frame: self.late.append(signum))

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        if self.late is not None:
            self.late.append(signal.SIGTERM)
            return
        fit = running_fit()
        if fit is not None and self.signum is None:
            self.signum, fit.terminate = signal.SIGTERM, True  # stop at the fit's next step
            return
        self.signum = signal.SIGTERM
        raise SweepInterrupted(signal.SIGTERM)

    @property
    def main(self) -> bool:
        return threading.current_thread() is threading.main_thread()

    def install(self) -> None:
        if self.main:
            previous = signal.signal(signal.SIGTERM, self._on_sigterm)
            if not self._installed:
                self._previous, self._installed = previous, True

    def restore(self) -> None:
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous)
            self._installed = False


class NoTuneRestoreHint(logging.Filter):
    """Tune's "Resume experiment with: Tuner.restore(...)" is not a command of ours: the sweep prints its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tuner.restore(" not in record.getMessage()
