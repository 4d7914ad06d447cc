"""Probability files as nnU-Net writes them: `predict --save_probabilities` writes CASE.npz + CASE.pkl that
nnU-Net's own ensembling accepts, and `improved-nnunet ensemble` accepts nnU-Net's files, with the same
segmentations as nnUNetv2_ensemble on the same folders."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from ImprovedNNUNetLib.cli.main import main
from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.imageio import read_image, write_image


@pytest.fixture(scope="module")
def cases(tmp_path_factory, chest_volume):
    folder = tmp_path_factory.mktemp("npz") / "images"
    write_image(chest_volume, folder / "chest_a_0000.nii.gz")
    write_image(chest_volume.with_array(np.ascontiguousarray(chest_volume.array[::-1])), folder / "chest_b_0000.nii.gz")
    return folder


@pytest.fixture(scope="module")
def predictions(trained_model, cases):
    """Fold 0 and fold 1 predicted with probabilities, by this project and by nnU-Net's own predictor."""
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    model = trained_model("baseline", folds=(0, 1))
    root = cases.parent
    made = {}
    for fold in (0, 1):
        ours = root / f"ours_{fold}"
        assert main(["predict", "-i", str(cases), "-o", str(ours), "-m", str(model), "-f", str(fold), "--device",
                     "cpu", "--disable_tta", "--save_probabilities", "-npp", "1", "-nps", "1"]) == 0
        theirs = root / f"nnunet_{fold}"
        predictor = nnUNetPredictor(tile_step_size=0.5, use_mirroring=False, device=torch.device("cpu"),
                                    perform_everything_on_device=False, allow_tqdm=False)
        predictor.initialize_from_trained_model_folder(str(model), use_folds=(fold,))
        predictor.predict_from_files(str(cases), str(theirs), save_probabilities=True, overwrite=True,
                                     num_processes_preprocessing=1, num_processes_segmentation_export=1)
        made[fold] = (ours, theirs)
    return made


def labels_and_grid(path):
    image = read_image(path)
    return image.array, image.spacing, image.origin, image.direction


def assert_same_segmentations(first, second):
    for case in ("chest_a", "chest_b"):
        a, b = labels_and_grid(first / f"{case}.nii.gz"), labels_and_grid(second / f"{case}.nii.gz")
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_allclose(np.concatenate([a[1], a[2], a[3]]), np.concatenate([b[1], b[2], b[3]]), atol=1e-6)


def test_our_npz_files_match_nnunets(predictions):
    ours, theirs = predictions[0]
    for case in ("chest_a", "chest_b"):
        mine = np.load(ours / f"{case}.npz")["probabilities"]
        nnunet = np.load(theirs / f"{case}.npz")["probabilities"]
        assert mine.shape == nnunet.shape and mine.dtype == np.float32
        np.testing.assert_allclose(mine, nnunet, atol=2e-3)
        with open(ours / f"{case}.pkl", "rb") as f:
            mine_properties = pickle.load(f)
        with open(theirs / f"{case}.pkl", "rb") as f:
            nnunet_properties = pickle.load(f)
        for key in ("spacing", "origin", "direction"):
            np.testing.assert_allclose(mine_properties["sitk_stuff"][key], nnunet_properties["sitk_stuff"][key])
        for key in ("shape_before_cropping", "shape_after_cropping_and_before_resampling"):
            assert tuple(mine_properties[key]) == tuple(nnunet_properties[key])
    assert (ours / "dataset.json").is_file() and (ours / "plans.json").is_file()


def test_nnunet_ensembles_our_files_and_we_ensemble_theirs_alike(predictions, tmp_path):
    from nnunetv2.ensembling.ensemble import ensemble_folders as nnunet_ensemble

    ours = [predictions[fold][0] for fold in (0, 1)]
    theirs = [predictions[fold][1] for fold in (0, 1)]
    for inputs, name in ((ours, "ours"), (theirs, "theirs")):
        nnunet_ensemble([str(f) for f in inputs], str(tmp_path / f"nnunet_of_{name}"), num_processes=1)
        assert main(["ensemble", "-i", *map(str, inputs), "-o", str(tmp_path / f"ours_of_{name}"), "--save_npz",
                     "-np", "2"]) == 0
        assert_same_segmentations(tmp_path / f"nnunet_of_{name}", tmp_path / f"ours_of_{name}")
    mean = (np.load(ours[0] / "chest_a.npz")["probabilities"] + np.load(ours[1] / "chest_a.npz")["probabilities"]) / 2
    np.testing.assert_allclose(np.load(tmp_path / "ours_of_ours" / "chest_a.npz")["probabilities"], mean, atol=1e-6)
    # the two folds differ, so the ensemble is not simply one of them
    assert not np.array_equal(np.load(ours[0] / "chest_a.npz")["probabilities"], mean)


