"""Fold choices are read by one function for every face: the Segment and Training panels, `train --fold`,
`study --folds` and `predict --folds`."""
import subprocess
import sys

import pytest

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.folds import as_fold, parse_folds, required_folds


@pytest.mark.parametrize("text, folds", [("", None), ("  ", None), ("0", [0]), ("0, 2", [0, 2]), ("0,2", [0, 2]),
                                         ("1 3", [1, 3]), ("all", ["all"]), ("0,1,0", [0, 1]), ("2,all", [2, "all"])])
def test_the_ways_users_write_folds(text, folds):
    assert parse_folds(text) == folds


@pytest.mark.parametrize("bad", ["x1", "-1", "1.5", "ALL0"])
def test_a_bad_fold_is_one_line_naming_it(bad):
    with pytest.raises(UserError, match=f"fold '{bad}' is not a fold number; give numbers such as 0, 1, 2, or all"):
        parse_folds(f"0,{bad}")


def test_training_needs_a_fold_and_single_values_read_alike():
    with pytest.raises(UserError, match="write fold numbers separated by commas"):
        required_folds(" , ")
    assert [as_fold(v) for v in (3, "3", " all ")] == [3, 3, "all"]


def test_every_face_reads_folds_through_the_one_function():
    from ImprovedNNUNetLib.panels import segment_options
    from ImprovedNNUNetTrainingLib.panels import training_request

    assert segment_options.parse_folds is parse_folds
    assert training_request.parse_folds("0, 1") == [0, 1]
    ran = subprocess.run([sys.executable, "-m", "ImprovedNNUNetLib", "train", "1", "--variant", "baseline",
                          "--fold", "0,x"], capture_output=True, text=True)
    assert ran.returncode == 2 and "fold 'x' is not a fold number" in ran.stderr


@pytest.mark.parametrize("name, normal", [("", "auto"), (" CUDA ", "cuda"), ("cuda:1", "cuda:1"), ("mps", "mps"),
                                          ("cpu", "cpu")])
def test_device_names_are_read_once(name, normal):
    from ImprovedNNUNetLib.core.devices import device_name, gpu_index

    assert device_name(name) == normal
    assert gpu_index(name) == (1 if normal == "cuda:1" else None)


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "cuda1", "tpu"])
def test_a_bad_device_is_one_line_for_training_and_segmentation_alike(bad):
    from ImprovedNNUNetLib.inference.device import choose_device
    from ImprovedNNUNetTrainingLib.engine.run_checks import check_device_name

    for check in (check_device_name, choose_device):
        with pytest.raises(UserError, match=f"unknown device '{bad}'; use auto, cpu, cuda, cuda:N"):
            check(bad)


def test_training_accepts_every_name_segmentation_does():
    """Before, training refused mps and the Training panel offered no mps; both faces offer the same choices."""
    from ImprovedNNUNetLib.core.devices import DEVICE_CHOICES
    from ImprovedNNUNetTrainingLib.engine.run_checks import check_device_name

    for name in (*DEVICE_CHOICES, "cuda:0", "cuda:3"):
        check_device_name(name)


@pytest.mark.parametrize("name", ["Dataset001_A", "Dataset500_Chest.CT", "Dataset999_x_y", "Dataset1234_B",
                                  "Dataset12_C", "dataset001_A", "Dataset001"])
def test_dataset_names_are_read_as_nnunet_reads_them(name, monkeypatch):
    """One rule for every place that reads a DatasetNNN_Name (training, the scene export, the model store):
    a name is a dataset exactly when nnU-Net's own conversion reads its id correctly."""
    for variable in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(variable, "/nonexistent")
    from nnunetv2.utilities.dataset_name_id_conversion import convert_dataset_name_to_id

    from ImprovedNNUNetLib.core.dataset_names import dataset_id

    try:
        theirs = convert_dataset_name_to_id(name)
    except (AssertionError, ValueError):
        theirs = None
    ours = dataset_id(name)
    if ours is not None:
        assert ours == theirs
    else:  # nnU-Net refuses it or misreads it (Dataset1234_B -> 123)
        assert theirs is None or f"Dataset{theirs:03d}_" != name[:11]
