"""Run by Testing/test_fresh_slicer.py with the Python of ``.venv-fresh-slicer``: the packages a fresh 3D Slicer
bundles (numpy, scipy, SimpleITK, packaging, requests, pydicom; Slicer's SuperBuild python requirements) plus
slicer-core for real MRML and ``slicer.util``, and nothing the user installs later (no psutil, surface-distance,
torch, nnunetv2, tqdm, slicerio).

Both panels open on the Qt double (Testing/slicer_shim); every action that needs no extra package works, the
others say in one dialog what to install; the modules' self-tests pass (a test that needs a package skips with
its reason). Prints one line per check and exits 1 on the first failure.
"""
import json
import logging
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "Testing"))

import slicer_shim  # noqa: E402

NOT_BUNDLED = ("psutil", "surface_distance", "torch", "nnunetv2", "tqdm", "slicerio", "acvl_utils")


class Dialogs(logging.Handler):
    """slicer.util's message boxes log their text (testing mode); errorDisplay logs at ERROR."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.errors = []

    def emit(self, record):
        if record.levelno >= logging.ERROR:
            self.errors.append(record.getMessage())


def add_two_cases(training_module, widget):
    """The Training self-test's two synthetic cases, added to the panel's case list as a user does; returns
    their (volume, segmentation) pairs."""
    test = training_module.ImprovedNNUNetTrainingTest()
    cases = test._case("first", 0), test._case("second", 4)
    for volume, segmentation in cases:
        widget.ui.caseVolumeSelector.setCurrentNode(volume)
        widget.ui.caseSegmentationSelector.setCurrentNode(segmentation)
        widget.ui.addCaseButton.click()
    return cases


def check(condition, text):
    print(("ok    " if condition else "FAIL  ") + text, flush=True)
    if not condition:
        sys.exit(1)


def main():
    import importlib.util

    for name in NOT_BUNDLED:
        check(importlib.util.find_spec(name) is None, f"{name} is not installed (a fresh Slicer)")
    dialogs = Dialogs()
    logging.getLogger().addHandler(dialogs)
    from slicer_shim import qt

    inference = slicer_shim.load_module(REPO / "ImprovedNNUNet" / "ImprovedNNUNet.py")
    training = slicer_shim.load_module(REPO / "ImprovedNNUNetTraining" / "ImprovedNNUNetTraining.py")
    import slicer

    segment = inference.ImprovedNNUNetWidget()
    segment.setup()
    train = training.ImprovedNNUNetTrainingWidget()
    train.setup()
    check(dialogs.errors == [] and qt.SLOT_ERRORS == [], f"both panels open without an error: {dialogs.errors}")
    check("torch" in train.ui.dependenciesStatusLabel.text and "Missing" in train.ui.dependenciesStatusLabel.text,
          "the Training panel says what is missing")
    check("rotation_probability" in train.ui.hyperparametersTextEdit.plainText or
          "dice_weight" in train.ui.hyperparametersTextEdit.plainText, "the variant's defaults are shown")

    # dataset from the scene: check and export need only Slicer's packages
    first, second = add_two_cases(training, train)
    raw = Path(tempfile.mkdtemp()) / "raw"
    raw.mkdir()
    train.ui.rawFolderPathLineEdit.currentPath = str(raw)
    train.ui.checkCasesButton.click()
    check(dialogs.errors == [], f"Check cases works: {dialogs.errors}")
    train.ui.exportButton.click()
    exported = sorted(raw.glob("Dataset*/dataset.json"))
    check(dialogs.errors == [] and len(exported) == 1, f"Export writes the raw dataset: {dialogs.errors}")
    check(json.loads(exported[0].read_text())["numTraining"] == 2, "the exported dataset has both cases")
    train._parameterNode.existingRawDataset = str(exported[0].parent)
    train.ui.useRawDatasetButton.click()
    check(dialogs.errors == [], f"Use raw dataset works: {dialogs.errors}")

    # what needs torch / nnU-Net explains itself in one dialog
    for button, what in ((train.ui.applyButton, "Train"), (train.ui.resumeButton, "Resume"),
                         (train.ui.compareButton, "Compare")):
        dialogs.errors.clear()
        button.click()
        check(len(dialogs.errors) == 1 and "torch" in dialogs.errors[0] and "Install dependencies" in dialogs.errors[0],
              f"{what} says what to install: {dialogs.errors}")
    check(train._job is None and train._comparison is None, "nothing was started")

    # the Segment panel: metrics explain surface-distance; errors and the rest work
    volume, reference = first
    prediction = second[1]
    segment._parameterNode.outputSegmentation = prediction
    segment._parameterNode.reference = reference
    # (both panels show an error the same way: one dialog, nothing raised out of the slot)
    dialogs.errors.clear()
    segment.ui.computeMetricsButton.click()
    shown = list(dialogs.errors)
    check(len(shown) == 1 and "surface-distance" in shown[0] and "Install dependencies" in shown[0]
          and qt.SLOT_ERRORS == [], f"Compute metrics says what to install: {shown} {qt.SLOT_ERRORS}")
    dialogs.errors.clear()
    qt.SLOT_ERRORS.clear()
    segment.ui.showErrorsButton.click()
    check(dialogs.errors == [] and qt.SLOT_ERRORS == [], f"Show errors works: {dialogs.errors} {qt.SLOT_ERRORS}")
    check(slicer.mrmlScene.GetFirstNodeByName(f"{prediction.GetName()} errors") is not None,
          "the errors segmentation is in the scene")
    dialogs.errors.clear()
    segment._parameterNode.inputVolume0 = volume
    segment._parameterNode.modelFolder = str(raw)  # not a model: the Apply button stays off, no dialog
    check(not segment.ui.applyButton.enabled, "Apply waits for a model")
    check(qt.SLOT_ERRORS == [], f"no slot raised: {qt.SLOT_ERRORS}")
    segment.cleanup()
    train.cleanup()

    # the self-tests
    slicer.mrmlScene.Clear(0)
    inference.ImprovedNNUNetTest().runTest()
    print("ok    the Improved nnU-Net self-test passes (metrics part skipped: surface-distance missing)")
    training.ImprovedNNUNetTrainingTest().runTest()
    print("ok    the Improved nnU-Net Training self-test passes")
    print("fresh Slicer: all checks passed")


if __name__ == "__main__":
    main()
