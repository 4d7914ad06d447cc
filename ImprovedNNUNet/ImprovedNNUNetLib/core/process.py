"""Run a backend command as a child process without blocking the caller.

The Slicer modules start `python -m ImprovedNNUNetLib <sub-command> ...` through
:class:`ChildProcess`; a GUI timer calls :meth:`ChildProcess.poll` to drain what the
child printed so far. Every output line that parses as a JSON object is an *event*
(the progress contract: one JSON object per line on stdout); every other line is a
*log line*. :meth:`ChildProcess.cancel` ends the whole process tree (the child and
every process it started), first politely (SIGTERM), then by force (SIGKILL).

Every child is started the same way (:func:`python_executable`, :func:`child_environment`,
:meth:`ChildProcess.start`): inside Slicer with ``PythonSlicer`` (``sys.executable`` is the
application there), with the extension's module folders on ``PYTHONPATH`` (Slicer puts
scripted-module folders on ``sys.path`` only, which children do not inherit), UTF-8 output,
and on Windows without a console window (PythonSlicer.exe is a console program).

No Qt here: the caller decides how often to poll. No third-party import at module level either:
a fresh Slicer has no psutil (Slicer does not bundle it) and the panels import this module before
"Install dependencies" ran. Without psutil a cancel signals the child and its process group (every
descendant that did not start a session of its own).
"""
from __future__ import annotations

import importlib.util
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.events import json_object
from ImprovedNNUNetLib.core.process_tree import CancelReport, ProcessId, ProcessOutput, is_alive, psutil_module

DEFAULT_GRACE_S = 5.0
LOG_LINES_KEPT = 5000
EVENTS_KEPT = 10000  # a long training prints one event per iteration: keep memory bounded
# After the child exits, how long its pipes may stay open (held by orphaned descendants)
# before its output counts as complete; lines arriving later still show up in poll().
OUTPUT_DRAIN_S = 1.0
_SIGKILL = getattr(signal, "SIGKILL", signal.SIGTERM)  # Windows has no SIGKILL; SIGTERM already kills there
# The extension's packages; a child needs the folder holding each one on its PYTHONPATH.
LIB_PACKAGES = ("ImprovedNNUNetLib", "ImprovedNNUNetTrainingLib")


def inside_slicer() -> bool:
    """True in the Slicer application (``slicer.app`` exists), False in a plain Python."""
    slicer = sys.modules.get("slicer")
    return slicer is not None and getattr(slicer, "app", None) is not None


def python_executable() -> str:
    """The interpreter for children: ``PythonSlicer`` inside Slicer (there ``sys.executable``
    may be the application itself), else this interpreter."""
    return (shutil.which("PythonSlicer") if inside_slicer() else None) or sys.executable


def package_folders() -> list[str]:
    """The folders that hold the extension's packages as this process imports them (a module
    folder inside Slicer, the source tree, or site-packages), without importing them."""
    folders = []
    for name in LIB_PACKAGES:
        module = sys.modules.get(name)
        origin = getattr(module, "__file__", None)
        if origin is None:
            spec = importlib.util.find_spec(name)
            origin = spec.origin if spec is not None else None
        if origin:
            folder = os.path.dirname(os.path.dirname(os.path.abspath(origin)))
            if folder not in folders:
                folders.append(folder)
    return folders


def cores_present() -> int:
    """CPU cores this process may run on (in a SLURM job: no more than the job's CPUs per task, which
    SLURM does not enforce without a CPU binding plugin)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    allocated = os.environ.get("SLURM_CPUS_PER_TASK", "")
    return max(1, min(cores, int(allocated))) if allocated.isdigit() else cores


def child_environment(extra: Mapping[str, str] | None = None) -> dict:
    """The environment of every child process this project starts.

    This process's environment, with the extension's package folders first on
    ``PYTHONPATH``, UTF-8 standard streams, nnU-Net's worker pools sized to the cores present
    (unless set), and ``extra`` on top.
    """
    env = dict(os.environ)
    paths = [*package_folders(), *(env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p for p in paths if p))
    env["PYTHONIOENCODING"] = "utf-8"
    env["PYTHONUTF8"] = "1"
    cores = str(cores_present())
    env.setdefault("nnUNet_n_proc_DA", cores)
    env.setdefault("nnUNet_def_n_proc", cores)
    env.update(extra or {})
    return env


def cli_command(*args: str) -> list[str]:
    """The command line that runs `improved-nnunet ARGS` in a child Python (see
    :func:`python_executable`)."""
    return [python_executable(), "-m", "ImprovedNNUNetLib", *args]


def platform_options() -> dict:
    """Popen options: a new process group (so a cancel reaches the whole tree) and, on Windows,
    no console window, as Slicer's ``slicer.util.launchConsoleProcess`` hides it."""
    if sys.platform != "win32":
        return {"start_new_session": True}
    startupinfo = subprocess.STARTUPINFO()
    startupinfo.dwFlags |= subprocess.STARTF_USESHOWWINDOW
    startupinfo.wShowWindow = 0  # SW_HIDE
    return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW,
            "startupinfo": startupinfo}