def test_ensemble_refuses_unequal_folders_and_existing_outputs(predictions, tmp_path, capsys):
    first, second = predictions[0][0], tmp_path / "partial"
    second.mkdir()
    (second / "chest_a.npz").write_bytes((first / "chest_a.npz").read_bytes())
    assert main(["ensemble", "-i", str(first), str(second), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "lacks chest_b.npz" in err and len(err.strip().splitlines()) == 1
    out = tmp_path / "out2"
    assert main(["ensemble", "-i", str(first), str(predictions[1][0]), "-o", str(out)]) == 0
    before = (out / "chest_a.nii.gz").read_bytes()
    assert main(["ensemble", "-i", str(first), str(predictions[1][0]), "-o", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err and (out / "chest_a.nii.gz").read_bytes() == before
    with pytest.raises(UserError, match="at least two input folders"):
        from ImprovedNNUNetLib.inference.ensemble import ensemble_folders

        ensemble_folders([first], tmp_path / "x")


def test_a_killed_folder_prediction_continues_with_the_missing_cases(trained_model, chest_volume, tmp_path):
    """kill -9 during a folder prediction, then --continue: finished cases are skipped (untouched), the others
    are written; no half-written file is ever left under a final name."""
    import os
    import signal
    import subprocess
    import sys
    import time

    model = trained_model("baseline")
    images = tmp_path / "images"
    for index in range(6):
        write_image(chest_volume.with_array(np.ascontiguousarray(np.roll(chest_volume.array, index, axis=0))),
                    images / f"case{index}_0000.nii.gz")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "ImprovedNNUNetLib", "predict", "-i", str(images), "-o", str(out), "-m",
               str(model), "-f", "0", "--device", "cpu", "--save_probabilities"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list(out.glob("case*.nii.gz")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in out.glob("case*.nii.gz")}
    assert 1 <= len(finished) < 6, "the kill should land mid-folder"
    for name in finished:  # a segmentation is written last: its case is complete
        assert (out / name.replace(".nii.gz", ".npz")).is_file() and (out / name.replace(".nii.gz", ".pkl")).is_file()
        read_image(out / name)

    resumed = subprocess.run([*command, "--continue"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(finished)} of 6 case(s) already have a segmentation; skipped" in resumed.stderr
    assert sorted(p.name for p in out.glob("case*.nii.gz")) == [f"case{i}.nii.gz" for i in range(6)]
    assert {name: (out / name).stat().st_mtime_ns for name in finished} == finished
    assert not list(out.glob(".partial-*"))
    for index in range(6):
        assert np.load(out / f"case{index}.npz")["probabilities"].shape[0] == 8


def test_save_probabilities_never_replaces_another_dataset_or_plans_json(trained_model, chest_volume, tmp_path,
                                                                          capsys):
    """dataset.json/plans.json beside the .npz files go through the overwrite check: another file of that
    name is kept (exit 2, one line) unless --overwrite; the model's own copy (a second part, --continue) is fine."""
    model = trained_model("baseline")
    image = tmp_path / "images" / "case_0000.nii.gz"
    write_image(chest_volume, image)
    out = tmp_path / "out"
    out.mkdir()
    (out / "plans.json").write_text('{"mine": true}')
    command = ["predict", "-i", str(image.parent), "-o", str(out), "-m", str(model), "-f", "0", "--device", "cpu",
               "--save_probabilities"]
    assert main(command) == 2
    err = capsys.readouterr().err
    assert "plans.json exists and is not this model's plans.json" in err and "--overwrite" in err
    assert len(err.strip().splitlines()) == 1
    assert (out / "plans.json").read_text() == '{"mine": true}' and not (out / "dataset.json").exists()
    (out / "plans.json").unlink()
    (out / "plans.json").write_text((model / "plans.json").read_text())  # the model's own: not in the way
    assert main(command) == 0
    assert (out / "dataset.json").read_text() == (model / "dataset.json").read_text()
    (out / "dataset.json").write_text("{}")
    assert main([*command, "--overwrite"]) == 0
    assert (out / "dataset.json").read_text() == (model / "dataset.json").read_text()
