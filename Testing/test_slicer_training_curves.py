"""Training curves as table and plot chart nodes in a real slicer-core scene, and the job's
command lines and resume decisions on real nnU-Net folder layouts."""
import math

import pytest

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetTrainingLib.panels.training_curves import TrainingCurves
from ImprovedNNUNetTrainingLib.panels.training_request import TrainingRequest, variant_defaults


def epoch_event(epoch, train_loss, val_loss=None, pseudo_dice=None):
    return {"stage": "training", "epoch": epoch, "num_epochs": 3, "iteration": 4, "num_iterations": 4,
            "train_loss": train_loss, "val_loss": val_loss, "pseudo_dice": pseudo_dice, "epoch_time_s": 1.5}


def test_curves_nodes_follow_epoch_events():
    import slicer

    scene = slicer.vtkMRMLScene()
    curves = TrainingCurves(scene, "improved fold 0")
    mid_epoch = {"stage": "training", "epoch": 0, "iteration": 2, "num_iterations": 4, "train_loss": 1.3}
    assert not curves.add_event(mid_epoch) and curves.table.GetNumberOfRows() == 0
    assert not curves.add_event({"stage": "planning", "message": "fingerprint"})
    assert curves.add_event(epoch_event(0, 1.2, 1.1, [0.1, 0.3]))
    assert curves.add_event(epoch_event(1, 0.9, None, 0.5))
    assert curves.add_event(epoch_event(0, 1.25, 1.0, 0.25))  # a resumed run reports epoch 0 again

    assert curves.table.GetNumberOfRows() == 2
    assert list(curves.values("epoch")) == [0, 1]
    assert list(curves.values("train_loss")) == [1.25, 0.9]
    assert curves.values("val_loss")[0] == 1.0 and math.isnan(curves.values("val_loss")[1])
    assert list(curves.values("pseudo_dice")) == [0.25, 0.5]

    loss_chart, dice_chart = curves.charts["loss"], curves.charts["pseudo Dice"]
    assert loss_chart.GetNumberOfPlotSeriesNodes() == 2 and dice_chart.GetNumberOfPlotSeriesNodes() == 1
    series = scene.GetNodeByID(dice_chart.GetNthPlotSeriesNodeID(0))
    assert series.GetTableNodeID() == curves.table.GetID()
    assert (series.GetXColumnName(), series.GetYColumnName()) == ("epoch", "pseudo_dice")

    assert curves.add_events([epoch_event(2, 0.7, 0.8, 0.6), mid_epoch]) == 1
    assert list(curves.values("epoch")) == [0, 1, 2]
    curves.remove()
    for cls in ("vtkMRMLTableNode", "vtkMRMLPlotSeriesNode", "vtkMRMLPlotChartNode"):
        assert scene.GetNumberOfNodesByClass(cls) == 0


def test_variant_defaults_are_the_spec_numbers():
    improved = variant_defaults("improved")
    assert (improved["dice_weight"], improved["ce_weight"], improved["deep_supervision_decay"]) == (1.5, 0.5, 4.0)
    assert improved["rotation_probability"] == 0.3 and improved["noise_probability"] == 0.15
    assert list(improved["noise_variance"]) == [0.0, 0.2] and list(improved["low_resolution_scale"]) == [0.7, 1.0]
    assert improved["low_resolution_probability"] == 0.3
    assert variant_defaults("sdm")["sdm_weight"] == 1.0
    msf = variant_defaults("msf")
    assert (msf["msf_weight"], msf["msf_dilation_radius"], msf["msf_stage1_fraction"]) == (1.0, 2, 0.5)
    assert variant_defaults("baseline") == {}


def test_steps_follow_the_folders_on_disk(empty_nnunet_folders):
    raw = empty_nnunet_folders["nnUNet_raw"] / "Dataset321_Steps"
    raw.mkdir()
    request = TrainingRequest("321", variant="loss", configuration="3d_fullres", folds=[0, 1, 2], epochs=2,
                              iterations_per_epoch=3, hyperparameters={"dice_weight": 2.0})
    steps = request.steps(resume=False)
    assert [s.kind for s in steps] == ["prepare", "train", "train", "train"]
    assert steps[0].arguments == ["prepare", "Dataset321_Steps", "--config", "3d_fullres", "--planner",
                                  "ExperimentPlanner", "--json"]
    assert steps[1].arguments == ["train", "Dataset321_Steps", "--variant", "loss", "--config", "3d_fullres",
                                  "--plans", "nnUNetPlans", "--fold", "0", "--device", "auto", "--json", "--epochs", "2",
                                  "--iters-per-epoch", "3",
                                  "--set", "dice_weight=2.0"]

    preprocessed = empty_nnunet_folders["nnUNet_preprocessed"] / "Dataset321_Steps"
    (preprocessed / "nnUNetPlans_3d_fullres").mkdir(parents=True)
    (preprocessed / "nnUNetPlans.json").write_text('{"configurations": {"3d_fullres": {}}}')
    model = request.model_folder()
    assert model == empty_nnunet_folders["nnUNet_results"] / "Dataset321_Steps" / "nnUNetTrainerLoss__nnUNetPlans__3d_fullres"
    (model / "fold_0").mkdir(parents=True)
    (model / "fold_0" / "checkpoint_final.pth").write_bytes(b"")
    (model / "fold_1").mkdir()
    (model / "fold_1" / "checkpoint_latest.pth").write_bytes(b"")

    with pytest.raises(UserError, match="fold 0 of loss already holds a run.*Resume"):
        request.steps(resume=False)
    resumed = request.steps(resume=True)
    assert [(s.fold, s.arguments[-1]) for s in resumed] == [("1", "--continue"), ("2", "dice_weight=2.0")]
    request.overwrite = True
    assert [s.arguments[-1] for s in request.steps(resume=False)] == ["--overwrite", "--overwrite", "dice_weight=2.0"]
    with pytest.raises(UserError, match="no fold selected"):
        TrainingRequest("321", folds=[]).steps(resume=False)

    # the residual-encoder preset: planned when its plans are missing, its own model folder
    resenc = TrainingRequest("321", variant="loss", folds=[0], planner="nnUNetPlannerResEncM")
    assert resenc.model_folder().name == "nnUNetTrainerLoss__nnUNetResEncUNetMPlans__3d_fullres"
    first, train = resenc.steps(resume=False)
    assert first.arguments[first.arguments.index("--planner") + 1] == "nnUNetPlannerResEncM"
    assert train.arguments[train.arguments.index("--plans") + 1] == "nnUNetResEncUNetMPlans"
    with pytest.raises(UserError, match="unknown planner 'ResEncXXL'"):
        TrainingRequest("321", planner="ResEncXXL").model_folder()
