"""What ``ChildProcess`` reports (its output since the last poll, how a cancel ended the tree) and the parts of
ending a process tree that use psutil, which a fresh Slicer lacks (``psutil_module`` is None there, and
``ChildProcess`` then signals the child's process group instead)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ProcessOutput:
    """What :meth:`ChildProcess.poll` collected since the previous call."""

    events: list[dict] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    finished: bool = False  # the process has ended and all its output has been read
    returncode: int | None = None


@dataclass
class CancelReport:
    """Which processes of the tree :meth:`ChildProcess.cancel` ended, and how."""

    terminated: list[int] = field(default_factory=list)  # ended after SIGTERM
    killed: list[int] = field(default_factory=list)  # needed SIGKILL after the grace period
    survivors: list[int] = field(default_factory=list)  # still running after SIGKILL (should stay empty)

    def summary(self) -> str:
        text = f"cancelled: {len(self.terminated) + len(self.killed)} process(es) ended"
        if self.killed:
            text += f", {len(self.killed)} of them killed after ignoring SIGTERM"
        if self.survivors:
            text += f"; still running: {', '.join(map(str, self.survivors))}"
        return text


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
