"""Slicer module ImprovedNNUNetTraining: a dataset from the scene, training from the GUI, run comparison.

The widget only collects choices and shows progress; all work happens in
``ImprovedNNUNetTrainingLib`` (plain Python, no Qt): ``scene_dataset`` exports scene cases as an
nnU-Net raw dataset, ``training_job`` runs `improved-nnunet prepare` / `train` as child
processes and turns their progress events into table and plot chart nodes, and the
`improved-nnunet compare` child process evaluates nnU-Net's validation outputs of every trained run
(Slicer's main thread holds Python's GIL between Qt callbacks, so long Python work never runs on a
thread of this process).
"""
import importlib
from typing import Annotated

import qt
import slicer
import vtk
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
from ImprovedNNUNetLib.panels.plumbing import PathFields, drop_lib_modules, path_is_set
from ImprovedNNUNetTrainingLib.panels.logic import TrainingPanelLogic

LIB_PACKAGES = ("ImprovedNNUNetTrainingLib", "ImprovedNNUNetLib")
POLL_INTERVAL_MS = 500
# Path parameters -> their ctkPathLineEdit: plain text that the widget keeps in step itself
# (Slicer's Path connector shows an unset Path() as "." and rewrites the field while typing).
PATH_FIELDS = {"rawFolder": "rawFolderPathLineEdit", "preprocessedFolder": "preprocessedFolderPathLineEdit",
               "resultsFolder": "resultsFolderPathLineEdit", "existingRawDataset": "rawDatasetPathLineEdit"}
# The combo boxes' items, in the .ui's order (a test checks them against the Lib's names).
VARIANTS = ["improved", "baseline", "loss", "deepsup", "augment", "sdm", "msf", "msf_deep"]
CONFIGURATIONS = ["3d_fullres", "2d", "3d_lowres"]
PLANNERS = ["ExperimentPlanner", "nnUNetPlannerResEncM", "nnUNetPlannerResEncL", "nnUNetPlannerResEncXL"]
DEVICES = list(DEVICE_CHOICES)


