"""Signals to a training run: SIGTERM/SIGINT stop fast, but never in the middle of an optimiser step;
SIGUSR1 stops at the next epoch boundary with a checkpoint and exit status 0, as nnU-Net's cluster
documentation has it (``#SBATCH --signal=B:USR1@600``, then resubmit with ``--c``/``--continue``)."""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

CANCEL_SIGNALS = (signal.SIGTERM, signal.SIGINT)
EPOCH_END_SIGNAL = getattr(signal, "SIGUSR1", None)  # absent on Windows


class TrainingStopped(Exception):
    """Raised at an epoch boundary after SIGUSR1 asked the run to stop there."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name} at an epoch boundary")
        self.signum = signum


class TrainingCancelled(Exception):
    """Raised in the training thread when the run was asked to stop."""

    def __init__(self, signum: int):
        super().__init__(f"cancelled by {signal.Signals(signum).name}")
        self.signum = signum


class CancelGuard:
    """Turns SIGTERM/SIGINT into one ``TrainingCancelled``.

    Outside ``protected()`` the exception is raised at once. Inside (a training iteration,
    a checkpoint write) it is raised when the block ends, or at once on a second signal.
    Once raised, later signals are ignored so that the clean-up (checkpoint, worker shutdown)
    can finish. Use as a context manager around the run; previous handlers come back on exit.
    """

    def __init__(self):
        self.signum: int | None = None
        self.stop_at_epoch_end: int | None = None  # SIGUSR1 received: the signal number
        self._pending = False
        self._depth = 0
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in CANCEL_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
            if EPOCH_END_SIGNAL is not None:
                self._previous[EPOCH_END_SIGNAL] = signal.signal(EPOCH_END_SIGNAL, self._handle_epoch_end)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        return False

    def _raise(self):
        self._pending = False
        raise TrainingCancelled(self.signum)

    def _handle_epoch_end(self, signum, _frame):
        self.stop_at_epoch_end = signum

    def check_epoch_end(self) -> None:
        """At an epoch boundary: raise ``TrainingStopped`` when SIGUSR1 asked for a stop."""
        if self.stop_at_epoch_end is not None:
            raise TrainingStopped(self.stop_at_epoch_end)

    def _handle(self, signum, _frame):
        if self.signum is not None and not self._pending:
            return  # already raised: let the clean-up finish
        second = self._pending
        self.signum = signum
        self._pending = True
        if self._depth == 0 or second:
            self._raise()

    @contextmanager
    def protected(self):
        """A block a first signal does not interrupt; the cancellation is raised after it."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if self._pending and self._depth == 0:
            self._raise()
