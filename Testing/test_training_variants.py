"""Every variant trains 2 epochs end to end on the tiny chest dataset and its checkpoint loads for inference."""
import json

import numpy as np
import pytest
import torch

from ImprovedNNUNetTrainingLib.checkpoints import load_trained_network
from ImprovedNNUNetTrainingLib.progress import read_events
from ImprovedNNUNetTrainingLib.registry import VARIANTS


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_trains_and_loads_for_inference(trained_model, variant):
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

    trained = load_trained_network(model_folder, 0)
    assert trained.trainer_class is VARIANTS[variant]
    patch = trained.configuration_manager.patch_size
    with torch.no_grad():
        output = trained.network(torch.randn(1, 1, *patch))
    assert isinstance(output, torch.Tensor), "inference output must be the plain segmentation logits"
    assert output.shape == (1, 8, *patch)


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