class ChildProcess:
    """A command running in its own process group, its output read on background threads.

    Start it with :meth:`start`; then either call :meth:`poll` periodically (GUI timer) or
    :meth:`wait` (scripts). ``returncode``, ``cancelled`` and ``last_error_line`` describe
    how it ended; ``log`` keeps the last ``LOG_LINES_KEPT`` log lines and ``events`` the last
    ``EVENTS_KEPT`` events (:meth:`poll` hands out every one).
    """

    def __init__(self, popen: subprocess.Popen):
        self._popen = popen
        self._lines: queue.Queue[tuple[str, str]] = queue.Queue()
        self._readers = [threading.Thread(target=self._read, args=(stream, name), daemon=True)
                         for stream, name in ((popen.stdout, "stdout"), (popen.stderr, "stderr")) if stream is not None]
        for reader in self._readers:
            reader.start()
        self.events: deque[dict] = deque(maxlen=EVENTS_KEPT)
        self.log: deque[str] = deque(maxlen=LOG_LINES_KEPT)
        self.cancelled = False
        self.cancel_report: CancelReport | None = None
        self._last_stderr_line: str | None = None
        self._exit_seen_at: float | None = None
        self._kill_deadline: float | None = None  # a non-blocking cancel: when SIGKILL follows (poll does it)
        self._cancel_tree: set[int] = set()  # every process id the cancel signalled
        self._cancel_processes: dict = {}  # pid -> psutil process watched by the cancel

    @classmethod
    def start(
        cls,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike | None = None,
        log_path: str | os.PathLike | None = None,
        cpu_cores: Sequence[int] | None = None,
    ) -> "ChildProcess":
        """Start ``command`` (a list of arguments, no shell).

        ``env`` is the child's whole environment (default: :func:`child_environment`);
        ``PYTHONUNBUFFERED=1`` and UTF-8 streams are always added so that lines arrive as
        they are printed and decode the same everywhere. ``log_path``: append the child's whole output
        to this file instead of reading it (``poll`` then reports only its end). ``cpu_cores``: run it on
        these cores only (Linux).
        """
        if not command:
            raise UserError("no command given to run; pass the program and its arguments as a list")
        child_env = dict(child_environment() if env is None else env)
        child_env.update(PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8", PYTHONUTF8="1")
        pin = (lambda: os.sched_setaffinity(0, cpu_cores)) if cpu_cores and hasattr(os, "sched_setaffinity") else None
        log = open(log_path, "a", encoding="utf-8") if log_path is not None else None
        try:
            popen = subprocess.Popen(
                [str(part) for part in command], env=child_env, cwd=cwd, stdin=subprocess.DEVNULL,
                stdout=log or subprocess.PIPE, stderr=subprocess.STDOUT if log else subprocess.PIPE,
                text=True, encoding="utf-8", errors="replace", bufsize=1, preexec_fn=pin, **platform_options())
        except FileNotFoundError as exc:
            raise UserError(f"{command[0]}: program not found; check the path or install it") from exc
        except NotADirectoryError as exc:
            raise UserError(f"{cwd}: working folder does not exist; create it or choose another") from exc
        finally:
            if log is not None:
                log.close()  # the child holds its own copy
        return cls(popen)

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        """Exit status once the process has ended (negative: ended by that signal), else None."""
        return self._popen.poll()

    @property
    def running(self) -> bool:
        return self._popen.poll() is None

    @property
    def last_error_line(self) -> str | None:
        """The last non-empty line the child wrote to stderr (a crash's exception line), or None."""
        return self._last_stderr_line

    def _read(self, stream, name: str) -> None:
        for line in stream:
            self._lines.put((name, line.rstrip("\r\n")))
        stream.close()

    def _output_complete(self) -> bool:
        """The child has ended and its pipes are closed (or the drain time has passed)."""
        if self._popen.poll() is None:
            return False
        if self._kill_deadline is not None:
            return False  # a non-blocking cancel's report line is still to come (poll writes it)
        if self._exit_seen_at is None:
            self._exit_seen_at = time.monotonic()
        readers_done = not any(r.is_alive() for r in self._readers)
        return readers_done or time.monotonic() - self._exit_seen_at >= OUTPUT_DRAIN_S

    def poll(self) -> ProcessOutput:
        """New events and log lines since the last call; never blocks. The line a cancel
        writes (see :meth:`cancel`) arrives here too; after :meth:`cancel_in_background` this call
        also sends the SIGKILL once the grace period is over and writes the report."""
        self._advance_cancel()
        finished = self._output_complete()  # decided before draining, so nothing read later is lost
        output = ProcessOutput()
        child_lines = []
        while True:
            try:
                stream, line = self._lines.get_nowait()
            except queue.Empty:
                break
            if stream == "note":  # already in ``log``
                output.log.append(line)
                continue
            event = json_object(line)
            if event is not None:
                output.events.append(event)
                continue
            output.log.append(line)
            child_lines.append(line)
            if stream == "stderr" and line.strip():
                self._last_stderr_line = line.strip()
        self.events.extend(output.events)
        self.log.extend(child_lines)
        output.finished = finished
        output.returncode = self._popen.poll()
        return output

    def wait(self, timeout: float | None = None) -> int:
        """Block until the process has ended and its output is read; returns the exit status.

        Collected output stays available in ``events`` and ``log``. Raises TimeoutError when
        ``timeout`` seconds pass first (the process keeps running).
        """
        try:
            returncode = self._popen.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            raise TimeoutError(f"process {self.pid} still running after {timeout} s") from exc
        drain_until = time.monotonic() + OUTPUT_DRAIN_S
        for reader in self._readers:
            reader.join(max(0.0, drain_until - time.monotonic()))
        self.poll()
        return returncode

    def _descendants(self) -> list:
        """Every process the child started (recursively) that still exists (psutil processes; empty
        without psutil, where the process group stands for them)."""
        psutil = psutil_module()
        if psutil is None:
            return []
        try:
            return psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def _signal_group(self, sig: int) -> None:
        """Send ``sig`` to the child's process group (reaches descendants already orphaned)."""
        if sys.platform == "win32":
            return
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _signal_tree(self, descendants: list, sig: int) -> None:
        if self._popen.poll() is None:
            self._popen.send_signal(sig)
        for proc in descendants:
            try:
                proc.send_signal(sig)
            except Exception:  # noqa: BLE001 - psutil.NoSuchProcess: it ended meanwhile
                pass
        self._signal_group(sig)

    def _wait_tree(self, descendants: list, timeout: float) -> list:
        """Wait up to ``timeout`` s for the child and ``descendants`` to end; returns those still alive.

        The child itself is reaped through its Popen so that its exit status is kept.
        """
        deadline = time.monotonic() + timeout
        while True:
            alive = [p for p in descendants if is_alive(p)]
            root_alive = self._popen.poll() is None
            if (not alive and not root_alive) or time.monotonic() >= deadline:
                return alive + ([ProcessId(self.pid)] if root_alive else [])
            time.sleep(0.05)

    def cancel(self, grace_s: float = DEFAULT_GRACE_S) -> CancelReport:
        """End the whole process tree: SIGTERM to all, SIGKILL to those alive after ``grace_s``; waits.

        Returns (and keeps in ``cancel_report``) which processes ended how; a line saying so
        is added to ``log``. Safe to call when the process has already ended, and after
        :meth:`cancel_in_background` (it then waits for that cancel to end).
        """
        self.cancel_in_background(grace_s)
        while self._kill_deadline is not None:
            self._advance_cancel(kill_wait_s=grace_s)
            if self._kill_deadline is not None:
                time.sleep(0.05)
        return self.cancel_report

    def cancel_in_background(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        """Start ending the tree without waiting: SIGTERM to the child, its descendants and its group now,
        on the caller's thread; SIGKILL to whatever is left once ``grace_s`` has passed, sent by the
        :meth:`poll` that finds it so (a GUI polls from its timer), and the report line after that.

        No thread does this: inside Slicer the main thread holds Python's GIL between Qt callbacks
        (PythonQt runs Python on it and Slicer never releases the lock while idle), so a Python thread of
        the GUI process runs only while Python code runs on the main thread."""
        self.cancelled = True
        if self._kill_deadline is not None or self.cancel_report is not None:
            return
        descendants = self._descendants()
        self._cancel_processes = {p.pid: p for p in descendants}
        self._cancel_tree = ({self.pid} if self.running else set()) | set(self._cancel_processes)
        self._signal_tree(descendants, signal.SIGTERM)
        self._kill_deadline = time.monotonic() + grace_s

    def _advance_cancel(self, kill_wait_s: float = 1.0) -> None:
        """A started cancel's next step: SIGKILL after the grace period, the report once all ended.

        The processes found when the cancel started stay watched (one orphaned by its parent's end is no
        longer the child's descendant); those started during the grace period join them."""
        if self._kill_deadline is None:
            return
        self._cancel_processes.update({p.pid: p for p in self._descendants()})
        self._cancel_tree |= set(self._cancel_processes)
        root_alive = self._popen.poll() is None
        alive = [p for p in self._cancel_processes.values() if is_alive(p)]
        report = CancelReport()
        if root_alive or alive:
            if time.monotonic() < self._kill_deadline:
                return
            self._signal_tree(alive, _SIGKILL)
            report.killed = sorted({p.pid for p in alive} | ({self.pid} if root_alive else set()))
            report.survivors = sorted(p.pid for p in self._wait_tree(alive, kill_wait_s))
        report.terminated = sorted(self._cancel_tree - set(report.killed) - set(report.survivors))
        report.killed = sorted(set(report.killed) - set(report.survivors))
        self._kill_deadline = None
        self.cancel_report = report
        self.log.append(report.summary())
        self._lines.put(("note", report.summary()))  # reaches the next poll() as a log line too
