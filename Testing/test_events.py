"""One event vocabulary for every child process: training events and the Segment worker's events are
lines of the same kind, read by the same functions."""
import ast
import json
from pathlib import Path

import pytest

from ImprovedNNUNetLib.core.events import END_STAGES, SEGMENTATION_STAGES, STAGES, event_line, json_object, parse_event

ROOT = Path(__file__).resolve().parents[1]


def test_an_event_line_reads_back_and_unknown_stages_are_refused():
    line = event_line("predicting", done=3, total=18)
    assert json.loads(line) == {"stage": "predicting", "done": 3, "total": 18}
    assert parse_event(line) == json_object(line) == {"stage": "predicting", "done": 3, "total": 18}
    with pytest.raises(ValueError, match="unknown stage 'finished'"):
        event_line("finished")
    assert parse_event('{"stage": "finished"}') is None and json_object('{"stage": "finished"}') is not None


def test_training_events_are_the_training_and_end_stages():
    from ImprovedNNUNetTrainingLib.engine import progress

    assert set(progress.STAGES) | set(SEGMENTATION_STAGES) == set(STAGES)
    assert set(END_STAGES) <= set(progress.STAGES)
    assert progress.parse_event(event_line("training", epoch=1)) is not None
    assert progress.parse_event(event_line("loading")) is None  # a segmentation event is not a training one


def test_the_segment_worker_emits_only_stages_of_the_vocabulary():
    tree = ast.parse((ROOT / "ImprovedNNUNet" / "ImprovedNNUNetLib" / "panels" / "segment_worker.py").read_text())
    emitted = {keyword.value.value for node in ast.walk(tree) if isinstance(node, ast.Call)
               for keyword in node.keywords if keyword.arg == "stage" and isinstance(keyword.value, ast.Constant)}
    emitted |= {node.values[0].value for node in ast.walk(tree) if isinstance(node, ast.Dict) and node.keys
                and isinstance(node.keys[0], ast.Constant) and node.keys[0].value == "stage"}
    assert emitted == {"loading", "loaded", "predicting", "done", "error"}
    assert emitted <= set(STAGES)
