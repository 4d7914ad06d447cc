"""Cancel (SIGTERM) and resume of a real training run started like the Slicer module starts it:
`python -m ImprovedNNUNetLib train ...` as a child process reading JSON-line events from stdout."""
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
import torch

from ImprovedNNUNetTrainingLib.engine.progress import parse_event, read_events


def start_training(tmp_path, *extra, workers="2"):
    env = dict(os.environ, nnUNet_results=str(tmp_path / "results"), nnUNet_n_proc_DA=workers,
               nnUNet_def_n_proc="1", PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "ImprovedNNUNetLib", "train", "Dataset987_TinyChest", "--variant", "msf", "--json",
               "--iters-per-epoch", "2", "--val-iters-per-epoch", "1", "--device", "cpu", *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def wait_for_epoch_end(process, epoch, timeout=240):
    """Read events until the end of ``epoch``; returns the events read."""
    events, deadline = [], time.monotonic() + timeout
    for line in process.stdout:
        event = parse_event(line)
        if event is not None:
            events.append(event)
            if event["stage"] == "training" and event["val_loss"] is not None and event["epoch"] >= epoch:
                return events
            assert event["stage"] == "training", event
        assert time.monotonic() < deadline, "training did not reach the epoch in time"
    pytest.fail(f"training ended early: {events}")


def fold_folder(tmp_path):
    return tmp_path / "results" / "Dataset987_TinyChest" / "nnUNetTrainerMSF__nnUNetPlans__3d_fullres" / "fold_0"


def events_of(output):
    return [e for e in map(parse_event, output.splitlines()) if e is not None]


def epoch_ends(events):
    return [e["epoch"] for e in events if e["stage"] == "training" and e["val_loss"] is not None]


def test_cancel_and_resume(tiny_dataset, tmp_path):
    """SIGTERM stops the run and its workers with a checkpoint; --continue resumes at that epoch and
    the resumed run ends with nnU-Net's final validation."""
    process = start_training(tmp_path, "--epochs", "100")
    try:
        wait_for_epoch_end(process, 1)
        run = [process.pid] + [child.pid for child in psutil.Process(process.pid).children(recursive=True)]
        assert len(run) >= 3, "expected augmentation worker processes"
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGTERM
    time.sleep(5)
    alive = [pid for pid in run if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"processes of the run still alive 5 s after it ended: {alive}"

    folder = fold_folder(tmp_path)
    events = read_events(folder / "progress.jsonl")
    assert events[-1]["stage"] == "cancelled" and "--continue" in events[-1]["message"]
    stop_epoch = events[-1]["epoch"]
    checkpoint = torch.load(folder / "checkpoint_latest.pth", weights_only=False, map_location="cpu")
    assert checkpoint["current_epoch"] == stop_epoch >= 2

    resumed = start_training(tmp_path, "--continue", "--change", "--epochs", str(stop_epoch + 2), workers="0")
    output, _ = resumed.communicate(timeout=400)
    assert resumed.returncode == 0, output
    events = events_of(output)
    assert f"resumed from checkpoint_latest.pth at epoch {stop_epoch + 1} of " in events[0]["message"]
    assert f"--epochs changed from 100 to {stop_epoch + 2}" in events[0]["message"]
    assert epoch_ends(events) == [stop_epoch, stop_epoch + 1]
    assert [e["stage"] for e in events[-2:]] == ["validation", "done"]
    assert (folder / "checkpoint_final.pth").is_file() and (folder / "validation" / "summary.json").is_file()
    assert not (folder / "checkpoint_latest.pth").exists()


def test_continue_picks_the_newest_checkpoint(tmp_path):
    """After kill -9 the newer of checkpoint_latest/checkpoint_best is resumed; a final one wins."""
    from ImprovedNNUNetTrainingLib.engine.run_checks import resume_checkpoint

    assert resume_checkpoint(tmp_path) is None
    latest, best, final = (tmp_path / f"checkpoint_{n}.pth" for n in ("latest", "best", "final"))
    latest.write_bytes(b"l")
    best.write_bytes(b"b")
    os.utime(latest, (1000, 1000))
    os.utime(best, (2000, 2000))
    assert resume_checkpoint(tmp_path) == best
    os.utime(latest, (3000, 3000))
    assert resume_checkpoint(tmp_path) == latest
    final.write_bytes(b"f")
    assert resume_checkpoint(tmp_path) == final


def test_sigusr1_stops_at_the_epoch_boundary_with_exit_status_0_and_resumes(tiny_dataset, tmp_path):
    """nnU-Net's cluster rule (``#SBATCH --signal=B:USR1@600``, then resubmit with --c): SIGUSR1 lets the
    running epoch finish, writes checkpoint_latest at that boundary and exits 0; --continue resumes there."""
    process = start_training(tmp_path, "--epochs", "100", "--checkpoint-every", "50", workers="0")
    try:
        wait_for_epoch_end(process, 0)
        process.send_signal(signal.SIGUSR1)
        output, _ = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, output
    assert "stopped by SIGUSR1 after epoch" in output and "--continue" in output
    folder = fold_folder(tmp_path)
    events = read_events(folder / "progress.jsonl")
    finished = epoch_ends(events)
    assert events[-1]["stage"] == "cancelled" and "stopped by SIGUSR1" in events[-1]["message"]
    assert not (folder / "checkpoint_final.pth").exists()
    checkpoint = torch.load(folder / "checkpoint_latest.pth", weights_only=False, map_location="cpu")
    assert checkpoint["current_epoch"] == finished[-1] + 1 == events[-1]["epoch"]  # no finished epoch lost

    resumed = start_training(tmp_path, "--continue", "--change", "--epochs", str(finished[-1] + 2), workers="0")
    output, _ = resumed.communicate(timeout=400)
    assert resumed.returncode == 0, output
    assert epoch_ends(events_of(output)) == [finished[-1] + 1]
    assert (folder / "checkpoint_final.pth").is_file()
