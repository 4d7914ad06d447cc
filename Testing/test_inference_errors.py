"""Every bad model folder, trainer, input and option gives a one-line UserError naming problem and fix."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.inference import load_model
from ImprovedNNUNetLib.inference.channels import stack_channels
from ImprovedNNUNetLib.inference.device import choose_device


@pytest.fixture
def model_copy(trained_model, tmp_path):
    """A private copy of the tiny baseline model folder (dataset.json, plans.json, fold_0 checkpoint)."""
    source = trained_model("baseline")
    target = tmp_path / source.name
    (target / "fold_0").mkdir(parents=True)
    for name in ("dataset.json", "plans.json", "fold_0/checkpoint_final.pth"):
        shutil.copy(source / name, target / name)
    return target


def rewrite_checkpoint(folder, **changes):
    path = folder / "fold_0" / "checkpoint_final.pth"
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    checkpoint.update(changes)
    torch.save(checkpoint, path)


@pytest.mark.parametrize("missing", ["dataset.json", "plans.json"])
def test_missing_json_is_named(model_copy, missing):
    (model_copy / missing).unlink()
    with pytest.raises(UserError, match=missing):
        load_model(model_copy, device="cpu")


def test_broken_json_is_named(model_copy):
    (model_copy / "plans.json").write_text("{not json")
    with pytest.raises(UserError, match="plans.json is not valid JSON"):
        load_model(model_copy, device="cpu")


def test_missing_folder_and_missing_checkpoints(model_copy, tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_model(tmp_path / "nowhere", device="cpu")
    (model_copy / "fold_0" / "checkpoint_final.pth").unlink()
    with pytest.raises(UserError, match="no fold_N/checkpoint_final.pth"):
        load_model(model_copy, device="cpu")


def test_fold_that_does_not_exist(model_copy):
    with pytest.raises(UserError, match=r"fold 3 does not exist .* \(it has folds 0\)"):
        load_model(model_copy, folds=[0, 3], device="cpu")
    with pytest.raises(UserError, match="not a fold number"):
        load_model(model_copy, folds=["first"], device="cpu")


def test_truncated_checkpoint(model_copy):
    path = model_copy / "fold_0" / "checkpoint_final.pth"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UserError, match="unreadable or truncated"):
        load_model(model_copy, device="cpu")


def test_file_that_is_not_a_checkpoint(model_copy):
    torch.save({"weights": 1}, model_copy / "fold_0" / "checkpoint_final.pth")
    with pytest.raises(UserError, match="not an nnU-Net v2 checkpoint"):
        load_model(model_copy, device="cpu")


def test_weights_that_do_not_fit_the_plans(model_copy):
    plans = json.loads((model_copy / "plans.json").read_text())
    for configuration in plans["configurations"].values():
        kwargs = configuration.get("architecture", {}).get("arch_kwargs", {})
        if "features_per_stage" in kwargs:
            kwargs["features_per_stage"] = [2 * f for f in kwargs["features_per_stage"]]
    (model_copy / "plans.json").write_text(json.dumps(plans))
    with pytest.raises(UserError, match=r"plans.json differs from the plans fold 0 was trained with \(configurations"
                                        r"\.2d\.architecture\.arch_kwargs\.features_per_stage"):
        load_model(model_copy, device="cpu")
    checkpoint = torch.load(model_copy / "fold_0" / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    checkpoint["init_args"].pop("plans")  # a checkpoint without the record: the weights themselves do not fit
    torch.save(checkpoint, model_copy / "fold_0" / "checkpoint_final.pth")
    with pytest.raises(UserError, match="do not fit the network"):
        load_model(model_copy, device="cpu")


@pytest.mark.parametrize("edit", ["spacing", "labels"])
def test_a_hand_edited_plans_or_dataset_json_is_refused_with_the_difference(model_copy, edit):
    """The checkpoint records the plans and dataset.json it was trained with: a model folder whose copies were
    edited (spacing doubled; two label names swapped) would predict at another scale or name the labels wrongly."""
    if edit == "spacing":
        plans = json.loads((model_copy / "plans.json").read_text())
        spacing = plans["configurations"]["3d_fullres"]["spacing"]
        plans["configurations"]["3d_fullres"]["spacing"] = [2 * v for v in spacing]
        (model_copy / "plans.json").write_text(json.dumps(plans))
        expected = r"plans.json differs .*configurations\.3d_fullres\.spacing\.\[0\]: trained with"
    else:
        dataset = json.loads((model_copy / "dataset.json").read_text())
        names = list(dataset["labels"])
        dataset["labels"] = {(names[2] if n == names[1] else names[1] if n == names[2] else n): v
                             for n, v in dataset["labels"].items()}
        (model_copy / "dataset.json").write_text(json.dumps(dataset))
        expected = r"dataset.json differs from the dataset fold 0 was trained with \(labels\."
    with pytest.raises(UserError, match=expected):
        load_model(model_copy, device="cpu")


def test_unknown_trainer_then_found_through_nnunet_ext_trainer(model_copy, tmp_path, monkeypatch, chest_volume,
                                                                baseline_model):
    rewrite_checkpoint(model_copy, trainer_name="ThirdPartyTrainer")
    monkeypatch.delenv("nnUNet_extTrainer", raising=False)
    with pytest.raises(UserError, match="ThirdPartyTrainer.*nnUNet_extTrainer"):
        load_model(model_copy, device="cpu")
    trainers = tmp_path / "external_trainers"
    trainers.mkdir()
    (trainers / "third_party.py").write_text(
        "from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer\n\n\n"
        "class ThirdPartyTrainer(nnUNetTrainer):\n    pass\n")
    monkeypatch.setenv("nnUNet_extTrainer", str(trainers))
    model = load_model(model_copy, device="cpu")
    assert model.trainer_class.__name__ == "ThirdPartyTrainer"
    np.testing.assert_array_equal(model.predict(chest_volume).segmentation.array,
                                  baseline_model.predict(chest_volume).segmentation.array)


@pytest.mark.parametrize("trainer", ["nnUNetTrainerNoMirroring", "nnUNetTrainer_250epochs", "nnUNetTrainerDA5"])
def test_models_of_nnunets_own_trainer_variants_load_without_nnunet_ext_trainer(model_copy, monkeypatch,
                                                                               chest_volume, baseline_model, trainer):
    """A checkpoint naming one of nnU-Net's own trainers (TotalSegmentator's models name
    nnUNetTrainerNoMirroring) loads with nnUNet_extTrainer unset, as nnU-Net's predictor finds it."""
    rewrite_checkpoint(model_copy, trainer_name=trainer)
    monkeypatch.delenv("nnUNet_extTrainer", raising=False)
    model = load_model(model_copy, device="cpu")
    assert model.trainer_class.__name__ == trainer
    assert model.trainer_class.__module__.startswith("nnunetv2.training.nnUNetTrainer.variants.")
    np.testing.assert_array_equal(model.predict(chest_volume).segmentation.array,
                                  baseline_model.predict(chest_volume).segmentation.array)


