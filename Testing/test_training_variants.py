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
