"""Run a function on a background thread and poll it from a GUI timer (no Qt here).

For work that reads files and computes but touches no MRML node and no widget (comparing
trained runs); the caller turns the result into nodes on its own thread once ``done``.
"""
from __future__ import annotations

import threading


class BackgroundCall:
    """``function(*args, **kwargs)`` started on a daemon thread; poll ``done``, then ``result()``."""

    def __init__(self, function, *args, **kwargs):
        self._result = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(function, args, kwargs), daemon=True)
        self._thread.start()

    def _run(self, function, args, kwargs) -> None:
        try:
            self._result = function(*args, **kwargs)
        except BaseException as exc:  # handed to the caller by result()
            self._error = exc

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return self.done

    def result(self):
        """The function's return value; re-raises its exception. Call once ``done``."""
        if not self.done:
            raise RuntimeError("the background call is still running; poll done first")
        if self._error is not None:
            raise self._error
        return self._result
