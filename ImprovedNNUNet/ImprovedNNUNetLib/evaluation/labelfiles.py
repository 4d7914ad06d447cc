"""Label image files: reading them as label images with their segment names (.seg.nrrd)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.imageio import Image, read_image
from ImprovedNNUNetLib.evaluation.labels import as_label_array


@dataclass
class LabelImage:
    """A label image with its segment names (``.seg.nrrd``, DICOM SEG, RTSTRUCT), if any. ``partial_grid``: a DICOM
    SEG's grid spans only its frames; the evaluation puts it onto the other side's image grid."""

    image: Image
    names: dict[str, int] | None
    partial_grid: bool = False
    kind: str | None = None  # "seg" or "rtstruct" for DICOM objects


def read_label_image(path: str | Path) -> LabelImage:
    """Read a label image (NIfTI, NRRD, ``.seg.nrrd``, MHA, DICOM SEG, RTSTRUCT); UserError if it is not one."""
    from ImprovedNNUNetLib.core.dicom_labels import dicom_label_kind, read_dicom_seg, read_rtstruct

    kind = dicom_label_kind(Path(path))
    if kind is not None:
        image, names = (read_dicom_seg if kind == "seg" else read_rtstruct)(Path(path))
        return LabelImage(image, names, partial_grid=kind == "seg", kind=kind)
    names = segment_names(path) if Path(path).is_file() else None  # overlapping layers: clear error first
    image = read_image(path)
    return LabelImage(image.with_array(as_label_array(image.array, str(path))), names)


def match_segment_values(pred: LabelImage, ref: LabelImage) -> Image:
    """The prediction with its segment values changed to the reference's, by segment name.

    Only when both files name their segments and the values of some shared name differ.
    """
    if not pred.names or not ref.names:
        return pred.image
    shared = set(pred.names) & set(ref.names)
    if all(pred.names[n] == ref.names[n] for n in shared):
        return pred.image
    if set(pred.names) - shared:
        missing = sorted(set(pred.names) - shared)
        raise UserError(
            f"prediction segments {missing} are not in the reference; rename them to reference segment names"
        )
    mapping = {pred.names[n]: ref.names[n] for n in shared}
    return pred.image.with_array(remap_values(pred.image.array, mapping))


def segment_names(path: str | Path) -> dict[str, int] | None:
    """``{segment name: label value}`` of a single-layer ``.seg.nrrd``; None for other files."""
    path = Path(path)
    if not path.name.lower().endswith(".seg.nrrd"):
        return None
    try:
        import slicerio
    except ImportError:
        raise UserError(f"{path}: reading .seg.nrrd segment names needs slicerio; pip install slicerio") from None

    try:
        segmentation = slicerio.read_segmentation(str(path), skip_voxels=True)
    except Exception as exc:  # slicerio raises assorted types for damaged headers
        raise UserError(f"{path}: cannot be read as a Slicer segmentation ({exc}); check the file") from exc
    names = {}
    for segment in segmentation.get("segments", []):
        if int(segment.get("layer", 0)) != 0:
            raise UserError(
                f"{path}: segments overlap (several layers); export it as a labelmap "
                "(one layer) in Slicer before evaluating"
            )
        names[str(segment["name"])] = int(segment["labelValue"])
    return names


def remap_values(array: np.ndarray, mapping: Mapping[int, int]) -> np.ndarray:
    """Array with label values replaced per ``mapping`` (values not in it become 0); the cost follows
    the values present, not the largest one."""
    values, inverse = np.unique(array, return_inverse=True)
    top = max([0, *mapping.values()])
    new = np.array([mapping.get(int(v), 0) for v in values], dtype=np.min_scalar_type(top))
    return new[inverse].reshape(array.shape)
