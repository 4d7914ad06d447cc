"""One writer per folder (a training's fold folder, a study, an evaluation's output folder): an OS file lock
next to the folder, released when its holders end.

The lock file is ``<parent>/.<folder name>.lock`` (beside the folder, so that ``--overwrite`` can empty the
folder while holding it; for a fold: ``<model folder>/.fold_<k>.lock``). It is locked with ``flock`` (``msvcrt.locking`` on
Windows), which the operating system releases when every process holding it has ended, so a
killed run never leaves it stuck. It records the holder's process id, host and start time for the
message a second run gets.

Forked augmentation workers inherit the lock. When the recorded process is gone but the lock is
still held, the holders are leftovers of an earlier run of the fold: on Linux they are found
through ``/proc`` and ended before the new run starts (and reported).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError

LEFTOVER_GRACE_S = 5.0


def lock_path(fold_folder: Path) -> Path:
    return Path(fold_folder).parent / f".{Path(fold_folder).name}.lock"


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":
        import msvcrt

        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _unlock(fd: int) -> None:
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def lock_holders(path: Path) -> set[int] | None:
    """Process ids that have ``path`` open (Linux, same user), None where that cannot be known."""
    proc = Path("/proc")
    if not sys.platform.startswith("linux") or not proc.is_dir():
        return None
    target = str(Path(path).resolve())
    holders = set()
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) == target:
                    holders.add(int(entry.name))
                    break
        except OSError:
            continue
    return holders


def read_holder(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text() or "{}")
    except (OSError, ValueError):
        return {}


def describe_holder(holder: dict) -> str:
    started = holder.get("started")
    when = time.strftime(" since %Y-%m-%d %H:%M", time.localtime(started)) if started else ""
    host = holder.get("host")
    where = f" on {host}" if host and host != socket.gethostname() else ""
    return f"process {holder.get('pid', '?')}{where}{when}"


def end_processes(pids: set[int], grace_s: float = LEFTOVER_GRACE_S) -> None:
    """SIGTERM, then SIGKILL after ``grace_s`` for those still alive."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.05)
    for pid in pids:
        if pid_alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


class FolderLock:
    """Exclusive lock of one folder for the life of a command (a context manager): a training's fold folder by
    default (``doing``: what the holder is said to do), a study or an evaluation's output folder.

    ``notes`` collects what the caller should report (leftovers that were ended).
    """

    def __init__(self, fold_folder: Path, command: str = "", lock_file: Path | None = None,
                 doing: str = "being trained"):
        self.fold_folder = Path(fold_folder)
        self.doing = doing
        self.path = Path(lock_file) if lock_file is not None else lock_path(self.fold_folder)
        self.command = command
        self.fd: int | None = None
        self.notes: list[str] = []

    def busy_error(self, holder: dict) -> UserError:
        pid = holder.get("pid")
        stop = f"; wait for it to finish or stop it (kill {pid}), then run again" if pid else \
            "; wait for it to finish, then run again"
        return UserError(f"{self.fold_folder} is {self.doing} by {describe_holder(holder)}{stop}")

    def acquire(self) -> "FoldLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if not _try_lock(fd):
                self._take_over_from_leftovers(fd)
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                                     "command": self.command}).encode())
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        return self

    def _take_over_from_leftovers(self, fd: int) -> None:
        holder = read_holder(self.path)
        pid = holder.get("pid")
        same_host = holder.get("host") in (None, socket.gethostname())
        holders = lock_holders(self.path)
        if not same_host or holders is None or (pid is not None and pid in holders):
            raise self.busy_error(holder)
        if not holders:  # released between the attempt and the scan
            if _try_lock(fd):
                return
            raise self.busy_error(holder)
        end_processes(holders)
        deadline = time.monotonic() + LEFTOVER_GRACE_S
        while not _try_lock(fd):
            if time.monotonic() > deadline:
                raise UserError(f"{self.fold_folder} is still locked by leftover processes "
                                f"{', '.join(map(str, sorted(holders)))} of an earlier run; end them and run again")
            time.sleep(0.05)
        self.notes.append(f"ended {len(holders)} leftover process(es) of an earlier run of this fold "
                          f"({describe_holder(holder)} had ended; pids {', '.join(map(str, sorted(holders)))})")

    def release(self) -> None:
        if self.fd is not None:
            try:
                _unlock(self.fd)
            finally:
                os.close(self.fd)
                self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False


def holder_if_locked(fold_folder: Path) -> dict | None:
    """The recorded holder of the fold's lock while a process holds it, else None."""
    path = lock_path(fold_folder)
    if not path.is_file():
        return None
    fd = os.open(path, os.O_RDONLY if sys.platform != "win32" else os.O_RDWR)
    try:
        if _try_lock(fd):
            _unlock(fd)
            return None
        return read_holder(path)
    finally:
        os.close(fd)


def check_free(fold_folder: Path) -> None:
    """UserError when a live run holds the fold (a quick check before any work starts)."""
    holder = holder_if_locked(fold_folder)
    if holder is None:
        return
    holders = lock_holders(lock_path(fold_folder))
    if holders is None or holder.get("pid") in holders or holder.get("host") not in (None, socket.gethostname()):
        raise FolderLock(fold_folder).busy_error(holder)


FoldLock = FolderLock  # a training's fold (the default)
