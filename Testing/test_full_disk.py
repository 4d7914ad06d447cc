"""A full disk is a real one here: a tiny tmpfs mounted for the test (the tests run as root, as CI
does). Commands writing onto it end with a one-line message naming the problem and the fix,
not a traceback, and a file already on the disk is left as it was."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def full_disk(tmp_path):
    """A 12 KiB file system (three pages), nearly filled by a file of the user's."""
    mount_point = tmp_path / "small_disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12k", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    assert mounted.returncode == 0, f"could not mount a tmpfs for the full-disk test: {mounted.stderr}"
    try:
        (mount_point / "notes.txt").write_text("user data\n" * 400)  # 4 KiB: one of the three pages
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def run_cli(*args) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("improved-nnunet")
    return subprocess.run([str(script), *map(str, args)], capture_output=True, text=True, timeout=600)


def assert_reports_full_disk(proc: subprocess.CompletedProcess, command: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr, proc.stderr
    assert lines[-1].startswith(f"improved-nnunet {command}: error: no space left on the device")
    assert "free disk space or write to a folder on another disk" in lines[-1]


def test_evaluate_onto_a_full_disk(full_disk, chest_eroded, chest_segmentation):
    proc = run_cli("evaluate", chest_eroded, chest_segmentation, "--out", full_disk / "evaluation", "--maps")
    assert_reports_full_disk(proc, "evaluate")
    assert (full_disk / "notes.txt").read_text() == "user data\n" * 400


def test_predict_onto_a_full_disk(full_disk, trained_model, slicerio_data):
    proc = run_cli("predict", "-i", slicerio_data / "CTChest4.nrrd", "-o", full_disk / "predictions",
                   "-m", trained_model("baseline"), "--folds", "0", "--device", "cpu", "--step", "1", "--probabilities")
    assert_reports_full_disk(proc, "predict")
    assert (full_disk / "notes.txt").read_text() == "user data\n" * 400
