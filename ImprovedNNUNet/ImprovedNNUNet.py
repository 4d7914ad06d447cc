"""Slicer module ImprovedNNUNet: segment loaded volumes with a trained (improved) nnU-Net model,
compute metrics against a reference and show the errors.

The widget only collects choices and shows progress; all work happens in
``ImprovedNNUNetLib`` (plain Python, no Qt), which runs the prediction in a child
process so that the application never blocks.
"""
import subprocess
from pathlib import Path
from typing import Annotated, Union

import qt
import slicer
import vtk
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
from ImprovedNNUNetLib.panels.logic import MAX_CHANNELS, SegmentPanelLogic
from ImprovedNNUNetLib.panels.plumbing import PathFields, drop_lib_modules, path_is_set

LIB_PACKAGE = "ImprovedNNUNetLib"
POLL_INTERVAL_MS = 200
DEVICES = list(DEVICE_CHOICES)
MIRRORING = ["auto", "on", "off"]
# Path parameters -> their ctkPathLineEdit. They are plain text parameters that the widget
# keeps in step itself: Slicer's Path connector shows an unset Path() as "." and rewrites the
# field on every keystroke, and ctkPathLineEdit never reports an emptied field.
PATH_FIELDS = {"modelFolder": "modelFolderPathLineEdit", "metricsCsv": "metricsCsvPathLineEdit"}


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
    distanceMaps - also load the distance maps of SDM models.
    outputSegmentation - segmentation to fill; None creates a new one.
    reference - segmentation or labelmap to evaluate against; tau - NSD tolerance (mm).
    metricsTable - table to fill; None creates a new one. metricsCsv - CSV export file.
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
    outputSegmentation: vtkMRMLSegmentationNode
    reference: Union[vtkMRMLSegmentationNode, vtkMRMLLabelMapVolumeNode, None]
    tau: Annotated[float, WithinRange(0.0, 100.0)] = 1.0
    metricsTable: vtkMRMLTableNode
    metricsCsv: str = ""


class ImprovedNNUNetWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._job = None
        self._pollTimer = None
        self._fillingModels = False
        self._paths = None  # PathFields of the ui

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
        self.ui.refreshModelsButton.connect("clicked(bool)", self.onRefreshModels)
        self.ui.modelComboBox.connect("currentIndexChanged(int)", self.onModelChosen)
        self._paths = PathFields(self.ui, PATH_FIELDS)
        self._paths.connect(self._storePathFields)
        self.ui.computeMetricsButton.connect("clicked(bool)", self.onComputeMetrics)
        self.ui.showErrorsButton.connect("clicked(bool)", self.onShowErrors)
        self.ui.exportCsvButton.connect("clicked(bool)", self.onExportCsv)
        self.ui.installDependenciesButton.connect("clicked(bool)", self.onInstallDependencies)
        self.ui.dependenciesStatusLabel.text = self.logic.dependencyStatus()
        self.initializeParameterNode()
        self.onRefreshModels()

    def cleanup(self):
        """The module is being removed (application exit, developer reload): stop polling and
        end a running segmentation now, on this thread (a thread started here would not run before
        the interpreter shuts down: Slicer's main thread holds the GIL), waiting for its process tree."""
        self.setParameterNode(None)
        self.removeObservers()
        if self._pollTimer is not None:
            self._pollTimer.stop()
        if self._job is not None and self._job.running:
            self._job.cancel()

    def enter(self):
        self.initializeParameterNode()

    def exit(self):
        self.setParameterNode(None)  # a running segmentation goes on; its result reaches the scene

    def onSceneStartClose(self, caller, event):
        if self._job is not None and self._job.running:
            self._job.request_cancel()  # its input volumes are leaving the scene
            self._log(_("The scene is closing: segmentation cancelled."))
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def onReload(self):
        """Developer mode: forget the Lib package's modules (imported afresh), then reload this module."""
        drop_lib_modules((LIB_PACKAGE,))
        ScriptedLoadableModuleWidget.onReload(self)

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume0:
            self._parameterNode.inputVolume0 = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")

    def setParameterNode(self, parameterNode):
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateGUI)
        self._parameterNode = parameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateGUI)
        self._updateGUI()

    def _setParameter(self, name, value):
        if self._parameterNode is not None and getattr(self._parameterNode, name) != value:
            setattr(self._parameterNode, name, value)

    def _storePathFields(self, *args):
        """The path fields as typed (an emptied field included) into the parameter node."""
        self._paths.store(self._parameterNode)

    def _showParameterTexts(self):
        """Path fields and the imported-model choice from the parameter node; a field is only
        written when it differs, so typing in it is never disturbed."""
        parameters = self._parameterNode
        self._paths.show(parameters)
        combo = self.ui.modelComboBox
        if combo.currentText != parameters.installedModel and combo.findText(parameters.installedModel) >= 0:
            self._fillingModels = True
            try:
                combo.setCurrentIndex(combo.findText(parameters.installedModel))
            finally:
                self._fillingModels = False

    def _updateGUI(self, caller=None, event=None):
        """Channel selectors named and shown per model channel; buttons enabled when usable."""
        running = self._job is not None and self._job.running
        self.ui.applyButton.text = _("Cancel") if running else _("Apply")
        parameters = self._parameterNode
        if parameters is None:
            return
        self._showParameterTexts()
        model = self.logic.chosenModel(parameters)
        channels = model.channel_names if model is not None else []
        self.ui.modelSummaryLabel.text = model.summary if model is not None else _("No model chosen.")
        for index in range(MAX_CHANNELS):
            label = getattr(self.ui, f"inputVolume{index}Label")
            selector = getattr(self.ui, f"inputVolume{index}Selector")
            shown = index < max(1, len(channels))
            label.visible = selector.visible = shown
            label.text = f"{channels[index]}:" if index < len(channels) else _("Input volume:")
        self.ui.applyButton.enabled = running or bool(channels and parameters.inputVolume0)
        evaluable = bool(parameters.outputSegmentation and parameters.reference) and not running
        self.ui.computeMetricsButton.enabled = self.ui.showErrorsButton.enabled = evaluable
        exportable = bool(parameters.metricsTable and path_is_set(parameters.metricsCsv))
        self.ui.exportCsvButton.enabled = exportable
        self.ui.exportCsvButton.toolTip = _("Save the metrics table as a CSV file.") if exportable else (
            _("Compute metrics first.") if not parameters.metricsTable else _("Choose the CSV file first."))

    def _log(self, text):
        self.ui.logTextEdit.appendPlainText(text)

    def onRefreshModels(self):
        """Fill the imported-model list again; the chosen model stays chosen."""
        self._fillingModels = True
        try:
            self.ui.modelComboBox.clear()
            self.ui.modelComboBox.addItem("")
            for name in self.logic.installedModelNames():
                self.ui.modelComboBox.addItem(name)
        finally:
            self._fillingModels = False
        if self._parameterNode is not None:
            self._showParameterTexts()

    def onModelChosen(self, index):
        if not self._fillingModels:
            self._setParameter("installedModel", self.ui.modelComboBox.currentText)

    def onApplyButton(self):
        if self._job is not None and self._job.running:
            self._job.request_cancel()  # returns at once; the poll timer reports the end
            self._log(_("Cancelling..."))
            self._updateGUI()
            return
        self._storePathFields()
        try:
            with slicer.util.tryWithErrorDisplay(_("Segmentation could not start."), waitCursor=True):
                self._job = self.logic.startSegmentationFromParameters(self._parameterNode)
                self.ui.progressBar.value = 0
                self._log(_("Segmenting with {model}").format(model=self._job.model.path))
                self._pollTimer.start(POLL_INTERVAL_MS)
        finally:
            self._updateGUI()

    def onPollTimer(self):
        job = self._job
        output = job.poll()
        for line in output.log:
            self._log(line)
        self.ui.progressBar.value = int(round(100 * job.progress))
        self.ui.statusLabel.text = job.note or job.stage
        if not output.finished:
            return
        self._pollTimer.stop()
        try:
            if job.stage != "cancelled":
                with slicer.util.tryWithErrorDisplay(_("Segmentation failed."), waitCursor=True):
                    result = job.load_result()
                    # the panel may have been left meanwhile: the module's parameter node still gets it
                    parameters = self._parameterNode or self.logic.getParameterNode()
                    parameters.outputSegmentation = result.segmentation
        finally:
            self._updateGUI()

    def onComputeMetrics(self):
        parameters = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Metrics could not be computed."), waitCursor=True):
            self.logic.requireEvaluation()
            evaluation = self.logic.evaluate(parameters.outputSegmentation, parameters.reference, parameters.tau)
            for note in evaluation.notes:
                self._log(note)
            parameters.metricsTable = self.logic.metricsTable(evaluation, parameters.metricsTable)
            self.logic.showTable(parameters.metricsTable)

    def onShowErrors(self):
        parameters = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Errors could not be shown."), waitCursor=True):
            errors = self.logic.showErrors(parameters.outputSegmentation, parameters.reference)
            self._log(_("False positives and false negatives are in '{name}'").format(name=errors.GetName()))

    def onExportCsv(self):
        self._storePathFields()
        parameters = self._parameterNode
        path = Path(parameters.metricsCsv)
        if path.exists() and not slicer.util.confirmYesNoDisplay(_("{path} exists. Replace it?").format(path=path)):
            return
        with slicer.util.tryWithErrorDisplay(_("The CSV file could not be written."), waitCursor=True):
            self._log(_("Metrics saved to {path}").format(path=self.logic.exportMetricsCsv(
                parameters.metricsTable, path, overwrite=True)))

    def onInstallDependencies(self):
        self.installDependenciesInteractively(self._log)
        self.ui.dependenciesStatusLabel.text = self.logic.dependencyStatus()

    @staticmethod
    def installDependenciesInteractively(log):
        """Ask once, then install PyTorch (PyTorch extension) and the missing packages; errors in one dialog
        (none of ours when Slicer's pip_install showed its own, Slicer 5.12+), ``log(line)`` for notes. The
        Training module's button calls this too."""
        from ImprovedNNUNetLib.core.dependencies import InstallFailureShown

        logic = ImprovedNNUNetLogic()
        missing = logic.missingDependencies()
        question = _("Install PyTorch (through the PyTorch extension) if missing, then {packages}?").format(
            packages=", ".join(missing) or _("nothing else"))
        if not slicer.util.confirmOkCancelDisplay(question):  # the only question asked
            return
        try:
            with slicer.util.tryWithErrorDisplay(_("Installing the dependencies failed."), waitCursor=True):
                try:
                    restart = logic.installDependencies()
                except InstallFailureShown as failure:  # Slicer's pip_install already showed it with pip's log
                    log(str(failure))
                    return
                if restart:
                    slicer.util.infoDisplay(_("Installed. Restart Slicer so that the new packages are used."))
        except Exception:  # noqa: BLE001 - tryWithErrorDisplay showed it
            pass


