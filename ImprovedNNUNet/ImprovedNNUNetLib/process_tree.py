"""The parts of ending a process tree that use psutil, which a fresh Slicer lacks (``psutil_module`` is None
there, and ``ChildProcess`` then signals the child's process group instead)."""
from __future__ import annotations

from dataclasses import dataclass


def psutil_module():
    """The psutil module, or None where it is not installed (a fresh Slicer)."""
    try:
        import psutil
    except ModuleNotFoundError:
        return None
    return psutil


@dataclass(frozen=True)
class ProcessId:
    """The child itself in a report (reaped through its Popen, not through psutil)."""

    pid: int


def is_alive(proc) -> bool:
    """True while ``proc`` runs; a zombie (ended, not yet reaped by its parent) counts as ended."""
    psutil = psutil_module()
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
