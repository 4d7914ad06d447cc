"""Segmentations as DICOM: DICOM SEG (highdicom) and RT Structure Sets (rt-utils), both referencing the source
series the segmentation was predicted from.

* **DICOM SEG** (``<case>.seg.dcm``): one segment per foreground label, numbered by the label value (nnU-Net's
  labels are consecutive), labelled with the label's name, its SNOMED CT category and type where the project
  knows the structure (``evaluation/terminology.py``; else Tissue), its colour (the panels' palette) and the
  model as the segmentation algorithm (AUTOMATIC). Binary frames, one per source slice that holds a segment.
* **RTSTRUCT** (``<case>.rtstruct.dcm``): one ROI per label with its name and colour, contours traced per slice
  by rt-utils. A polygon cannot outline an in-plane island of one or two pixels (rt-utils fails on them), so such
  islands are left out of the contours; the rest is drawn as is.

The segmentation must lie on the series' own grid (what ``predict`` returns for a DICOM input): its slice i is
the series' file i.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ImprovedNNUNetLib.core.errors import UserError

OUTPUT_TYPES = ("nifti", "dicom_seg", "dicom_rtstruct")
SUFFIXES = {"dicom_seg": ".seg.dcm", "dicom_rtstruct": ".rtstruct.dcm"}
MIN_ISLAND_PIXELS = 3  # in-plane islands smaller than this are not contoured (RTSTRUCT)
TISSUE = ("SCT", "85756007", "Tissue")


def require(module: str, distribution: str, what: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"{what} needs {distribution}, which is not installed; pip install '{distribution}' (in "
                        "Slicer: Install dependencies, or slicer.util.pip_install)") from None


def _code(text: str | None):
    """``SCT^code^meaning`` -> highdicom's CodedConcept."""
    from highdicom.sr import CodedConcept

    scheme, value, meaning = text.split("^") if text else TISSUE
    return CodedConcept(value=value, scheme_designator=scheme, meaning=meaning)


def _datasets(series) -> list:
    import pydicom

    return [pydicom.dcmread(path) for path in series.files]


