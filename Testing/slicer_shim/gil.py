"""Test double of one property of Python inside 3D Slicer: the main thread holds the GIL between Qt callbacks.

Slicer runs Python through PythonQt on the main thread and never lets go of the interpreter lock while the
Qt event loop idles: neither Slicer (Base/QTCore, Base/QTGUI) nor CTK's ctkAbstractPythonManager calls
``PyEval_SaveThread`` or PythonQt's ``setEnableThreadSupport``, and PythonQt's ``PythonQtGILScope`` is off by
default (``_enableGILScope = false``, src/PythonQt.cpp). So a Python thread started from a panel runs only
while Python code runs on the main thread, and one started while the application exits never runs at all.
Threads that wait in a blocking read release the GIL there and get their lines across (Slicer's own
``slicer.util._startAsyncProcessHandling`` reads a child process's output that way); those are the child-
process readers of ``ImprovedNNUNetLib.core.process``, which this double lets run.

``main_thread_holds_gil()`` models the worst case in a test: inside it, a started thread other than a
child-process reader is recorded in ``STARVED`` and never runs.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

STARVED: list[threading.Thread] = []


def _is_child_process_reader(thread: threading.Thread) -> bool:
    target = getattr(thread, "_target", None)
    owner = getattr(target, "__self__", None)
    return getattr(target, "__name__", "") == "_read" and type(owner).__name__ == "ChildProcess"


@contextmanager
def main_thread_holds_gil():
    """Threads started inside the block (child-process readers excepted) never run; they are kept in ``STARVED``."""
    original = threading.Thread.start

    def start(thread, *args, **kwargs):
        if _is_child_process_reader(thread):
            return original(thread, *args, **kwargs)
        STARVED.append(thread)

    STARVED.clear()
    threading.Thread.start = start
    try:
        yield STARVED
    finally:
        threading.Thread.start = original
