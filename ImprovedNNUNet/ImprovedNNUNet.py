"""Slicer module ImprovedNNUNet: segment loaded volumes with a trained (improved) nnU-Net model,
compute metrics against a reference and show the errors.

This file is the Slicer-facing shell (module metadata, the parameter node, loading the .ui, the poll timer, the
Logic and the self-test entry); everything else is in ``ImprovedNNUNetLib`` (no Qt): the panel's behaviour in
``panels/segment_panel.py``, its logic in ``panels/logic.py``, which runs the prediction in a child process so
that the application never blocks.
"""
from typing import Annotated, Union

import qt
import slicer
from slicer import (
    vtkMRMLLabelMapVolumeNode,
    vtkMRMLScalarVolumeNode,
    vtkMRMLSegmentationNode,
    vtkMRMLTableNode,
)
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from ImprovedNNUNetLib.core.devices import DEVICE_CHOICES
from ImprovedNNUNetLib.panels.logic import SegmentPanelLogic
from ImprovedNNUNetLib.panels.segment_panel import SegmentPanel
from ImprovedNNUNetLib.panels.self_test import SegmentSelfTest

DEVICES = list(DEVICE_CHOICES)
MIRRORING = ["auto", "on", "off"]
RUN_ON = ["this computer", "server"]


class ImprovedNNUNet(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Improved nnU-Net")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = []
        self.parent.contributors = ["ImprovedNNUNet developers"]
        # Needs Slicer 5.10 or newer (Python 3.12; nnU-Net 2.8 needs Python 3.10 or newer).
        self.parent.helpText = _(
            "Segment volumes with nnU-Net v2 models trained with the improved variants (or stock nnU-Net), "
            "compare the result with a reference (Dice, IoU, sensitivity, specificity, HD, HD95, HD99.9, ASSD, "
            "NSD, volumes) and show its false positives and false negatives. "
            "See the <a href=\"https://github.com/ImprovedNNUNet/SlicerImprovedNNUNet#readme\">user guide</a>."
        )
        self.parent.acknowledgementText = _(
            "Built on nnU-Net v2 (Isensee et al., Nature Methods 2021) and 3D Slicer. The training variants "
            "follow the papers cited in the user guide."
        )


@parameterNodeWrapper
class ImprovedNNUNetParameterNode:
    """What the panel remembers in the scene.

    inputVolume0..3 - one volume per model input channel, in channel order.
    installedModel - name of an imported model (its combo box is filled at run time, so the widget
    keeps it in step, not the wrapper); modelFolder - a model folder, used when set.
    folds - e.g. "0,1" or "all"; empty means every trained fold.
    device - auto, cpu, cuda or mps. mirroring - auto, on or off. step - tile step.
    distanceMaps - also load the distance maps of SDM models; uncertaintyMap - also load the uncertainty map
    and show it over the slices.
    outputSegmentation - segmentation to fill; None creates a new one.
    reference - segmentation or labelmap to evaluate against; tau - NSD tolerance (mm).
    metricsTable - table to fill; None creates a new one. metricsCsv - CSV export file.
    lesions - also the lesion-wise metrics; lesionTable - their table (one row per lesion).
    runOn - "this computer" or "server" (the server's address and key are application settings, never the scene's).
    """

    inputVolume0: vtkMRMLScalarVolumeNode
    inputVolume1: vtkMRMLScalarVolumeNode
    inputVolume2: vtkMRMLScalarVolumeNode
    inputVolume3: vtkMRMLScalarVolumeNode
    installedModel: str = ""
    modelFolder: str = ""
    folds: str = ""
    device: Annotated[str, Choice(DEVICES)] = "auto"
    mirroring: Annotated[str, Choice(MIRRORING)] = "auto"
    step: Annotated[float, WithinRange(0.1, 1.0)] = 0.5
    distanceMaps: bool = False
    uncertaintyMap: bool = False
    outputSegmentation: vtkMRMLSegmentationNode
    reference: Union[vtkMRMLSegmentationNode, vtkMRMLLabelMapVolumeNode, None]
    tau: Annotated[float, WithinRange(0.0, 100.0)] = 1.0
    metricsTable: vtkMRMLTableNode
    metricsCsv: str = ""
    lesions: bool = False
    lesionTable: vtkMRMLTableNode
    runOn: Annotated[str, Choice(RUN_ON)] = "this computer"


class ImprovedNNUNetWidget(SegmentPanel, ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The panel: its behaviour is ``ImprovedNNUNetLib.panels.segment_panel.SegmentPanel``."""

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._job = None
        self._pollTimer = None
        self._fillingModels = False

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/ImprovedNNUNet.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = ImprovedNNUNetLogic()

        self._pollTimer = qt.QTimer()
        self.settings = qt.QSettings()  # Slicer's application settings: the server's address and key
        self.connectPanel()


class ImprovedNNUNetLogic(SegmentPanelLogic, ScriptedLoadableModuleLogic):
    """Scripting entry point: the methods of ``ImprovedNNUNetLib.panels.logic.SegmentPanelLogic`` (models,
    segmentation, evaluation, dependencies), plus this module's parameter node and showing a table in the
    application's layout."""

    def getParameterNode(self):
        return ImprovedNNUNetParameterNode(super().getParameterNode())

    @staticmethod
    def showTable(tableNode):
        """Show a table node in the application's table view (full Slicer only)."""
        slicer.app.layoutManager().setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpTableView)
        slicer.app.applicationLogic().GetSelectionNode().SetActiveTableID(tableNode.GetID())
        slicer.app.applicationLogic().PropagateTableSelection()


class ImprovedNNUNetTest(SegmentSelfTest, ScriptedLoadableModuleTest):
    """Self-test on a synthetic chest-like volume and its 3-segment reference (no trained model needed):
    ``ImprovedNNUNetLib.panels.self_test``."""

    Logic = ImprovedNNUNetLogic
