"""Region-based datasets (nnU-Net's regions, as BraTS) train with the msf and sdm variants: real nnU-Net training
of a tiny region dataset on the CPU, prediction by this project's loader and by nnU-Net's own predictor."""
from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
import torch

from fixtures.training import LABELS, TinyDataset, shrink_plans, train_tiny
from ImprovedNNUNetLib.core.imageio import read_image, write_image

REGION_DATASET = "Dataset988_TinyRegions"
# labels 1 right lung, 2 left lung, 3 ribs; regions: both lungs, the left lung, the ribs (nested, as BraTS)
REGION_LABELS = {"background": 0, "lungs": [1, 2], "left lung": [2], "ribs": [3]}
REMAP = {LABELS["right lung"]: 1, LABELS["left lung"]: 2, LABELS["ribs"]: 3}


@pytest.fixture(scope="module")
def region_dataset(tiny_dataset) -> TinyDataset:
    """The tiny chest crops with three labels and three nested regions, planned and preprocessed."""
    from ImprovedNNUNetTrainingLib.engine.prepare import prepare_dataset
    from ImprovedNNUNetTrainingLib.engine.progress import ProgressReporter

    raw = tiny_dataset.raw.parent / REGION_DATASET
    if raw.exists():
        shutil.rmtree(raw)
    shutil.copytree(tiny_dataset.raw / "imagesTr", raw / "imagesTr")
    for path in sorted((tiny_dataset.raw / "labelsTr").glob("*.nii.gz")):
        image = read_image(path)
        remapped = np.zeros(image.array.shape, np.uint8)
        for old, new in REMAP.items():
            remapped[image.array == old] = new
        write_image(image.with_array(remapped), raw / "labelsTr" / path.name)
    (raw / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "CT"}, "labels": REGION_LABELS, "regions_class_order": [1, 2, 3],
        "numTraining": len(list((raw / "labelsTr").iterdir())), "file_ending": ".nii.gz"}, indent=2))
    preprocessed = prepare_dataset(str(raw), ["3d_fullres"], reporter=ProgressReporter(stream=io.StringIO()))
    shrink_plans(preprocessed / "nnUNetPlans.json")
    return TinyDataset(REGION_DATASET, raw, preprocessed, tiny_dataset.results.parent / REGION_DATASET)


def test_msf_trains_on_regions_with_the_focus_term(region_dataset):
    result = train_tiny(region_dataset, "msf", 0, overwrite=True)  # 2 epochs: the second is stage 2
    assert result.status == "done", result
    from ImprovedNNUNetLib.inference import load_model

    model = load_model(result.fold_folder.parent, folds=0, device="cpu")
    case = read_image(region_dataset.raw / "imagesTr" / "chest_000_0000.nii.gz")
    predicted = model.predict(case, probabilities=True)
    assert predicted.probability_array.shape[0] == 3  # one sigmoid output per region


def test_msf_focus_term_of_regions_is_the_region_loss_inside_the_region():
    from nnunetv2.training.loss.compound_losses import DC_and_BCE_loss

    from ImprovedNNUNetTrainingLib.trainers.msf import MisSegFocusLoss, misseg_region_of_regions

    target = torch.zeros(2, 2, 9, 9, 9)
    target[:, 0, 2:7, 2:7, 2:7] = 1
    target[:, 1, 3:6, 3:6, 3:6] = 1
    output = (target * 2 - 1) * 4.0  # right everywhere ...
    output[0, 1, 0, 0, 0] = 4.0  # ... but one voxel of region 2 in case 0
    region_loss = DC_and_BCE_loss({}, {"batch_dice": False, "do_bg": True, "smooth": 1e-5, "ddp": False},
                                  use_ignore_label=True)
    loss = MisSegFocusLoss(None, region_loss, None, [(1,), (2,)], 1.0, 1, regions=True)
    region = misseg_region_of_regions(torch.sigmoid(output) > 0.5, target.bool(), 1)
    assert region.shape == (2, 1, 9, 9, 9)
    corner = {(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)}  # the error voxel dilated by a radius-1 ball
    assert {tuple(i) for i in region[0, 0].nonzero().tolist()} == corner and not region[1].any()
    expected = region_loss(output, torch.cat([target.bool(), ~region], dim=1))
    assert torch.allclose(loss.focus_term(output, target), expected)


def test_sdm_trains_on_regions_and_nnunet_predicts_with_it(region_dataset, tmp_path, monkeypatch):
    result = train_tiny(region_dataset, "sdm", 0, overwrite=True)
    assert result.status == "done", result
    folder = result.fold_folder.parent
    weights = torch.load(result.fold_folder / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert weights["network_weights"]["sdm_head.conv.weight"].shape[0] == 3  # one map per region
    from ImprovedNNUNetLib.inference import load_model

    case = read_image(region_dataset.raw / "imagesTr" / "chest_001_0000.nii.gz")
    ours = load_model(folder, folds=0, device="cpu").predict(case, sdm=True, tta=False)
    assert len(ours.distance_maps) == 3
    for image in ours.distance_maps.values():
        assert image.array.min() >= -1.0 and image.array.max() <= 1.0

    # nnU-Net's own predictor builds the network from the trainer class alone: the head takes the checkpoint's size.
    # Its search for the class by name imports every trainer module of nnU-Net, which dies here on the torchvision
    # wheel that does not load with torch 2.13's CPU build (users point nnUNet_extTrainer at the project's
    # trainers); the class is handed over directly, the rest is nnU-Net's own code.
    import nnunetv2.inference.predict_from_raw_data as nnunet_predict
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    from ImprovedNNUNetTrainingLib.trainers.sdm import nnUNetTrainerSDM

    monkeypatch.setattr(nnunet_predict, "recursive_find_trainer_class_by_name", lambda name: nnUNetTrainerSDM)

    predictor = nnUNetPredictor(tile_step_size=0.5, use_mirroring=False, device=torch.device("cpu"),
                                verbose=False, verbose_preprocessing=False, allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(folder), use_folds=(0,), checkpoint_name="checkpoint_final.pth")
    source = tmp_path / "in"
    source.mkdir()
    shutil.copy(region_dataset.raw / "imagesTr" / "chest_001_0000.nii.gz", source)
    predictor.predict_from_files(str(source), str(tmp_path / "out"), save_probabilities=False, overwrite=True,
                                 num_processes_preprocessing=1, num_processes_segmentation_export=1)
    theirs = read_image(tmp_path / "out" / "chest_001.nii.gz").array
    assert np.array_equal(theirs, ours.segmentation.array)


@pytest.mark.parametrize("variant", ["baseline", "loss", "deepsup", "augment", "improved", "msf_deep"])
def test_every_other_variant_trains_on_regions(region_dataset, variant):
    """The variants that only change nnU-Net's loss weights, deep supervision or augmentation keep nnU-Net's region
    handling: one sigmoid output per region (a label model would have 4 softmax outputs)."""
    result = train_tiny(region_dataset, variant, 0, overwrite=True)
    assert result.status == "done", result
    weights = torch.load(result.fold_folder / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    heads = [k for k in weights["network_weights"] if ".seg_layers." in k and k.endswith(".weight")]
    assert heads and all(weights["network_weights"][k].shape[0] == 3 for k in heads)
