"""A full disk is a real one here: a tiny tmpfs mounted for the test (the tests run as root, as CI
does). Commands writing onto it end with a one-line message naming the problem and the fix,
not a traceback, and a file already on the disk is left as it was."""
from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_disk(folder: Path, size: str):
    """A tmpfs of ``size`` mounted on ``folder`` for the duration of the block."""
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    assert mounted.returncode == 0, f"could not mount a tmpfs for the full-disk test: {mounted.stderr}"
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture
def full_disk(tmp_path):
    """A 12 KiB file system (three pages), nearly filled by a file of the user's."""
    with small_disk(tmp_path / "small_disk", "12k") as mount_point:
        (mount_point / "notes.txt").write_text("user data\n" * 400)  # 4 KiB: one of the three pages
        yield mount_point


def run_cli(*args, env=None) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("improved-nnunet")
    return subprocess.run([str(script), *map(str, args)], capture_output=True, text=True, timeout=600, env=env)


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


def test_training_onto_a_full_disk_keeps_the_last_good_checkpoint(tiny_dataset, tmp_path):
    """4 MiB of results space holds one checkpoint of the tiny network (2.8 MB), not two: epoch 0
    writes checkpoint_latest, then checkpoint_best fails. The run ends with the one-line message and
    an error event, and checkpoint_latest.pth is whole (checkpoints are written and then renamed)."""
    import torch

    from ImprovedNNUNetTrainingLib.engine.progress import read_events

    with small_disk(tmp_path / "results", "4m") as results:
        env = {**os.environ, "nnUNet_results": str(results), "nnUNet_n_proc_DA": "0",
               "nnUNet_raw": str(tiny_dataset.raw.parent), "nnUNet_preprocessed": str(tiny_dataset.preprocessed.parent)}
        proc = run_cli("train", tiny_dataset.name, "--variant", "baseline", "--epochs", "3", "--iters-per-epoch", "1",
                       "--val-iters-per-epoch", "1", "--checkpoint-every", "1", "--device", "cpu", "--no-validation",
                       env=env)
        assert_reports_full_disk(proc, "train")
        fold = next(results.glob("*/nnUNetTrainer__nnUNetPlans__3d_fullres/fold_0"))
        assert sorted(p.name for p in fold.glob("checkpoint_*")) == ["checkpoint_latest.pth"]  # no .partial left
        checkpoint = torch.load(fold / "checkpoint_latest.pth", map_location="cpu", weights_only=False)
        assert checkpoint["current_epoch"] == 1  # epoch 0 done: a --continue starts at epoch 1
        last = read_events(fold / "progress.jsonl")[-1]
        assert last["stage"] == "error" and last["message"].startswith("no space left on the device")


def test_slicer_segmentation_with_its_work_folder_on_a_full_disk(full_disk, trained_model, slicerio_data):
    """The Slicer module writes the scene's volumes for its worker first; on a full disk that is refused
    with the cause and the fix (the panel shows it in its error dialog) and no worker starts."""
    from fixtures.slicer_scene import CTScene
    from ImprovedNNUNetLib.core.errors import UserError
    from ImprovedNNUNetLib.panels.segment_job import SegmentJob

    scene = CTScene(slicerio_data)
    with pytest.raises(UserError, match="could not be written to .*work: no space left on the device.*; free disk space"):
        SegmentJob([scene.ct], trained_model("baseline"), folds=[0], device="cpu", work_dir=full_disk / "work")
    assert list((full_disk / "work").iterdir()) == []  # what it had written is removed again
    assert (full_disk / "notes.txt").read_text() == "user data\n" * 400
