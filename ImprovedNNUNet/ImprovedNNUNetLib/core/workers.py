"""Worker processes (nnU-Net's augmentation workers, evaluation and ensembling pools) that end with their parent.

nnU-Net's data augmentation runs in processes forked by batchgenerators. Without help they
(1) inherit the training process's SIGINT/SIGTERM handlers, so a Ctrl-C sent to the process
group (a terminal, Slicer's Cancel) prints one traceback per worker, and (2) outlive a training
process killed with SIGKILL, holding memory forever. :func:`bind_workers_to_this_process`
registers a hook that runs in every process forked through ``multiprocessing`` afterwards:
it ignores SIGINT (the parent stops the run and then ends its workers), restores the default
SIGTERM action, and makes the worker end when the parent does (``PR_SET_PDEATHSIG`` on Linux,
a watcher thread elsewhere on POSIX).
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from multiprocessing import util

PR_SET_PDEATHSIG = 1
WATCH_INTERVAL_S = 0.5


class _Registration:
    """Target of ``register_after_fork`` (it needs a weak-referenceable object kept alive)."""

    def __init__(self):
        self.parent_pid = os.getpid()


_registration: _Registration | None = None


def _die_with_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                if os.getppid() != parent_pid:  # the parent died before the call above
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(WATCH_INTERVAL_S)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _in_forked_child(registration: _Registration) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent(registration.parent_pid)


def bind_workers_to_this_process() -> None:
    """From now on, every process this process forks through ``multiprocessing`` ignores SIGINT and
    ends when this process ends. Safe to call more than once."""
    global _registration
    if _registration is not None and _registration.parent_pid == os.getpid():
        return
    _registration = _Registration()
    util.register_after_fork(_registration, _in_forked_child)


def end_with_parent(parent_pid: int) -> None:
    """A ``ProcessPoolExecutor`` initializer: the worker ends when ``parent_pid`` does, even after SIGKILL, so a
    command killed mid-pool never leaves workers holding its output pipe open. Ctrl-C is left as it is (the
    pool's owner handles it)."""
    _die_with_parent(parent_pid)