class ImprovedNNUNetTraining(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Improved nnU-Net Training")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = ["ImprovedNNUNet"]  # its Lib and "Use this model"; Slicer 5.10 or newer
        self.parent.contributors = ["ImprovedNNUNet developers"]
        self.parent.helpText = _(
            "Turn segmentations of the scene into an nnU-Net dataset, train nnU-Net v2 with the improved variants "
            "(compound-loss weights, deep-supervision weights, stronger augmentation, signed-distance-map head, "
            "mis-segmentation-focus loss) with live curves, and compare the runs. "
            "See the <a href=\"https://github.com/ImprovedNNUNet/SlicerImprovedNNUNet#readme\">user guide</a>."
        )
        self.parent.acknowledgementText = _(
            "Built on nnU-Net v2 (Isensee et al., Nature Methods 2021) and 3D Slicer. The training variants "
            "follow the papers cited in the user guide."
        )


@parameterNodeWrapper
class ImprovedNNUNetTrainingParameterNode:
    """What the panel remembers in the scene.

    rawFolder, preprocessedFolder, resultsFolder - nnU-Net's folders (empty: the environment's).
    channelNames - comma-separated channel names of a new dataset; datasetName - its name.
    existingRawDataset - an existing raw dataset folder to train on instead.
    dataset - nnU-Net dataset id or name to train. variant - trainer variant short name.
    configuration - nnU-Net configuration. planner - nnU-Net's experiment planner (its plans name the model
    folder: nnUNetPlans, or the residual-encoder presets nnUNetResEncUNetM/L/XLPlans).
    folds - "0", "0,1,2" or "all", trained one after another.
    device - auto, cpu or cuda. overwrite - replace folds that already hold a run.
    epochs, iterationsPerEpoch, validationIterationsPerEpoch - the schedule (nnU-Net: 1000, 250, 50).
    """

    rawFolder: str = ""
    preprocessedFolder: str = ""
    resultsFolder: str = ""
    channelNames: str = "CT"
    datasetName: str = "SceneDataset"
    existingRawDataset: str = ""
    dataset: str = ""
    variant: Annotated[str, Choice(VARIANTS)] = "improved"
    configuration: Annotated[str, Choice(CONFIGURATIONS)] = "3d_fullres"
    planner: Annotated[str, Choice(PLANNERS)] = "ExperimentPlanner"
    folds: str = "0"
    device: Annotated[str, Choice(DEVICES)] = "auto"
    overwrite: bool = False
    epochs: Annotated[int, WithinRange(1, 10000)] = 1000
    iterationsPerEpoch: Annotated[int, WithinRange(1, 100000)] = 250
    validationIterationsPerEpoch: Annotated[int, WithinRange(1, 100000)] = 50


class ImprovedNNUNetTrainingWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._job = None
        self._pollTimer = None
        self._comparison = None  # the running `improved-nnunet compare` child process
        self._comparePollTimer = None
        self._pairs = []  # (volume node, segmentation node) cases
        self._folders = []  # subject-hierarchy folder item ids, one case each
        self._paths = None  # PathFields of the ui

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/ImprovedNNUNetTraining.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = ImprovedNNUNetTrainingLogic()

        self._pollTimer = qt.QTimer()
        self._pollTimer.connect("timeout()", self.onPollTimer)
        self._comparePollTimer = qt.QTimer()
        self._comparePollTimer.connect("timeout()", self.onComparePollTimer)
        self._paths = PathFields(self.ui, PATH_FIELDS)
        self._paths.connect(self._storePathFields)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.NodeRemovedEvent, self.onNodeRemoved)
        self.ui.installDependenciesButton.connect("clicked(bool)", self.onInstallDependencies)
        self.ui.addCaseButton.connect("clicked(bool)", self.onAddCase)
        self.ui.addFolderButton.connect("clicked(bool)", self.onAddFolder)
        self.ui.clearCasesButton.connect("clicked(bool)", self.onClearCases)
        self.ui.checkCasesButton.connect("clicked(bool)", self.onCheckCases)
        self.ui.exportButton.connect("clicked(bool)", self.onExport)
        self.ui.useRawDatasetButton.connect("clicked(bool)", self.onUseRawDataset)
        self.ui.variantComboBox.connect("currentTextChanged(QString)", self.onVariantChanged)
        self.ui.resetHyperparametersButton.connect("clicked(bool)", self.onResetHyperparameters)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.resumeButton.connect("clicked(bool)", self.onResumeButton)
        self.ui.useModelButton.connect("clicked(bool)", self.onUseModel)
        self.ui.compareButton.connect("clicked(bool)", self.onCompare)
        self.initializeParameterNode()
        self.onResetHyperparameters()
        self.ui.dependenciesStatusLabel.text = self.logic.dependencyStatus()

    def cleanup(self):
        """The module is being removed (application exit, developer reload): stop polling and end
        a running training (it can be resumed later) and comparison, now and on this thread, waiting
        for their process trees (SIGKILL after the grace period): a thread started here would not run
        before the interpreter shuts down, since Slicer's main thread holds the GIL."""
        self.setParameterNode(None)
        self.removeObservers()
        for timer in (self._pollTimer, self._comparePollTimer):
            if timer is not None:
                timer.stop()
        if self._job is not None and self._job.running:
            self._job.cancel(wait=True)
        if self._comparison is not None and self._comparison.running:
            self._comparison.cancel()
        self._comparison = None

    def enter(self):
        self.initializeParameterNode()

    def exit(self):
        self.setParameterNode(None)

    def onSceneStartClose(self, caller, event):
        self.setParameterNode(None)
        if self._job is not None:
            self._job.detach_scene()  # a running training goes on; its later curves do not enter the new scene
        self.onClearCases()  # the cases' nodes are leaving

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    @vtk.calldata_type(vtk.VTK_OBJECT)
    def onNodeRemoved(self, caller, event, node):
        """A case's volume or segmentation left the scene: the case leaves the list."""
        kept = [pair for pair in self._pairs if node not in (pair[0], pair[1])]
        if len(kept) != len(self._pairs):
            self._pairs = kept
            self._showCases()

    def onReload(self):
        """Developer mode: forget the Lib packages' modules (imported afresh), then reload this module."""
        drop_lib_modules(LIB_PACKAGES)
        ScriptedLoadableModuleWidget.onReload(self)

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())

    def setParameterNode(self, parameterNode):
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)
        self._parameterNode = parameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)
        self._updateButtons()

    def _storePathFields(self, *args):
        """The path fields as typed (an emptied field included) into the parameter node."""
        self._paths.store(self._parameterNode)

    def _showPathFields(self):
        self._paths.show(self._parameterNode)

    # -- state ---------------------------------------------------------------------------------------
    def _running(self):
        return self._job is not None and self._job.running

    def _updateButtons(self, caller=None, event=None):
        running = self._running()
        if self._parameterNode is not None:
            self._showPathFields()
        hasDataset = bool(self._parameterNode and self._parameterNode.dataset)
        hasCases = bool(self._pairs or self._folders)
        self.ui.applyButton.text = _("Cancel") if running else _("Train")
        self.ui.applyButton.enabled = running or hasDataset
        self.ui.resumeButton.enabled = not running and hasDataset
        self.ui.useModelButton.enabled = not running and hasDataset
        self.ui.compareButton.enabled = not running and hasDataset and self._comparison is None
        self.ui.checkCasesButton.enabled = hasCases
        self.ui.exportButton.enabled = hasCases

    def _log(self, text):
        self.ui.logTextEdit.appendPlainText(text)

    def _guarded(self, action, what, waitCursor=True):
        """Run ``action`` under a wait cursor; show any error in one dialog naming ``what`` failed. Returns its
        result or None."""
        try:
            with slicer.util.WaitCursor(show=waitCursor):
                self._storePathFields()
                return action()
        except Exception as exc:  # UserError and anything unexpected reach the user in one dialog
            slicer.util.errorDisplay(_("{what} failed: {error}").format(what=what, error=exc))
            return None

    # -- dataset -------------------------------------------------------------------------------------
    def onAddCase(self):
        volume, segmentation = self.ui.caseVolumeSelector.currentNode(), self.ui.caseSegmentationSelector.currentNode()
        if volume is None or segmentation is None:
            slicer.util.errorDisplay(_("Select a volume and its segmentation first."))
            return
        self._pairs.append((volume, segmentation))
        self._showCases()

    def onAddFolder(self):
        item = self.ui.caseFolderSelector.currentItem()
        if not item:
            slicer.util.errorDisplay(_("Select a subject-hierarchy folder first."))
            return
        self._folders.append(item)
        self._showCases()

    def onClearCases(self):
        self._pairs, self._folders = [], []
        self._showCases()

    def _showCases(self):
        """The case list from ``_pairs`` and ``_folders`` (folder items no longer in the hierarchy dropped)."""
        hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(slicer.mrmlScene)
        items = vtk.vtkIdList()
        hierarchy.GetItemChildren(hierarchy.GetSceneItemID(), items, True)
        present = {items.GetId(index) for index in range(items.GetNumberOfIds())}
        self._folders = [item for item in self._folders if item in present]
        self.ui.casesListWidget.clear()
        for volume, segmentation in self._pairs:
            self.ui.casesListWidget.addItem(f"{volume.GetName()} + {segmentation.GetName()}")
        for item in self._folders:
            self.ui.casesListWidget.addItem(_("folder {name}").format(name=hierarchy.GetItemName(item)))
        self._updateButtons()

    def _plan(self):
        return self.logic.planSceneDataset(self._pairs, self._folders, self._parameterNode.channelNames)

    def onCheckCases(self):
        plan = self._guarded(self._plan, _("Checking the cases"))
        if plan is not None:
            self._log(plan.describe())

    def onExport(self):
        def export():
            plan = self._plan()
            self._log(plan.describe())
            return self.logic.exportSceneDataset(plan, self._parameterNode.datasetName,
                                                 folders=self.logic.folderSettings(self._parameterNode))

        result = self._guarded(export, _("Export"))
        if result is not None:
            self._log(_("Exported {folder}").format(folder=result.folder))
            self._parameterNode.dataset = result.dataset_name

    def onUseRawDataset(self):
        folders = self.logic.folderSettings(self._parameterNode)
        dataset = self._guarded(lambda: self.logic.useRawDataset(self._parameterNode.existingRawDataset, folders),
                                _("Opening the raw dataset"))
        if dataset is not None:
            if not path_is_set(self._parameterNode.rawFolder):
                self._parameterNode.rawFolder = str(dataset.folder.resolve().parent)  # where nnU-Net finds it
            self._log(_("Using {name}: {cases} cases, labels {labels}").format(
                name=dataset.full_name, cases=dataset.num_training, labels=", ".join(dataset.labels)))
            self._parameterNode.dataset = dataset.full_name

    # -- training ------------------------------------------------------------------------------------
    def onVariantChanged(self, variant):
        """Show the newly chosen variant's default hyper-parameters (edits of the previous one are dropped)."""
        if variant not in VARIANTS:  # the combo box is being refilled (Qt reports its emptying as "")
            return
        text = self._guarded(lambda: self.logic.hyperparametersText(variant), _("Reading the variant's defaults"),
                             waitCursor=False)
        self.ui.hyperparametersTextEdit.plainText = text or ""

    def onResetHyperparameters(self):
        if self._parameterNode:
            self.onVariantChanged(self._parameterNode.variant)

    def onApplyButton(self):
        if self._running():
            self._job.cancel(wait=False)  # returns at once; the poll timer shows the outcome and stops
            self._log(_("Cancelling..."))
            self._updateButtons()
            return
        self._startJob(resume=False)

    def onResumeButton(self):
        self._startJob(resume=True)

    def _startJob(self, resume):
        def start():
            from ImprovedNNUNetLib.core.dependencies import require

            request = self.logic.requestFromParameters(self._parameterNode, self.ui.hyperparametersTextEdit.plainText)
            require()  # torch and nnU-Net are needed by the child processes, checked before anything starts
            return self.logic.startTraining(request, resume=resume)

        job = self._guarded(start, _("Resuming") if resume else _("Training"))
        if job is None:
            return
        self._job = job
        self.ui.progressBar.value = 0
        self._showCurves()
        self._pollTimer.start(POLL_INTERVAL_MS)
        self._updateButtons()

    def _showCurves(self, switchLayout=True):
        """Show the current fold's loss chart: at the start of a job in a layout with a plot view (the layout
        switches once); for later folds in the plot views that are there, without changing the layout."""
        curves = self._job.curves.get(self._job.status.fold)
        if curves is None:
            return
        if switchLayout:
            slicer.modules.plots.logic().ShowChartInLayout(curves.charts["loss"])
            return
        for viewNode in slicer.util.getNodesByClass("vtkMRMLPlotViewNode"):
            viewNode.SetPlotChartNodeID(curves.charts["loss"].GetID())

    def onPollTimer(self):
        previousFold = self._job.status.fold
        update = self._job.poll()
        for line in update.log:
            self._log(line)
        status = self._job.status
        self.ui.progressBar.value = int(round(100 * status.fraction))
        self.ui.progressLabel.text = status.progress_text()
        if status.fold != previousFold:
            self._showCurves(switchLayout=False)
        if self._job.running:
            return
        self._pollTimer.stop()
        self._log(status.message)
        self._updateButtons()
        if status.state == "failed":
            self.ui.progressLabel.text = _("Training failed: {error}").format(error=status.message)
            slicer.util.errorDisplay(_("Training failed: {error}").format(error=status.message))

    def onInstallDependencies(self):
        """The Improved nnU-Net module's installer (this module depends on it): one question, then PyTorch
        through the PyTorch extension and the pinned packages."""
        inference = importlib.import_module("ImprovedNNUNet")
        inference.ImprovedNNUNetWidget.installDependenciesInteractively(self._log)
        self.ui.dependenciesStatusLabel.text = self.logic.dependencyStatus()

    def onUseModel(self):
        request = self._guarded(lambda: self.logic.requestFromParameters(self._parameterNode, ""),
                                _("Finding the model"))
        if request is not None and self._guarded(lambda: self.logic.useModel(request.model_folder()),
                                                 _("Handing the model over")) is not None:
            slicer.util.selectModule("ImprovedNNUNet")

    # -- comparison ----------------------------------------------------------------------------------
    def onCompare(self):
        """Evaluate the trained runs in an `improved-nnunet compare` child process; the table is filled when it
        ends (the poll timer reads its output)."""
        dataset = self._parameterNode.dataset
        folders = self.logic.folderSettings(self._parameterNode)
        self._comparison = self._guarded(lambda: self.logic.startComparison(dataset, folders=folders),
                                         _("Comparing runs"))
        if self._comparison is None:
            return
        self._comparisonDataset = dataset
        self._log(_("Comparing the trained runs of {dataset}...").format(dataset=dataset))
        self._comparePollTimer.start(POLL_INTERVAL_MS)
        self._updateButtons()

    def onComparePollTimer(self):
        comparison = self._comparison
        if comparison is None:
            return
        output = comparison.poll()
        if not output.finished:
            return
        self._comparePollTimer.stop()
        self._comparison = None
        self._updateButtons()
        result = self._guarded(lambda: self.logic.comparisonTable(self.logic.comparisonResult(comparison),
                                                                  self._comparisonDataset), _("Comparing runs"))
        if result is not None:
            table, text = result
            self.ui.comparisonTableView.setMRMLTableNode(table)
            self._log(text)


