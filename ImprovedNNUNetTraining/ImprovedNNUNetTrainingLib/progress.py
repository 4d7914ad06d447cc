"""Progress events: one JSON object per line in progress.jsonl and on stdout.

Every event has the keys of ``EVENT_KEYS`` (missing values are null). A parent process tells
events from nnU-Net's own log lines because an event line parses as a JSON object.
"""
from __future__ import annotations

import json
import math
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from ImprovedNNUNetLib.errors import UserError

EVENT_KEYS = ("stage", "epoch", "num_epochs", "iteration", "num_iterations", "train_loss", "val_loss",
              "pseudo_dice", "lr", "epoch_time_s", "eta_s", "time", "message")
STAGES = ("planning", "preprocessing", "training", "validation", "done", "cancelled", "error")


def _json_value(value):
    """Plain JSON value: numpy scalars to Python numbers, NaN/inf to null."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class ProgressReporter:
    """Writes events to stdout and, once ``log_path`` is set, appends them to that file."""

    def __init__(self, log_path: Path | None = None, stream=None):
        self.log_path = Path(log_path) if log_path is not None else None
        self.stream = stream if stream is not None else sys.stdout

    def emit(self, stage: str, **values) -> dict:
        """Report one event; returns it."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}")
        unknown = set(values) - set(EVENT_KEYS)
        if unknown:
            raise ValueError(f"unknown event keys {sorted(unknown)}")
        event = {key: None for key in EVENT_KEYS}
        event.update({key: _json_value(value) for key, value in values.items()})
        event["stage"] = stage
        event["time"] = round(time.time(), 3)
        line = json.dumps(event)
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        self.stream.write(line + "\n")
        self.stream.flush()
        return event


def one_line(exc: BaseException) -> str:
    """An exception as a single line of text."""
    return " ".join(str(exc).split()) or type(exc).__name__


def parse_event(line: str) -> dict | None:
    """The event on a line of output, None for any other line."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and event.get("stage") in STAGES else None


def read_events(path: Path) -> list[dict]:
    """All events of a progress.jsonl file."""
    with open(path, encoding="utf-8") as f:
        return [event for event in map(parse_event, f) if event is not None]


@contextmanager
def report_user_errors(reporter: ProgressReporter | None = None):
    """Report a UserError as an ``error`` event on stdout too (a parent process may read only that), then re-raise."""
    try:
        yield
    except UserError as exc:
        (reporter or ProgressReporter()).emit("error", message=one_line(exc))
        raise
