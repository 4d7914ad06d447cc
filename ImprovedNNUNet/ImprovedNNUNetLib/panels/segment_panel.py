"""The Improved nnU-Net (Segment) panel's behaviour: what each button does, what the panel shows while the
parameters change, polling the segmentation child process.

Mixed into the module's widget class (``ImprovedNNUNet.py`` keeps the Slicer shell: loading the ``.ui``, the poll
timer, the Logic and the parameter node class). No ``qt`` import: it works on the widgets of ``self.ui`` through
their properties and signals, and on ``slicer.util``'s dialogs.
"""
from __future__ import annotations

from pathlib import Path

from ImprovedNNUNetLib.panels.logic import MAX_CHANNELS
from ImprovedNNUNetLib.panels.plumbing import PanelPlumbing, _, guarded, install_dependencies_interactively, path_is_set
from ImprovedNNUNetLib.panels.scene.dicom_export import INSTANCE_UIDS_ATTRIBUTE

POLL_INTERVAL_MS = 200
# Path parameters -> their ctkPathLineEdit. They are plain text parameters that the widget
# keeps in step itself: Slicer's Path connector shows an unset Path() as "." and rewrites the
# field on every keystroke, and ctkPathLineEdit never reports an emptied field.
PATH_FIELDS = {"modelFolder": "modelFolderPathLineEdit", "metricsCsv": "metricsCsvPathLineEdit"}


def _slicer():
    import slicer

    return slicer


