"""nnU-Net's residual-encoder presets: `prepare --planner ResEncM` writes its plans beside the default
ones, every variant trains on them (msf_deep's deeper encoder and the sdm head included), and the
model is addressed by its plans for prediction."""
import io
import json

import numpy as np
import pytest
import torch

from ImprovedNNUNetLib.errors import UserError
from ImprovedNNUNetTrainingLib.checkpoints import load_trained_network
from ImprovedNNUNetTrainingLib.registry import VARIANTS

from fixtures.training import train_tiny

RESIDUAL_ENCODER = "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"


def test_resenc_plans_sit_beside_the_default_plans(tiny_dataset, resenc_plans):
    default = json.loads((tiny_dataset.preprocessed / "nnUNetPlans.json").read_text())
    resenc = json.loads((tiny_dataset.preprocessed / f"{resenc_plans}.json").read_text())
    assert resenc["plans_name"] == resenc_plans
    assert resenc["configurations"]["3d_fullres"]["architecture"]["network_class_name"] == RESIDUAL_ENCODER
    assert default["configurations"]["3d_fullres"]["architecture"]["network_class_name"] != RESIDUAL_ENCODER
    data = tiny_dataset.preprocessed / resenc["configurations"]["3d_fullres"]["data_identifier"]
    assert len(list(data.glob("*.b2nd"))) + len(list(data.glob("*.npz"))) + len(list(data.glob("*.npy"))) >= 6


def test_planning_the_same_preset_again_needs_overwrite(tiny_dataset, resenc_plans, monkeypatch):
    from ImprovedNNUNetTrainingLib.prepare import prepare_dataset

    monkeypatch.setenv("nnUNet_preprocessed", str(tiny_dataset.preprocessed.parent))
    with pytest.raises(UserError, match=f"already has {resenc_plans}.json; pass --overwrite"):
        prepare_dataset(str(tiny_dataset.raw), ["3d_fullres"], planner="nnUNetPlannerResEncM")
    with pytest.raises(UserError, match="unknown planner 'ResEncXXL'; use one of ExperimentPlanner, "):
        prepare_dataset(str(tiny_dataset.raw), ["3d_fullres"], planner="ResEncXXL")


def test_unprepared_plans_name_the_planner_to_run(tiny_dataset, resenc_plans, monkeypatch):
    from ImprovedNNUNetTrainingLib.run_plan import TrainOptions, plan_run

    monkeypatch.setenv("nnUNet_preprocessed", str(tiny_dataset.preprocessed.parent))
    monkeypatch.setenv("nnUNet_results", str(tiny_dataset.results.parent))
    with pytest.raises(UserError, match=r"nnUNetResEncUNetLPlans.json not found \(it has nnUNetPlans, "
                                        r"nnUNetResEncUNetMPlans\); run `improved-nnunet prepare --planner "
                                        r"nnUNetPlannerResEncL`"):
        plan_run(TrainOptions(tiny_dataset.name, "baseline", plans="nnUNetResEncUNetLPlans"))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_trains_on_the_resenc_preset(tiny_dataset, resenc_plans, variant):
    result = train_tiny(tiny_dataset, variant, 0, plans=resenc_plans, overwrite=True, epochs=1)
    assert result.status == "done"
    model_folder = result.fold_folder.parent
    assert model_folder.name == f"{VARIANTS[variant].__name__}__{resenc_plans}__3d_fullres"
    assert (result.fold_folder / "checkpoint_final.pth").is_file()

    trained = load_trained_network(model_folder, 0)
    network = trained.network
    assert type(network).__name__ == "ResidualEncoderUNet"
    planned_blocks = trained.configuration_manager.network_arch_init_kwargs["n_blocks_per_stage"]
    blocks = [len(stage.blocks) for stage in network.encoder.stages]
    widths = [stage.output_channels for stage in network.encoder.stages]
    if variant == "msf_deep":  # one residual block more per stage, widths doubling up to 512
        assert blocks == [b + 1 for b in planned_blocks]
        assert widths == [min(8 * 2 ** i, 512) for i in range(len(widths))]
    else:
        assert blocks == list(planned_blocks)
    assert hasattr(network, "sdm_head") == (variant == "sdm")
    patch = trained.configuration_manager.patch_size
    with torch.no_grad():
        output = network(torch.randn(1, 1, *patch))
    assert isinstance(output, torch.Tensor) and output.shape == (1, 8, *patch)
    assert np.isfinite(output.numpy()).all()
    from ImprovedNNUNetLib.inference import open_model_folder

    assert open_model_folder(model_folder).summary == \
        f"{VARIANTS[variant].__name__} · {resenc_plans} (residual encoder) · 3d_fullres · folds 0"
