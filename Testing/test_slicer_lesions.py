"""The Segment panel's lesion table, its click that centres the slice views, the lesion error segments, and the
uncertainty overlay: real slicer-core scenes, the panel on the Qt double (Testing/slicer_shim)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import slicer_shim
from fixtures.slicer_scene import ct_block, load_volume, run_poll_timer_until_done
from ImprovedNNUNetLib.panels.scene.labelmaps import export_label_image, segment_infos
from ImprovedNNUNetLib.panels.scene.metrics_table import table_columns
from ImprovedNNUNetLib.panels.scene.segmentation import add_prediction_segmentation
from ImprovedNNUNetLib.panels.scene.volumes import add_volume_from_image

REPO = Path(__file__).resolve().parent.parent
LABELS = {"background": 0, "nodule": 1}


class Index:
    """The QModelIndex a QAbstractItemView's clicked(QModelIndex) passes: only ``row()`` is used."""

    def __init__(self, row: int):
        self._row = row

    def row(self) -> int:
        return self._row


@pytest.fixture
def panel(slicerio_data):
    module = slicer_shim.load_module(REPO / "ImprovedNNUNet" / "ImprovedNNUNet.py")
    import slicer

    slicer.mrmlScene.Clear(1)
    ct = load_volume(slicer.mrmlScene, slicerio_data / "CTChest4.nrrd")
    widget = module.ImprovedNNUNetWidget()
    widget.setup()
    yield module, widget, ct
    widget.cleanup()
    slicer.mrmlScene.Clear(1)


def lesion_images(ct):
    """Reference with three nodules (one missed), prediction with two of them and one false nodule, on the CT's
    grid (its geometry: LPS origin, spacing, direction)."""
    from ImprovedNNUNetLib.panels.scene.volumes import image_from_volume

    grid = image_from_volume(ct)
    ref = np.zeros(grid.array.shape, np.uint8)
    pred = np.zeros_like(ref)
    ref[5:9, 40:50, 40:50] = 1
    pred[5:9, 41:50, 40:50] = 1
    ref[14:17, 90:98, 70:78] = 1
    pred[14:17, 90:98, 71:78] = 1
    ref[25:28, 100:105, 20:25] = 1  # missed
    pred[2:4, 10:15, 100:106] = 1  # false
    return grid.with_array(pred), grid.with_array(ref)


def test_lesion_table_click_centres_the_views_and_errors_colour_lesions(panel):
    import slicer

    module, widget, ct = panel
    pred_image, ref_image = lesion_images(ct)
    prediction = add_prediction_segmentation(pred_image, LABELS, ct, "pred")
    reference = add_prediction_segmentation(ref_image, LABELS, ct, "ref")
    red = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSliceNode")
    red.SetLayoutName("Red")
    widget.logic.showTable = lambda table: None  # the application's table view is Qt
    parameters = widget._parameterNode
    parameters.outputSegmentation, parameters.reference, parameters.lesions = prediction, reference, True
    widget.ui.computeMetricsButton.emit("clicked(bool)", True)
    table = parameters.lesionTable
    assert table is not None and widget.ui.lesionTableView.mrmlTableNode is table
    columns = dict(table_columns(table))
    assert columns["Kind"] == ["missed", "false", "matched", "matched"]  # review order: misses first
    assert columns["Segment"] == ["nodule"] * 4 and columns["Lesion"] == [1, 2, 3, 4]
    assert columns["Dice"][0] == 0.0 and 0.9 < columns["Dice"][2] < columns["Dice"][3] < 1.0  # worst Dice first
    assert "4 lesion(s), 1 missed" in widget.ui.logTextEdit.plainText

    widget.ui.lesionTableView.emit("clicked(QModelIndex)", Index(0))  # the missed nodule
    centre_ijk = np.array([22.0, 102.0, 26.0])  # (i, j, k) = (x, y, z) index of its centre
    ijk_to_ras = slicer.util.arrayFromVTKMatrix(_matrix(ct))
    expected = (ijk_to_ras @ np.append(centre_ijk, 1.0))[:3]
    slice_to_ras = red.GetSliceToRAS()
    assert [slice_to_ras.GetElement(i, 3) for i in range(3)] == pytest.approx(expected.tolist(), abs=1e-3)
    assert [columns[f"{a} (mm)"][0] for a in "RAS"] == pytest.approx(expected.tolist(), abs=1e-3)

    widget.ui.showErrorsButton.emit("clicked(bool)", True)
    errors = slicer.mrmlScene.GetFirstNodeByName("pred errors")
    names = [i.name for i in segment_infos(errors)]
    assert names == ["nodule FP", "nodule FN", "nodule missed lesions", "nodule false lesions"]
    exported = export_label_image(errors, [i for i in segment_infos(errors) if i.name == "nodule missed lesions"])
    assert np.count_nonzero(exported.array) == 3 * 5 * 5  # the whole missed nodule, nothing else


def _matrix(volume):
    import vtk

    matrix = vtk.vtkMatrix4x4()
    volume.GetIJKToRASMatrix(matrix)
    return matrix


def test_lesion_table_of_an_evaluation_without_lesions_is_refused(panel):
    module, widget, ct = panel
    from ImprovedNNUNetLib.core.errors import UserError

    with pytest.raises(UserError, match="lesion"):
        widget.logic.jumpToLesion(None, 0)


def test_segment_job_shows_the_uncertainty_overlay(panel, slicerio_data, trained_model):
    import slicer

    module, widget, _ = panel
    composite = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSliceCompositeNode")
    volume = add_volume_from_image(slicer.mrmlScene, ct_block(slicerio_data), "CT block")
    parameters = widget._parameterNode
    parameters.modelFolder = str(trained_model("baseline", (0,)))
    parameters.inputVolume0 = volume
    parameters.device = "cpu"
    parameters.uncertaintyMap = True
    widget.ui.applyButton.click()
    run_poll_timer_until_done(widget)
    node = slicer.mrmlScene.GetFirstNodeByName("CT block segmentation uncertainty")
    assert node is not None and composite.GetForegroundVolumeID() == node.GetID()
    values = slicer.util.arrayFromVolume(node)
    assert values.shape == slicer.util.arrayFromVolume(volume).shape
    assert 0.0 <= values.min() and values.max() <= 1.0 and values.max() > 0.0
    display = node.GetDisplayNode()
    assert display.GetColorNodeID() == "vtkMRMLPETProceduralColorNodePET-Heat" and display.GetApplyThreshold()
