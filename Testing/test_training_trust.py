"""Faults injected for real into real training processes: resume that remembers the run, one writer
per fold, Ctrl-C to the process group, SIGKILL of the main process, leftovers of an earlier run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from ImprovedNNUNetLib.core.folder_lock import FoldLock, lock_path
from ImprovedNNUNetTrainingLib.engine.progress import parse_event, read_events
from ImprovedNNUNetTrainingLib.engine.run_checks import fold_status as fold_state

DATASET = "Dataset987_TinyChest"
SCHEDULE = ("--iters-per-epoch", "2", "--val-iters-per-epoch", "1", "--device", "cpu", "--no-validation")


def environment(tmp_path, workers="0"):
    return dict(os.environ, nnUNet_results=str(tmp_path / "results"), nnUNet_n_proc_DA=workers,
                nnUNet_def_n_proc="1", PYTHONUNBUFFERED="1")


def command(*arguments):
    return [sys.executable, "-m", "ImprovedNNUNetLib", "train", DATASET, "--variant", "msf", "--json", *arguments]


def start(tmp_path, *arguments, workers="0"):
    """A training in its own process group (as a terminal or Slicer starts it)."""
    return subprocess.Popen(command(*arguments), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=environment(tmp_path, workers), start_new_session=True)


def run(tmp_path, *arguments, timeout=600):
    return subprocess.run(command(*arguments), capture_output=True, text=True, env=environment(tmp_path),
                          timeout=timeout)


def wait_for_epoch_end(process, epoch, timeout=300):
    deadline = time.monotonic() + timeout
    for line in process.stdout:
        event = parse_event(line)
        if event and event["stage"] == "training" and event["epoch_time_s"] is not None and event["epoch"] >= epoch:
            return event
        assert time.monotonic() < deadline, "training did not reach the epoch in time"
    pytest.fail(f"training ended early: {process.stderr.read()}")


def fold_folder(tmp_path):
    return tmp_path / "results" / DATASET / "nnUNetTrainerMSF__nnUNetPlans__3d_fullres" / "fold_0"


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def alive(pids):
    return [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


def wait_until_gone(pids, timeout=10.0):
    deadline = time.monotonic() + timeout
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive(pids)


def test_continue_resumes_the_same_run_and_refuses_conflicts(tiny_dataset, tmp_path):
    nothing = run(tmp_path, "--continue", *SCHEDULE)
    assert nothing.returncode == 2
    assert "there is no run to resume" in one_error_line(nothing.stderr)

    first = start(tmp_path, "--epochs", "6", "--set", "msf_weight=3", "--checkpoint-every", "1", *SCHEDULE)
    try:
        wait_for_epoch_end(first, 1)
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    finally:
        first.kill()
    assert first.returncode == 128 + signal.SIGTERM
    folder = fold_folder(tmp_path)
    recorded = json.loads((folder / "run_options.json").read_text())
    assert recorded["epochs"] == 6 and recorded["hyperparameters"] == {"msf_weight": 3}

    conflict = run(tmp_path, "--continue", "--epochs", "1000")
    assert conflict.returncode == 2
    assert "--epochs 1000 differs from the run being resumed (--epochs 6" in one_error_line(conflict.stderr)
    conflict = run(tmp_path, "--continue", "--set", "msf_weight=1.0")
    assert conflict.returncode == 2 and "--set msf_weight 1.0 differs" in conflict.stderr
    assert json.loads((folder / "run_options.json").read_text()) == recorded

    resumed = run(tmp_path, "--continue", "--device", "cpu")  # nothing but --continue: the same run
    assert resumed.returncode == 0, resumed.stderr
    events = [e for e in map(parse_event, resumed.stdout.splitlines()) if e]
    start_epoch = events[0]["epoch"]
    assert f"resumed from checkpoint_latest.pth at epoch {start_epoch + 1} of 6" in events[0]["message"]
    assert events[0]["num_epochs"] == 6 and events[0]["num_iterations"] == 2
    first_end = next(e for e in events if e["epoch_time_s"] is not None)
    assert first_end["epoch"] == start_epoch
    assert first_end["lr"] == pytest.approx(0.01 * (1 - start_epoch / 6) ** 0.9)  # poly schedule of 6 epochs
    settings = json.loads((folder / "variant_settings.json").read_text())
    assert settings["num_epochs"] == 6 and settings["msf_stage2_start_epoch"] == 3
    assert settings["num_iterations_per_epoch"] == 2 and settings["checkpoint_every"] == 1
    assert settings["variant_hyperparameters"]["msf_weight"] == 3.0
    assert fold_state(folder) == "done"


def test_one_writer_per_fold_and_ctrl_c_to_the_process_group(tiny_dataset, tmp_path):
    first = start(tmp_path, "--epochs", "100", *SCHEDULE, workers="2")
    try:
        wait_for_epoch_end(first, 0)
        run_pids = [first.pid] + [c.pid for c in psutil.Process(first.pid).children(recursive=True)]
        assert len(run_pids) >= 3, "expected augmentation worker processes"
        folder = fold_folder(tmp_path)
        before = {p.name: p.stat().st_size for p in folder.iterdir() if p.suffix == ".json"}
        for mode in ("--continue", "--overwrite"):
            second = run(tmp_path, mode, "--epochs", "100", *SCHEDULE)
            assert second.returncode == 2
            assert f"is being trained by process {first.pid}" in one_error_line(second.stderr)
        assert folder.is_dir() and set(before) <= {p.name for p in folder.iterdir()}

        os.killpg(first.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        _, stderr = first.communicate(timeout=60)
    finally:
        first.kill()
    assert first.returncode == 130
    assert "Traceback" not in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    assert "cancelled by SIGINT during epoch" in last and "--continue" in last
    assert wait_until_gone(run_pids) == []
    assert read_events(folder / "progress.jsonl")[-1]["stage"] == "cancelled"


def test_kill_9_ends_the_workers_and_resume_reports_the_lost_epochs(tiny_dataset, tmp_path):
    """Default checkpoint interval (5): a run killed after epoch 6 resumes at epoch 5 from checkpoint_latest, or
    later when nnU-Net wrote a newer checkpoint_best (a complete training state as well)."""
    first = start(tmp_path, "--epochs", "9", *SCHEDULE, workers="2")
    try:
        wait_for_epoch_end(first, 6)
        workers = [c.pid for c in psutil.Process(first.pid).children(recursive=True)]
        assert len(workers) >= 2
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        first.kill()
    assert wait_until_gone(workers) == [], "augmentation workers outlived the killed training process"
    folder = fold_folder(tmp_path)
    finished = max(e["epoch"] for e in read_events(folder / "progress.jsonl") if e["epoch_time_s"] is not None)

    resumed = run(tmp_path, "--continue")
    assert resumed.returncode == 0, resumed.stderr
    first_event = next(e for e in map(parse_event, resumed.stdout.splitlines()) if e)
    resumed_at = first_event["epoch"]
    assert 5 <= resumed_at <= finished + 1
    lost = finished + 1 - resumed_at
    if lost:
        assert f"({lost} epoch(s) the interrupted run finished after that checkpoint are trained again)" \
            in first_event["message"]
    print(f"kill -9 after epoch {finished} finished: resumed at epoch {resumed_at}, {lost} finished epoch(s) lost")
    assert fold_state(folder) == "done"


def test_leftovers_holding_a_fold_are_ended_and_reported(tmp_path):
    folder = tmp_path / "model" / "fold_0"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    holder_code = (
        "import fcntl, json, os, sys, time\n"
        f"fd = os.open({str(lock_path(folder))!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        f"os.write(fd, json.dumps({{'pid': {int(dead.stdout)}}}).encode())\n"
        "print('locked', flush=True)\n"
        "time.sleep(600)\n")
    folder.parent.mkdir(parents=True)
    leftover = subprocess.Popen([sys.executable, "-c", holder_code], stdout=subprocess.PIPE, text=True)
    try:
        assert leftover.stdout.readline().strip() == "locked"
        with FoldLock(folder) as lock:
            assert leftover.wait(timeout=10) is not None
            assert len(lock.notes) == 1 and f"pids {leftover.pid}" in lock.notes[0]
            assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    finally:
        leftover.kill()


def test_a_fold_that_stopped_before_its_first_checkpoint_is_not_resumable(tmp_path):
    from ImprovedNNUNetTrainingLib.engine.run_checks import CheckedRun  # noqa: F401  (the CLI's error is tested above)

    folder = tmp_path / "fold_0"
    folder.mkdir()
    (folder / "progress.jsonl").write_text("")
    assert fold_state(folder) == "stopped"
    (folder / "checkpoint_latest.pth").write_bytes(b"")
    assert fold_state(folder) == "partial"


def test_npz_saves_validation_probabilities_as_nnunet_does(tiny_dataset, tmp_path):
    """`train --npz` (nnU-Net's --npz): the final validation also writes <case>.npz + <case>.pkl, what
    nnUNetv2_find_best_configuration and nnUNetv2_ensemble read."""
    ran = subprocess.run(command("--epochs", "1", "--iters-per-epoch", "1", "--val-iters-per-epoch", "1",
                                 "--device", "cpu", "--npz"), capture_output=True, text=True,
                         env=environment(tmp_path), timeout=600)
    assert ran.returncode == 0, ran.stderr[-2000:]
    validation = fold_folder(tmp_path) / "validation"
    segmentations = sorted(p.name[: -len(".nii.gz")] for p in validation.glob("*.nii.gz"))
    assert segmentations
    assert sorted(p.stem for p in validation.glob("*.npz")) == segmentations
    assert sorted(p.stem for p in validation.glob("*.pkl")) == segmentations
