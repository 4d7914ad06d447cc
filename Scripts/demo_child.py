"""Run an `improved-nnunet` sub-command as a child process, its progress events driving a tqdm bar.

The child's log lines (nnU-Net's own output) go to a log file so the console shows only
the progress bars; when the child fails, the error names its last error line and the log.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.process import ChildProcess, cli_command

POLL_S = 0.2


def run_cli(
    args: list[str],
    log_path: Path,
    env: Mapping[str, str],
    on_event: Callable[[dict], None] | None = None,
    on_log: Callable[[str], None] | None = None,
) -> list[dict]:
    """Run `improved-nnunet ARGS` to the end; returns its events. UserError when it fails.

    ``on_event`` is called with each progress event, ``on_log`` with each other output line.
    """
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    child = ChildProcess.start(cli_command(*args), env=env)
    with open(log_path, "w", encoding="utf-8") as log:
        try:
            while True:
                output = child.poll()
                for line in output.log:
                    log.write(line + "\n")
                    if on_log is not None:
                        on_log(line)
                for event in output.events:
                    if on_event is not None:
                        on_event(event)
                if output.finished:
                    break
                time.sleep(POLL_S)
        except BaseException:
            child.cancel()
            raise
    if child.returncode != 0:
        raise UserError(f"`improved-nnunet {args[0]}` failed ({child.last_error_line}); "
                        f"see {log_path} for its full output")
    return child.events