class ImprovedNNUNetLogic(SegmentPanelLogic, ScriptedLoadableModuleLogic):
    """Scripting entry point: the methods of ``ImprovedNNUNetLib.panels.logic.SegmentPanelLogic`` (models,
    segmentation, evaluation, dependency status), plus what needs the application (showing a table,
    installing packages) and this module's parameter node."""

    def getParameterNode(self):
        return ImprovedNNUNetParameterNode(super().getParameterNode())

    @staticmethod
    def showTable(tableNode):
        """Show a table node in the application's table view (full Slicer only)."""
        slicer.app.layoutManager().setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpTableView)
        slicer.app.applicationLogic().GetSelectionNode().SetActiveTableID(tableNode.GetID())
        slicer.app.applicationLogic().PropagateTableSelection()

    def installDependencies(self):
        """Install torch through the PyTorch extension, then the missing packages (ranges that accept
        copies other extensions installed); True when a restart is needed. Asks nothing: the
        caller asked once."""
        from ImprovedNNUNetLib.core.dependencies import (
            TORCH_REQUIREMENT,
            install_failure,
            pip_requirements,
            restart_needed,
            torch_ready,
        )
        from ImprovedNNUNetLib.core.errors import UserError

        try:
            import PyTorchUtils
        except ModuleNotFoundError:
            raise UserError("the PyTorch extension is missing; install 'PyTorch' from the Extensions Manager, "
                            "restart Slicer and try again") from None
        if not torch_ready():
            torchLogic = PyTorchUtils.PyTorchUtilsLogic()
            if torchLogic.installTorch(askConfirmation=False, torchVersionRequirement=TORCH_REQUIREMENT) is None:
                raise UserError("PyTorch was not installed; install it from the PyTorch Utils module and try again")
        missing = self.missingDependencies()
        restart = restart_needed(missing)
        if missing:
            try:
                slicer.util.pip_install(pip_requirements(missing))
            except subprocess.CalledProcessError as exc:
                raise install_failure(exc) from None
        return restart


