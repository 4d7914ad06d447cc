"""The module's Logic (ImprovedNNUNetTraining.py) as scripts use it: real slicer-core scenes and
nodes, real files; the Slicer application parts come from the test shim (no Qt here)."""
import os
from pathlib import Path

import pytest

import slicer_shim
from ImprovedNNUNetLib.core.errors import UserError

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def modules():
    """Both scripted modules loaded as Slicer loads them (the inference module receives "Use this model")."""
    inference = slicer_shim.load_module(REPO / "ImprovedNNUNet" / "ImprovedNNUNet.py")
    training = slicer_shim.load_module(REPO / "ImprovedNNUNetTraining" / "ImprovedNNUNetTraining.py")
    return inference, training


@pytest.fixture
def logic(modules):
    """The training module's logic; the scene (and its parameter nodes) is cleared afterwards."""
    import slicer

    yield modules[1].ImprovedNNUNetTrainingLogic()
    slicer.mrmlScene.Clear()


def test_scene_cases_export_through_the_logic(logic, chest_scene, empty_nnunet_folders):
    import slicer

    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(chest_scene.scene)
    folder = hierarchy.CreateFolderItem(hierarchy.GetSceneItemID(), "slab case")
    hierarchy.CreateItem(folder, chest_scene.add_slab("slab", 10, 20))
    hierarchy.CreateItem(folder, chest_scene.read_segmentation("slab segmentation"))
    checked = logic.checkSceneDataset([(chest_scene.volume, chest_scene.segmentation)], [folder], "CT", chest_scene.scene)
    assert [c.name for c in checked.cases] == ["CTChest", "slab_case"] and checked.ok
    result = logic.exportSceneDataset(checked, "FromLogic")
    assert result.folder.parent == empty_nnunet_folders["nnUNet_raw"]
    assert len(list((result.folder / "labelsTr").iterdir())) == 2
    with pytest.raises(UserError, match="no cases chosen"):
        logic.checkSceneDataset([], [], "CT")


def test_panel_folders_reach_actions_and_children_but_never_the_environment(logic, validation_layout, monkeypatch,
                                                                           tmp_path):
    """The panel's nnU-Net folders are passed explicitly (over the environment, which stays as it was)."""
    raw, _ = validation_layout
    assert logic.useRawDataset(raw).full_name == raw.name
    monkeypatch.setenv("nnUNet_raw", str(tmp_path))
    with pytest.raises(UserError, match="is not inside nnUNet_raw"):
        logic.useRawDataset(raw)
    environment = dict(os.environ)
    parameters = logic.getParameterNode()
    parameters.rawFolder = str(raw.parent)
    folders = logic.folderSettings(parameters)
    assert folders == {"nnUNet_raw": str(raw.parent)}
    assert logic.useRawDataset(raw, folders).dataset_id == 987  # the panel's raw folder wins over the environment
    parameters.dataset = raw.name
    request = logic.requestFromParameters(parameters)
    assert request.folders == folders and request.dataset_name == raw.name
    assert dict(os.environ) == environment


def test_request_from_panel_parameters(logic, empty_nnunet_folders):
    parameters = logic.getParameterNode()
    parameters.dataset, parameters.variant, parameters.folds = "Dataset987_TinyChest", "augment", "0, 2"
    parameters.epochs, parameters.iterationsPerEpoch, parameters.validationIterationsPerEpoch = 5, 3, 2
    parameters.planner = "nnUNetPlannerResEncL"
    text = logic.hyperparametersText("augment").replace("noise_probability = 0.15", "noise_probability = 0.25")
    request = logic.requestFromParameters(parameters, text)
    assert (request.folds, request.epochs, request.iterations_per_epoch, request.validation_iterations_per_epoch) == \
        ([0, 2], 5, 3, 2)
    assert request.hyperparameters == {"noise_probability": 0.25}
    assert request.plans == "nnUNetResEncUNetLPlans"
    assert request.train_arguments(0, "new")[-2:] == ["--set", "noise_probability=0.25"]


def test_compare_fills_a_table_node(logic, validation_layout):
    import slicer

    scene = slicer.vtkMRMLScene()
    table, text = logic.compareRuns("987", scene=scene)
    assert table.GetScene() is scene and "Dice (%)" in text
    assert table.GetNumberOfRows() == 4 * 7  # baseline folds 0, 1 and pooled; loss fold 0; 7 labels each
    columns = [table.GetColumnName(i) for i in range(table.GetNumberOfColumns())]
    assert columns[:5] == ["variant", "trainer", "plans", "configuration", "fold"] and "NSD_sd" in columns
    dice = table.GetTable().GetColumnByName("Dice_mean")
    variants = table.GetTable().GetColumnByName("variant")
    assert {variants.GetValue(r) for r in range(table.GetNumberOfRows())} == {"baseline", "loss"}
    assert all(0.0 <= dice.GetValue(r) <= 1.0 or dice.GetValue(r) != dice.GetValue(r) for r in range(28))


def test_use_this_model_sets_the_inference_modules_model_folder(modules, logic, trained_model):
    folder = trained_model("baseline")
    assert logic.useModel(folder) == folder
    assert Path(modules[0].ImprovedNNUNetLogic().getParameterNode().modelFolder) == folder
    with pytest.raises(UserError):
        logic.useModel(folder / "fold_0")
