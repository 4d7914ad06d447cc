"""Slicer module ImprovedNNUNetTraining: train the improved nnU-Net variants from the GUI.

The widget only collects choices and shows progress; all work happens in
``ImprovedNNUNetTrainingLib`` (plain Python, no Qt), which runs `improved-nnunet prepare`
and `improved-nnunet train` as child processes and reads their progress events.
"""
import importlib
import sys

import qt
import slicer
import vtk
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

LIB_PACKAGES = ("ImprovedNNUNetTrainingLib", "ImprovedNNUNetLib")
POLL_INTERVAL_MS = 500


class ImprovedNNUNetTraining(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Improved nnU-Net Training")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = []
        self.parent.contributors = ["ImprovedNNUNet developers"]
        self.parent.helpText = _(
            "Train nnU-Net v2 with the improved variants (compound-loss weights, deep-supervision weights, "
            "stronger augmentation, signed-distance-map head, mis-segmentation-focus loss) and compare the runs. "
            "See the <a href=\"https://github.com/ImprovedNNUNet/ImprovedNNUNet#readme\">user guide</a>."
        )
        self.parent.acknowledgementText = _(
            "Built on nnU-Net v2 (Isensee et al., Nature Methods 2021) and 3D Slicer. The training variants "
            "follow the papers cited in the user guide."
        )


@parameterNodeWrapper
class ImprovedNNUNetTrainingParameterNode:
    """What the panel remembers in the scene.

    dataset - nnU-Net dataset id or name (in nnUNet_raw).
    variant - trainer variant short name (improved, baseline, loss, deepsup, augment, sdm, msf, msf_deep).
    epochs - number of training epochs (nnU-Net's default is 1000).
    device - auto, cpu or cuda.
    """

    dataset: str
    variant: str = "improved"
    epochs: int = 1000
    device: str = "auto"


class ImprovedNNUNetTrainingWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
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
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/ImprovedNNUNetTraining.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = ImprovedNNUNetTrainingLogic()

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
        """Developer mode: reload the Lib packages' modules (innermost first), then this module."""
        for name in sorted((n for n in sys.modules if n.split(".")[0] in LIB_PACKAGES), reverse=True):
            importlib.reload(sys.modules[name])
        ScriptedLoadableModuleWidget.onReload(self)

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())

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
        self.ui.applyButton.text = _("Cancel") if running else _("Train")
        self.ui.applyButton.enabled = running or bool(self._parameterNode and self._parameterNode.dataset)

    def onApplyButton(self):
        if self._job is not None and self._job.running:
            self._job.cancel()
            self._updateApplyButton()
            return
        parameters = self._parameterNode
        try:
            self._job = self.logic.startTraining(parameters.dataset, parameters.variant, parameters.epochs,
                                                 parameters.device)
        except Exception as exc:  # UserError and anything unexpected reach the user in one dialog
            slicer.util.errorDisplay(_("Training could not start: {error}").format(error=exc))
            return
        self.ui.progressBar.value = 0
        self._pollTimer.start(POLL_INTERVAL_MS)
        self._updateApplyButton()

    def onPollTimer(self):
        update = self._job.poll()
        for line in update.log:
            self.ui.logTextEdit.appendPlainText(line)
        self.ui.progressBar.value = int(round(100 * self._job.status.fraction))
        self.ui.progressBar.toolTip = self._job.status.progress_text()
        if self._job.running:
            return
        self._pollTimer.stop()
        self._updateApplyButton()
        if self._job.status.state == "failed":
            slicer.util.errorDisplay(_("Training failed: {error}").format(error=self._job.status.message))


class ImprovedNNUNetTrainingLogic(ScriptedLoadableModuleLogic):
    """Entry point for scripts; delegates to ``ImprovedNNUNetTrainingLib``."""

    def getParameterNode(self):
        return ImprovedNNUNetTrainingParameterNode(super().getParameterNode())

    def startTraining(self, dataset, variant="improved", epochs=None, device="auto", folds=(0,)):
        """Start preparing (when needed) and training ``dataset`` with ``variant``, fold after fold.

        Returns an ``ImprovedNNUNetTrainingLib.training_job.TrainingJob`` already running: poll it
        from a timer, or call ``wait()`` in a script. Needs ``nnUNet_raw``, ``nnUNet_preprocessed``
        and ``nnUNet_results`` set.
        """
        from ImprovedNNUNetTrainingLib.training_job import TrainingJob
        from ImprovedNNUNetTrainingLib.training_request import TrainingRequest

        request = TrainingRequest(dataset=str(dataset), variant=variant, folds=list(folds), device=device,
                                  epochs=epochs)
        request.check()
        return TrainingJob(request, slicer.mrmlScene).start()


class ImprovedNNUNetTrainingTest(ScriptedLoadableModuleTest):
    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_ParameterNodeDefaults()
        self.test_InvalidEpochsAreReported()

    def test_ParameterNodeDefaults(self):
        parameters = ImprovedNNUNetTrainingLogic().getParameterNode()
        self.assertEqual(parameters.variant, "improved")
        self.assertEqual(parameters.epochs, 1000)

    def test_InvalidEpochsAreReported(self):
        from ImprovedNNUNetLib.errors import UserError

        with self.assertRaises(UserError):
            ImprovedNNUNetTrainingLogic().startTraining("Dataset999_Missing", epochs=0)
