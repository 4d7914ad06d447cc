"""Brain-tissue dataset of the demo, built from nilearn's bundled MNI ICBM152 2009a template.

The skull-stripped T1 template and its grey/white-matter probability maps ship inside
the nilearn package (``load_mni152_*_template``; nothing is downloaded). Labels:

* 0 background: outside the brain (T1 = 0) or neither tissue reaching the threshold
  (CSF, partial-volume voxels);
* 1 grey matter: GM probability >= threshold (default 0.5) and GM >= WM;
* 2 white matter: WM probability >= threshold and WM > GM.

The volume is cropped in-plane to the brain's bounding box (plus a margin) and cut into
axial slabs of (almost) equal thickness over the brain's superior-inferior extent. Each
slab is one case; the held-out slabs go to ``imagesTs``/``labelsTs`` and are never used
for training, so evaluating on them measures voxels the model never saw. Axial slabs are
used because the template is left-right symmetric: sagittal slabs would have mirror twins.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.imageio import Image, write_image

LABELS = {"background": 0, "grey_matter": 1, "white_matter": 2}
FILE_ENDING = ".nii.gz"
CASE_PREFIX = "mni_slab"
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


@dataclass(frozen=True)
class BrainDataConfig:
    """Sizes of the demo dataset (the defaults are what `make demo` uses)."""

    resolution_mm: int = 2
    num_slabs: int = 8
    held_out: tuple[int, ...] = (2, 5)
    threshold: float = 0.5
    margin_voxels: int = 3

    def __post_init__(self):
        if self.resolution_mm not in (1, 2):
            raise UserError(f"template resolution {self.resolution_mm} mm is not bundled; use 1 or 2")
        if self.num_slabs < 2:
            raise UserError(f"{self.num_slabs} slabs leave nothing to hold out; use at least 2")
        bad = [i for i in self.held_out if not 0 <= i < self.num_slabs]
        if bad or not self.held_out or len(set(self.held_out)) == self.num_slabs:
            raise UserError(
                f"held-out slabs {list(self.held_out)} must be distinct indices in 0..{self.num_slabs - 1} "
                "and leave at least one slab for training"
            )
        if not 0.0 < self.threshold < 1.0:
            raise UserError(f"tissue threshold {self.threshold} is not a probability in (0, 1); use e.g. 0.5")


@dataclass
class BrainDataset:
    """Where the built dataset lies: the nnU-Net raw folder and the held-out cases."""

    folder: Path
    train_cases: list[str]
    test_cases: list[str]
    slabs: dict[str, tuple[int, int]] = field(default_factory=dict)  # case -> (first, stop) axial index

    @property
    def images_ts(self) -> Path:
        return self.folder / "imagesTs"

    @property
    def labels_ts(self) -> Path:
        return self.folder / "labelsTs"

    def test_image(self, case: str) -> Path:
        return self.images_ts / f"{case}_0000{FILE_ENDING}"

    def test_label(self, case: str) -> Path:
        return self.labels_ts / f"{case}{FILE_ENDING}"


def nifti_to_image(nifti) -> Image:
    """A nibabel image (RAS affine, array indexed x, y, z) as an :class:`Image` (LPS, z, y, x)."""
    affine = np.asarray(nifti.affine, dtype=float)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    direction = RAS_TO_LPS @ (affine[:3, :3] / spacing)
    origin = RAS_TO_LPS @ affine[:3, 3]
    array = np.asarray(nifti.dataobj).transpose(2, 1, 0)
    return Image(array, tuple(spacing), tuple(origin), tuple(direction.ravel()))


def crop(image: Image, start: tuple[int, int, int], stop: tuple[int, int, int]) -> Image:
    """Sub-volume ``array[start:stop]`` (z, y, x indices) with its origin moved to match."""
    z0, y0, x0 = start
    z1, y1, x1 = stop
    offset_xyz = np.array([x0, y0, z0], dtype=float) * np.asarray(image.spacing)
    origin = np.asarray(image.origin) + np.asarray(image.direction).reshape(3, 3) @ offset_xyz
    return Image(image.array[z0:z1, y0:y1, x0:x1].copy(), image.spacing, tuple(origin), image.direction)


def tissue_labels(t1: np.ndarray, gm: np.ndarray, wm: np.ndarray, threshold: float) -> np.ndarray:
    """0/1/2 label map by the rule in the module docstring."""
    tissue = np.where(wm > gm, LABELS["white_matter"], LABELS["grey_matter"])
    keep = (np.maximum(gm, wm) >= threshold) & (t1 > 0)
    return np.where(keep, tissue, LABELS["background"]).astype(np.uint8)


def load_template(resolution_mm: int, threshold: float) -> tuple[Image, Image]:
    """(T1, labels) of the whole template at the given resolution, from nilearn's bundled files."""
    from nilearn.datasets import load_mni152_gm_template, load_mni152_template, load_mni152_wm_template

    t1 = nifti_to_image(load_mni152_template(resolution=resolution_mm))
    gm = nifti_to_image(load_mni152_gm_template(resolution=resolution_mm)).array
    wm = nifti_to_image(load_mni152_wm_template(resolution=resolution_mm)).array
    t1 = t1.with_array(t1.array.astype(np.float32))
    return t1, t1.with_array(tissue_labels(t1.array, gm, wm, threshold))


