"""Writing checked scene cases as a new nnU-Net raw dataset (NIfTI + dataset.json)."""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.imageio import write_image
from ImprovedNNUNetLib.core.safe_write import write_text_verified
from ImprovedNNUNetLib.panels.scene.labelmaps import SegmentInfo, export_label_image, segment_infos
from ImprovedNNUNetLib.panels.scene.volumes import image_from_volume
from ImprovedNNUNetTrainingLib.engine.environment import folder_variable
from ImprovedNNUNetTrainingLib.panels.scene_dataset.checks import DatasetCheck
from ImprovedNNUNetTrainingLib.panels.scene_dataset.dataset_folders import (
    check_dataset_name,
    next_free_dataset_id,
    used_dataset_ids,
)

FILE_ENDING = ".nii.gz"


@dataclass
class ExportResult:
    folder: Path
    dataset_id: int
    warnings: list[str] = field(default_factory=list)

    @property
    def dataset_name(self) -> str:
        return self.folder.name


def write_case(case, labels: dict[str, int], folder: Path) -> None:
    """Channel images and the label image (on channel 0's grid; overlapping segments: the later wins)."""
    for channel, volume in enumerate(case.volumes):
        write_image(image_from_volume(volume), folder / "imagesTr" / f"{case.name}_{channel:04d}{FILE_ENDING}")
    segments = [SegmentInfo(info.segment_id, info.name, labels[info.name]) for info in segment_infos(case.segmentation)]
    write_image(export_label_image(case.segmentation, segments, case.volumes[0]),
                folder / "labelsTr" / f"{case.name}{FILE_ENDING}")


def write_dataset_json(checked: DatasetCheck, path: Path, dataset_name: str) -> None:
    info = {
        "name": dataset_name,
        "description": "Exported from a 3D Slicer scene by ImprovedNNUNetTraining",
        "channel_names": {str(i): n for i, n in enumerate(checked.channel_names)},
        "labels": checked.labels,
        "numTraining": len(checked.cases),
        "file_ending": FILE_ENDING,
    }
    write_text_verified(path, json.dumps(info, indent=2))


def export_dataset(checked: DatasetCheck, name: str, raw_folder: str | Path | None = None,
                   dataset_id: int | None = None, folders=None) -> ExportResult:
    """Write the checked cases as ``<raw>/DatasetXXX_<name>``; never replaces anything.

    The id defaults to the lowest free one from 500 (raw, preprocessed and results folders are checked;
    ``folders``: nnU-Net's folders over the environment). The dataset is written to a hidden folder first
    and renamed when complete, so a failed export leaves nothing nnU-Net would pick up.
    """
    if not checked.ok:
        raise UserError("the cases cannot be exported: " + "; ".join(checked.problems))
    check_dataset_name(name)
    raw = Path(raw_folder) if raw_folder else folder_variable("nnUNet_raw", folders)
    if dataset_id is None:
        dataset_id = next_free_dataset_id([raw], folders)
    elif dataset_id in used_dataset_ids([raw], folders):
        raise UserError(f"dataset id {dataset_id} is already used; pick another id or leave it empty for a free one")
    final = raw / f"Dataset{dataset_id:03d}_{name}"
    partial = raw / f".{final.name}.partial"
    if final.exists() or partial.exists():
        raise UserError(f"{final} (or its unfinished copy {partial.name}) exists; pick another name or id")
    try:
        for case in checked.cases:
            write_case(case, checked.labels, partial)
        write_dataset_json(checked, partial / "dataset.json", final.name)
        partial.rename(final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return ExportResult(final, dataset_id, list(checked.warnings))
