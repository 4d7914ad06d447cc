"""Refusing truncated image files before they are read.

ITK reads a NIfTI, NRRD or MetaImage file whose voxel data was cut short (an interrupted copy or
download) without an error and fills the missing voxels with zeros, so a truncated file would be
segmented or evaluated as if it were whole. :func:`check_complete` reads the header, works out
how many bytes of voxel data the file must hold, and checks that they are there; for compressed
data it also checks that the compressed stream reaches its end marker. Formats it cannot judge
(ASCII-encoded data, unknown element types) are left to the reader.
"""
from __future__ import annotations

import math
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError

CHUNK = 1 << 22

NIFTI_BYTES = {2: 1, 4: 2, 8: 4, 16: 4, 32: 8, 64: 8, 128: 3, 256: 1, 512: 2, 768: 4, 1024: 8, 1280: 8,
               1536: 16, 1792: 16, 2048: 32, 2304: 4}


class Truncated(Exception):
    """The file holds less voxel data than its header announces."""


# Files found complete, by (path, modification time, size): the scan of a compressed NIfTI also counts its
# NaN and infinite voxels, so that reading the file after :func:`check_all_complete` decompresses it only
# once more (in ITK), not twice.
_SCANNED: dict[tuple, int | None] = {}
_SCANNED_KEPT = 256
_SCANNED_LOCK = threading.Lock()


def _scan_key(path: Path) -> tuple | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return str(path.resolve()), stat.st_mtime_ns, stat.st_size


def _remember(key: tuple | None, nonfinite: int | None) -> None:
    if key is not None:
        with _SCANNED_LOCK:
            if len(_SCANNED) >= _SCANNED_KEPT:
                _SCANNED.pop(next(iter(_SCANNED)))
            _SCANNED[key] = nonfinite


def truncated_error(path: Path, detail: str) -> UserError:
    return UserError(f"{path} is incomplete ({detail}), probably an interrupted copy or download; "
                     "copy or export the file again")


def check_complete(path: str | Path) -> None:
    """UserError when an image file holds less voxel data than its header says; silent otherwise."""
    path = Path(path)
    name = path.name.lower()
    key = _scan_key(path)
    if key in _SCANNED:
        return
    nonfinite = None
    try:
        if name.endswith(".nii.gz"):
            nonfinite = _check_nifti_gz(path)
        elif name.endswith(".nii"):
            _check_nifti(path)
        elif name.endswith((".nrrd", ".nhdr")):
            from ImprovedNNUNetLib.core.text_header_images import check_nrrd

            check_nrrd(path)
        elif name.endswith((".mha", ".mhd")):
            from ImprovedNNUNetLib.core.text_header_images import check_meta

            check_meta(path)
    except Truncated as exc:
        raise truncated_error(path, str(exc)) from None
    _remember(key, nonfinite)


def check_all_complete(paths, workers: int = 8) -> None:
    """:func:`check_complete` and :func:`check_spacing` for many files at once (threads: zlib releases the GIL);
    the first bad file raises."""
    paths = list(paths)
    if not paths:
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(max(1, workers), len(paths))) as pool:
        list(pool.map(_check_file, paths))


def _check_file(path) -> None:
    """The up-front check of one input: complete, and (NIfTI) a spacing ITK will not silently replace."""
    check_complete(path)
    check_spacing(path)


# -- compressed streams ---------------------------------------------------------------------------------
def _inflate(handle, wbits: int, sink=None) -> int:
    """Decompress the rest of ``handle`` (zlib ``wbits``: 31 gzip, 47 zlib or gzip) without keeping the
    output (each piece goes to ``sink`` when given); returns the decompressed length. Truncated when the
    stream ends before its end marker."""
    produced, pending = 0, b""
    decompressor = zlib.decompressobj(wbits)
    while True:
        if not pending:
            pending = handle.read(CHUNK)
            if not pending:
                if decompressor.eof:
                    return produced
                raise Truncated("the compressed data ends before its end marker")
        if decompressor.eof:
            if wbits != 31 or pending[:2] != b"\x1f\x8b":
                return produced  # padding after the stream
            decompressor = zlib.decompressobj(wbits)  # a gzip file may hold several members
        try:
            piece = decompressor.decompress(pending, CHUNK)
        except zlib.error as exc:
            raise Truncated(f"damaged compressed data: {exc}") from None
        produced += len(piece)
        if sink is not None:
            sink(piece)
        pending = decompressor.unused_data if decompressor.eof else decompressor.unconsumed_tail


# -- NIfTI ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NiftiHeader:
    """What this module reads of a NIfTI-1 or NIfTI-2 header."""

    endian: str  # "<" or ">"
    size: int  # 348 (NIfTI-1) or 540 (NIfTI-2)
    dims: tuple
    datatype: int
    bitpix: int
    pixdim: tuple
    offset: int  # vox_offset: where the voxel data starts


def nifti_header(header: bytes) -> NiftiHeader | None:
    """The header fields from the first 540 bytes of a NIfTI file, None when they are no NIfTI header."""
    for endian in "<>":
        if len(header) >= 348 and struct.unpack(endian + "i", header[:4])[0] == 348:
            return NiftiHeader(endian, 348, struct.unpack(endian + "8h", header[40:56]),
                               *struct.unpack(endian + "2h", header[70:74]), struct.unpack(endian + "8f", header[76:108]),
                               int(struct.unpack(endian + "f", header[108:112])[0]))
        if len(header) >= 540 and struct.unpack(endian + "i", header[:4])[0] == 540:
            return NiftiHeader(endian, 540, struct.unpack(endian + "8q", header[16:80]),
                               *struct.unpack(endian + "2h", header[12:16]), struct.unpack(endian + "8d", header[104:168]),
                               struct.unpack(endian + "q", header[168:176])[0])
    return None


