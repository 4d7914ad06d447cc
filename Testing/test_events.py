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


def test_the_newest_events_are_read_from_the_end_of_a_long_progress_file(tmp_path):
    """A status shown every few seconds reads only the tail of progress.jsonl: the same newest events as the whole
    file, however many epochs it holds (here about 600 kB of them)."""
    import io

    from ImprovedNNUNetTrainingLib.engine.progress import ProgressReporter, read_events, read_last_events

    log = tmp_path / "progress.jsonl"
    reporter = ProgressReporter(stream=io.StringIO(), log_path=log)
    for epoch in range(2000):
        reporter.emit("training", epoch=epoch, num_epochs=2000, train_loss=-0.5, message="ü" * 40)
    reporter.emit("error", message="out of memory")
    assert log.stat().st_size > 10 * 64 * 1024
    whole, tail = read_events(log), read_last_events(log)
    assert 10 < len(tail) < len(whole) and tail == whole[-len(tail):]
    assert tail[-1]["stage"] == "error" and tail[-2]["epoch"] == 1999
    assert read_last_events(log, tail_bytes=10**9) == whole
