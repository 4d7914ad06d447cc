"""Reading and writing images with their physical geometry.

Arrays are indexed (z, y, x) as SimpleITK/nnU-Net return them; spacing, origin and
direction are in ITK (x, y, z) order and LPS physical space, as stored in the files.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ImprovedNNUNetLib.core.errors import UserError, full_disk_error
from ImprovedNNUNetLib.core.image_integrity import check_complete, check_spacing, nifti_nonfinite

PLANAR_SUFFIXES = (".png", ".tif", ".tiff", ".bmp")  # 2-D formats: read as, and written from, one-slice volumes
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".seg.nrrd", ".nrrd", ".nhdr", ".mha", ".mhd", ".png", ".tif", ".tiff", ".bmp")


@dataclass
class Image:
    """A 3-D array with its geometry."""

    array: np.ndarray  # (z, y, x)
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)  # (x, y, z) mm
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)  # (x, y, z) mm, LPS
    direction: tuple[float, ...] = field(default=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))

    def same_grid(self, other: "Image", tol: float = 1e-4) -> bool:
        return (
            self.array.shape == other.array.shape
            and np.allclose(self.spacing, other.spacing, atol=tol)
            and np.allclose(self.origin, other.origin, atol=tol * 10)
            and np.allclose(self.direction, other.direction, atol=tol)
        )

    def with_array(self, array: np.ndarray) -> "Image":
        return Image(array, self.spacing, self.origin, self.direction)

    def to_sitk(self):
        import SimpleITK as sitk

        img = sitk.GetImageFromArray(self.array)
        img.SetSpacing([float(v) for v in self.spacing])
        img.SetOrigin([float(v) for v in self.origin])
        img.SetDirection([float(v) for v in self.direction])
        return img

    @classmethod
    def from_sitk(cls, img) -> "Image":
        import SimpleITK as sitk

        return cls(
            sitk.GetArrayFromImage(img),
            tuple(float(v) for v in img.GetSpacing()),
            tuple(float(v) for v in img.GetOrigin()),
            tuple(float(v) for v in img.GetDirection()),
        )


def strip_suffix(name: str) -> str:
    """Case id of a file name: the name without its image suffix."""
    lower = name.lower()
    for suffix in IMAGE_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def is_image_file(path: Path) -> bool:
    """True for an image file (by suffix); a broken symbolic link with an image suffix is an error, never a file
    that silently is not there (a case would drop out of a folder's mean, an input out of a prediction)."""
    if not path.name.lower().endswith(IMAGE_SUFFIXES):
        return False
    if path.is_symlink() and not path.exists():
        raise UserError(f"{path} is a broken symbolic link (to {os.readlink(path)}); fix or remove the link")
    return path.is_file()


def read_image(path: str | Path) -> Image:
    """Read a 3-D image (NIfTI, NRRD, MetaImage), or a 2-D one (PNG, TIFF, BMP, or a 2-D file of those
    formats) as a one-slice volume. Clear errors for missing, truncated, colour or 4-D files."""
    import SimpleITK as sitk

    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file; check the path")
    if not path.is_file():
        raise UserError(f"{path} is not a regular file (a folder, pipe or device); give an image file")
    check_complete(path)
    check_spacing(path)
    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise UserError(f"{path}: cannot be read as an image ({str(exc).strip().splitlines()[-1]})") from exc
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise UserError(f"{path}: has {img.GetNumberOfComponentsPerPixel()} components per pixel (colour or vector "
                        "data); save one grey-value or label channel per file")
    if img.GetDimension() == 2:
        return planar_image(img)
    if img.GetDimension() != 3:
        raise UserError(
            f"{path}: a 3-D (or 2-D) single-component image is expected, this one has {img.GetDimension()} "
            "dimensions; split it into 3-D volumes first"
        )
    image = Image.from_sitk(img)
    check_finite(image.array, str(path), nifti_nonfinite(path))
    return image


def check_finite(array: np.ndarray, what: str, stored: int = 0) -> None:
    """UserError when an image holds NaN or infinite voxels (``stored``: those a reader already turned into 0):
    a network given them segments at random around them, and as labels they mean nothing."""
    bad = stored
    if array.dtype.kind == "f" and not bad:
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
    if bad:
        raise UserError(f"{what}: {bad} of {array.size} voxels are NaN or infinite; replace them (e.g. with the "
                        "background value) and try again")


def planar_sitk(image: Image):
    """A one-slice volume as a 2-D SimpleITK image (for PNG, TIFF, BMP)."""
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(image.array[0])
    d = image.direction
    img.SetSpacing([float(v) for v in image.spacing[:2]])
    img.SetOrigin([float(v) for v in image.origin[:2]])
    img.SetDirection([float(d[0]), float(d[1]), float(d[3]), float(d[4])])
    return img


def planar_image(img) -> Image:
    """A 2-D SimpleITK image as a one-slice volume: spacing 1 mm across the slice, direction embedded."""
    import SimpleITK as sitk

    d = img.GetDirection()
    return Image(sitk.GetArrayFromImage(img)[None],
                 (*(float(v) for v in img.GetSpacing()), 1.0), (*(float(v) for v in img.GetOrigin()), 0.0),
                 (d[0], d[1], 0.0, d[2], d[3], 0.0, 0.0, 0.0, 1.0))


def write_image(image: Image, path: str | Path, overwrite: bool = False) -> Path:
    """Write an image; refuses to replace an existing file unless ``overwrite``."""
    import SimpleITK as sitk

    path = Path(path)
    if path.exists() and not overwrite:
        raise UserError(f"{path} exists; choose another output or allow overwriting explicitly")
    path.parent.mkdir(parents=True, exist_ok=True)
    planar = path.name.lower().endswith(PLANAR_SUFFIXES)
    if planar and image.array.shape[0] != 1:
        raise UserError(f"{path}: a {path.suffix} file holds one 2-D image, but this one has {image.array.shape[0]} "
                        "slices; write .nii.gz, .nrrd or .mha instead")
    from ImprovedNNUNetLib.core.safe_write import write_verified

    def write(temporary: Path) -> None:
        try:
            sitk.WriteImage(planar_sitk(image) if planar else image.to_sitk(), str(temporary), useCompression=True)
        except RuntimeError as exc:  # ITK reports every write failure as a RuntimeError
            raise write_failure(path, exc) from None

    def verify(temporary: Path) -> None:  # ITK's NIfTI writer reports nothing when the disk fills
        try:
            check_complete(temporary)
            if temporary.stat().st_size == 0:
                raise UserError("empty")
        except UserError:
            raise UserError(f"could not write {path} completely; check the disk and run again") from None

    return write_verified(path, write, verify)


def write_failure(path: Path, exc: RuntimeError) -> Exception:
    """What a failed image write means for the user: a full disk (OSError ENOSPC) or ITK's reason."""
    full = full_disk_error(path)
    if full is not None:
        return full
    reason = next((line.strip() for line in reversed(str(exc).splitlines()) if line.strip()), str(exc))
    return UserError(f"could not write {path}: {reason}")
