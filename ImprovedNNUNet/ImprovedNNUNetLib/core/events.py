"""The JSON-line events the project's child processes print on stdout: one vocabulary for every face.

A line that is a JSON object is an event for :class:`~.process.ChildProcess` (anything else is a log line);
an event's ``stage`` says what it reports:

- training (``improved-nnunet train``/``prepare --json``, see ``progress.py``): ``planning``,
  ``preprocessing``, ``training``, ``validation``;
- segmentation (the Segment panel's worker): ``loading``, ``loaded``, ``predicting``;
- the end of either: ``done``, ``cancelled``, ``error`` (with a one-line ``message``).
"""
from __future__ import annotations

import json

TRAINING_STAGES = ("planning", "preprocessing", "training", "validation")
SEGMENTATION_STAGES = ("loading", "loaded", "predicting")
END_STAGES = ("done", "cancelled", "error")
STAGES = TRAINING_STAGES + SEGMENTATION_STAGES + END_STAGES


def json_object(line: str) -> dict | None:
    """The JSON object on ``line``, or None when the line is not one (a log line)."""
    text = line.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def parse_event(line: str, stages=STAGES) -> dict | None:
    """The event on a line of output (a JSON object whose ``stage`` is one of ``stages``), None otherwise."""
    event = json_object(line)
    return event if event is not None and event.get("stage") in stages else None


def event_line(stage: str, **values) -> str:
    """One event as its JSON line (``stage`` first); ValueError for a stage outside the vocabulary."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    return json.dumps({"stage": stage, **values})
