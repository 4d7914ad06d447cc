"""Writing checked scene cases as a new nnU-Net raw dataset (NIfTI + dataset.json)."""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ImprovedNNUNetLib.errors import UserError
from ImprovedNNUNetLib.imageio import write_image

from .dataset_folders import check_dataset_name, next_free_dataset_id, raw_folder_from_environment, used_dataset_ids
from .nodes import image_from_volume_node, segment_mask, segment_names
from .plan import DatasetPlan

FILE_ENDING = ".nii.gz"


@dataclass
class ExportResult:
    folder: Path
    dataset_id: int
    warnings: list[str] = field(default_factory=list)

    @property
    def dataset_name(self) -> str:
        return self.folder.name


def label_array(case, labels: dict[str, int], shape: tuple, warnings: list[str]) -> np.ndarray:
    """The case's segments as one label array on channel 0's grid (``shape``); where segments
    overlap the later one wins."""
    dtype = np.uint8 if max(labels.values()) < 256 else np.uint16
    result = np.zeros(shape, dtype=dtype)
    claimed = np.zeros(shape, dtype=bool)
    for segment_id, name in segment_names(case.segmentation):
        mask = segment_mask(case.segmentation, segment_id, case.volumes[0])
        overlap = int(np.count_nonzero(mask & claimed))
        if overlap:
            warnings.append(f"case '{case.name}': segment '{name}' overlaps earlier segments in {overlap} voxels; "
                            "they get its label")
        result[mask] = labels[name]
        claimed |= mask
    return result


def write_case(case, labels: dict[str, int], folder: Path, warnings: list[str]) -> None:
    images = [image_from_volume_node(volume) for volume in case.volumes]
    for channel, image in enumerate(images):
        write_image(image, folder / "imagesTr" / f"{case.name}_{channel:04d}{FILE_ENDING}")
    labels_image = images[0].with_array(label_array(case, labels, images[0].array.shape, warnings))
    write_image(labels_image, folder / "labelsTr" / f"{case.name}{FILE_ENDING}")


def write_dataset_json(plan: DatasetPlan, path: Path, dataset_name: str) -> None:
    info = {
        "name": dataset_name,
        "description": "Exported from a 3D Slicer scene by ImprovedNNUNetTraining",
        "channel_names": {str(i): n for i, n in enumerate(plan.channel_names)},
        "labels": plan.labels,
        "numTraining": len(plan.cases),
        "file_ending": FILE_ENDING,
    }
    path.write_text(json.dumps(info, indent=2))


def export_dataset(plan: DatasetPlan, name: str, raw_folder: str | Path | None = None,
                   dataset_id: int | None = None) -> ExportResult:
    """Write the plan's cases as ``<raw>/DatasetXXX_<name>``; never replaces anything.

    The id defaults to the lowest free one from 500 (raw, preprocessed and results folders are
    checked). The dataset is written to a hidden folder first and renamed when complete, so a
    failed export leaves nothing nnU-Net would pick up.
    """
    if not plan.ok:
        raise UserError("the cases cannot be exported: " + "; ".join(plan.problems))
    check_dataset_name(name)
    raw = Path(raw_folder) if raw_folder else raw_folder_from_environment()
    if dataset_id is None:
        dataset_id = next_free_dataset_id([raw])
    elif dataset_id in used_dataset_ids([raw]):
        raise UserError(f"dataset id {dataset_id} is already used; pick another id or leave it empty for a free one")
    final = raw / f"Dataset{dataset_id:03d}_{name}"
    partial = raw / f".{final.name}.partial"
    if final.exists() or partial.exists():
        raise UserError(f"{final} (or its unfinished copy {partial.name}) exists; pick another name or id")
    warnings = list(plan.warnings)
    try:
        for case in plan.cases:
            write_case(case, plan.labels, partial, warnings)
        write_dataset_json(plan, partial / "dataset.json", final.name)
        partial.rename(final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return ExportResult(final, dataset_id, warnings)
