"""Benchmark: the child-process runner against plain ``subprocess.run`` on the same child.

A Python child prints 200 000 lines, half of them JSON progress events and half log lines.
``ChildProcess`` streams them on reader threads while the caller polls every 10 ms (as a GUI
timer would) and sorts events from log lines; the peer, ``subprocess.run(capture_output=True)``,
waits for the end and then parses the whole output once (no streaming, no progress while it
runs). Prints both wall times and our/peer ratio (best of 3), and the time ``cancel()`` needs to
end a 5-process tree that ignores SIGTERM (bounded by its grace period).

Run: ``.venv/bin/python Testing/benchmarks/bench_process.py``
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

from ImprovedNNUNetLib.core.events import json_object as parse_event
from ImprovedNNUNetLib.core.process import ChildProcess

LINES = 200_000
REPEATS = 3
TARGET_RATIO = 3.0  # streaming with a 10 ms poll may cost at most 3x the one-shot capture
CHILD = (
    "import json, sys\n"
    f"for i in range({LINES} // 2):\n"
    "    print(json.dumps({'stage': 'training', 'iteration': i, 'train_loss': 1.0 / (i + 1)}))\n"
    "    print(f'nnU-Net log line {i}')\n"
)
TREE = (
    "import signal, subprocess, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "code = 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)'\n"
    "kids = [subprocess.Popen([sys.executable, '-c', code]) for _ in range(4)]\n"
    "time.sleep(0.5)\n"
    "print('{\"stage\": \"training\"}', flush=True)\n"
    "time.sleep(600)\n"
)


def ours() -> tuple[float, int]:
    start = time.perf_counter()
    process = ChildProcess.start([sys.executable, "-c", CHILD])
    events = 0
    while True:
        out = process.poll()
        events += len(out.events)
        if out.finished:
            break
        time.sleep(0.01)
    return time.perf_counter() - start, events


def peer() -> tuple[float, int]:
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True)
    events = sum(parse_event(line) is not None for line in run.stdout.splitlines())
    return time.perf_counter() - start, events


def cancel_time(grace_s: float) -> float:
    process = ChildProcess.start([sys.executable, "-c", TREE])
    while not process.poll().events:
        time.sleep(0.02)
    start = time.perf_counter()
    report = process.cancel(grace_s=grace_s)
    elapsed = time.perf_counter() - start
    assert not report.survivors and len(report.killed) == 5, report
    return elapsed


def main() -> int:
    ours_times, peer_times = [], []
    for _ in range(REPEATS):
        t, n = ours()
        assert n == LINES // 2, n
        ours_times.append(t)
        t, n = peer()
        assert n == LINES // 2, n
        peer_times.append(t)
    ratio = min(ours_times) / min(peer_times)
    print(f"stream {LINES} lines ({LINES // 2} events): ChildProcess+poll {min(ours_times):.2f} s, "
          f"subprocess.run {min(peer_times):.2f} s, ratio {ratio:.2f} (target <= {TARGET_RATIO})")
    grace = 1.0
    print(f"cancel a 5-process tree ignoring SIGTERM, grace {grace} s: {cancel_time(grace):.2f} s")
    print(json.dumps({"bench": "process", "ratio_vs_subprocess_run": round(ratio, 3)}))
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
