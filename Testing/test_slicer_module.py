"""The ImprovedNNUNet module file driven like the panel: real slicer-core scene, real child process.

The Qt GUI cannot exist here, so the widget runs on the test doubles of Testing/slicer_shim
(widgets built from the .ui file; signals emitted by the test; dialogs logged because the
application double is in testing mode). Everything else is real.
"""
from pathlib import Path

import numpy as np
import pytest

import slicer_shim
from fixtures.slicer_scene import ct_block, load_segmentation, load_volume, run_poll_timer_until_done
from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.panels.scene.labelmaps import export_label_image, segment_infos
from ImprovedNNUNetLib.panels.scene.metrics_table import table_columns
from ImprovedNNUNetLib.panels.scene.volumes import add_volume_from_image

REPO = Path(__file__).resolve().parent.parent
TIMEOUT_S = 300


@pytest.fixture
def panel(slicerio_data):
    """(module, widget, CT node, reference segmentation node) in a cleared application scene."""
    module = slicer_shim.load_module(REPO / "ImprovedNNUNet" / "ImprovedNNUNet.py")
    import slicer

    slicer.mrmlScene.Clear(1)
    ct = load_volume(slicer.mrmlScene, slicerio_data / "CTChest4.nrrd")
    reference = load_segmentation(slicer.mrmlScene, slicerio_data / "Segmentation.seg.nrrd")
    widget = module.ImprovedNNUNetWidget()
    widget.setup()
    yield module, widget, ct, reference
    widget.cleanup()


@pytest.fixture
def small_ct(panel, slicerio_data):
    """A block of the CT so a whole panel run stays short."""
    import slicer

    return add_volume_from_image(slicer.mrmlScene, ct_block(slicerio_data), "CT block")


def test_the_first_volume_is_preselected_and_the_dependencies_reported(panel):
    _, widget, ct, _ = panel
    assert widget._parameterNode.inputVolume0 is ct
    assert widget.ui.dependenciesStatusLabel.text.startswith("Ready: torch")
    assert widget.ui.applyButton.enabled is False  # no model yet


def test_channel_selectors_follow_the_models_channels(panel, trained_model):
    _, widget, _, _ = panel
    assert widget.ui.modelSummaryLabel.text == "No model chosen."
    widget._parameterNode.modelFolder = str(trained_model("baseline", (0,)))
    assert widget.ui.inputVolume0Label.text == "CT:"
    # folds: 0, and 1 when another test of the session trained it
    assert widget.ui.modelSummaryLabel.text.startswith("nnUNetTrainer · nnUNetPlans (plain U-Net) · 3d_fullres · folds 0")
    assert widget.ui.inputVolume0Selector.visible and not widget.ui.inputVolume1Selector.visible
    assert widget.ui.applyButton.enabled is True and widget.ui.applyButton.text == "Apply"


def test_imported_models_are_listed(panel, trained_model, tmp_path, monkeypatch):
    from ImprovedNNUNetLib.inference.models import ENV_VAR, import_model

    monkeypatch.setenv(ENV_VAR, str(tmp_path / "models"))
    import_model(trained_model("baseline", (0,)), name="tiny-chest")
    _, widget, _, _ = panel
    widget.ui.refreshModelsButton.emit("clicked(bool)", True)
    assert widget.ui.modelComboBox.items == ["", "tiny-chest"]
    widget._parameterNode.installedModel = "tiny-chest"
    assert widget.ui.inputVolume0Label.text == "CT:"
    widget.ui.refreshModelsButton.emit("clicked(bool)", True)
    assert widget._parameterNode.installedModel == "tiny-chest"


