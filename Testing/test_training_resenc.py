"""nnU-Net's residual-encoder presets: `prepare --planner ResEncM` writes its plans beside the default
ones, every variant trains on them (msf_deep's deeper encoder and the sdm head included), and the
model is addressed by its plans for prediction."""
import json

import numpy as np
import pytest
import torch

from fixtures.training import train_tiny
from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.inference import load_model
from ImprovedNNUNetTrainingLib.engine.registry import VARIANTS

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
    from ImprovedNNUNetTrainingLib.engine.prepare import prepare_dataset

    monkeypatch.setenv("nnUNet_preprocessed", str(tiny_dataset.preprocessed.parent))
    with pytest.raises(UserError, match=f"already has {resenc_plans}.json; pass --overwrite"):
        prepare_dataset(str(tiny_dataset.raw), ["3d_fullres"], planner="nnUNetPlannerResEncM")
    with pytest.raises(UserError, match="unknown planner 'ResEncXXL'; use one of ExperimentPlanner, "):
        prepare_dataset(str(tiny_dataset.raw), ["3d_fullres"], planner="ResEncXXL")


def test_unprepared_plans_name_the_planner_to_run(tiny_dataset, resenc_plans, monkeypatch):
    from ImprovedNNUNetTrainingLib.engine.run_checks import TrainOptions, check_run

    monkeypatch.setenv("nnUNet_preprocessed", str(tiny_dataset.preprocessed.parent))
    monkeypatch.setenv("nnUNet_results", str(tiny_dataset.results.parent))
    with pytest.raises(UserError, match=r"nnUNetResEncUNetLPlans.json not found \(it has nnUNetPlans, "
                                        r"nnUNetResEncUNetMPlans\); run `improved-nnunet prepare --planner "
                                        r"nnUNetPlannerResEncL`"):
        check_run(TrainOptions(tiny_dataset.name, "baseline", plans="nnUNetResEncUNetLPlans"))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_trains_on_the_resenc_preset(tiny_dataset, resenc_plans, variant):
    result = train_tiny(tiny_dataset, variant, 0, plans=resenc_plans, overwrite=True, epochs=1)
    assert result.status == "done"
    model_folder = result.fold_folder.parent
    assert model_folder.name == f"{VARIANTS[variant].__name__}__{resenc_plans}__3d_fullres"
    assert (result.fold_folder / "checkpoint_final.pth").is_file()

    trained = load_model(model_folder, folds=[0], device="cpu")  # the product's loader
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


def test_fine_tuning_validation_only_and_val_best(tiny_dataset, trained_model, tmp_path, capsys):
    """-pretrained_weights (into the sdm variant, whose head starts fresh), --val --npz on the finished
    fold, and the one-line errors of the flags' rules."""

    source = trained_model("baseline") / "fold_0" / "checkpoint_final.pth"
    root = tmp_path / "results"
    result = train_tiny(tiny_dataset, "sdm", 0, results_root=root, epochs=1, pretrained_weights=str(source))
    assert result.status == "done"
    pretrained = torch.load(source, map_location="cpu", weights_only=False)["network_weights"]
    before_training = {k: v for k, v in pretrained.items() if k.startswith("encoder.stages.0")}
    tuned = torch.load(result.fold_folder / "checkpoint_final.pth", map_location="cpu",
                       weights_only=False)["network_weights"]
    assert any(k.startswith("sdm_head.") for k in tuned)
    # one epoch of two iterations moves the weights only a little from the pretrained ones
    key = next(iter(before_training))
    assert torch.allclose(tuned[key], before_training[key], atol=0.05)

    validated = train_tiny(tiny_dataset, "sdm", 0, results_root=root, validation_only=True, final_validation=True,
                           save_probabilities=True)
    assert validated.status == "done"
    assert (result.fold_folder / "validation" / "summary.json").is_file()
    assert list((result.fold_folder / "validation").glob("*.npz"))
    best = train_tiny(tiny_dataset, "sdm", 0, results_root=root, validation_only=True, final_validation=True,
                      val_best=True)
    assert best.status == "done"
    events = [json.loads(line) for line in (result.fold_folder / "progress.jsonl").read_text().splitlines()]
    assert events[-2]["message"] == "predicting the validation cases with checkpoint_best.pth"

    with pytest.raises(UserError, match="cannot be combined with --continue"):
        train_tiny(tiny_dataset, "sdm", 0, results_root=root, continue_training=True, pretrained_weights=str(source))
    with pytest.raises(UserError, match="no such file"):
        train_tiny(tiny_dataset, "sdm", 1, results_root=root, pretrained_weights=str(tmp_path / "none.pth"))
    with pytest.raises(UserError, match="--val: .*checkpoint_final.pth not found"):
        train_tiny(tiny_dataset, "sdm", 1, results_root=root, validation_only=True, final_validation=True)
    with pytest.raises(UserError, match="--val-best needs checkpoint_best.pth"):
        train_tiny(tiny_dataset, "sdm", 0, results_root=root, val_best=True, disable_checkpointing=True)
    with pytest.raises(UserError, match="does not fit this network"):
        train_tiny(tiny_dataset, "msf_deep", 0, results_root=root, pretrained_weights=str(source))
    deep = root / tiny_dataset.name / "nnUNetTrainerMSFDeep__nnUNetPlans__3d_fullres" / "fold_0"
    assert not deep.is_dir() or not any(deep.iterdir()), "a refused checkpoint leaves nothing to --overwrite"
