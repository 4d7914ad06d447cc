"""The Improved nnU-Net Training panel's behaviour: the case list and the dataset export, training and resuming
with live curves, handing a model to the Segment panel, comparing runs.

Mixed into the module's widget class (``ImprovedNNUNetTraining.py`` keeps the Slicer shell: loading the ``.ui``,
the poll timers, the Logic and the parameter node class). No ``qt`` import: it works on the widgets of
``self.ui`` through their properties and signals, and on ``slicer.util``'s dialogs.
"""
from __future__ import annotations

import vtk

from ImprovedNNUNetLib.core.variants import VARIANT_NAMES
from ImprovedNNUNetLib.panels.plumbing import PanelPlumbing, _, install_dependencies_interactively, path_is_set

POLL_INTERVAL_MS = 500
FOLLOWED_JOB = "ImprovedNNUNet/ServerTrainingJob"  # the server training the panel follows (application settings)
# Path parameters -> their ctkPathLineEdit: plain text that the widget keeps in step itself
# (Slicer's Path connector shows an unset Path() as "." and rewrites the field while typing).
PATH_FIELDS = {"rawFolder": "rawFolderPathLineEdit", "preprocessedFolder": "preprocessedFolderPathLineEdit",
               "resultsFolder": "resultsFolderPathLineEdit", "existingRawDataset": "rawDatasetPathLineEdit"}


def _slicer():
    import slicer

    return slicer