class SegmentPanel(PanelPlumbing):
    """The widget's behaviour; the widget provides ``ui``, ``logic`` and ``_pollTimer`` (a QTimer)."""

    LIB_PACKAGES = ("ImprovedNNUNetLib",)
    PATH_FIELDS = PATH_FIELDS
    _job = None
    _pollTimer = None
    _fillingModels = False
    _serverModels: dict = {}  # name -> the server's description, after the model list was refreshed from it

    def connectPanel(self):
        """Connect the widgets and show the parameters (called once from ``setup``)."""
        self._pollTimer.connect("timeout()", self.onPollTimer)
        self.connectPlumbing()
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.refreshModelsButton.connect("clicked(bool)", self.onRefreshModels)
        self.ui.modelComboBox.connect("currentIndexChanged(int)", self.onModelChosen)
        self.ui.computeMetricsButton.connect("clicked(bool)", self.onComputeMetrics)
        self.ui.showErrorsButton.connect("clicked(bool)", self.onShowErrors)
        self.ui.lesionTableView.connect("clicked(QModelIndex)", self.onLesionClicked)
        self.ui.exportCsvButton.connect("clicked(bool)", self.onExportCsv)
        self.ui.exportDicomSegButton.connect("clicked(bool)", self.onExportDicomSeg)
        self.ui.installDependenciesButton.connect("clicked(bool)", self.onInstallDependencies)
        self.ui.dependenciesStatusLabel.text = self.logic.dependencyStatus()
        self.connectServerFields()
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

    def exit(self):
        self.setParameterNode(None)  # a running segmentation goes on; its result reaches the scene

    def onSceneStartClose(self, caller, event):
        if self._job is not None and self._job.running:
            self._job.request_cancel()  # its input volumes are leaving the scene
            self._log(_("The scene is closing: segmentation cancelled."))
        self.setParameterNode(None)

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume0:
            self._parameterNode.inputVolume0 = _slicer().mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")

    def _setParameter(self, name, value):
        if self._parameterNode is not None and getattr(self._parameterNode, name) != value:
            setattr(self._parameterNode, name, value)

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
        channels, summary = self._chosenModel(parameters)
        self.ui.modelSummaryLabel.text = summary
        for index in range(MAX_CHANNELS):
            label = getattr(self.ui, f"inputVolume{index}Label")
            selector = getattr(self.ui, f"inputVolume{index}Selector")
            shown = index < max(1, len(channels))
            label.visible = selector.visible = shown
            label.text = f"{channels[index]}:" if index < len(channels) else _("Input volume:")
        self.ui.applyButton.enabled = running or bool(channels and parameters.inputVolume0)
        evaluable = bool(parameters.outputSegmentation and parameters.reference) and not running
        self.ui.computeMetricsButton.enabled = self.ui.showErrorsButton.enabled = evaluable
        fromDicom = bool(parameters.inputVolume0 and parameters.inputVolume0.GetAttribute(INSTANCE_UIDS_ATTRIBUTE))
        self.ui.exportDicomSegButton.enabled = bool(parameters.outputSegmentation) and fromDicom and not running
        exportable = bool(parameters.metricsTable and path_is_set(parameters.metricsCsv))
        self.ui.exportCsvButton.enabled = exportable
        self.ui.exportCsvButton.toolTip = _("Save the metrics table as a CSV file.") if exportable else (
            _("Compute metrics first.") if not parameters.metricsTable else _("Choose the CSV file first."))

    def _chosenModel(self, parameters):
        """(input channel names, summary text) of the chosen model: here, or among the server's models."""
        if self._onServer():
            info = self._serverModels.get(parameters.installedModel)
            if info is None:
                return [], _("Choose a model of the server (refresh the list next to Model).")
            return list(info["channels"]), _("{name} on the server: folds {folds}; labels {labels}").format(
                name=parameters.installedModel, folds=", ".join(map(str, info["folds"])),
                labels=", ".join(name for name in info["labels"] if name != "background"))
        model = self.logic.chosenModel(parameters)
        return (model.channel_names, model.summary) if model is not None else ([], _("No model chosen."))

    def onRefreshModels(self):
        """Fill the model list again (the imported models, or the server's with Run on: server); the chosen
        model stays chosen."""
        if self._onServer():
            found = self._guarded(lambda: {m["name"]: m for m in self._server().models()},
                                  _("Listing the server's models failed."))
            self._serverModels = found or {}
            names = list(self._serverModels)
        else:
            names = self.logic.installedModelNames()
        self._fillingModels = True
        try:
            self.ui.modelComboBox.clear()
            self.ui.modelComboBox.addItem("")
            for name in names:
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
        job = self._guarded(self._startSegmentation, _("Segmentation could not start."))
        if job is not None:
            self._job = job
            self.ui.progressBar.value = 0
            self._log(_("Segmenting with {model}").format(model=job.model.path))
            self._pollTimer.start(POLL_INTERVAL_MS)
        self._updateGUI()

    def _startSegmentation(self):
        if not self._onServer():
            return self.logic.startSegmentationFromParameters(self._parameterNode)
        from ImprovedNNUNetLib.panels.segment_options import parse_folds, parse_mirroring

        parameters = self._parameterNode
        channels, _summary = self._chosenModel(parameters)
        volumes = [getattr(parameters, f"inputVolume{i}") for i in range(max(1, len(channels)))]
        return self.logic.startSegmentationOnServer(volumes, self._server(), model=parameters.installedModel,
                                                    folds=parse_folds(parameters.folds),
                                                    tta=parse_mirroring(parameters.mirroring),
                                                    outputNode=parameters.outputSegmentation,
                                                    uncertainty=parameters.uncertaintyMap)

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
        if job.stage != "cancelled":
            result = guarded(job.load_result, _("Segmentation failed."))
            if result is not None:
                # the panel may have been left meanwhile: the module's parameter node still gets it
                (self._parameterNode or self.logic.getParameterNode()).outputSegmentation = result.segmentation
        self._updateGUI()

    def onComputeMetrics(self):
        def compute():
            parameters = self._parameterNode
            self.logic.requireEvaluation()
            evaluation = self.logic.evaluate(parameters.outputSegmentation, parameters.reference, parameters.tau,
                                             lesions=parameters.lesions)
            for note in evaluation.notes:
                self._log(note)
            parameters.metricsTable = self.logic.metricsTable(evaluation, parameters.metricsTable)
            if parameters.lesions:
                parameters.lesionTable = self.logic.lesionTable(evaluation, parameters.lesionTable)
                self.ui.lesionTableView.setMRMLTableNode(parameters.lesionTable)
                missed = sum(row["Kind"] == "missed" for row in evaluation.lesion_rows())
                self._log(_("{n} lesion(s), {missed} missed: click a row to centre the views on it").format(
                    n=len(evaluation.lesion_rows()), missed=missed))
            self.logic.showTable(parameters.metricsTable)

        self._guarded(compute, _("Metrics could not be computed."))

    def onShowErrors(self):
        parameters = self._parameterNode
        errors = self._guarded(lambda: self.logic.showErrors(parameters.outputSegmentation, parameters.reference,
                                                             lesions=parameters.lesions),
                               _("Errors could not be shown."))
        if errors is not None:
            self._log(_("False positives and false negatives are in '{name}'").format(name=errors.GetName()))

    def onLesionClicked(self, index):
        """A row of the lesion table: centre the slice views on that lesion."""
        parameters = self._parameterNode
        self._guarded(lambda: self.logic.jumpToLesion(parameters.lesionTable, index.row()),
                      _("The views could not be centred on the lesion."))

    def onExportCsv(self):
        self._storePathFields()
        parameters = self._parameterNode
        path = Path(parameters.metricsCsv)
        if path.exists() and not _slicer().util.confirmYesNoDisplay(_("{path} exists. Replace it?").format(path=path)):
            return
        written = self._guarded(lambda: self.logic.exportMetricsCsv(parameters.metricsTable, path, overwrite=True),
                                _("The CSV file could not be written."))
        if written is not None:
            self._log(_("Metrics saved to {path}").format(path=written))

    def onExportDicomSeg(self):
        parameters = self._parameterNode
        names = self._guarded(lambda: self.logic.exportDicomSeg(parameters.outputSegmentation, parameters.inputVolume0),
                              _("The DICOM SEG export failed."))
        if names is not None:
            self._log(_("Exported to the DICOM database as DICOM SEG: {names}").format(names=", ".join(names)))

    def onInstallDependencies(self):
        install_dependencies_interactively(self.logic, self._log)
        self.ui.dependenciesStatusLabel.text = self.logic.dependencyStatus()
