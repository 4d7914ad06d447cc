"""Every variant trains 2 epochs end to end on the tiny chest dataset, and its model folder segments a CT through
the product's own loader and predict command (the ones users run)."""
import json

import numpy as np
import pytest
import torch

from ImprovedNNUNetLib.cli.main import main
from ImprovedNNUNetLib.core.imageio import read_image, write_image
from ImprovedNNUNetLib.inference import load_model
from ImprovedNNUNetTrainingLib.engine.progress import read_events
from ImprovedNNUNetTrainingLib.engine.registry import VARIANTS


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_trains_and_predicts_through_the_product(trained_model, variant, chest_volume, tmp_path):
    model_folder = trained_model(variant)
    fold = model_folder / "fold_0"
    assert model_folder.name == f"{VARIANTS[variant].__name__}__nnUNetPlans__3d_fullres"
    assert (fold / "checkpoint_final.pth").is_file()

    events = read_events(fold / "progress.jsonl")
    epoch_ends = [e for e in events if e["stage"] == "training" and e["val_loss"] is not None]
    assert [e["epoch"] for e in epoch_ends] == [0, 1]
    assert all(np.isfinite(e["train_loss"]) and e["epoch_time_s"] > 0 for e in epoch_ends)
    assert events[-1]["stage"] == "done"

    settings = json.loads((fold / "variant_settings.json").read_text())
    assert settings["variant"] == variant and settings["num_epochs"] == 2
    assert settings["num_iterations_per_epoch"] == 2 and settings["device"] == "cpu"

    model = load_model(model_folder, folds=[0], device="cpu")
    assert model.trainer_class is VARIANTS[variant]
    assert model.has_distance_head == (variant == "sdm")
    patch = model.configuration_manager.patch_size
    with torch.no_grad():
        output = model.network(torch.randn(1, 1, *patch))
    assert isinstance(output, torch.Tensor), "inference output must be the plain segmentation logits"
    assert output.shape == (1, 8, *patch)

    image = tmp_path / "images" / "chest_0000.nii.gz"
    write_image(chest_volume, image)
    extra = ["--sdm"] if variant == "sdm" else []
    assert main(["predict", "-i", str(image.parent), "-o", str(tmp_path / "out"), "-m", str(model_folder),
                 "-f", "0", "--device", "cpu", *extra]) == 0
    segmentation = read_image(tmp_path / "out" / "chest.nii.gz")
    assert segmentation.same_grid(chest_volume)
    np.testing.assert_array_equal(segmentation.array, model.predict([chest_volume]).segmentation.array)
    if variant == "sdm":
        assert len(list((tmp_path / "out").glob("chest_sdm_*.nii.gz"))) == 7


def test_variant_settings_hold_the_effective_numbers(trained_model):
    def settings(variant):
        return json.loads((trained_model(variant) / "fold_0" / "variant_settings.json").read_text())

    improved = settings("improved")
    assert improved["loss"] == {"dice_weight": 1.5, "ce_weight": 0.5,
                                "deep_supervision_weights": pytest.approx([0.8, 0.2, 0.0])}
    assert improved["variant_hyperparameters"]["deep_supervision_decay"] == 4.0
    assert settings("baseline")["loss"]["deep_supervision_weights"] == pytest.approx([2 / 3, 1 / 3, 0.0])
    msf = settings("msf")
    assert msf["msf_stage2_start_epoch"] == 1
    assert {k: msf["variant_hyperparameters"][k] for k in ("msf_weight", "msf_dilation_radius", "msf_stage1_fraction")} \
        == {"msf_weight": 1.0, "msf_dilation_radius": 2, "msf_stage1_fraction": 0.5}
    assert settings("sdm")["variant_hyperparameters"] == {"sdm_weight": 1.0}
    assert settings("msf_deep")["variant_hyperparameters"]["max_features"] == 512
