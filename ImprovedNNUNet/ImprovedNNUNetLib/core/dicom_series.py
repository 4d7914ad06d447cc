"""DICOM image series as inputs: finding the series in a folder (each series a case), checking their geometry,
reading one into an :class:`~ImprovedNNUNetLib.core.imageio.Image`.

Series are told apart by SeriesInstanceUID (GDCM's grouping through SimpleITK, as Slicer's DICOM reader does),
in the folder and its subfolders. Before a series is read, its headers are checked: one image size, one
orientation, slices at distinct positions with a uniform spacing along the slice normal (a gap of two or more
spacings is a missing slice). Each problem is one line naming the series and the fix. SimpleITK and pydicom come
with Slicer, so a fresh Slicer reads DICOM input too.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ImprovedNNUNetLib.core.errors import UserError

ORIENTATION_TOLERANCE = 1e-4
SPACING_TOLERANCE = 0.01  # relative deviation of one slice gap from the series' median gap


@dataclass(frozen=True)
class DicomSeries:
    """One image series: its UID, its files in slice order (GDCM's order along the slice normal) and what
    identifies it for a person."""

    uid: str
    files: tuple[Path, ...]
    description: str = ""
    modality: str = ""
    study_uid: str = ""
    number: str = ""  # SeriesNumber

    @property
    def label(self) -> str:
        return f"series {self.description or '(no description)'} ({self.uid})"


def is_dicom_file(path: Path) -> bool:
    """A DICOM Part 10 file (its ``DICM`` preamble)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def holds_dicom(folder: Path) -> bool:
    """Whether ``folder`` (or a folder below it) holds DICOM files."""
    return any(path.is_file() and is_dicom_file(path) for path in Path(folder).rglob("*"))


def find_series(folder: str | Path) -> list[DicomSeries]:
    """Every image series in ``folder`` and its subfolders, by SeriesInstanceUID, files in slice order."""
    import SimpleITK as sitk

    folder = Path(folder)
    reader = sitk.ImageSeriesReader
    found: dict[str, list[str]] = {}
    warnings = sitk.ProcessObject_GetGlobalWarningDisplay()
    sitk.ProcessObject_SetGlobalWarningDisplay(False)  # ITK's "No Series were found" for folders without images
    try:
        for directory in sorted({p.parent for p in folder.rglob("*") if p.is_file()}):
            for uid in reader.GetGDCMSeriesIDs(str(directory)) or ():
                found.setdefault(uid, []).extend(reader.GetGDCMSeriesFileNames(str(directory), uid))
    finally:
        sitk.ProcessObject_SetGlobalWarningDisplay(warnings)
    if not found:
        raise UserError(f"{folder} holds no DICOM image series; give a folder of DICOM files (a series, or a study "
                        "of several series)")
    series = []
    for uid, files in sorted(found.items()):
        header = _header(Path(files[0]))
        if getattr(header, "SOPClassUID", None) in NOT_IMAGES:
            continue  # a SEG or RTSTRUCT beside the images is not an input
        paths = tuple(Path(f) for f in files) if len({Path(f).parent for f in files}) == 1 else _sorted_files(files)
        series.append(DicomSeries(uid, paths, str(getattr(header, "SeriesDescription", "") or ""),
                                  str(getattr(header, "Modality", "") or ""),
                                  str(getattr(header, "StudyInstanceUID", "") or ""),
                                  str(getattr(header, "SeriesNumber", "") or "")))
    if not series:
        raise UserError(f"{folder} holds DICOM files but no image series (only segmentations or structure sets)")
    return series


def series_of_files(files) -> DicomSeries:
    """The series that ``files`` make (one SeriesInstanceUID; e.g. the files of a volume Slicer loaded from its
    DICOM database), in slice order."""
    paths = [Path(f) for f in files]
    missing = [p for p in paths if not p.is_file()]
    if not paths or missing:
        raise UserError(f"the series' files are not there ({missing[0] if missing else 'none given'}); load the "
                        "volume from the DICOM database again")
    headers = [(p, _header(p)) for p in paths]  # read once: the series' UID, its description, the slice order
    uids = {str(getattr(h, "SeriesInstanceUID", "")) for _, h in headers}
    if len(uids) != 1:
        raise UserError(f"the files belong to {len(uids)} series; a segmentation references one series")
    header = headers[0][1]
    return DicomSeries(uids.pop(), _in_slice_order(headers), str(getattr(header, "SeriesDescription", "") or ""),
                       str(getattr(header, "Modality", "") or ""), str(getattr(header, "StudyInstanceUID", "") or ""),
                       str(getattr(header, "SeriesNumber", "") or ""))


NOT_IMAGES = {"1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.481.3"}  # Segmentation, RT Structure Set


def _header(path: Path):
    import pydicom

    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds for a damaged file
        raise UserError(f"{path} cannot be read as DICOM ({type(exc).__name__}); remove it or export the series "
                        "again") from None


def _normal(header) -> np.ndarray:
    row, column = np.asarray(header.ImageOrientationPatient[:3], float), np.asarray(header.ImageOrientationPatient[3:], float)
    return np.cross(row, column)


def _sorted_files(files) -> tuple[Path, ...]:
    return _in_slice_order([(Path(f), _header(Path(f))) for f in files])


def _in_slice_order(headers) -> tuple[Path, ...]:
    """The paths of (path, header) pairs sorted along the slice normal."""
    normal = _normal(headers[0][1])
    return tuple(path for path, _ in sorted(headers, key=lambda ph: float(np.dot(normal, ph[1].ImagePositionPatient))))


def check_series(series: DicomSeries) -> None:
    """One image size, one orientation, distinct slice positions with a uniform spacing (no slice missing)."""
    headers = [_header(path) for path in series.files]
    missing = [name for name in ("ImagePositionPatient", "ImageOrientationPatient", "Rows", "Columns")
               if not all(hasattr(h, name) for h in headers)]
    if missing:
        raise UserError(f"{series.label}: the files lack {', '.join(missing)}; it is not a cross-sectional image "
                        "series (export the CT/MR series itself)")
    sizes = {(int(h.Rows), int(h.Columns)) for h in headers}
    if len(sizes) > 1:
        raise UserError(f"{series.label} mixes image sizes {sorted(sizes)}; it holds more than one acquisition: "
                        "export the series again, one acquisition per series")
    orientation = np.asarray(headers[0].ImageOrientationPatient, float)
    if any(not np.allclose(np.asarray(h.ImageOrientationPatient, float), orientation, atol=ORIENTATION_TOLERANCE)
           for h in headers):
        raise UserError(f"{series.label} mixes slice orientations (a localizer or several stacks in one series); "
                        "export the stack to segment as a series of its own")
    if len(headers) < 2:
        return
    normal = _normal(headers[0])
    positions = np.array([float(np.dot(normal, np.asarray(h.ImagePositionPatient, float))) for h in headers])
    order = np.sort(positions)
    gaps = np.diff(order)
    if np.any(gaps < 1e-3):
        raise UserError(f"{series.label} has two slices at one position ({order[np.argmin(gaps)]:.2f} mm); it mixes "
                        "acquisitions or holds duplicate files: remove the duplicates")
    step = float(np.median(gaps))
    for index, gap in enumerate(gaps):
        if gap > step * 1.5:
            raise UserError(f"{series.label}: {round(gap / step) - 1} slice(s) missing between {order[index]:.2f} and "
                            f"{order[index + 1]:.2f} mm (slice spacing {step:.2f} mm); copy the whole series")
        if abs(gap - step) > SPACING_TOLERANCE * step + 1e-3:
            raise UserError(f"{series.label} has uneven slice spacing ({gap:.3f} mm beside {step:.3f} mm); it "
                            "cannot be one image grid: resample it or export the series again")


def read_series(series: DicomSeries):
    """The series as an Image (checked first; voxel values with the rescale applied, as GDCM reads them)."""
    import SimpleITK as sitk

    from ImprovedNNUNetLib.core.imageio import Image

    check_series(series)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(path) for path in series.files])
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise UserError(f"{series.label} cannot be read ({str(exc).strip().splitlines()[-1][:200]}); export the "
                        "series again (uncompressed or JPEG/JPEG 2000)") from None
    return Image.from_sitk(image)
