"""The modules' self-tests (Slicer's "Reload and Test" and the extension's ctest): ``SceneSelfTest``, what both
share, and the Improved nnU-Net module's, on a synthetic chest-like volume made here (no download, no trained
model).

Each is mixed into its module's ``ScriptedLoadableModuleTest`` (which brings ``unittest.TestCase`` and
``delayDisplay``); ``Logic`` is the module's Logic class. Uses ``slicer.mrmlScene`` only (MRML, no Qt).
"""
from __future__ import annotations

import tempfile
from pathlib import Path


def _scene():
    import slicer

    return slicer.mrmlScene


class SceneSelfTest:
    """Runs ``TESTS`` in order, each on a cleared scene."""

    Logic = None  # the module's Logic class
    TESTS = ()

    def setUp(self):
        _scene().Clear()

    def runTest(self):
        for name in self.TESTS:
            self.setUp()
            getattr(self, name)()


class SegmentSelfTest(SceneSelfTest):
    TESTS = ("test_ParameterNodeDefaults", "test_MissingModelIsReported", "test_EvaluateSampleAgainstItsReference")

    def test_ParameterNodeDefaults(self):
        parameters = self.Logic().getParameterNode()
        self.assertEqual(parameters.device, "auto")
        self.assertEqual(parameters.step, 0.5)
        self.assertIsNone(parameters.inputVolume0)

    def test_MissingModelIsReported(self):
        from ImprovedNNUNetLib.core.errors import UserError

        volume = _scene().AddNewNodeByClass("vtkMRMLScalarVolumeNode")
        with self.assertRaises(UserError):
            self.Logic().startSegmentation([volume], Path(tempfile.gettempdir()) / "no-such-model")

    def _sampleScene(self):
        """A synthetic CT-like volume and a 3-segment reference made here (no download; numpy and MRML only)."""
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
        volume = add_volume_from_image(_scene(), image, "Synthetic CT")
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
        logic = self.Logic()

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