def segment_descriptions(labels: dict[str, int], algorithm: str, version: str, colours: dict | None = None) -> list:
    """One highdicom SegmentDescription per foreground label, in label order (names, codes, colours; ``colours``:
    {name: (r, g, b) in 0..1} over the palette)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from ImprovedNNUNetLib.evaluation.terminology import distinct_color, terminology_codes

    identification = hd.AlgorithmIdentificationSequence(name=algorithm[:64], version=version[:64],
                                                        family=codes.cid7162.ArtificialIntelligence)
    described = []
    for index, (name, value) in enumerate(sorted(((n, int(v)) for n, v in labels.items() if int(v)),
                                                 key=lambda item: item[1])):
        known = terminology_codes(name) or {}
        rgb = [int(round(c * 255)) for c in (colours or {}).get(name, distinct_color(index))]
        described.append(hd.seg.SegmentDescription(
            segment_number=value, segment_label=name[:64], segmented_property_category=_code(known.get("category")),
            segmented_property_type=_code(known.get("type")), algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=identification, display_color=hd.color.CIELabColor.from_rgb(*rgb)))
    return described


def _check_grid(segmentation, series, datasets) -> np.ndarray:
    labels = np.asarray(segmentation.array)
    if labels.shape != (len(datasets), int(datasets[0].Rows), int(datasets[0].Columns)):
        raise UserError(f"the segmentation ({labels.shape}) does not lie on the grid of {series.label} "
                        f"({len(datasets)} × {datasets[0].Rows} × {datasets[0].Columns}); DICOM outputs need a DICOM "
                        "input")
    return labels


def write_dicom_seg(segmentation, series, labels: dict[str, int], path: Path, algorithm: str = "ImprovedNNUNet",
                    version: str = "1", colours: dict | None = None, overlapping: bool = False) -> Path:
    """Write the label map ``segmentation`` (on ``series``' grid) as a DICOM SEG referencing ``series``. With
    ``overlapping`` the array holds one boolean mask per label on its last axis (segments that may overlap, such as
    error maps), in label order."""
    hd = require("highdicom", "highdicom", "--output-type dicom_seg")
    datasets = _datasets(series)
    array = _check_grid(segmentation, series, datasets) if not overlapping else np.asarray(segmentation.array)
    descriptions = segment_descriptions(labels, algorithm, version, colours)
    numbers = [d.SegmentNumber for d in descriptions]
    if numbers != list(range(1, len(numbers) + 1)):
        raise UserError(f"DICOM SEG numbers segments 1..N; the model's labels are {numbers}: relabel them "
                        "consecutively")
    present = set(range(1, array.shape[-1] + 1)) if overlapping else set(np.unique(array).tolist()) - {0}
    if not present <= set(numbers):
        raise UserError(f"the segmentation holds label(s) {sorted(present - set(numbers))} the model does not name")
    pixels = array.astype(bool) if overlapping else array.astype(np.uint16 if max(numbers, default=0) > 255 else np.uint8)
    seg = hd.seg.Segmentation(
        source_images=datasets, pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=descriptions,
        series_instance_uid=hd.UID(), series_number=int(getattr(datasets[0], "SeriesNumber", 0) or 0) + 1000,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="ImprovedNNUNet",
        manufacturer_model_name=algorithm[:64], software_versions=version[:64], device_serial_number="1",
        content_label="SEGMENTATION", content_description=f"{algorithm} segmentation"[:64],
        series_description=f"{algorithm} segmentation"[:64])
    path.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(path)
    return path


def without_small_islands(mask: np.ndarray, minimum: int = MIN_ISLAND_PIXELS) -> np.ndarray:
    """``mask`` (slices, rows, columns) without in-plane connected islands of fewer than ``minimum`` pixels."""
    from scipy import ndimage

    kept = mask.copy()
    for index in np.flatnonzero(mask.reshape(len(mask), -1).any(axis=1)):
        islands, count = ndimage.label(mask[index])
        if count:
            sizes = np.bincount(islands.ravel())
            small = np.flatnonzero(sizes < minimum)
            kept[index][np.isin(islands, small[small > 0])] = False
    return kept


def write_rtstruct(segmentation, series, labels: dict[str, int], path: Path) -> Path:
    """Write one ROI per label of ``segmentation`` (on ``series``' grid) as an RT Structure Set referencing it."""
    require("rt_utils", "rt-utils", "--output-type dicom_rtstruct")
    from rt_utils import RTStructBuilder

    from ImprovedNNUNetLib.core.dicom_labels import rt_utils_order, series_folder
    from ImprovedNNUNetLib.evaluation.terminology import distinct_color

    datasets = _datasets(series)
    array = _check_grid(segmentation, series, datasets)
    with series_folder(series) as folder:
        builder = RTStructBuilder.create_new(dicom_series_path=folder)
        to_rt_utils = np.argsort(rt_utils_order(builder, [ds.SOPInstanceUID for ds in datasets]))
        for index, (name, value) in enumerate(sorted(((n, int(v)) for n, v in labels.items() if int(v)),
                                                     key=lambda item: item[1])):
            mask = without_small_islands(array == value)
            if not mask.any():
                continue
            rgb = [int(round(c * 255)) for c in distinct_color(index)]
            builder.add_roi(mask=np.moveaxis(mask[to_rt_utils], 0, -1), color=rgb, name=name)
        path.parent.mkdir(parents=True, exist_ok=True)
        builder.ds.save_as(str(path))  # what RTStruct.save does, without its print
    return path


WRITERS = {"dicom_seg": "write_dicom_seg", "dicom_rtstruct": "write_rtstruct"}


def write_dicom_outputs(segmentation, case, labels: dict, files: dict) -> bool:
    """The DICOM outputs of a case among ``files`` (``predict``'s planned files), written safely (a temporary name,
    checked, renamed); True when the case's last file (``files["segmentation"]``) was one of them."""
    from ImprovedNNUNetLib.core.safe_write import write_verified

    def write(kind: str, path: Path) -> None:
        writer = globals()[WRITERS[kind]]
        write_verified(path, lambda temporary: writer(segmentation, case.series[0], labels, temporary))

    for kind in WRITERS:
        if kind in files:
            write(kind, files[kind])
    main = files["segmentation"]
    kind = next((k for k, suffix in SUFFIXES.items() if main.name.endswith(suffix)), None)
    if kind is None:
        return False
    write(kind, main)
    return True