def slab_bounds(first: int, stop: int, num_slabs: int) -> list[tuple[int, int]]:
    """``num_slabs`` contiguous, non-overlapping index ranges covering [first, stop)."""
    edges = np.linspace(first, stop, num_slabs + 1).round().astype(int)
    if np.any(np.diff(edges) < 1):
        raise UserError(f"{stop - first} slices cannot make {num_slabs} slabs; use fewer slabs")
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def brain_box(labels: np.ndarray, margin: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Bounding box (start, stop) of the labelled tissue, widened by ``margin`` in-plane only."""
    coords = np.nonzero(labels)
    start = [int(c.min()) for c in coords]
    stop = [int(c.max()) + 1 for c in coords]
    for axis in (1, 2):
        start[axis] = max(0, start[axis] - margin)
        stop[axis] = min(labels.shape[axis], stop[axis] + margin)
    return tuple(start), tuple(stop)


def dataset_json(num_training: int) -> dict:
    return {
        "channel_names": {"0": "T1"},
        "labels": dict(LABELS),
        "numTraining": num_training,
        "file_ending": FILE_ENDING,
        "name": "MNIBrainTissue",
        "description": "Axial slabs of the MNI ICBM152 2009a T1 template; grey/white matter from its "
                       "probability maps (thresholded argmax)",
        "licence": "MNI ICBM152 2009a: Copyright (C) 1993-2009 Louis Collins, McConnell Brain Imaging "
                   "Centre, Montreal Neurological Institute, McGill University",
    }


def build_dataset(folder: Path, config: BrainDataConfig = BrainDataConfig(), progress=None) -> BrainDataset:
    """Write the slab cases in nnU-Net raw format into ``folder`` (which must not exist yet).

    ``progress`` is an optional callable taking the name of each case written (e.g. a tqdm update).
    """
    folder = Path(folder)
    if folder.exists():
        raise UserError(f"{folder} already exists; remove it or choose another output folder")
    t1, labels = load_template(config.resolution_mm, config.threshold)
    start, stop = brain_box(labels.array, config.margin_voxels)
    bounds = slab_bounds(start[0], stop[0], config.num_slabs)
    dataset = BrainDataset(folder, [], [])
    for index, (z0, z1) in enumerate(bounds):
        case = f"{CASE_PREFIX}{index:02d}"
        held_out = index in config.held_out
        slab_start, slab_stop = (z0, start[1], start[2]), (z1, stop[1], stop[2])
        images, refs = ("imagesTs", "labelsTs") if held_out else ("imagesTr", "labelsTr")
        write_image(crop(t1, slab_start, slab_stop), folder / images / f"{case}_0000{FILE_ENDING}")
        write_image(crop(labels, slab_start, slab_stop), folder / refs / f"{case}{FILE_ENDING}")
        (dataset.test_cases if held_out else dataset.train_cases).append(case)
        dataset.slabs[case] = (z0, z1)
        if progress is not None:
            progress(case)
    (folder / "dataset.json").write_text(json.dumps(dataset_json(len(dataset.train_cases)), indent=2))
    return dataset