class TrainingPanel(PanelPlumbing):
    """The widget's behaviour; the widget provides ``ui``, ``logic``, ``_pollTimer`` and ``_comparePollTimer``
    (QTimers)."""

    LIB_PACKAGES = ("ImprovedNNUNetTrainingLib", "ImprovedNNUNetLib")
    PATH_FIELDS = PATH_FIELDS
    _job = None
    _pollTimer = None
    _comparison = None  # the running `improved-nnunet compare` child process
    _comparePollTimer = None

    def connectPanel(self):
        """Connect the widgets and show the parameters (called once from ``setup``)."""
        self._pairs = []  # (volume node, segmentation node) cases
        self._folders = []  # subject-hierarchy folder item ids, one case each
        self._pollTimer.connect("timeout()", self.onPollTimer)
        self._comparePollTimer.connect("timeout()", self.onComparePollTimer)
        self.connectPlumbing()
        scene = _slicer().mrmlScene
        self.addObserver(scene, scene.NodeRemovedEvent, self.onNodeRemoved)
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
        self.connectServerFields()
        self.ui.serverConnectButton.connect("clicked(bool)", self.onConnectServer)
        self.initializeParameterNode()
        self.onResetHyperparameters()
        self.ui.dependenciesStatusLabel.text = self.logic.dependencyStatus()
        self._followAgain()

    def _followAgain(self):
        """A panel opened again (Slicer restarted) follows the server training it followed before, if the server
        answers; otherwise the log says so and Connect tries again."""
        job_id = self.settings.value(FOLLOWED_JOB, "") or ""
        if not str(job_id).isdigit() or not self.ui.serverKeyLineEdit.text.strip():
            return
        from ImprovedNNUNetLib.core.errors import UserError
        from ImprovedNNUNetTrainingLib.panels.remote_training_job import RemoteTrainingJob

        try:
            server = self._server()
            job = RemoteTrainingJob.attach(server, _slicer().mrmlScene, server.job(int(job_id)))
        except UserError as exc:
            self._log(_("The server's training was not found again ({error}); press Connect.").format(error=exc))
            return
        self._showRequest(job.request)
        self._log(_("Following training job {job} on the server again").format(job=job.job_id))
        self._follow(job)

    def cleanup(self):
        """The module is being removed (application exit, developer reload): stop polling and end
        a running training (it can be resumed later) and comparison, now and on this thread, waiting
        for their process trees (SIGKILL after the grace period): a thread started here would not run
        before the interpreter shuts down, since Slicer's main thread holds the GIL. A training on a server goes
        on: the panel only stops following it (Connect follows it again)."""
        self.setParameterNode(None)
        self.removeObservers()
        for timer in (self._pollTimer, self._comparePollTimer):
            if timer is not None:
                timer.stop()
        if self._job is not None and self._job.running and getattr(self._job, "job_id", None) is None:
            self._job.cancel(wait=True)
        if self._comparison is not None and self._comparison.running:
            self._comparison.cancel()
        self._comparison = None

    def onSceneStartClose(self, caller, event):
        self.setParameterNode(None)
        if self._job is not None:
            self._job.detach_scene()  # a running training goes on; its later curves do not enter the new scene
        self.onClearCases()  # the cases' nodes are leaving

    @vtk.calldata_type(vtk.VTK_OBJECT)
    def onNodeRemoved(self, caller, event, node):
        """A case's volume or segmentation left the scene: the case leaves the list."""
        kept = [pair for pair in self._pairs if node not in (pair[0], pair[1])]
        if len(kept) != len(self._pairs):
            self._pairs = kept
            self._showCases()

    def _showPathFields(self):
        self._paths.show(self._parameterNode)

    # -- state ---------------------------------------------------------------------------------------
    def _running(self):
        return self._job is not None and self._job.running

    def _updateGUI(self, caller=None, event=None):
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

    # -- dataset -------------------------------------------------------------------------------------
    def onAddCase(self):
        volume, segmentation = self.ui.caseVolumeSelector.currentNode(), self.ui.caseSegmentationSelector.currentNode()
        if volume is None or segmentation is None:
            _slicer().util.errorDisplay(_("Select a volume and its segmentation first."))
            return
        self._pairs.append((volume, segmentation))
        self._showCases()

    def onAddFolder(self):
        item = self.ui.caseFolderSelector.currentItem()
        if not item:
            _slicer().util.errorDisplay(_("Select a subject-hierarchy folder first."))
            return
        self._folders.append(item)
        self._showCases()

    def onClearCases(self):
        self._pairs, self._folders = [], []
        self._showCases()

    def _showCases(self):
        """The case list from ``_pairs`` and ``_folders`` (folder items no longer in the hierarchy dropped)."""
        hierarchy = _slicer().vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(_slicer().mrmlScene)
        items = vtk.vtkIdList()
        hierarchy.GetItemChildren(hierarchy.GetSceneItemID(), items, True)
        present = {items.GetId(index) for index in range(items.GetNumberOfIds())}
        self._folders = [item for item in self._folders if item in present]
        self.ui.casesListWidget.clear()
        for volume, segmentation in self._pairs:
            self.ui.casesListWidget.addItem(f"{volume.GetName()} + {segmentation.GetName()}")
        for item in self._folders:
            self.ui.casesListWidget.addItem(_("folder {name}").format(name=hierarchy.GetItemName(item)))
        self._updateGUI()

    def _checkCases(self):
        return self.logic.checkSceneDataset(self._pairs, self._folders, self._parameterNode.channelNames)

    def onCheckCases(self):
        checked = self._guarded(self._checkCases, _("Checking the cases failed."))
        if checked is not None:
            self._log(checked.describe())

    def onExport(self):
        def export():
            checked = self._checkCases()
            self._log(checked.describe())
            return self.logic.exportSceneDataset(checked, self._parameterNode.datasetName,
                                                 folders=self.logic.folderSettings(self._parameterNode))

        result = self._guarded(export, _("The export failed."))
        if result is not None:
            self._log(_("Exported {folder}").format(folder=result.folder))
            self._parameterNode.dataset = result.dataset_name

    def onUseRawDataset(self):
        folders = self.logic.folderSettings(self._parameterNode)
        dataset = self._guarded(lambda: self.logic.useRawDataset(self._parameterNode.existingRawDataset, folders),
                                _("Opening the raw dataset failed."))
        if dataset is not None:
            if not path_is_set(self._parameterNode.rawFolder):
                self._parameterNode.rawFolder = str(dataset.folder.resolve().parent)  # where nnU-Net finds it
            self._log(_("Using {name}: {cases} cases, labels {labels}").format(
                name=dataset.full_name, cases=dataset.num_training, labels=", ".join(dataset.labels)))
            self._parameterNode.dataset = dataset.full_name

    # -- training ------------------------------------------------------------------------------------
    def onVariantChanged(self, variant):
        """Show the newly chosen variant's default hyper-parameters (edits of the previous one are dropped)."""
        if variant not in VARIANT_NAMES:  # the combo box is being refilled (Qt reports its emptying as "")
            return
        text = self._guarded(lambda: self.logic.hyperparametersText(variant), _("Reading the variant's defaults failed."),
                             waitCursor=False)
        self.ui.hyperparametersTextEdit.plainText = text or ""

    def onResetHyperparameters(self):
        if self._parameterNode:
            self.onVariantChanged(self._parameterNode.variant)

    def onApplyButton(self):
        if self._running():
            self._job.cancel(wait=False)  # returns at once; the poll timer shows the outcome and stops
            self._log(_("Cancelling..."))
            self._updateGUI()
            return
        self._startJob(resume=False)

    def onResumeButton(self):
        self._startJob(resume=True)

    def _startJob(self, resume):
        def start():
            from ImprovedNNUNetLib.core.dependencies import require

            if self._onServer() and resume and getattr(self._job, "job_id", None) is not None:
                return self._job.resume()  # the server's own job continues from its checkpoint
            request = self.logic.requestFromParameters(self._parameterNode, self.ui.hyperparametersTextEdit.plainText)
            if self._onServer():
                return self.logic.startTraining(request, resume=resume, server=self._server())
            require()  # torch and nnU-Net are needed by the child processes, checked before anything starts
            return self.logic.startTraining(request, resume=resume)

        job = self._guarded(start, _("Resuming failed.") if resume else _("Training could not start."))
        if job is not None:
            self._follow(job)

    def _follow(self, job):
        if getattr(job, "job_id", None) is not None:
            self.settings.setValue(FOLLOWED_JOB, str(job.job_id))  # followed again when the panel opens next
        self._job = job
        self.ui.progressBar.value = 0
        self._showCurves()
        self._pollTimer.start(POLL_INTERVAL_MS)
        self._updateGUI()

    def onConnectServer(self):
        """Check the server and key, then follow the newest training there that has not finished."""
        if self._running():
            return
        self.onServerSettingsEdited()
        found = self._guarded(lambda: [self.logic.attachTraining(self._server())], _("Connecting to the server failed."))
        if found is None:  # the dialog said why
            return
        job = found[0]
        if job is None:
            self._log(_("Connected; no training of yours is running on the server."))
            return
        self._showRequest(job.request)
        self._log(_("Following training job {job} on the server").format(job=job.job_id))
        self._follow(job)

    def _showRequest(self, request):
        """The panel's fields as the followed server training was started (a panel opened again shows what runs)."""
        parameters = self._parameterNode
        parameters.runOn = "server"
        parameters.dataset, parameters.variant = request.dataset_name, request.variant
        parameters.configuration, parameters.folds = request.configuration, ",".join(map(str, request.folds))
        for name, value in (("epochs", request.epochs), ("iterationsPerEpoch", request.iterations_per_epoch),
                            ("validationIterationsPerEpoch", request.validation_iterations_per_epoch)):
            if value is not None:
                setattr(parameters, name, value)

    def _showCurves(self, switchLayout=True):
        """Show the current fold's loss chart: at the start of a job in a layout with a plot view (the layout
        switches once); for later folds in the plot views that are there, without changing the layout."""
        curves = self._job.curves.get(self._job.status.fold)
        if curves is None:
            return
        if switchLayout:
            _slicer().modules.plots.logic().ShowChartInLayout(curves.charts["loss"])
            return
        for viewNode in _slicer().util.getNodesByClass("vtkMRMLPlotViewNode"):
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
        self._updateGUI()
        if status.state == "failed":
            self.ui.progressLabel.text = _("Training failed: {error}").format(error=status.message)
            _slicer().util.errorDisplay(_("Training failed: {error}").format(error=status.message))

    def onInstallDependencies(self):
        """The Improved nnU-Net module's installer (this module depends on it): one question, then PyTorch
        through the PyTorch extension and the pinned packages."""
        from ImprovedNNUNetLib.panels.logic import SegmentPanelLogic

        install_dependencies_interactively(SegmentPanelLogic(), self._log)
        self.ui.dependenciesStatusLabel.text = self.logic.dependencyStatus()

    def onUseModel(self):
        request = self._guarded(lambda: self.logic.requestFromParameters(self._parameterNode, ""),
                                _("Finding the model failed."))
        if request is not None and self._guarded(lambda: self.logic.useModel(request.model_folder()),
                                                 _("Handing the model over failed.")) is not None:
            _slicer().util.selectModule("ImprovedNNUNet")

    # -- comparison ----------------------------------------------------------------------------------
    def onCompare(self):
        """Evaluate the trained runs in an `improved-nnunet compare` child process; the table is filled when it
        ends (the poll timer reads its output)."""
        dataset = self._parameterNode.dataset
        folders = self.logic.folderSettings(self._parameterNode)
        self._comparison = self._guarded(lambda: self.logic.startComparison(dataset, folders=folders),
                                         _("Comparing the runs failed."))
        if self._comparison is None:
            return
        self._comparisonDataset = dataset
        self._log(_("Comparing the trained runs of {dataset}...").format(dataset=dataset))
        self._comparePollTimer.start(POLL_INTERVAL_MS)
        self._updateGUI()

    def onComparePollTimer(self):
        comparison = self._comparison
        if comparison is None:
            return
        output = comparison.poll()
        if not output.finished:
            return
        self._comparePollTimer.stop()
        self._comparison = None
        self._updateGUI()
        result = self._guarded(lambda: self.logic.comparisonTable(self.logic.comparisonResult(comparison),
                                                                  self._comparisonDataset), _("Comparing the runs failed."))
        if result is not None:
            table, text = result
            self.ui.comparisonTableView.setMRMLTableNode(table)
            self._log(text)
