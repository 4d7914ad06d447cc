"""Pairing prediction and reference files by case id, as in nnU-Net folders."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ImprovedNNUNetLib.core.dicom_labels import LABEL_SUFFIXES
from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.imageio import is_image_file
from ImprovedNNUNetLib.core.imageio import strip_suffix as strip_image_suffix


def is_label_file(path: Path) -> bool:
    """An image file, or a DICOM SEG / RTSTRUCT as ``predict --output-type`` names them (``CASE.seg.dcm``)."""
    return is_image_file(path) or (path.name.lower().endswith(LABEL_SUFFIXES) and path.is_file())


def strip_suffix(name: str) -> str:
    """The case id of a label file name."""
    lower = name.lower()
    return next((name[: -len(s)] for s in LABEL_SUFFIXES if lower.endswith(s)), None) or strip_image_suffix(name)


@dataclass(frozen=True)
class CasePair:
    case_id: str
    prediction: Path
    reference: Path


def _images_by_case(folder: Path, what: str) -> dict[str, Path]:
    cases: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not is_label_file(path):
            continue
        case_id = strip_suffix(path.name)
        if case_id in cases:
            raise UserError(
                f"{what} folder {folder} holds two images for case {case_id!r} ({cases[case_id].name}, "
                f"{path.name}); keep one file per case"
            )
        cases[case_id] = path
    if not cases:
        raise UserError(f"{what} folder {folder} holds no images (.nii.gz, .nrrd, .seg.nrrd, .mha); check the path")
    return cases


def _cases_in(folder: Path, what: str) -> dict[str, Path]:
    """Image files by case id, or (a folder of sub-folders of structure masks) sub-folders by case id."""
    if not any(is_label_file(p) for p in folder.iterdir()):
        subfolders = {p.name: p for p in sorted(folder.iterdir()) if p.is_dir() and any(map(is_image_file, p.iterdir()))}
        if subfolders:
            return subfolders
    return _images_by_case(folder, what)


def match_cases(prediction: str | Path, reference: str | Path, allow_missing: bool = False) -> list[CasePair]:
    """Cases to evaluate: two files make one case; two folders are matched by case id.

    Every prediction needs a reference with the same case id (file name without its
    image suffix, e.g. ``case_001`` for ``case_001.nii.gz`` and ``case_001.seg.nrrd``).
    A folder beside a file, or sub-folders in place of files, hold one case's structure masks
    (one binary file per structure, see :mod:`.structure_masks`).
    References without a prediction are an error (nnU-Net's rule) unless ``allow_missing``
    (nnU-Net's ``--chill``), which evaluates the predicted cases only.
    """
    prediction, reference = Path(prediction), Path(reference)
    for path, what in ((prediction, "prediction"), (reference, "reference")):
        if not path.exists():
            raise UserError(f"{what} {path}: no such file or folder; check the path")
        if not (path.is_file() or path.is_dir()):
            raise UserError(f"{what} {path} is neither a regular file nor a folder (a pipe or device); "
                            "give an image file or a folder of images")
    if prediction.is_file() and reference.is_file():
        return [CasePair(strip_suffix(reference.name), prediction, reference)]
    if prediction.is_dir() != reference.is_dir():  # the folder holds one case's structure masks
        single = reference if reference.is_file() else prediction
        return [CasePair(strip_suffix(single.name), prediction, reference)]
    predicted = _cases_in(prediction, "prediction")
    references = _cases_in(reference, "reference")
    unmatched = sorted(set(predicted) - set(references))
    if unmatched:
        shown = ", ".join(unmatched[:5]) + (f" and {len(unmatched) - 5} more" if len(unmatched) > 5 else "")
        raise UserError(
            f"{len(unmatched)} prediction(s) have no reference in {reference}: {shown}; "
            "name each prediction like its reference case (same case id)"
        )
    missing = sorted(set(references) - set(predicted))
    if missing and not allow_missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise UserError(
            f"{prediction} covers {len(predicted)} of {len(references)} reference case(s) (no prediction for "
            f"{shown}); predict the missing cases, or pass --chill to evaluate only the predicted ones"
        )
    return [CasePair(case_id, path, references[case_id]) for case_id, path in predicted.items()]
