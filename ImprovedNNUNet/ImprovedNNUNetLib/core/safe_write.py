"""The one rule for every file this project writes: a temporary name, verify, then rename.

A library may report success for a write that a full disk cut short: SimpleITK's NIfTI writer raises
nothing on ENOSPC and leaves a 0-byte or truncated file, where its NRRD and MetaImage writers do raise.
So no writer is trusted: what it wrote goes to ``.partial-NAME`` (the suffix, which picks the file
format, is kept), is flushed to the disk (``fsync``: a delayed-allocation file system reports a full
disk only then), checked (its size, and for images that the voxel data its header promises is all
there), and only then renamed to its final name. A failed write leaves neither a partial file nor a
file under the final name; the error names the file, and a full disk is reported as such.
"""
from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError, full_disk_error

PARTIAL_PREFIX = ".partial-"


def partial_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(PARTIAL_PREFIX + path.name)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_verified(path: str | Path, write: Callable[[Path], object],
                   verify: Callable[[Path], None] | None = None) -> Path:
    """``write(temporary)``, fsync, ``verify(temporary)`` (default: the file is not empty), rename to ``path``.

    ``verify`` raises when the file is not what was meant (it is then removed). A write or check that fails
    while the disk is full raises ``OSError(ENOSPC)`` naming ``path``; other failures raise their error."""
    path = Path(path)
    temporary = partial_path(path)
    try:
        write(temporary)
        if not temporary.is_file():
            raise UserError(f"could not write {path}: the writer produced no file")
        _fsync(temporary)
        (verify or _not_empty)(temporary)
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC and exc.filename != str(path):
            raise OSError(errno.ENOSPC, "No space left on device", str(path)) from None
        raise
    except BaseException as exc:
        temporary.unlink(missing_ok=True)
        full = full_disk_error(path) if isinstance(exc, (UserError, RuntimeError, ValueError)) else None
        if full is not None:
            raise full from None
        raise
    return path


def _not_empty(path: Path) -> None:
    if path.stat().st_size == 0:
        raise UserError(f"{path.name.removeprefix(PARTIAL_PREFIX)} was written empty; check the disk and run again")


def write_text_verified(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """A text file (JSON, CSV, Markdown) written by :func:`write_verified`; its size is checked exactly."""
    data = text.encode(encoding)

    def verify(temporary: Path) -> None:
        if temporary.stat().st_size != len(data):
            raise UserError(f"{Path(path).name} was written incompletely ({temporary.stat().st_size} of "
                            f"{len(data)} bytes); check the disk and run again")

    return write_verified(path, lambda temporary: temporary.write_bytes(data), verify)


def readable_whole(path: str | Path) -> bool:
    """True when an existing output file is complete: not empty, and for an image all its voxel data is there
    (what ``--continue`` checks before it trusts a file it finds)."""
    from ImprovedNNUNetLib.core.image_integrity import check_complete

    path = Path(path)
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return False
        check_complete(path)
    except (UserError, OSError):
        return False
    return True
