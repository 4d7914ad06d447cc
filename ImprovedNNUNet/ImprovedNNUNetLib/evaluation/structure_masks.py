"""A folder of binary masks, one file per structure (TotalSegmentator's ``segmentations/liver.nii.gz``,
atlas tools), read as one label image.

File names (without their image suffix) are matched to label names as the Slicer module matches
segment names: case, spaces, ``_`` and ``-`` do not matter. Names that match no label are reported,
labels without a file are empty on this side.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.imageio import is_image_file, read_image, strip_suffix
from ImprovedNNUNetLib.evaluation.labels import as_label_array
from ImprovedNNUNetLib.evaluation.names import normalise_name


def mask_files(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).iterdir() if is_image_file(p))


def read_structure_masks(folder: str | Path, names: dict[str, int]):
    """(label Image, {name: value} of the matched structures, [unmatched file names]).

    ``names`` maps label names to values (from ``--labels`` or the other side's segment names).
    Voxels of several masks get the value of the later file in name order.
    """
    folder = Path(folder)
    files = mask_files(folder)
    if not files:
        raise UserError(f"{folder} holds no mask images; give a folder with one binary mask file per structure")
    by_name = {normalise_name(name): (name, int(value)) for name, value in names.items()
               if name != "background" and int(value) != 0}
    template = None
    matched, unmatched = {}, []
    label = None
    for path in files:
        entry = by_name.get(normalise_name(strip_suffix(path.name)))
        image = read_image(path)
        if template is None:
            template, label = image, np.zeros(image.array.shape, np.uint32)
        elif not template.same_grid(image):
            raise UserError(f"{path} is not on the grid of {files[0].name}; the masks of one case must share a grid")
        if entry is None:
            unmatched.append(path.name)
            continue
        mask = as_label_array(image.array, str(path))
        if mask.size and int(mask.max()) > 1:
            raise UserError(f"{path} holds values above 1; a structure mask is binary (0 and 1)")
        label[mask > 0] = entry[1]
        matched[entry[0]] = entry[1]
    if not matched:
        raise UserError(f"no mask file in {folder} matches a label name ({', '.join(sorted(names)) or 'none given'}); "
                        "name the files like the labels (e.g. liver.nii.gz) or pass --labels with the names")
    top = max(matched.values())
    return template.with_array(label.astype(np.min_scalar_type(top))), matched, unmatched