class ImprovedNNUNetTest(ScriptedLoadableModuleTest):
    """Self-test on slicerio's chest CT and its 7-segment segmentation (no trained model needed)."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_ParameterNodeDefaults()
        self.setUp()
        self.test_MissingModelIsReported()
        self.setUp()
        self.test_EvaluateSampleAgainstItsReference()

    def test_ParameterNodeDefaults(self):
        parameters = ImprovedNNUNetLogic().getParameterNode()
        self.assertEqual(parameters.device, "auto")
        self.assertEqual(parameters.step, 0.5)
        self.assertIsNone(parameters.inputVolume0)

    def test_MissingModelIsReported(self):
        from ImprovedNNUNetLib.core.errors import UserError

        volume = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")
        with self.assertRaises(UserError):
            ImprovedNNUNetLogic().startSegmentation([volume], Path(slicer.app.temporaryPath) / "no-such-model")

    def _sampleScene(self):
        """A synthetic CT-like volume and a 3-segment reference made here (no download; numpy and Slicer only)."""
        import numpy as np

        from ImprovedNNUNetLib.core.imageio import Image
        from ImprovedNNUNetLib.panels.scene.segmentation import add_prediction_segmentation
        from ImprovedNNUNetLib.panels.scene.volumes import add_volume_from_image

        z, y, x = np.mgrid[:24, :48, :48]
        labels = np.zeros((24, 48, 48), dtype=np.uint8)
        labels[((x - 14) ** 2 + (y - 24) ** 2 < 81) & (z > 3) & (z < 20)] = 1  # "right lung"
        labels[((x - 34) ** 2 + (y - 24) ** 2 < 81) & (z > 3) & (z < 20)] = 2  # "left lung"
        labels[(labels == 0) & (abs(y - 24) < 18) & (abs(x - 24) < 22)] = 3  # "tissue"
        intensities = np.choose(labels, [-1000, -800, -800, 40]).astype(np.int16)
        image = Image(intensities, (1.5, 1.5, 3.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
        volume = add_volume_from_image(slicer.mrmlScene, image, "Synthetic CT")
        names = {"right lung": 1, "left lung": 2, "tissue": 3}
        reference = add_prediction_segmentation(image.with_array(labels), names, volume, "Reference")
        return volume, reference, labels

    def test_EvaluateSampleAgainstItsReference(self):
        """A copy of the reference without 'left lung' scores Dice 1 on the rest and shows the lung as FN.
        Skipped, with the reason shown, before "Install dependencies" (NSD needs surface-distance)."""
        import numpy as np

        from ImprovedNNUNetLib.core.dependencies import EVALUATION_PACKAGES, missing_text

        missing = missing_text(EVALUATION_PACKAGES)
        if missing:
            self.delayDisplay(f"Skipped: metrics need {missing}; press Install dependencies")
            return

        from ImprovedNNUNetLib.panels.scene.labelmaps import export_label_image, segment_infos
        from ImprovedNNUNetLib.panels.scene.reference import reference_labels
        from ImprovedNNUNetLib.panels.scene.segmentation import add_prediction_segmentation

        self.delayDisplay("Making a synthetic volume and its segmentation")
        volume, reference, truth = self._sampleScene()
        labels = {"background": 0, "right lung": 1, "left lung": 2, "tissue": 3}
        image = reference_labels(reference, labels).image
        image = image.with_array(np.where(image.array == 2, 0, image.array))
        prediction = add_prediction_segmentation(image, labels, volume, "CT segmentation")
        logic = ImprovedNNUNetLogic()

        self.delayDisplay("Computing metrics")
        metrics = logic.evaluate(prediction, reference).as_dict()
        self.assertEqual(list(metrics), ["right lung", "left lung", "tissue"])
        self.assertEqual(metrics["right lung"]["Dice"], 1.0)
        self.assertEqual(metrics["left lung"]["status"], "prediction empty")
        table = logic.metricsTable(logic.evaluate(prediction, reference))
        self.assertEqual(table.GetNumberOfRows(), 3)

        self.delayDisplay("Showing errors")
        errors = logic.showErrors(prediction, reference)
        infos = {info.name: info for info in segment_infos(errors)}
        self.assertEqual(len(infos), 6)
        missed = export_label_image(errors, [infos["left lung FN"]]).array
        self.assertEqual(int(missed.astype(bool).sum()), int((truth == 2).sum()))
        self.assertFalse(export_label_image(errors, [infos["tissue FP"]]).array.any())
        self.delayDisplay("Test passed")
