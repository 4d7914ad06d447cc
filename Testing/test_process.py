"""ChildProcess with real child processes: events, log, crash reports and cancelling a whole tree."""
import sys
import textwrap
import threading
import time

import psutil
import pytest

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.events import json_object as parse_event
from ImprovedNNUNetLib.core.process import ChildProcess, cli_command

# The child program; its first argument picks a behaviour.
CHILD = textwrap.dedent(
    """
    import json, os, signal, subprocess, sys, time

    mode = sys.argv[1]
    if "stubborn" in mode:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def sleeper_code(with_child):
        lines = ["import signal, subprocess, sys, time"]
        if "stubborn" in mode:
            lines.append("signal.signal(signal.SIGTERM, signal.SIG_IGN)")
        if with_child:
            lines.append(f"subprocess.Popen([sys.executable, '-c', {sleeper_code(False)!r}])")
        lines.append("time.sleep(600)")
        return "\\n".join(lines)

    def spawn(with_child):
        return subprocess.Popen([sys.executable, "-c", sleeper_code(with_child)])

    if mode == "events":
        print(json.dumps({"stage": "training", "epoch": 0, "num_epochs": 2, "train_loss": 0.5}))
        print("nnU-Net says hello")
        print('{"not": "closed"')
        print("[1, 2]")
        print(json.dumps({"stage": "done", "epoch": 1, "num_epochs": 2}))
        print("a warning on stderr", file=sys.stderr)
        sys.exit(0)
    if mode == "crash":
        print(json.dumps({"stage": "training", "epoch": 0}))
        print("loading the model", file=sys.stderr)
        raise RuntimeError("checkpoint_final.pth is truncated")
    if mode.startswith("tree"):
        children = [spawn(True), spawn(True)]
        time.sleep(0.5)  # let the great-grandchildren start
        print(json.dumps({"stage": "training", "pids": [c.pid for c in children]}))
        time.sleep(600)
    if mode == "orphan":
        child = spawn(False)
        print(json.dumps({"stage": "training", "pids": [child.pid]}))
        sys.exit(0)  # the grandchild lives on, orphaned, in our process group
    if mode == "sleep":
        time.sleep(600)
    """
)


@pytest.fixture
def child_script(tmp_path):
    path = tmp_path / "child.py"
    path.write_text(CHILD)
    return path


def start(child_script, mode):
    return ChildProcess.start([sys.executable, str(child_script), mode])


def first_event(process, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = process.poll()
        if out.events:
            return out.events[0]
        time.sleep(0.05)
    raise AssertionError(f"no event within {timeout} s; log: {list(process.log)}")


def tree_pids(process):
    """The child and every descendant, as psutil sees them now."""
    root = psutil.Process(process.pid)
    return [root.pid, *(p.pid for p in root.children(recursive=True))]


def alive(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def assert_all_gone_within(pids, seconds=5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    assert [p for p in pids if alive(p)] == []


def test_parse_event_accepts_only_json_objects():
    assert parse_event('{"stage": "done"}\n') == {"stage": "done"}
    assert parse_event("  {\"epoch\": 3}  ") == {"epoch": 3}
    assert parse_event("[1, 2]") is None
    assert parse_event('{"stage": ') is None
    assert parse_event("{not json}") is None
    assert parse_event("Epoch 3") is None


def test_events_and_log_lines_are_separated(child_script):
    process = start(child_script, "events")
    assert process.wait(timeout=60) == 0
    assert [e["stage"] for e in process.events] == ["training", "done"]
    assert process.events[0]["train_loss"] == 0.5
    # stdout and stderr are read on separate threads: their relative order is not defined
    assert sorted(process.log) == sorted(["nnU-Net says hello", '{"not": "closed"', "[1, 2]", "a warning on stderr"])
    assert process.returncode == 0 and not process.cancelled
    assert process.last_error_line == "a warning on stderr"
    final = process.poll()
    assert final.finished and final.returncode == 0 and final.events == [] and final.log == []


def test_poll_drains_incrementally_and_reports_finish(child_script):
    process = start(child_script, "events")
    events, log, finished = [], [], False
    deadline = time.monotonic() + 60
    while not finished and time.monotonic() < deadline:
        out = process.poll()
        events += out.events
        log += out.log
        finished = out.finished
        time.sleep(0.02)
    assert finished
    assert [e["stage"] for e in events] == ["training", "done"]
    assert sorted(log) == sorted(process.log)


def test_poll_does_not_block_while_the_child_is_silent(child_script):
    process = start(child_script, "sleep")
    try:
        result = {}
        poller = threading.Thread(target=lambda: result.setdefault("out", process.poll()))
        poller.start()
        poller.join(timeout=10)  # the child sleeps 600 s: a blocking poll would still be waiting
        assert not poller.is_alive()
        assert result["out"].events == [] and not result["out"].finished and process.running
    finally:
        process.cancel(grace_s=1)


def test_crash_reports_its_last_stderr_line(child_script):
    process = start(child_script, "crash")
    assert process.wait(timeout=60) == 1
    assert process.last_error_line == "RuntimeError: checkpoint_final.pth is truncated"
    assert list(process.events) == [{"stage": "training", "epoch": 0}]
    assert "loading the model" in process.log


def test_cancel_ends_the_whole_tree(child_script):
    process = start(child_script, "tree")
    event = first_event(process)
    pids = tree_pids(process)
    assert set(event["pids"]) < set(pids) and len(pids) == 5  # child, 2 grandchildren, 2 great-grandchildren
    report = process.cancel(grace_s=2)
    assert_all_gone_within(pids)
    assert sorted(report.terminated) == sorted(pids)
    assert report.killed == [] and report.survivors == []
    assert process.cancelled and process.returncode == -15
    assert process.log[-1] == report.summary()


def test_cancel_kills_processes_that_ignore_sigterm(child_script):
    process = start(child_script, "tree-stubborn")
    first_event(process)
    pids = tree_pids(process)
    assert len(pids) == 5
    report = process.cancel(grace_s=1)
    assert_all_gone_within(pids)
    assert sorted(report.killed) == sorted(pids)
    assert report.survivors == []
    assert process.returncode == -9
    assert "killed after ignoring SIGTERM" in report.summary()


def test_cancel_reaches_orphaned_descendants(child_script):
    process = start(child_script, "orphan")
    grandchild = first_event(process)["pids"][0]
    process.wait(timeout=60)
    assert alive(grandchild)  # its parent has exited, it runs on in the child's process group
    process.cancel(grace_s=2)
    assert_all_gone_within([grandchild])


def test_missing_program_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="program not found"):
        ChildProcess.start([str(tmp_path / "no-such-program")])


def test_cli_command_runs_the_project_entry_point():
    process = ChildProcess.start(cli_command("--help"))
    assert process.wait(timeout=120) == 0
    assert any("improved-nnunet" in line for line in process.log)


def test_output_to_a_log_file_and_pinned_cores(tmp_path):
    """The study's trainings start through the same class: output appended to their log, pinned to a slot's
    cores (Linux)."""
    log = tmp_path / "training.log"
    log.write_text("--- header written by the caller\n")
    script = "import os, sys; print('cores', sorted(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') " \
             "else 'n/a'); print('to stderr', file=sys.stderr)"
    child = ChildProcess.start([sys.executable, "-c", script], log_path=log, cpu_cores=[0])
    assert child.wait(60) == 0
    output = child.poll()
    assert output.finished and output.events == [] and output.log == []
    lines = log.read_text().splitlines()
    assert lines[0] == "--- header written by the caller" and "to stderr" in lines
    assert any(line in ("cores [0]", "cores n/a") for line in lines)
