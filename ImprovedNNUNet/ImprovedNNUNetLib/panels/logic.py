"""What the Segment panel and scripts in Slicer's Python console call (the module's Logic class is this plus
Slicer's ``ScriptedLoadableModuleLogic``, its parameter node and showing a table in the application's layout).
Plain Python: the work is delegated to this Lib; nodes go to the scene they belong to, or to
``slicer.mrmlScene`` inside Slicer; installing packages goes through Slicer's ``pip_install``.
"""
from __future__ import annotations

MAX_CHANNELS = 4  # channel selectors in the panel; scripts may pass any number of volumes


def _scene():
    import slicer

    return slicer.mrmlScene


class SegmentPanelLogic:
    """Scripting entry point of the Segment module."""

    # --- models --------------------------------------------------------------------------------
    @staticmethod
    def installedModelNames():
        """Names of the models imported into the user's models folder."""
        from ImprovedNNUNetLib.inference.models import list_models

        return [model.name for model in list_models()]

    @staticmethod
    def modelFolder(parameters):
        """The model folder the parameters choose (the folder when set, else the imported model)."""
        from ImprovedNNUNetLib.panels.segment_options import model_choice

        return model_choice(parameters.installedModel, parameters.modelFolder)

    def channelNames(self, parameters):
        """Input channel names of the chosen model; empty while no valid model is chosen."""
        folder = self.chosenModel(parameters)
        return folder.channel_names if folder is not None else []

    def chosenModel(self, parameters):
        """The chosen model folder's metadata (``ModelFolder``), None while no valid model is chosen."""
        from ImprovedNNUNetLib.core.errors import UserError
        from ImprovedNNUNetLib.inference import open_model_folder

        try:
            return open_model_folder(self.modelFolder(parameters))
        except UserError:
            return None

    # --- segmentation --------------------------------------------------------------------------
    @staticmethod
    def startSegmentation(volumeNodes, modelFolder, folds=None, device="auto", tta=None, step=0.5,
                          distanceMaps=False, outputNode=None, workDir=None, uncertainty=False):
        """Start segmenting ``volumeNodes`` (one per model channel, in order) in a child process.

        Returns an ``ImprovedNNUNetLib.panels.segment_job.SegmentJob``: poll it from a timer, ``cancel()`` it,
        or call ``wait()`` to get the result nodes (``segmentation``, ``distance_maps``, and with
        ``uncertainty`` the ``uncertainty`` volume, shown over the slices).
        """
        from ImprovedNNUNetLib.core.dependencies import require

        require()
        from ImprovedNNUNetLib.panels.segment_job import SegmentJob

        return SegmentJob(volumeNodes, modelFolder, folds=folds, device=device, tta=tta, step=step,
                          distance_maps=distanceMaps, output_node=outputNode, work_dir=workDir,
                          uncertainty=uncertainty)

    @staticmethod
    def startSegmentationOnServer(volumeNodes, server, model=None, trainingJob=None, folds=None, tta=None,
                                  outputNode=None, uncertainty=False):
        """Segment ``volumeNodes`` on an ``improved-nnunet serve`` server (``server``: a ``ServerClient``) with a
        model installed there (``model``) or the model a finished training job made (``trainingJob``);
        ``uncertainty``: also the entropy map, shown over the slices. Returns a ``RemoteSegmentJob`` (the face of
        ``startSegmentation``'s job: poll it, or ``wait()`` for the nodes)."""
        from ImprovedNNUNetLib.panels.remote_segment_job import RemoteSegmentJob

        return RemoteSegmentJob(list(volumeNodes), server, model, trainingJob, folds, tta, outputNode, uncertainty)

    def startSegmentationFromParameters(self, parameters):
        """`startSegmentation` with the panel's choices."""
        from ImprovedNNUNetLib.core.errors import UserError
        from ImprovedNNUNetLib.panels.segment_options import parse_folds, parse_mirroring

        model = self.modelFolder(parameters)
        channels = self.channelNames(parameters)
        if len(channels) > MAX_CHANNELS:
            raise UserError(f"the model has {len(channels)} input channels and the panel takes {MAX_CHANNELS}; "
                            "use the Python console: logic.startSegmentation([volume, ...], model)")
        volumes = [getattr(parameters, f"inputVolume{i}") for i in range(max(1, len(channels)))]
        return self.startSegmentation(volumes, model, folds=parse_folds(parameters.folds), device=parameters.device,
                                      tta=parse_mirroring(parameters.mirroring), step=parameters.step,
                                      distanceMaps=parameters.distanceMaps, outputNode=parameters.outputSegmentation,
                                      uncertainty=parameters.uncertaintyMap)

    def segment(self, volumeNodes, modelFolder, timeout=None, **options):
        """Segment and wait (scripts): returns the result with ``segmentation`` and ``distance_maps`` nodes."""
        return self.startSegmentation(volumeNodes, modelFolder, **options).wait(timeout)

    # --- evaluation ----------------------------------------------------------------------------
    @staticmethod
    def evaluate(predictionNode, referenceNode, tau=1.0, tauPerLabel=None, lesions=False):
        """Metrics of the prediction's segments against the reference (matched by name, then value).

        Returns an ``ImprovedNNUNetLib.panels.scene.evaluation.SceneEvaluation``: ``as_dict()`` gives
        ``{label name: {metric: value}}``, ``notes`` what did not match or was resampled; with ``lesions``
        ``lesion_rows()`` lists every lesion (matched, missed, false) with its centre.
        """
        from ImprovedNNUNetLib.panels.scene.evaluation import evaluate_nodes

        return evaluate_nodes(predictionNode, referenceNode, tau, tauPerLabel, lesions)

    @staticmethod
    def lesionTable(evaluation, tableNode=None, name=None):
        """The evaluation's lesions as a table node, one row per lesion (fills ``tableNode`` when given)."""
        from ImprovedNNUNetLib.panels.scene.lesion_table import lesion_table

        scene = tableNode.GetScene() if tableNode is not None else _scene()
        return lesion_table(scene, evaluation.lesion_rows(), name or "Lesions", tableNode)

    @staticmethod
    def jumpToLesion(tableNode, row):
        """Centre the slice views on the lesion in ``row`` of a lesion table; returns its RAS centre (mm)."""
        from ImprovedNNUNetLib.panels.scene.lesion_table import jump_to_lesion

        return jump_to_lesion(tableNode, row)

    @staticmethod
    def metricsTable(evaluation, tableNode=None, name=None):
        """The evaluation as a table node, one row per label (fills ``tableNode`` when given)."""
        from ImprovedNNUNetLib.panels.scene.evaluation import metrics_table

        scene = tableNode.GetScene() if tableNode is not None else _scene()
        return metrics_table(evaluation, scene, name or "Segmentation metrics", tableNode)

    @staticmethod
    def exportMetricsCsv(tableNode, path, overwrite=False):
        """Write a metrics table node as CSV; refuses to replace a file unless ``overwrite``."""
        from ImprovedNNUNetLib.panels.scene.metrics_table import write_table_csv

        return write_table_csv(tableNode, path, overwrite)

    @staticmethod
    def showErrors(predictionNode, referenceNode, lesions=False):
        """Segmentation "<prediction> errors" with FP and FN segments per label, shown over the slices; with
        ``lesions`` also "missed lesions" and "false lesions" segments in their own colours."""
        from ImprovedNNUNetLib.panels.scene.evaluation import show_errors

        return show_errors(predictionNode, referenceNode, lesions)

    @staticmethod
    def exportDicomSeg(segmentationNode, volumeNode, database=None, importDicom=None):
        """Write the segmentation (and its FP/FN error segments, when shown) as DICOM SEG referencing the series
        ``volumeNode`` was loaded from, into Slicer's DICOM database (``slicer.dicomDatabase`` and
        ``DICOMLib.DICOMUtils.importDicom`` unless given); returns the exported segmentations' names."""
        from ImprovedNNUNetLib.panels.scene.dicom_export import export_dicom_seg

        if database is None or importDicom is None:
            import slicer

            database = database if database is not None else getattr(slicer, "dicomDatabase", None)
            if importDicom is None:
                from DICOMLib import DICOMUtils

                importDicom = DICOMUtils.importDicom
        return export_dicom_seg(segmentationNode, volumeNode, database, importDicom)

    # --- dependencies --------------------------------------------------------------------------
    @staticmethod
    def missingDependencies():
        """Pinned packages (nnU-Net, ...) that are absent or at another version."""
        from ImprovedNNUNetLib.core.dependencies import missing_packages

        return missing_packages()

    @staticmethod
    def dependencyStatus():
        from ImprovedNNUNetLib.core.dependencies import status_text

        return status_text()

    @staticmethod
    def requireEvaluation():
        """`UserError` naming the packages that Compute metrics needs beyond Slicer's own (surface-distance)."""
        from ImprovedNNUNetLib.core.dependencies import EVALUATION_PACKAGES, require

        require(EVALUATION_PACKAGES, "Computing metrics")

    def installDependencies(self):
        """Install torch through the PyTorch extension (Slicer's PyTorchUtils module), then the missing packages
        with Slicer's ``pip_install`` (ranges that accept copies other extensions installed); True when a restart
        is needed. Asks nothing: the caller asked once. Inside Slicer only."""
        import importlib
        import subprocess

        import slicer.util

        from ImprovedNNUNetLib.core.dependencies import (
            TORCH_REQUIREMENT,
            install_failure,
            pip_requirements,
            restart_needed,
            torch_ready,
        )
        from ImprovedNNUNetLib.core.errors import UserError

        try:
            torch_utils = importlib.import_module("PyTorchUtils")
        except ModuleNotFoundError:
            raise UserError("the PyTorch extension is missing; install 'PyTorch' from the Extensions Manager, "
                            "restart Slicer and try again") from None
        if not torch_ready():
            torchLogic = torch_utils.PyTorchUtilsLogic()
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
