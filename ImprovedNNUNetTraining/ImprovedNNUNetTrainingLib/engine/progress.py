"""Progress events: one JSON object per line in progress.jsonl, and on stdout for a person or a program.

Every event has the keys of ``EVENT_KEYS`` (missing values are null). :class:`ProgressReporter` writes
them to its stream as JSON lines (``--json``: a parent process tells events from nnU-Net's own log lines
because an event line parses as a JSON object); :class:`HumanReporter` shows them as a progress bar per
epoch and one summary line per epoch. Both append every event to ``progress.jsonl`` once it is known.
"""
from __future__ import annotations

import json
import math
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from ImprovedNNUNetLib.core import events
from ImprovedNNUNetLib.core.durations import duration_text
from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.events import END_STAGES, TRAINING_STAGES

EVENT_KEYS = ("stage", "epoch", "num_epochs", "iteration", "num_iterations", "train_loss", "val_loss",
              "pseudo_dice", "lr", "epoch_time_s", "eta_s", "time", "message")
STAGES = TRAINING_STAGES + END_STAGES  # what a training or preparation reports


def _json_value(value):
    """Plain JSON value: numpy scalars to Python numbers, NaN/inf to null."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class ProgressReporter:
    """Writes events to stdout and, once ``log_path`` is set, appends them to that file."""

    machine_readable = True  # events on the stream are JSON lines

    def __init__(self, log_path: Path | None = None, stream=None):
        self.log_path = Path(log_path) if log_path is not None else None
        self.stream = stream if stream is not None else sys.stdout
        self.listeners = []  # called with every event (experiment tracking); one that fails is dropped with a note

    def tell_listeners(self, event: dict) -> None:
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception as exc:  # noqa: BLE001 - tracking must not end a training
                self.listeners.remove(listener)
                print(f"note: {type(listener).__name__} stopped ({type(exc).__name__}: "
                      f"{str(exc).splitlines()[0] if str(exc) else ''}); the training goes on", file=sys.stderr,
                      flush=True)

    def show(self, event: dict, line: str) -> None:
        """Put one event on the stream (here: its JSON line)."""
        self.stream.write(line + "\n")
        self.stream.flush()

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
        self.show(event, line)
        self.tell_listeners(event)
        return event


def epoch_summary(event: dict) -> str:
    """One line for a finished epoch: losses, pseudo Dice per label, learning rate, time and ETA."""
    def number(value, digits=4):
        return "n/a" if value is None else f"{value:.{digits}f}"

    dice = event.get("pseudo_dice")
    return (f"epoch {event['epoch'] + 1}/{event['num_epochs']}: train loss {number(event['train_loss'])}, "
            f"val loss {number(event['val_loss'])}, pseudo Dice {number(dice)}, lr {number(event['lr'], 5)}, "
            f"{duration_text(event['epoch_time_s'])}, ETA {duration_text(event['eta_s'])}")


class HumanReporter(ProgressReporter):
    """Events for a person: a progress bar over each epoch's iterations (on ``bar_stream``, only on a
    terminal), one summary line per finished epoch and one line per other stage (on ``stream``).
    Errors are left to the caller, which prints them on stderr as one line."""

    machine_readable = False

    def __init__(self, log_path: Path | None = None, stream=None, bar_stream=None):
        super().__init__(log_path, stream)
        self.bar_stream = bar_stream if bar_stream is not None else sys.stderr
        self._bar = None
        self._bar_title = None

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = self._bar_title = None

    def _update_bar(self, event: dict) -> None:
        from tqdm import tqdm

        title = f"epoch {event['epoch'] + 1}/{event['num_epochs']}"
        if self._bar is None or self._bar_title != title:
            self._close_bar()
            # disable=None: no bar unless the stream is a terminal
            self._bar = tqdm(total=event["num_iterations"], desc=title, unit="it", file=self.bar_stream,
                             disable=None, leave=False)
            self._bar_title = title
        self._bar.update(event["iteration"] - self._bar.n)
        if event.get("train_loss") is not None:
            self._bar.set_postfix_str(f"loss {event['train_loss']:.4f}, ETA {duration_text(event['eta_s'])}")

    def show(self, event: dict, line: str) -> None:
        stage = event["stage"]
        if stage == "training":
            if event.get("epoch_time_s") is not None:
                self._close_bar()
                self.stream.write(epoch_summary(event) + "\n")
            elif event.get("iteration") and event.get("num_iterations"):
                self._update_bar(event)
                return
            elif event.get("message"):
                self.stream.write(f"training: {event['message']}\n")
            else:
                return
        elif stage in ("error", "cancelled"):  # the command prints one line for these, with the fix
            self._close_bar()
            return
        else:
            self._close_bar()
            self.stream.write(f"{stage}: {event['message']}\n" if event.get("message") else f"{stage}\n")
        self.stream.flush()


def one_line(exc: BaseException) -> str:
    """An exception as a single line of text."""
    return " ".join(str(exc).split()) or type(exc).__name__


def parse_event(line: str) -> dict | None:
    """The training event on a line of output, None for any other line."""
    return events.parse_event(line, STAGES)


def read_events(path: Path) -> list[dict]:
    """All events of a progress.jsonl file."""
    with open(path, encoding="utf-8") as f:
        return [event for event in map(parse_event, f) if event is not None]


TAIL_BYTES = 64 * 1024  # a few hundred events: the newest epoch's is among them


def read_last_events(path: Path, tail_bytes: int = TAIL_BYTES) -> list[dict]:
    """The newest events of a progress.jsonl file, read from its last ``tail_bytes`` only (a status shown every
    few seconds stays cheap however long the training has run)."""
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        f.seek(max(0, size - tail_bytes))
        lines = f.read().split(b"\n")
    if size > tail_bytes:
        lines = lines[1:]  # the first line is cut
    events = (parse_event(line.decode("utf-8", errors="replace")) for line in lines if line.strip())
    return [event for event in events if event is not None]


NNUNET_OUTPUT = "nnunet_output.txt"


@contextmanager
def nnunet_prints_to(reporter: ProgressReporter, folder: Path):
    """For a person (``HumanReporter``), what nnU-Net prints with ``print`` (banners, plans dumps) is appended
    to ``folder/nnunet_output.txt`` instead of the console; JSON mode leaves it on stdout, where a parent
    process reads it as log lines."""
    if reporter.machine_readable:
        yield
        return
    from contextlib import redirect_stdout

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / NNUNET_OUTPUT, "a", encoding="utf-8") as sink, redirect_stdout(sink):
        yield


def reporter_for(json_events: bool) -> ProgressReporter:
    """The reporter of a command: JSON lines with ``--json``, else the one for people."""
    return ProgressReporter() if json_events else HumanReporter()


@contextmanager
def report_user_errors(reporter: ProgressReporter | None = None):
    """Report a UserError as an ``error`` event (with ``--json`` a parent process may read only stdout),
    then re-raise; the command line prints it on stderr as one line."""
    try:
        yield
    except UserError as exc:
        (reporter or ProgressReporter()).emit("error", message=one_line(exc))
        raise
