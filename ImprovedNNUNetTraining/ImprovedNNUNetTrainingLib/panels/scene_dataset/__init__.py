"""Building an nnU-Net raw dataset from volumes and segmentations in a Slicer scene.

Pick cases (``cases_from_pairs`` or ``cases_from_folders``), check them with ``check_dataset``
(label union and every blocking problem, nothing written), then ``export_dataset``.
"""
from ImprovedNNUNetTrainingLib.panels.scene_dataset.cases import SceneCase, cases_from_folders, cases_from_pairs
from ImprovedNNUNetTrainingLib.panels.scene_dataset.checks import DatasetCheck, check_dataset
from ImprovedNNUNetTrainingLib.panels.scene_dataset.dataset_folders import (
           RawDataset,
           next_free_dataset_id,
           open_raw_dataset,
           use_raw_dataset,
)
from ImprovedNNUNetTrainingLib.panels.scene_dataset.export import ExportResult, export_dataset

__all__ = ["SceneCase", "cases_from_pairs", "cases_from_folders", "DatasetCheck", "check_dataset",
           "ExportResult", "export_dataset", "RawDataset", "open_raw_dataset", "use_raw_dataset", "next_free_dataset_id"]
