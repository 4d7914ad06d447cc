"""DICOM segmentations read as label images: DICOM SEG (highdicom) and RT Structure Sets (rt-utils).

* **DICOM SEG**: the segments combined into one label map (value = segment number) on the grid its frames span
  (highdicom's ``get_volume``), with ``{segment label: segment number}`` as the names. Frames a SEG leaves out
  (empty slices, as most writers do) lie outside that grid, so the evaluation puts a SEG onto the other side's
  full image grid (``partial_grid``).
* **RTSTRUCT**: each ROI's contours filled on the grid of the image series they were drawn on (found by its
  SeriesInstanceUID beside the RTSTRUCT file: its folder, or a folder next to it), values 1..N in the order of the
  ROIs, names = ROI names. A voxel inside two ROIs takes the later ROI's value.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ImprovedNNUNetLib.core.errors import UserError

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
LABEL_SUFFIXES = (".seg.dcm", ".rtstruct.dcm")  # what `predict --output-type dicom_*` writes


def dicom_label_kind(path: Path) -> str | None:
    """"seg", "rtstruct" or None (not a DICOM file of either kind)."""
    from ImprovedNNUNetLib.core.dicom_series import is_dicom_file

    path = Path(path)
    if not path.is_file() or not is_dicom_file(path):
        return None
    import pydicom

    header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    return {SEG_SOP_CLASS: "seg", RTSTRUCT_SOP_CLASS: "rtstruct"}.get(str(getattr(header, "SOPClassUID", "")))


def _module(name: str, distribution: str, what: str):
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        raise UserError(f"{what} needs {distribution}, which is not installed; pip install '{distribution}'") from None


def read_dicom_seg(path: Path):
    """(Image of segment numbers, {segment label: number})."""
    hd = _module("highdicom", "highdicom", f"reading the DICOM SEG {path}")
    from ImprovedNNUNetLib.core.imageio import Image

    try:
        seg = hd.seg.segread(path)
        volume = seg.get_volume(combine_segments=True, relabel=False)
    except Exception as exc:  # noqa: BLE001 - highdicom raises many kinds for files it cannot place on a grid
        raise UserError(f"{path}: the DICOM SEG cannot be read as one label volume ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:160] if str(exc) else ''})") from None
    affine = np.asarray(volume.affine, float)  # (slice, row, column) index -> LPS mm
    axes = affine[:3, :3]
    spacing = np.linalg.norm(axes, axis=0)
    direction = axes / spacing  # columns: the slice, row and column axes
    image = Image(np.asarray(volume.array).astype(np.uint16), tuple(float(v) for v in spacing[::-1]),
                  tuple(float(v) for v in affine[:3, 3]),
                  tuple(float(v) for v in direction[:, ::-1].reshape(-1)))  # (x, y, z) = (column, row, slice)
    return image, {str(s.SegmentLabel): int(s.SegmentNumber) for s in seg.SegmentSequence}


def referenced_series_uid(rtstruct) -> str:
    try:
        return str(rtstruct.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0]
                   .RTReferencedSeriesSequence[0].SeriesInstanceUID)
    except (AttributeError, IndexError):
        raise UserError("the RTSTRUCT names no referenced series (ReferencedFrameOfReferenceSequence); it cannot be "
                        "placed on an image grid") from None


def find_referenced_series(path: Path, uid: str):
    """The image series ``uid`` in the RTSTRUCT's folder or a folder next to it."""
    from ImprovedNNUNetLib.core.dicom_series import find_series

    for folder in (path.parent, path.parent.parent):
        try:
            found = [s for s in find_series(folder) if s.uid == uid]
        except UserError:
            continue
        if found:
            return found[0]
    raise UserError(f"{path} was drawn on series {uid}, which is not beside it; put that series' files in the "
                    "RTSTRUCT's folder or a folder next to it")


@contextmanager
def series_folder(series):
    """A temporary folder holding only ``series``' files (rt-utils reads a whole folder as one series)."""
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="series-") as folder:
        for index, source in enumerate(series.files):
            shutil.copyfile(source, Path(folder) / f"{index:05d}.dcm")
        yield folder


def rt_utils_order(rtstruct, sop_instance_uids: list[str]) -> list[int]:
    """For each slice of the series (``sop_instance_uids``, in the series' order), its index along rt-utils' mask
    axis: ``rt_mask[order]`` is in the series' order; ``series_mask[np.argsort(order)]`` in rt-utils' order."""
    position = {ds.SOPInstanceUID: index for index, ds in enumerate(rtstruct.series_data)}
    return [position[uid] for uid in sop_instance_uids]


def read_rtstruct(path: Path):
    """(Image of ROI values 1..N on the referenced series' grid, {ROI name: value})."""
    _module("rt_utils", "rt-utils", f"reading the RTSTRUCT {path}")
    import pydicom
    from rt_utils import RTStructBuilder

    from ImprovedNNUNetLib.core.dicom_series import read_series

    series = find_referenced_series(path, referenced_series_uid(pydicom.dcmread(path, stop_before_pixels=True)))
    grid = read_series(series)
    with series_folder(series) as folder:
        try:
            rtstruct = RTStructBuilder.create_from(folder, str(path))
            names = rtstruct.get_roi_names()
            order = rt_utils_order(rtstruct, [pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID
                                              for f in series.files])
            labels = np.zeros(grid.array.shape, np.uint16)
            for value, name in enumerate(names, start=1):
                mask = np.moveaxis(rtstruct.get_roi_mask_by_name(name), -1, 0)[order]
                labels[mask] = value
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - rt-utils raises many kinds for contours it cannot fill
            raise UserError(f"{path}: the RTSTRUCT's contours cannot be filled on its series ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:160] if str(exc) else ''})") from None
    return grid.with_array(labels), {name: value for value, name in enumerate(names, start=1)}
