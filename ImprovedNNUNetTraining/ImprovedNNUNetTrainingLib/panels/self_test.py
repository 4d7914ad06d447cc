"""The Improved nnU-Net Training module's self-test (Slicer's "Reload and Test" and the extension's ctest):
exports a synthetic two-case scene dataset, checks the curves of progress events and the parameter handling;
training itself is covered by the Python test suite (minutes on a CPU).

Mixed into the module's ``ScriptedLoadableModuleTest`` as ``ImprovedNNUNetLib.panels.self_test.SceneSelfTest``
describes.
"""
from __future__ import annotations

from ImprovedNNUNetLib.panels.self_test import SceneSelfTest, _scene


class TrainingSelfTest(SceneSelfTest):
    TESTS = ("test_ParameterNodeDefaults", "test_SceneDatasetExport", "test_CurvesFromEvents",
             "test_BadRequestsAreReported")

    def _case(self, name, offset):
        """A 24×32×32 volume with a bright box; segments 'organ' (left half) and 'lesion' (right half)."""
        import numpy as np

        from ImprovedNNUNetLib.core.imageio import Image
        from ImprovedNNUNetLib.panels.scene.segmentation import add_prediction_segmentation
        from ImprovedNNUNetLib.panels.scene.volumes import add_volume_from_image, image_from_volume

        array = np.zeros((24, 32, 32), dtype=np.int16)
        array[4 + offset:16 + offset, 8:24, 8:24] = 100
        image = Image(array, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
        volume = add_volume_from_image(_scene(), image, f"{name} image")
        labels = (array > 0).astype(np.uint8) * np.where(np.arange(32) < 16, 1, 2).astype(np.uint8)
        segmentation = add_prediction_segmentation(image_from_volume(volume).with_array(labels),
                                                   {"organ": 1, "lesion": 2}, volume, f"{name} segmentation")
        return volume, segmentation

    def test_ParameterNodeDefaults(self):
        parameters = self.Logic().getParameterNode()
        self.assertEqual((parameters.variant, parameters.configuration, parameters.folds), ("improved", "3d_fullres", "0"))
        self.assertEqual((parameters.epochs, parameters.iterationsPerEpoch), (1000, 250))

    def test_SceneDatasetExport(self):
        import json
        import tempfile

        logic = self.Logic()
        checked = logic.checkSceneDataset([self._case("first", 0), self._case("second", 4)], channelNames="CT")
        self.assertEqual(checked.problems, [])
        self.assertEqual(checked.labels, {"background": 0, "organ": 1, "lesion": 2})
        with tempfile.TemporaryDirectory() as raw:
            result = logic.exportSceneDataset(checked, "SelfTest", rawFolder=raw)
            info = json.loads((result.folder / "dataset.json").read_text())
            self.assertEqual(info["channel_names"], {"0": "CT"})
            self.assertEqual(info["numTraining"], 2)
            self.assertEqual(sorted(p.name for p in (result.folder / "labelsTr").iterdir()),
                             ["first_image.nii.gz", "second_image.nii.gz"])

    def test_CurvesFromEvents(self):
        from ImprovedNNUNetTrainingLib.panels.training_curves import TrainingCurves

        curves = TrainingCurves(_scene(), "self-test")
        for epoch in range(3):
            curves.add_event({"stage": "training", "epoch": epoch, "train_loss": 1.0 - 0.1 * epoch,
                              "val_loss": 1.1 - 0.1 * epoch, "pseudo_dice": 0.2 * epoch, "epoch_time_s": 1.0})
        self.assertEqual(curves.table.GetNumberOfRows(), 3)
        self.assertEqual(curves.charts["loss"].GetNumberOfPlotSeriesNodes(), 2)

    def test_BadRequestsAreReported(self):
        from ImprovedNNUNetLib.core.errors import UserError

        logic = self.Logic()
        parameters = logic.getParameterNode()
        parameters.folds = "zero"
        with self.assertRaises(UserError):
            logic.requestFromParameters(parameters)
        parameters.folds = "0"
        parameters.variant = "loss"
        with self.assertRaises(UserError):
            logic.requestFromParameters(parameters, "rotation_probability = 0.5")
