"""Completeness checks of the text-header formats: NRRD (attached or detached data, raw or gzip/bzip2
encoded) and MetaImage (``.mha``/``.mhd``, raw or zlib-compressed). The entry point for every format is
``image_integrity.check_complete``.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

from ImprovedNNUNetLib.core.image_integrity import Truncated, _inflate

META_BYTES = {"MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4, "MET_UINT": 4,
              "MET_LONG": 4, "MET_ULONG": 4, "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_FLOAT": 4,
              "MET_DOUBLE": 8}


# -- NRRD -----------------------------------------------------------------------------------------------
def _nrrd_type_bytes(name: str) -> int | None:
    name = name.strip().lower()
    if "char" in name or "int8" in name:
        return 1
    if "short" in name or "int16" in name:
        return 2
    if "long" in name or "int64" in name or name == "double":
        return 8
    if name == "float" or "int" in name:
        return 4
    return None


def _read_text_header(f, limit: int = 1 << 20) -> tuple[list[str], int]:
    """Lines up to the first empty line (NRRD) and the byte offset after it."""
    lines, offset = [], 0
    while offset < limit:
        raw = f.readline()
        if not raw:
            break
        offset += len(raw)
        line = raw.decode("latin-1").rstrip("\r\n")
        if not line:
            return lines, offset
        lines.append(line)
    return lines, offset


def check_nrrd(path: Path) -> None:
    with open(path, "rb") as f:
        lines, offset = _read_text_header(f)
        if not lines or not lines[0].startswith("NRRD"):
            return
        fields = {}
        for line in lines[1:]:
            key, sep, value = line.partition(":")
            if sep and not line.startswith("#"):
                fields[key.strip().lower()] = value.strip().lstrip("=").strip()
        sizes = [int(v) for v in fields.get("sizes", "").split() if v.lstrip("-").isdigit()]
        element = _nrrd_type_bytes(fields.get("type", ""))
        encoding = fields.get("encoding", "raw").lower()
        if not sizes or element is None:
            return
        needed = math.prod(sizes) * element
        data_file = fields.get("data file") or fields.get("datafile")
        if data_file:
            if data_file.split()[0].upper() == "LIST" or "%" in data_file:
                return  # several data files: left to the reader
            target = (path.parent / data_file).resolve()
            if not target.is_file():
                raise Truncated(f"its data file {data_file} is missing")
            with open(target, "rb") as data:
                _check_payload(data, encoding, needed, target.stat().st_size)
        else:
            _check_payload(f, encoding, needed, path.stat().st_size - offset)


def _check_payload(handle, encoding: str, needed: int, available: int) -> None:
    if encoding == "raw":
        if available < needed:
            raise Truncated(f"{available} of {needed} bytes of voxel data")
    elif encoding in ("gzip", "gz"):
        produced = _inflate(handle, 31)
        if produced < needed:
            raise Truncated(f"{produced} of {needed} bytes of voxel data after decompression")


# -- MetaImage ------------------------------------------------------------------------------------------
def check_meta(path: Path) -> None:
    with open(path, "rb") as f:
        fields, offset = {}, 0
        while offset < 1 << 20:
            raw = f.readline()
            if not raw:
                return
            offset += len(raw)
            key, sep, value = raw.decode("latin-1").partition("=")
            if not sep:
                return
            fields[key.strip()] = value.strip()
            if key.strip() == "ElementDataFile":
                break
        sizes = [int(v) for v in fields.get("DimSize", "").split() if v.isdigit()]
        element = META_BYTES.get(fields.get("ElementType", ""))
        if not sizes or element is None:
            return
        needed = math.prod(sizes) * element * int(fields.get("ElementNumberOfChannels", "1") or 1)
        compressed = fields.get("CompressedData", "False").lower() == "true"
        data_file = fields.get("ElementDataFile", "LOCAL")
        if data_file.upper() == "LOCAL":
            handle, available = f, path.stat().st_size - offset
            _check_meta_payload(handle, compressed, needed, available, fields)
            return
        if re.match(r"^(LIST|.*%)", data_file):
            return
        target = path.parent / data_file
        if not target.is_file():
            raise Truncated(f"its data file {data_file} is missing")
        with open(target, "rb") as handle:
            _check_meta_payload(handle, compressed, needed, target.stat().st_size, fields)


def _check_meta_payload(handle, compressed: bool, needed: int, available: int, fields: dict) -> None:
    if not compressed:
        if available < needed:
            raise Truncated(f"{available} of {needed} bytes of voxel data")
        return
    declared = fields.get("CompressedDataSize", "")
    if declared.isdigit() and available < int(declared):
        raise Truncated(f"{available} of {declared} bytes of compressed voxel data")
    produced = _inflate(handle, 47)
    if produced < needed:
        raise Truncated(f"{produced} of {needed} bytes of voxel data after decompression")