def test_wrong_channel_count_names_the_model_channels(baseline_model, chest_volume):
    with pytest.raises(UserError, match=r"2 input channel\(s\) given but the model expects 1 channel\(s\) \(CT\)"):
        baseline_model.predict([chest_volume, chest_volume])


def test_four_dimensional_input_names_the_model_channels(baseline_model, chest_volume):
    four_d = np.stack([chest_volume.array, chest_volume.array])
    with pytest.raises(UserError, match=r"4-D input.*1 channel\(s\) \(CT\)"):
        baseline_model.predict(four_d, spacing=chest_volume.spacing)


def test_arrays_need_spacing(baseline_model, chest_volume):
    with pytest.raises(UserError, match="without spacing"):
        baseline_model.predict([chest_volume.array])


def test_channels_on_different_grids(chest_volume):
    shifted = chest_volume.with_array(chest_volume.array[:, :, :-1])
    with pytest.raises(UserError, match=r"channel 1 \(T2\) is not on the grid of channel 0 \(T1\)"):
        stack_channels([chest_volume, shifted], ["T1", "T2"])


@pytest.mark.parametrize("step", [0.0, 1.5])
def test_tile_step_out_of_range(baseline_model, chest_volume, step):
    with pytest.raises(UserError, match="tile step"):
        baseline_model.predict(chest_volume, step=step)


def test_distance_maps_from_a_model_without_distance_head(baseline_model, chest_volume):
    assert not baseline_model.has_distance_head
    with pytest.raises(UserError, match="no distance-map head"):
        baseline_model.predict(chest_volume, sdm=True)


def test_device_choice():
    device, note = choose_device("auto")
    assert (device.type == "cuda") == torch.cuda.is_available()
    assert (note is None) == torch.cuda.is_available()
    assert choose_device("cpu") == (torch.device("cpu"), None)
    with pytest.raises(UserError, match="cuda:99"):
        choose_device("cuda:99")
    with pytest.raises(UserError, match="unknown device"):
        choose_device("abacus")