def _nifti_needed(fields: NiftiHeader | None) -> int | None:
    """Bytes the file must hold (header, extensions and voxel data) by its header fields."""
    if fields is None:
        return None
    ndim = fields.dims[0]
    if not 1 <= ndim <= 7:
        return None
    voxels = math.prod(max(1, int(d)) for d in fields.dims[1:ndim + 1])
    bytes_per_voxel = NIFTI_BYTES.get(fields.datatype, fields.bitpix // 8 if fields.bitpix > 0 else 0)
    if not bytes_per_voxel:
        return None
    return _data_offset(fields) + voxels * bytes_per_voxel


def _data_offset(fields: NiftiHeader) -> int:
    """Where the voxel data starts: ``vox_offset``, but never inside the header."""
    return max(fields.offset, 352 if fields.size == 348 else 544)


def _open_nifti(path: Path):
    """The file opened for reading its decompressed bytes, None for a file that is no NIfTI file."""
    import gzip

    name = path.name.lower()
    if name.endswith(".nii.gz"):
        return gzip.open(path, "rb")
    return open(path, "rb") if name.endswith(".nii") else None


def nifti_spacing(path: str | Path) -> tuple[float, ...] | None:
    """The voxel spacing a NIfTI file's header states (pixdim[1..ndim], up to 3), None for other files or an
    unreadable header. ITK replaces a zero or negative pixdim by 1 mm without a word; this reads what is there."""
    try:
        handle = _open_nifti(Path(path))
        if handle is None:
            return None
        with handle as f:
            fields = nifti_header(f.read(544))
    except (OSError, EOFError, zlib.error):
        return None
    if fields is None:
        return None
    return tuple(float(v) for v in fields.pixdim[1:1 + max(1, min(3, int(fields.dims[0])))])


NIFTI_FLOATS = {16: "f4", 64: "f8"}


def nifti_nonfinite(path: str | Path) -> int:
    """NaN and infinite voxels stored in a float NIfTI file. ITK's reader turns them into 0 without a word, so
    the array it returns cannot tell; this reads the stored voxels (0 for other files and integer data), or
    takes the count from :func:`check_complete`'s scan of the same, unchanged file."""
    import numpy as np

    remembered = _SCANNED.get(_scan_key(Path(path)))
    if remembered is not None:
        return remembered

    try:
        handle = _open_nifti(Path(path))
        if handle is None:
            return 0
        with handle as f:
            fields = nifti_header(f.read(544))
            if fields is None or fields.datatype not in NIFTI_FLOATS:
                return 0
            f.seek(_data_offset(fields))
            data = np.frombuffer(f.read(), dtype=np.dtype(NIFTI_FLOATS[fields.datatype]).newbyteorder(fields.endian))
    except (OSError, EOFError, zlib.error, ValueError):
        return 0
    return int(data.size - np.count_nonzero(np.isfinite(data)))


def check_spacing(path: str | Path) -> None:
    """UserError when a NIfTI header states a zero, negative or non-finite voxel spacing (which ITK would
    silently read as 1 mm, and a prediction would then run at the wrong scale)."""
    spacing = nifti_spacing(path)
    if spacing is not None and any(not math.isfinite(v) or v <= 0 for v in spacing):
        raise UserError(f"{path}: its header gives the voxel spacing {', '.join(f'{v:g}' for v in spacing)} mm; a "
                        "spacing must be positive: fix the header (pixdim) with the spacing the image was acquired at")


def _check_nifti(path: Path) -> None:
    with open(path, "rb") as f:
        header = f.read(544)
    needed = _nifti_needed(nifti_header(header))
    if len(header) < 348:
        raise Truncated(f"{len(header)} bytes, shorter than a NIfTI header")
    size = path.stat().st_size
    if needed is not None and size < needed:
        raise Truncated(f"{size} of {needed} bytes")


def _check_nifti_gz(path: Path) -> int | None:
    """Truncated unless complete; returns the NaN and infinite voxels counted on the way (float data), else None."""
    with open(path, "rb") as f:
        decompressor = zlib.decompressobj(31)
        try:
            header = decompressor.decompress(f.read(CHUNK), 544)
        except zlib.error as exc:
            raise Truncated(f"damaged compressed data: {exc}") from None
        fields = nifti_header(header)
        needed = _nifti_needed(fields)
        counter = None
        if fields is not None and fields.datatype in NIFTI_FLOATS:
            counter = _NonfiniteCounter(_data_offset(fields), NIFTI_FLOATS[fields.datatype], fields.endian)
        f.seek(0)
        produced = _inflate(f, 31, counter)
    if produced < 348:
        raise Truncated(f"{produced} bytes after decompression, shorter than a NIfTI header")
    if needed is not None and produced < needed:
        raise Truncated(f"{produced} of {needed} bytes after decompression")
    return None if counter is None else counter.count


class _NonfiniteCounter:
    """Counts NaN and infinite values in a byte stream of floats that starts ``offset`` bytes in."""

    def __init__(self, offset: int, dtype: str, endian: str):
        import numpy as np

        self.skip, self.rest, self.count = offset, b"", 0
        self.dtype = np.dtype(dtype).newbyteorder(endian)

    def __call__(self, piece: bytes) -> None:
        import numpy as np

        if self.skip:
            cut = min(self.skip, len(piece))
            piece, self.skip = piece[cut:], self.skip - cut
        data = self.rest + piece if self.rest else piece
        whole = len(data) - len(data) % self.dtype.itemsize
        self.rest = data[whole:]
        values = np.frombuffer(data, dtype=self.dtype, count=whole // self.dtype.itemsize)
        self.count += int(values.size - np.count_nonzero(np.isfinite(values)))
