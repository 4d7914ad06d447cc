"""What the Training panel and scripts in Slicer's Python console call (the module's Logic class is this plus
Slicer's ``ScriptedLoadableModuleLogic``). Plain Python: the work is delegated to the Libs; nodes go to the
scene given, or to ``slicer.mrmlScene`` inside Slicer.
"""
from __future__ import annotations

import importlib

from ImprovedNNUNetLib.panels.plumbing import path_is_set

# The panel's folder parameters -> nnU-Net's folder variables.
FOLDER_PARAMETERS = {"rawFolder": "nnUNet_raw", "preprocessedFolder": "nnUNet_preprocessed",
                     "resultsFolder": "nnUNet_results"}


def _scene():
    import slicer

    return slicer.mrmlScene


class TrainingPanelLogic:
    """Scripting entry point of the Training module; every method is static."""

    @staticmethod
    def folderSettings(parameters):
        """The panel's nnU-Net folders as ``{"nnUNet_raw": path, ...}`` (set fields only). They are passed to
        every action and child process explicitly; Slicer's own environment is never changed (unset fields
        fall back to it)."""
        if parameters is None:
            return {}
        return {variable: str(getattr(parameters, name)) for name, variable in FOLDER_PARAMETERS.items()
                if path_is_set(getattr(parameters, name))}

    # --- dataset ------------------------------------------------------------------------------------
    @staticmethod
    def checkSceneDataset(pairs=(), folderItems=(), channelNames="CT", scene=None):
        """Check cases made of ``(volume or [volumes], segmentation)`` pairs and subject-hierarchy
        folder items: returns a ``DatasetCheck`` (labels, problems, warnings); writes nothing."""
        from ImprovedNNUNetTrainingLib.panels.scene_dataset import cases_from_folders, cases_from_pairs, check_dataset

        cases = cases_from_pairs(list(pairs)) if pairs else []
        if folderItems:
            cases += cases_from_folders(scene or _scene(), list(folderItems))
        if not cases:
            from ImprovedNNUNetLib.core.errors import UserError

            raise UserError("no cases chosen; add (volume, segmentation) pairs or case folders")
        channels = channelNames if isinstance(channelNames, (list, tuple)) else channelNames.split(",")
        return check_dataset(cases, [c.strip() for c in channels])

    planSceneDataset = checkSceneDataset  # its earlier name, kept for scripts

    @staticmethod
    def exportSceneDataset(checked, name, rawFolder=None, datasetId=None, folders=None):
        """Write checked cases (``checkSceneDataset``) as a new nnU-Net raw dataset; returns an ``ExportResult``.
        ``folders``: nnU-Net's folders (``folderSettings``) over the environment."""
        from ImprovedNNUNetTrainingLib.panels.scene_dataset import export_dataset

        return export_dataset(checked, name, rawFolder, datasetId, folders)

    @staticmethod
    def useRawDataset(folder, folders=None):
        """Check an existing raw dataset folder for training: it must lie in the raw folder when one is set
        (``folders`` over the environment); returns a ``RawDataset`` (the panel makes its parent the raw folder
        when none is set)."""
        from ImprovedNNUNetTrainingLib.panels.scene_dataset import use_raw_dataset

        return use_raw_dataset(folder, folders)

    # --- training -----------------------------------------------------------------------------------
    @staticmethod
    def hyperparametersText(variant):
        """The variant's hyper-parameters with their defaults as ``name = value`` lines."""
        from ImprovedNNUNetTrainingLib.engine.hyperparameters import format_hyperparameters
        from ImprovedNNUNetTrainingLib.panels.training_request import variant_defaults

        return format_hyperparameters(variant_defaults(variant))

    @staticmethod
    def requestFromParameters(parameters, hyperparametersText=""):
        """A ``TrainingRequest`` from the panel's parameters and its Advanced hyper-parameter text
        (only values that differ from the variant's defaults are passed on)."""
        from ImprovedNNUNetTrainingLib.engine.hyperparameters import parse_hyperparameters
        from ImprovedNNUNetTrainingLib.panels.training_request import TrainingRequest, parse_folds, variant_defaults

        return TrainingRequest(
            dataset=str(parameters.dataset).strip(), variant=parameters.variant,
            configuration=parameters.configuration, folds=parse_folds(parameters.folds), device=parameters.device,
            epochs=parameters.epochs, iterations_per_epoch=parameters.iterationsPerEpoch,
            validation_iterations_per_epoch=parameters.validationIterationsPerEpoch,
            hyperparameters=parse_hyperparameters(hyperparametersText or "", variant_defaults(parameters.variant)),
            overwrite=parameters.overwrite, planner=parameters.planner,
            folders=TrainingPanelLogic.folderSettings(parameters))

    @staticmethod
    def startTraining(request, resume=False, scene=None, server=None):
        """Start a ``TrainingJob`` (prepare when needed, then each fold) and return it running: poll it
        from a timer or call ``wait()``. Its curves are table and plot chart nodes of ``scene``. With ``server``
        (``serverClient``) the training runs there (``RemoteTrainingJob``: the raw dataset is sent when the
        server lacks it; the job goes on when Slicer closes)."""
        from ImprovedNNUNetTrainingLib.panels.remote_training_job import RemoteTrainingJob
        from ImprovedNNUNetTrainingLib.panels.training_job import TrainingJob

        job = TrainingJob(request, scene or _scene()) if server is None else \
            RemoteTrainingJob(request, scene or _scene(), server)
        return job.resume() if resume else job.start()

    @staticmethod
    def serverClient(url, key, timeout=5.0):
        """A client of an ``improved-nnunet serve`` server (versions checked on first use); a panel's polls
        wait ``timeout`` seconds at most."""
        from ImprovedNNUNetLib.server.client import ServerClient

        return ServerClient(str(url).strip(), str(key).strip(), timeout=timeout)

    @staticmethod
    def attachTraining(server, scene=None):
        """The newest training of this key on the server that has not finished, followed from its first event
        (a ``RemoteTrainingJob``), or None: what a panel opened again (Slicer restarted) picks up."""
        from ImprovedNNUNetTrainingLib.panels.remote_training_job import RemoteTrainingJob

        server.check_version()
        return RemoteTrainingJob.attach(server, scene or _scene())

    @staticmethod
    def useModel(modelFolder):
        """Hand a trained model folder to the ImprovedNNUNet module: its parameter node's
        ``modelFolder`` is set, which its panel shows and segments with. Returns the folder."""
        from ImprovedNNUNetLib.inference import open_model_folder

        folder = open_model_folder(modelFolder).path
        inference = importlib.import_module("ImprovedNNUNet")
        parameters = inference.ImprovedNNUNetLogic().getParameterNode()
        parameters.modelFolder = str(folder)
        return folder

    # --- studies ------------------------------------------------------------------------------------
    @staticmethod
    def studyRequestFromParameters(parameters):
        """A ``StudyRequest`` from the panel's Study section (arms, repeats, executor, name) and its Training
        section (dataset, folds, configuration, planner, device, schedule, folders); each arm is checked."""
        from ImprovedNNUNetTrainingLib.panels.study_job import study_request

        return study_request(parameters, TrainingPanelLogic.folderSettings(parameters))

    @staticmethod
    def startStudy(request, server=None):
        """Start a ``StudyJob`` and return it running (``poll()`` it): `improved-nnunet study run` as a child
        process, or with ``server`` (``serverClient``) a study job on the server."""
        from ImprovedNNUNetTrainingLib.panels.study_job import StudyJob

        return StudyJob(request, server).start()

    @staticmethod
    def showStudyStatus(request, tableNode, job=None):
        """Fill ``tableNode`` with the study's arms × folds (× repeats) matrix from its files (with ``job``, a
        started ``StudyJob``: from wherever it runs, the server too); False before the study has written its
        study.json."""
        from ImprovedNNUNetLib.core.errors import UserError
        from ImprovedNNUNetTrainingLib.panels.study_job import fill_status_table, status_rows

        try:
            header, rows = job.status() if job is not None else status_rows(request.dataset, request.study_name,
                                                                              request.folders)
        except UserError:
            return False
        if not header:
            return False
        fill_status_table(tableNode, header, rows)
        return True

    # --- comparison ---------------------------------------------------------------------------------
    @staticmethod
    def compareRuns(dataset, tableNode=None, tau=1.0, scene=None, folders=None):
        """Evaluate every trained variant and fold of ``dataset`` on its validation outputs; returns
        (table node with one row per run, fold and label, the printed table in the papers' layout)."""
        from ImprovedNNUNetTrainingLib.analysis.compare import compare_runs

        return TrainingPanelLogic.comparisonTable(compare_runs(str(dataset), tau, folders), dataset, tableNode,
                                                           scene)

    @staticmethod
    def startComparison(dataset, tau=1.0, folders=None):
        """`compareRuns`'s evaluation as an `improved-nnunet compare --json` child process (returned running):
        ``poll()`` it until ``finished``, then pass `comparisonResult(process)` to `comparisonTable`."""
        from ImprovedNNUNetLib.core.dependencies import require
        from ImprovedNNUNetTrainingLib.analysis.compare import start_comparison

        require()
        return start_comparison(str(dataset), tau, folders)

    @staticmethod
    def comparisonResult(process):
        """The run summaries a finished comparison process printed; `UserError` with its last error line when
        it failed."""
        from ImprovedNNUNetTrainingLib.analysis.compare import comparison_result

        return comparison_result(process)

    @staticmethod
    def comparisonTable(summaries, dataset, tableNode=None, scene=None):
        """(table node of the compared runs, the printed table in the papers' layout)."""
        from ImprovedNNUNetTrainingLib.analysis.compare import format_table
        from ImprovedNNUNetTrainingLib.panels.compare_table import fill_comparison_table

        if tableNode is None:
            tableNode = (scene or _scene()).AddNewNodeByClass("vtkMRMLTableNode", f"{dataset} comparison")
        fill_comparison_table(tableNode, summaries)
        return tableNode, format_table(summaries)

    @staticmethod
    def dependencyStatus():
        from ImprovedNNUNetLib.core.dependencies import status_text

        return status_text()
