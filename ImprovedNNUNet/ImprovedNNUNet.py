"""Slicer module ImprovedNNUNet: segment loaded volumes with a trained (improved) nnU-Net model.

The widget only collects choices and shows progress; all work happens in
``ImprovedNNUNetLib`` (plain Python, no Qt), which runs the prediction in a child
process so that the application never blocks.
"""
import importlib
import sys
from pathlib import Path

import qt
import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

LIB_PACKAGE = "ImprovedNNUNetLib"
POLL_INTERVAL_MS = 200


class ImprovedNNUNet(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Improved nnU-Net")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = []
        self.parent.contributors = ["ImprovedNNUNet developers"]
        self.parent.helpText = _(
            "Segment volumes with nnU-Net v2 models trained with the improved variants (or stock nnU-Net), "
            "compare the result with a reference and show its false positives and false negatives. "
            "See the <a href=\"https://github.com/ImprovedNNUNet/ImprovedNNUNet#readme\">user guide</a>."
        )
        self.parent.acknowledgementText = _(
            "Built on nnU-Net v2 (Isensee et al., Nature Methods 2021) and 3D Slicer. The training variants "
            "follow the papers cited in the user guide."
        )


@parameterNodeWrapper
class ImprovedNNUNetParameterNode:
    """What the panel remembers in the scene.

    inputVolume - the volume to segment (first model channel).
    modelFolder - trained model folder (dataset.json, plans.json, fold_N/).
    device - auto, cpu or cuda.
    outputSegmentation - segmentation to fill; None creates a new one.
    """

    inputVolume: vtkMRMLScalarVolumeNode
    modelFolder: str
    device: str = "auto"
    outputSegmentation: vtkMRMLSegmentationNode


class ImprovedNNUNetWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._job = None
        self._pollTimer = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/ImprovedNNUNet.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = ImprovedNNUNetLogic()

        self._pollTimer = qt.QTimer()
        self._pollTimer.connect("timeout()", self.onPollTimer)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.initializeParameterNode()

    def cleanup(self):
        self.removeObservers()
        if self._job is not None and self._job.running:
            self._job.cancel()

    def enter(self):
        self.initializeParameterNode()

    def exit(self):
        self.setParameterNode(None)

    def onSceneStartClose(self, caller, event):
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def onReload(self):
        """Developer mode: reload the Lib package's modules (innermost first), then this module."""
        for name in sorted((n for n in sys.modules if n.split(".")[0] == LIB_PACKAGE), reverse=True):
            importlib.reload(sys.modules[name])
        ScriptedLoadableModuleWidget.onReload(self)

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            self._parameterNode.inputVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")

    def setParameterNode(self, parameterNode):
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateApplyButton)
        self._parameterNode = parameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateApplyButton)
            self._updateApplyButton()

    def _updateApplyButton(self, caller=None, event=None):
        running = self._job is not None and self._job.running
        ready = bool(self._parameterNode and self._parameterNode.inputVolume and self._parameterNode.modelFolder)
        self.ui.applyButton.text = _("Cancel") if running else _("Apply")
        self.ui.applyButton.enabled = running or ready

    def onApplyButton(self):
        if self._job is not None and self._job.running:
            self._job.cancel()
            return
        parameters = self._parameterNode
        try:
            self._job = self.logic.startSegmentation(
                [parameters.inputVolume], parameters.modelFolder, parameters.device, parameters.outputSegmentation
            )
        except Exception as exc:  # UserError and anything unexpected reach the user in one dialog
            slicer.util.errorDisplay(_("Segmentation could not start: {error}").format(error=exc))
            return
        self.ui.progressBar.value = 0
        self._pollTimer.start(POLL_INTERVAL_MS)
        self._updateApplyButton()

    def onPollTimer(self):
        output = self._job.poll()
        for line in output.log:
            self.ui.logTextEdit.appendPlainText(line)
        self.ui.progressBar.value = int(round(100 * self._job.progress))
        if not output.finished:
            return
        self._pollTimer.stop()
        self._updateApplyButton()
        if self._job.stage == "done":
            self._parameterNode.outputSegmentation = self._job.load_result().segmentation
        elif self._job.stage != "cancelled":
            slicer.util.errorDisplay(_("Segmentation failed: {error}").format(error=self._job.process.last_error_line))


class ImprovedNNUNetLogic(ScriptedLoadableModuleLogic):
    """Entry point for scripts; delegates to ``ImprovedNNUNetLib``."""

    def getParameterNode(self):
        return ImprovedNNUNetParameterNode(super().getParameterNode())

    def startSegmentation(self, volumeNodes, modelFolder, device="auto", outputNode=None):
        """Start segmenting ``volumeNodes`` (one per model channel) in a child process.

        Returns an ``ImprovedNNUNetLib.segment_job.SegmentJob``: poll it from a timer, or call
        ``wait()`` in a script to get the result nodes.
        """
        from ImprovedNNUNetLib.segment_job import SegmentJob

        return SegmentJob(volumeNodes, modelFolder, device=device, output_node=outputNode)


class ImprovedNNUNetTest(ScriptedLoadableModuleTest):
    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_ParameterNodeDefaults()
        self.test_MissingModelIsReported()

    def test_ParameterNodeDefaults(self):
        parameters = ImprovedNNUNetLogic().getParameterNode()
        self.assertEqual(parameters.device, "auto")
        self.assertIsNone(parameters.inputVolume)

    def test_MissingModelIsReported(self):
        from ImprovedNNUNetLib.errors import UserError

        volume = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")
        with self.assertRaises(UserError):
            ImprovedNNUNetLogic().startSegmentation([volume], Path(slicer.app.temporaryPath) / "no-such-model")
