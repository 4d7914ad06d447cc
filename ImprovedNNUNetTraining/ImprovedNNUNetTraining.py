"""Slicer module ImprovedNNUNetTraining: a dataset from the scene, training from the GUI, run comparison.

This file is the Slicer-facing shell (module metadata, the parameter node, loading the .ui, the timers, the
Logic and the self-test entry); everything else is in ``ImprovedNNUNetTrainingLib`` (no Qt): the panel's
behaviour in ``panels/training_panel.py``, its logic in ``panels/logic.py``; ``panels/scene_dataset`` exports
scene cases as an nnU-Net raw dataset, ``panels/training_job`` runs `improved-nnunet prepare` / `train` as child
processes and turns their progress events into table and plot chart nodes, and the
`improved-nnunet compare` child process evaluates nnU-Net's validation outputs of every trained run
(Slicer's main thread holds Python's GIL between Qt callbacks, so long Python work never runs on a
thread of this process).
"""
from typing import Annotated

import qt
import slicer
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
from ImprovedNNUNetTrainingLib.panels.logic import TrainingPanelLogic
from ImprovedNNUNetTrainingLib.panels.self_test import TrainingSelfTest
from ImprovedNNUNetTrainingLib.panels.study_section import StudySection
from ImprovedNNUNetTrainingLib.panels.training_panel import TrainingPanel

# The combo boxes' items, in the .ui's order (a test checks them against the Lib's names).
VARIANTS = ["improved", "baseline", "loss", "deepsup", "augment", "sdm", "msf", "msf_deep"]
CONFIGURATIONS = ["3d_fullres", "2d", "3d_lowres"]
PLANNERS = ["ExperimentPlanner", "nnUNetPlannerResEncM", "nnUNetPlannerResEncL", "nnUNetPlannerResEncXL"]
DEVICES = list(DEVICE_CHOICES)
RUN_ON = ["this computer", "server"]
STUDY_EXECUTORS = ["local", "slurm"]


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
    runOn - "this computer" or "server" (the server's address and key are application settings, never the scene's).
    studyArms - a study's arms, separated by spaces (as `study run --arm` takes each); studyRepeats - trainings of
    every arm and fold, each with its own seed; studyExecutor - local or slurm; studyName - empty: arms joined by -vs-.
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
    runOn: Annotated[str, Choice(RUN_ON)] = "this computer"
    studyArms: str = "baseline improved"
    studyRepeats: Annotated[int, WithinRange(1, 20)] = 1
    studyExecutor: Annotated[str, Choice(STUDY_EXECUTORS)] = "local"
    studyName: str = ""


class ImprovedNNUNetTrainingWidget(TrainingPanel, StudySection, ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The panel: its behaviour is ``ImprovedNNUNetTrainingLib.panels.training_panel.TrainingPanel`` and, for the
    Study section, ``panels.study_section.StudySection``."""

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/ImprovedNNUNetTraining.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = ImprovedNNUNetTrainingLogic()
        self._pollTimer = qt.QTimer()
        self._comparePollTimer = qt.QTimer()
        self._studyPollTimer = qt.QTimer()
        self.settings = qt.QSettings()  # Slicer's application settings: the server's address and key
        self.connectPanel()
        self.connectStudySection()

    def cleanup(self):
        self.cleanupStudySection()
        TrainingPanel.cleanup(self)


class ImprovedNNUNetTrainingLogic(TrainingPanelLogic, ScriptedLoadableModuleLogic):
    """Scripting entry point: the methods of ``ImprovedNNUNetTrainingLib.panels.logic.TrainingPanelLogic``
    (nodes of ``slicer.mrmlScene`` or the scene given), plus this module's parameter node."""

    def getParameterNode(self):
        return ImprovedNNUNetTrainingParameterNode(super().getParameterNode())


class ImprovedNNUNetTrainingTest(TrainingSelfTest, ScriptedLoadableModuleTest):
    """Self-test: ``ImprovedNNUNetTrainingLib.panels.self_test`` (a synthetic scene dataset, curves, bad requests)."""

    Logic = ImprovedNNUNetTrainingLogic
