"""The Segment panel's DICOM SEG export: a segmentation of a volume that Slicer loaded from its DICOM database
(and its FP/FN error segments, when shown) written as DICOM SEG referencing that series, then imported into the
database.

What this relies on in Slicer (read in its sources): a volume the DICOM module loads carries its instances in the
node attribute ``DICOM.instanceUIDs``, space-separated SOP Instance UIDs (``DICOMScalarVolumePlugin.load``);
``slicer.dicomDatabase`` is a ``ctkDICOMDatabase`` whose ``fileForInstance(sopInstanceUID)`` returns the file
of an instance, an empty string when it does not know it (CTK ``Libs/DICOM/Core/ctkDICOMDatabase.h``); and
``DICOMLib.DICOMUtils.importDicom(dicomDataDir, dicomDatabase=None, copyFiles=False)`` indexes a folder into the
database (with ``copyFiles`` the files are copied into the database's own folder) and returns True on success.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ImprovedNNUNetLib.core.errors import UserError

INSTANCE_UIDS_ATTRIBUTE = "DICOM.instanceUIDs"


def source_series(volume_node, database):
    """The DicomSeries a volume was loaded from (its files found through the database); UserError otherwise."""
    from ImprovedNNUNetLib.core.dicom_series import series_of_files

    uids = (volume_node.GetAttribute(INSTANCE_UIDS_ATTRIBUTE) or "").split() if volume_node is not None else []
    if not uids:
        raise UserError("the input volume was not loaded from Slicer's DICOM database; DICOM SEG references the "
                        "series it segments, so load the series through the DICOM module first")
    if database is None:
        raise UserError("Slicer's DICOM database is not open; open the DICOM module once, then export again")
    files = [str(database.fileForInstance(uid) or "") for uid in uids]
    if not all(files):
        raise UserError("some of the input volume's instances are no longer in the DICOM database; import the series "
                        "again")
    return series_of_files(files)


def _on_series_grid(image, grid):
    from ImprovedNNUNetLib.evaluation.geometry import align_to_reference

    return align_to_reference(image, grid)[0]


def prediction_on_series(segmentation_node, volume_node, grid) -> tuple[object, dict[str, int], dict]:
    """(label image on the series' grid with values 1..N, {name: 1..N}, {name: colour}) of the segments."""
    from ImprovedNNUNetLib.panels.scene.labelmaps import export_label_image, segment_infos

    infos = segment_infos(segmentation_node)
    if not infos:
        raise UserError(f"segmentation '{segmentation_node.GetName()}' has no segments to export")
    ordered = sorted(infos, key=lambda info: info.value)
    labels = _on_series_grid(export_label_image(segmentation_node, ordered, volume_node), grid)
    relabelled = np.zeros(labels.array.shape, np.uint16)
    for number, info in enumerate(ordered, start=1):  # DICOM SEG numbers its segments 1..N
        relabelled[labels.array == info.value] = number
    return labels.with_array(relabelled), {info.name: n for n, info in enumerate(ordered, start=1)}, \
        _colours(segmentation_node, ordered)


def _colours(segmentation_node, infos) -> dict:
    segmentation = segmentation_node.GetSegmentation()
    return {info.name: tuple(segmentation.GetSegment(info.segment_id).GetColor()) for info in infos}


def errors_on_series(errors_node, volume_node, grid):
    """(one mask per error segment on the last axis, {name: 1..N}, colours): FP and FN may overlap."""
    from ImprovedNNUNetLib.panels.scene.labelmaps import export_label_image, segment_infos

    infos = segment_infos(errors_node)
    masks = [_on_series_grid(export_label_image(errors_node, [info], volume_node), grid).array > 0 for info in infos]
    kept = [(info, mask) for info, mask in zip(infos, masks) if mask.any()]
    if not kept:
        return None
    stack = np.stack([mask for _, mask in kept], axis=-1)
    return grid.with_array(stack), {info.name: n for n, (info, _) in enumerate(kept, start=1)}, \
        _colours(errors_node, [info for info, _ in kept])


def errors_node_of(segmentation_node):
    from ImprovedNNUNetLib.panels.scene.error_segmentation import ERRORS_OF_ATTRIBUTE

    scene = segmentation_node.GetScene()
    for index in range(scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode")):
        node = scene.GetNthNodeByClass(index, "vtkMRMLSegmentationNode")
        if node.GetAttribute(ERRORS_OF_ATTRIBUTE) == segmentation_node.GetID():
            return node
    return None


def export_dicom_seg(segmentation_node, volume_node, database, import_dicom) -> list[str]:
    """Write the segmentation (and its error segments, when shown) as DICOM SEG referencing the volume's series and
    import them with ``import_dicom(folder, database, copyFiles=True)``; returns the exported series' names."""
    from ImprovedNNUNetLib.core.dicom_series import read_series
    from ImprovedNNUNetLib.inference.dicom_output import write_dicom_seg

    if segmentation_node is None:
        raise UserError("no segmentation to export; segment the volume first")
    series = source_series(volume_node, database)
    grid = read_series(series)
    exported = []
    with tempfile.TemporaryDirectory(prefix="dicom-seg-") as folder:
        image, labels, colours = prediction_on_series(segmentation_node, volume_node, grid)
        name = segmentation_node.GetName()
        write_dicom_seg(image, series, labels, Path(folder) / "segmentation.seg.dcm", algorithm=name[:64],
                        colours=colours)
        exported.append(name)
        errors = errors_node_of(segmentation_node)
        found = errors_on_series(errors, volume_node, grid) if errors is not None else None
        if found is not None:
            masks, error_labels, error_colours = found
            write_dicom_seg(masks, series, error_labels, Path(folder) / "errors.seg.dcm",
                            algorithm=errors.GetName()[:64], colours=error_colours, overlapping=True)
            exported.append(errors.GetName())
        if not import_dicom(folder, database, True):
            raise UserError(f"Slicer's DICOM database did not take the exported files ({folder}); see the log")
    return exported