def test_apply_segments_in_the_background_and_fills_the_output(panel, small_ct, trained_model):
    _, widget, _, _ = panel
    parameters = widget._parameterNode
    parameters.modelFolder = str(trained_model("baseline", (0,)))
    parameters.inputVolume0 = small_ct
    parameters.step = 1.0
    parameters.device = "cpu"
    widget.ui.applyButton.emit("clicked(bool)", True)
    assert widget.ui.applyButton.text == "Cancel" and widget._pollTimer.isActive()
    run_poll_timer_until_done(widget, TIMEOUT_S)
    output = parameters.outputSegmentation
    assert output is not None and output.GetName() == "CT block segmentation"
    assert [i.name for i in segment_infos(output)][:2] == ["ribs", "cervical vertebral column"]
    assert export_label_image(output, segment_infos(output)).array.shape == (12, 64, 64)
    assert widget.ui.progressBar.value == 100 and widget.ui.applyButton.text == "Apply"
    assert "Segmenting with" in widget.ui.logTextEdit.plainText


def test_apply_turns_into_cancel_which_ends_the_run(panel, small_ct, trained_model):
    import psutil

    _, widget, _, _ = panel
    parameters = widget._parameterNode
    parameters.modelFolder = str(trained_model("baseline", (0,)))
    parameters.inputVolume0 = small_ct
    widget.ui.applyButton.emit("clicked(bool)", True)
    tree = [psutil.Process(widget._job.process.pid)]
    widget.ui.applyButton.emit("clicked(bool)", True)  # the same button, now "Cancel"
    assert widget._job.stage == "cancelling"  # the click only sent the stop: the GUI never waits
    _, alive = psutil.wait_procs(tree, timeout=10)
    assert alive == []
    run_poll_timer_until_done(widget, TIMEOUT_S)
    assert widget.ui.applyButton.text == "Apply" and widget._job.stage == "cancelled"
    assert "cancelled:" in widget.ui.logTextEdit.plainText
    assert parameters.outputSegmentation is None


def test_compute_metrics_show_errors_and_export_csv(panel, tmp_path):
    module, widget, ct, reference = panel
    from ImprovedNNUNetLib.panels.scene.reference import reference_labels
    from ImprovedNNUNetLib.panels.scene.segmentation import add_prediction_segmentation

    labels = {"background": 0, "right lung": 1, "left lung": 2}
    image = reference_labels(reference, labels).image
    prediction = add_prediction_segmentation(image.with_array(np.roll(image.array, 1, axis=2)), labels, ct, "pred")
    shown = []
    widget.logic.showTable = shown.append  # the table view is part of the Qt GUI
    parameters = widget._parameterNode
    parameters.outputSegmentation = prediction
    parameters.reference = reference
    parameters.tau = 2.0
    assert widget.ui.computeMetricsButton.enabled and not widget.ui.exportCsvButton.enabled
    widget.ui.computeMetricsButton.emit("clicked(bool)", True)
    table = parameters.metricsTable
    assert shown == [table]
    columns = dict(table_columns(table))
    assert columns["Segment"] == ["right lung", "left lung"] and columns["NSD tolerance (mm)"] == [2.0, 2.0]
    assert 0 < columns["Dice"][0] < 1
    assert "reference segments matching no model label (ignored)" in widget.ui.logTextEdit.plainText

    widget.ui.showErrorsButton.emit("clicked(bool)", True)
    import slicer

    errors = slicer.mrmlScene.GetFirstNodeByName("pred errors")
    assert [i.name for i in segment_infos(errors)] == ["right lung FP", "right lung FN", "left lung FP", "left lung FN"]

    parameters.metricsCsv = str(tmp_path / "metrics.csv")
    assert widget.ui.exportCsvButton.enabled
    widget.ui.exportCsvButton.emit("clicked(bool)", True)
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("Segment,Label value,Dice") and len(lines) == 3


def test_install_without_the_pytorch_extension_says_what_to_do(panel):
    module, _, _, _ = panel
    with pytest.raises(UserError, match="install 'PyTorch' from the Extensions Manager"):
        module.ImprovedNNUNetLogic().installDependencies()


def test_logic_refuses_a_model_that_is_not_chosen(panel):
    module, widget, _, _ = panel
    with pytest.raises(UserError, match="no model chosen"):
        module.ImprovedNNUNetLogic().startSegmentationFromParameters(widget._parameterNode)
