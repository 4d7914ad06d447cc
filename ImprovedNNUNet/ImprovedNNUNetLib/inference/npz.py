"""Probabilities in nnU-Net's own files: ``CASE.npz`` (key ``probabilities``, (c, z, y, x) float32 on the
input image's grid) and ``CASE.pkl`` (the case's properties: ``sitk_stuff`` with the image geometry, the
spacing and nnU-Net's cropping record), as ``nnUNetv2_predict --save_probabilities`` writes them and
``nnUNetv2_ensemble`` / ``nnUNetv2_find_best_configuration`` read them.

Only models whose plans read images with SimpleITK (nnU-Net's reader for NIfTI, NRRD and MetaImage)
share the array layout of this project's images, so only those get these files.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.imageio import Image

SITK_READERS = ("SimpleITKIO",)


def check_npz_supported(plans: dict) -> None:
    """UserError unless nnU-Net reads this model's images with SimpleITK (the layout these files use)."""
    reader = plans.get("image_reader_writer", "SimpleITKIO")
    if reader not in SITK_READERS:
        raise UserError(f"--save_probabilities (.npz): the model reads images with {reader}, whose array layout "
                        "this command does not write; use --probabilities for image files instead")


def case_properties(template: Image, preprocessing_properties: dict) -> dict:
    """The ``.pkl`` content of a case: nnU-Net's SimpleITK reader's properties plus the preprocessing record."""
    properties = {key: value for key, value in preprocessing_properties.items() if key != "class_locations"}
    properties["sitk_stuff"] = {"spacing": tuple(float(v) for v in template.spacing),
                                "origin": tuple(float(v) for v in template.origin),
                                "direction": tuple(float(v) for v in template.direction)}
    properties["spacing"] = [float(v) for v in template.spacing[::-1]]
    return properties


def write_probabilities(path: Path, probabilities: np.ndarray) -> None:
    """nnU-Net's ``.npz`` (key ``probabilities``) at exactly ``path`` (numpy would append .npz to a name)."""
    with open(path, "wb") as f:
        np.savez_compressed(f, probabilities=probabilities)


def write_properties(path: Path, properties: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(properties, f)


def write_npz(base: Path, probabilities: np.ndarray, properties: dict) -> tuple[Path, Path]:
    """``base.npz`` and ``base.pkl`` (each to a temporary name, checked, renamed); returns both paths."""
    from ImprovedNNUNetLib.core.safe_write import write_verified

    npz, pkl = base.with_name(base.name + ".npz"), base.with_name(base.name + ".pkl")
    write_verified(pkl, lambda temporary: write_properties(temporary, properties))
    write_verified(npz, lambda temporary: write_probabilities(temporary, probabilities))
    return npz, pkl


def read_properties(npz: Path) -> dict:
    """The properties beside a ``.npz`` (its ``.pkl``); UserError when missing or unreadable."""
    pkl = npz.with_suffix(".pkl")
    if not pkl.is_file():
        raise UserError(f"{pkl} is missing; every CASE.npz needs its CASE.pkl (written with it by "
                        "--save_probabilities or nnU-Net)")
    try:
        with open(pkl, "rb") as f:
            properties = pickle.load(f)
    except Exception as exc:  # a damaged pickle raises many kinds of errors
        raise UserError(f"{pkl} cannot be read ({type(exc).__name__}); predict the case again") from None
    if not isinstance(properties, dict):
        raise UserError(f"{pkl} holds no case properties ({type(properties).__name__}); predict the case again")
    if "sitk_stuff" not in properties:
        raise UserError(f"{pkl} has no image geometry (sitk_stuff); only SimpleITK-read cases can be ensembled here")
    return properties


def read_probabilities(npz: Path) -> np.ndarray:
    try:
        with np.load(npz) as data:
            return data["probabilities"]
    except Exception as exc:  # noqa: BLE001 - a cut or damaged file raises BadZipFile, EOFError, zlib.error, ...
        raise UserError(f"{npz} is not a complete nnU-Net probability file ({type(exc).__name__}); predict the "
                        "case again with --save_probabilities") from None


def check_probability_file(npz: Path) -> None:
    """UserError unless ``npz`` is a whole zip archive holding ``probabilities`` (a file cut short has lost the
    archive's directory at its end) and its ``.pkl`` reads; cheap, so every input is checked before any work."""
    import zipfile

    try:
        with zipfile.ZipFile(npz) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise UserError(f"{npz} is not a complete nnU-Net probability file ({type(exc).__name__}); predict the "
                        "case again with --save_probabilities") from None
    if "probabilities.npy" not in names:
        raise UserError(f"{npz} holds no 'probabilities' array; give files written by --save_probabilities")
    read_properties(npz)


def image_of(array: np.ndarray, properties: dict) -> Image:
    """A label array (z, y, x) with the geometry of a case's properties."""
    stuff = properties["sitk_stuff"]
    if len(stuff["spacing"]) == 2:  # a 2-D image: nnU-Net stores it as (1, y, x)
        return Image(array, (*map(float, stuff["spacing"]), 1.0), (*map(float, stuff["origin"]), 0.0),
                     (float(stuff["direction"][0]), float(stuff["direction"][1]), 0.0,
                      float(stuff["direction"][2]), float(stuff["direction"][3]), 0.0, 0.0, 0.0, 1.0))
    return Image(array, tuple(map(float, stuff["spacing"])), tuple(map(float, stuff["origin"])),
                 tuple(map(float, stuff["direction"])))