class ImprovedNNUNetTrainingLogic(TrainingPanelLogic, ScriptedLoadableModuleLogic):
    """Scripting entry point: the methods of ``ImprovedNNUNetTrainingLib.panels.logic.TrainingPanelLogic``
    (nodes of ``slicer.mrmlScene`` or the scene given), plus this module's parameter node."""

    def getParameterNode(self):
        return ImprovedNNUNetTrainingParameterNode(super().getParameterNode())


class ImprovedNNUNetTrainingTest(ScriptedLoadableModuleTest):
    """Exports a synthetic two-case scene dataset, checks the curves of progress events and the
    parameter handling; training itself is covered by the Python test suite (minutes on a CPU)."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_ParameterNodeDefaults()
        self.test_SceneDatasetExport()
        self.test_CurvesFromEvents()
        self.test_BadRequestsAreReported()

    def _case(self, name, offset):
        """A 24×32×32 volume with a bright box; segments 'organ' (left half) and 'lesion' (right half)."""
        import numpy as np

        from ImprovedNNUNetLib.panels.scene.segmentation import add_prediction_segmentation
        from ImprovedNNUNetLib.panels.scene.volumes import image_from_volume

        volume = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", f"{name} image")
        array = np.zeros((24, 32, 32), dtype=np.int16)
        array[4 + offset:16 + offset, 8:24, 8:24] = 100
        slicer.util.updateVolumeFromArray(volume, array)
        labels = (array > 0).astype(np.uint8) * np.where(np.arange(32) < 16, 1, 2).astype(np.uint8)
        segmentation = add_prediction_segmentation(image_from_volume(volume).with_array(labels),
                                                   {"organ": 1, "lesion": 2}, volume, f"{name} segmentation")
        return volume, segmentation

    def test_ParameterNodeDefaults(self):
        parameters = ImprovedNNUNetTrainingLogic().getParameterNode()
        self.assertEqual((parameters.variant, parameters.configuration, parameters.folds), ("improved", "3d_fullres", "0"))
        self.assertEqual((parameters.epochs, parameters.iterationsPerEpoch), (1000, 250))

    def test_SceneDatasetExport(self):
        import json
        import tempfile

        logic = ImprovedNNUNetTrainingLogic()
        plan = logic.planSceneDataset([self._case("first", 0), self._case("second", 4)], channelNames="CT")
        self.assertEqual(plan.problems, [])
        self.assertEqual(plan.labels, {"background": 0, "organ": 1, "lesion": 2})
        with tempfile.TemporaryDirectory() as raw:
            result = logic.exportSceneDataset(plan, "SelfTest", rawFolder=raw)
            info = json.loads((result.folder / "dataset.json").read_text())
            self.assertEqual(info["channel_names"], {"0": "CT"})
            self.assertEqual(info["numTraining"], 2)
            self.assertEqual(sorted(p.name for p in (result.folder / "labelsTr").iterdir()),
                             ["first_image.nii.gz", "second_image.nii.gz"])

    def test_CurvesFromEvents(self):
        from ImprovedNNUNetTrainingLib.panels.training_curves import TrainingCurves

        curves = TrainingCurves(slicer.mrmlScene, "self-test")
        for epoch in range(3):
            curves.add_event({"stage": "training", "epoch": epoch, "train_loss": 1.0 - 0.1 * epoch,
                              "val_loss": 1.1 - 0.1 * epoch, "pseudo_dice": 0.2 * epoch, "epoch_time_s": 1.0})
        self.assertEqual(curves.table.GetNumberOfRows(), 3)
        self.assertEqual(curves.charts["loss"].GetNumberOfPlotSeriesNodes(), 2)

    def test_BadRequestsAreReported(self):
        from ImprovedNNUNetLib.core.errors import UserError

        logic = ImprovedNNUNetTrainingLogic()
        parameters = logic.getParameterNode()
        parameters.folds = "zero"
        with self.assertRaises(UserError):
            logic.requestFromParameters(parameters)
        parameters.folds = "0"
        parameters.variant = "loss"
        with self.assertRaises(UserError):
            logic.requestFromParameters(parameters, "rotation_probability = 0.5")
