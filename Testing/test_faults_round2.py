"""Faults of the second trust round, each given to the real command line: no silent wrong result.

A disk that fills *during* a folder is a real one: a small tmpfs mounted for the test (root, as in CI;
skipped with the reason for another user). Every row checks the exit status, one line naming the problem
and the fix, and that no 0-byte or partial file is left looking complete.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from ImprovedNNUNetLib.core.imageio import write_image
from ImprovedNNUNetLib.core.safe_write import PARTIAL_PREFIX, readable_whole


def cli(*args, env=None, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ImprovedNNUNetLib", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env)


def one_error_line(ran: subprocess.CompletedProcess, command: str) -> str:
    assert ran.returncode == 2, ran.stdout[-2000:] + ran.stderr[-2000:]
    assert "Traceback" not in ran.stderr, ran.stderr
    lines = [line for line in ran.stderr.splitlines() if line.strip() and not line.startswith("--continue")]
    assert len(lines) == 1 and lines[0].startswith(f"improved-nnunet {command}: error: "), ran.stderr
    return lines[0]


@contextmanager
def small_disk(folder: Path, size: str):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    folder.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    assert mounted.returncode == 0, mounted.stderr
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def grow(folder: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(folder)], check=True)


def nothing_half_written(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            assert not path.name.startswith(PARTIAL_PREFIX), path
            assert path.stat().st_size > 0, f"{path} is empty"
            if path.name.endswith((".nii.gz", ".nrrd", ".mha")):
                assert readable_whole(path), f"{path} is incomplete"


@pytest.fixture
def ct_cases(chest_volume, tmp_path):
    folder = tmp_path / "images"
    for index in range(6):
        write_image(chest_volume.with_array(np.ascontiguousarray(np.roll(chest_volume.array, index, axis=1))),
                    folder / f"case{index}_0000.nii.gz")
    return folder


# 1 -----------------------------------------------------------------------------------------------------------
def test_predict_onto_a_disk_that_fills_partway_then_continue(trained_model, ct_cases, tmp_path):
    with small_disk(tmp_path / "disk", "48k") as disk:  # a segmentation here is about 16 KB: 2-3 fit
        out = disk / "predictions"
        ran = cli("predict", "-i", ct_cases, "-o", out, "-m", trained_model("baseline"), "-f", "0",
                  "--device", "cpu")
        line = one_error_line(ran, "predict")
        assert "no space left on the device" in line and "predictions" in line
        written = sorted(out.glob("*.nii.gz"))
        assert 0 < len(written) < 6, "the disk should fill partway through the folder"
        nothing_half_written(out)
        (out / "case5.nii.gz").write_bytes(b"")  # what SimpleITK's NIfTI writer leaves on a full disk
        grow(disk, "1m")
        resumed = cli("predict", "-i", ct_cases, "-o", out, "-m", trained_model("baseline"), "-f", "0",
                      "--device", "cpu", "--continue")
        assert resumed.returncode == 0, resumed.stderr
        assert "case5.nii.gz is incomplete; predicting case5 again" in resumed.stderr
        assert sorted(p.name for p in out.glob("*.nii.gz")) == [f"case{i}.nii.gz" for i in range(6)]
        nothing_half_written(out)


def test_the_writer_rule_catches_a_writer_that_reports_success_for_a_cut_file(tmp_path):
    """SimpleITK's NIfTI writer raises nothing on ENOSPC: a writer that 'succeeds' with a cut file must not
    leave it under the final name."""
    from ImprovedNNUNetLib.core.errors import UserError
    from ImprovedNNUNetLib.core.image_integrity import check_complete
    from ImprovedNNUNetLib.core.safe_write import write_verified

    good = tmp_path / "good.nii.gz"
    write_image(write_image.__globals__["Image"](np.ones((4, 5, 6), np.uint8), (1, 1, 1), (0, 0, 0),
                                                 (1, 0, 0, 0, 1, 0, 0, 0, 1)), good)
    data = good.read_bytes()
    with pytest.raises(UserError):
        write_verified(tmp_path / "cut.nii.gz", lambda t: t.write_bytes(data[: len(data) // 2]), check_complete)
    assert not (tmp_path / "cut.nii.gz").exists() and not list(tmp_path.glob(PARTIAL_PREFIX + "*"))


# 2 and 10 ----------------------------------------------------------------------------------------------------
@pytest.fixture
def two_probability_folders(trained_model, ct_cases, tmp_path):
    folders = []
    for fold in (0, 1):
        out = tmp_path / f"fold{fold}"
        ran = cli("predict", "-i", ct_cases, "-o", out, "-m", trained_model("baseline", (0, 1)), "-f", fold,
                  "--device", "cpu", "--save_probabilities")
        assert ran.returncode == 0, ran.stderr
        folders.append(out)
    return folders


def test_ensemble_onto_a_filling_disk_and_a_cut_npz(two_probability_folders, tmp_path):
    first, second = two_probability_folders
    with small_disk(tmp_path / "disk", "12k") as disk:
        ran = cli("ensemble", "-i", first, second, "-o", disk / "ensemble")
        assert "no space left on the device" in one_error_line(ran, "ensemble")
        nothing_half_written(disk)
    cut = second / "case3.npz"
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    ran = cli("ensemble", "-i", first, second, "-o", tmp_path / "ensemble2")
    assert "case3.npz is not a complete nnU-Net probability file (BadZipFile)" in one_error_line(ran, "ensemble")
    assert not (tmp_path / "ensemble2").exists() or not any((tmp_path / "ensemble2").iterdir())
    (first / "case1.pkl").write_bytes(b"")  # an empty .pkl (item 12: refused, named)
    ran = cli("ensemble", "-i", first, second, "-o", tmp_path / "ensemble3")
    assert "case1.pkl cannot be read" in one_error_line(ran, "ensemble")


# 3 -----------------------------------------------------------------------------------------------------------
def test_broken_symbolic_links_are_named_not_dropped(chest_segmentation, chest_eroded, ct_cases, trained_model,
                                                     tmp_path):
    from ImprovedNNUNetLib.core.imageio import read_image

    ref, pred = tmp_path / "ref", tmp_path / "pred"
    for folder in (ref, pred):
        folder.mkdir()
        for name in ("a", "b"):
            write_image(read_image(chest_segmentation), folder / f"{name}.nii.gz")
    (ref / "c.nii.gz").symlink_to(tmp_path / "gone.nii.gz")  # its prediction is missing too
    line = one_error_line(cli("evaluate", pred, ref), "evaluate")
    assert "c.nii.gz is a broken symbolic link" in line and "fix or remove the link" in line
    (ct_cases / "case9_0000.nii.gz").symlink_to(tmp_path / "gone.nii.gz")
    line = one_error_line(cli("predict", "-i", ct_cases, "-o", tmp_path / "out", "-m", trained_model("baseline"),
                              "-f", "0", "--device", "cpu"), "predict")
    assert "case9_0000.nii.gz is a broken symbolic link" in line


# 4, 5, 8 -----------------------------------------------------------------------------------------------------
def test_nonfinite_voxels_and_impossible_spacing_are_refused(chest_volume, trained_model, tmp_path):
    import nibabel as nib

    images = tmp_path / "nan"
    array = chest_volume.array.astype(np.float32)
    array.flat[:: 100] = np.nan
    write_image(chest_volume.with_array(array), images / "case_0000.nrrd")
    line = one_error_line(cli("predict", "-i", images, "-o", tmp_path / "out", "-m", trained_model("baseline"),
                              "-f", "0", "--device", "cpu"), "predict")
    assert f"{(array.size + 99) // 100} of {array.size} voxels are NaN or infinite" in line
    # NIfTI: ITK's reader turns NaN into 0, so the stored voxels are read
    write_image(chest_volume.with_array(array), tmp_path / "nan_nifti" / "case_0000.nii.gz")
    assert "are NaN or infinite" in one_error_line(cli(
        "predict", "-i", tmp_path / "nan_nifti", "-o", tmp_path / "out", "-m", trained_model("baseline"), "-f", "0",
        "--device", "cpu"), "predict")
    # a zero spacing in the header (ITK would read 1 mm)
    zero = tmp_path / "zero"
    zero.mkdir()
    image = nib.Nifti1Image(np.ascontiguousarray(chest_volume.array.transpose(2, 1, 0)), np.eye(4))
    image.header.set_zooms((3.0, 3.0, 0.0))
    nib.save(image, zero / "case_0000.nii.gz")
    line = one_error_line(cli("predict", "-i", zero, "-o", tmp_path / "out", "-m", trained_model("baseline"),
                              "-f", "0", "--device", "cpu"), "predict")
    assert "voxel spacing 3, 3, 0 mm; a spacing must be positive" in line
    # a prediction with NaN is no label image
    labels = np.zeros(chest_volume.array.shape, np.float32)
    labels[2:4, 10:20, 10:20] = 1
    write_image(chest_volume.with_array(labels), tmp_path / "ref.nii.gz")
    labels[0, 0, 0] = np.inf
    write_image(chest_volume.with_array(labels), tmp_path / "pred.nrrd")
    assert "1 of" in one_error_line(cli("evaluate", tmp_path / "pred.nrrd", tmp_path / "ref.nii.gz"), "evaluate")


# 7 and 12 ----------------------------------------------------------------------------------------------------
def test_a_study_rerun_with_another_schedule_is_refused(tiny_dataset, tmp_path, monkeypatch):
    from ImprovedNNUNetLib.core.errors import UserError
    from ImprovedNNUNetTrainingLib.analysis.study.spec import Arm, Study

    monkeypatch.setenv("nnUNet_results", str(tmp_path / "results"))
    first = Study(dataset=tiny_dataset.name, arms=[Arm("baseline", "baseline")], folds=[0], epochs=1)
    first.save()
    again = Study(dataset=tiny_dataset.name, arms=[Arm("baseline", "baseline")], folds=[0], epochs=2)
    with pytest.raises(UserError, match=r"study baseline was run with --epochs 1 .*this run asks for 2; leave "
                                        r"--epochs out to continue the study, or give --name for a new study"):
        again.check_against_record()
    same = Study(dataset=tiny_dataset.name, arms=[Arm("baseline", "baseline"), Arm("msf", "msf")], folds=[0],
                 name="baseline")
    notes = same.check_against_record()
    assert same.epochs == 1 and notes == ["study baseline: arm(s) added: msf"]


# 9 -----------------------------------------------------------------------------------------------------------
def test_sigterm_or_sigkill_to_evaluate_with_jobs_leaves_no_worker(tmp_path):
    import psutil

    rng = np.random.default_rng(0)
    template = write_image.__globals__["Image"]
    for folder in ("pred", "ref"):
        for index in range(24):
            labels = (rng.random((96, 96, 96)) > 0.5).astype(np.uint8) * rng.integers(1, 4, (96, 96, 96),
                                                                                          dtype=np.uint8)
            write_image(template(labels, (1, 1, 1), (0, 0, 0), (1, 0, 0, 0, 1, 0, 0, 0, 1)),
                        tmp_path / folder / f"c{index}.nii.gz")
    for sig in (signal.SIGTERM, signal.SIGKILL):
        process = subprocess.Popen([sys.executable, "-m", "ImprovedNNUNetLib", "evaluate", tmp_path / "pred",
                                    tmp_path / "ref", "--jobs", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        workers = []
        while len(workers) < 2 and time.monotonic() < deadline:
            workers = psutil.Process(process.pid).children(recursive=True)
            time.sleep(0.1)
        assert len(workers) >= 2, "the pool did not start"
        process.send_signal(sig)
        process.communicate(timeout=30)  # the pipes close: no worker holds them
        gone, alive = psutil.wait_procs(workers, timeout=10)
        assert alive == [], f"workers alive after {sig.name}: {alive}"


# 10 ----------------------------------------------------------------------------------------------------------
def test_continue_with_a_damaged_latest_checkpoint_uses_the_best_one(trained_model, tiny_dataset, tmp_path):
    source = trained_model("baseline")
    results = tmp_path / "results" / tiny_dataset.name
    shutil.copytree(source.parent, results, dirs_exist_ok=True)
    fold = results / source.name / "fold_0"
    assert (fold / "checkpoint_best.pth").is_file()
    (fold / "checkpoint_final.pth").unlink()
    (fold / "checkpoint_latest.pth").write_bytes(os.urandom(1000))  # random bytes, newer than best
    env = dict(os.environ, nnUNet_results=str(tmp_path / "results"), nnUNet_n_proc_DA="0")
    ran = cli("train", tiny_dataset.name, "--variant", "baseline", "--continue", "--json", "--device", "cpu",
              "--no-validation", env=env)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "checkpoint_latest.pth is damaged (" in ran.stdout and "resumed from checkpoint_best.pth" in ran.stdout
    (fold / "checkpoint_final.pth").unlink()
    for name in ("checkpoint_latest.pth", "checkpoint_best.pth"):
        (fold / name).write_bytes(b"")
    line = one_error_line(cli("train", tiny_dataset.name, "--variant", "baseline", "--continue", "--device", "cpu",
                              "--no-validation", env=env), "train")
    assert "checkpoint_latest.pth is damaged" in line and "start the fold again with --overwrite" in line


# 11 ----------------------------------------------------------------------------------------------------------
def test_evaluate_onto_a_filling_disk_leaves_no_empty_results(chest_segmentation, chest_eroded, tmp_path):
    from ImprovedNNUNetLib.core.imageio import read_image

    pred, ref = tmp_path / "pred", tmp_path / "ref"
    for index in range(4):
        write_image(read_image(chest_eroded), pred / f"c{index}.nii.gz")
        write_image(read_image(chest_segmentation), ref / f"c{index}.nii.gz")
    with small_disk(tmp_path / "disk", "16k") as disk:
        line = one_error_line(cli("evaluate", pred, ref, "--out", disk / "evaluation", "--maps"), "evaluate")
        assert "no space left on the device" in line and "evaluation" in line
        nothing_half_written(disk)


# 13 ----------------------------------------------------------------------------------------------------------
def test_the_slurm_executor_without_submitit_names_the_extra(tiny_dataset):
    code = ("import sys\nsys.modules['submitit'] = None\nfrom ImprovedNNUNetLib.cli.main import main\n"
            f"sys.exit(main(['study', 'run', {tiny_dataset.name!r}, '--arm', 'baseline', '--executor', 'slurm']))")
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    line = one_error_line(ran, "study")
    assert "needs submitit, which is not installed; pip install 'improved-nnunet[study]'" in line


# 11 ----------------------------------------------------------------------------------------------------------
def test_a_second_run_of_a_running_study_is_refused_at_once(tiny_dataset, tmp_path):
    """Two `study run` of one study at once both exited 1 ("a training failed"), each meeting the other's fold
    locks: the second is now refused at once, naming the first; the first finishes normally."""
    import json

    env = dict(os.environ, nnUNet_results=str(tmp_path / "results"), PYTHONUNBUFFERED="1", nnUNet_n_proc_DA="0")
    command = [sys.executable, "-m", "ImprovedNNUNetLib", "study", "run", tiny_dataset.name, "--arm", "baseline",
               "--folds", "0", "--epochs", "3", "--iters-per-epoch", "2", "--val-iters-per-epoch", "1",
               "--device", "cpu"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lock = tmp_path / "results" / tiny_dataset.name / "studies" / ".baseline.lock"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if lock.is_file() and lock.read_text().strip():
            break
        time.sleep(0.1)
    assert json.loads(lock.read_text())["pid"] == first.pid
    second = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    line = one_error_line(second, "study")
    assert f"study baseline is being run by process {first.pid}" in line
    _, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stderr[-3000:]


def test_two_evaluations_into_one_output_folder_at_once(chest_segmentation, chest_eroded, tmp_path):
    """The second evaluate into a folder another one is writing is refused at once, naming it; the first one's
    manifest and outputs stay whole."""
    import json

    from ImprovedNNUNetLib.core.folder_lock import FolderLock
    from ImprovedNNUNetLib.evaluation.runner import OUTPUT_LOCK

    out = tmp_path / "evaluation"
    out.mkdir()
    with FolderLock(out, "evaluate", lock_file=out / OUTPUT_LOCK):  # another evaluate holds the folder
        line = one_error_line(cli("evaluate", chest_eroded, chest_segmentation, "--out", out), "evaluate")
    assert f"{out} is being written by process {os.getpid()}" in line
    assert cli("evaluate", chest_eroded, chest_segmentation, "--out", out).returncode == 0
    assert not (out / OUTPUT_LOCK).exists()
    assert "summary.json" in " ".join(json.loads((out / ".improved-nnunet-outputs.json").read_text())["evaluate"])


def test_prepare_onto_a_disk_that_fills_leaves_no_half_prepared_dataset(tiny_dataset, tmp_path):
    """nnU-Net's preprocessing on a full disk raised a RuntimeError of blosc2 and left half the data, which a
    training then met as a second traceback: now one line, and no plans or data of the failed run remain."""
    env = dict(os.environ, nnUNet_raw=str(tiny_dataset.raw.parent), nnUNet_n_proc_DA="0", nnUNet_def_n_proc="1")
    with small_disk(tmp_path / "disk", "96k") as disk:
        env["nnUNet_preprocessed"] = str(disk)
        ran = cli("prepare", tiny_dataset.raw, "--config", "3d_fullres", env=env)
        line = one_error_line(ran, "prepare")
        assert "no space left on the device" in line
        target = disk / tiny_dataset.name
        assert not (target / "nnUNetPlans.json").exists()
        assert not (target / "nnUNetPlans_3d_fullres").exists()
        nothing_half_written(disk)
