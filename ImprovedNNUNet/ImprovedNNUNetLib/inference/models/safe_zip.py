"""Extracting a ZIP archive without letting any entry escape the target folder."""
from __future__ import annotations

import shutil
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from ImprovedNNUNetLib.core.errors import UserError


def _checked_member_path(name: str, archive: Path) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or (path.parts and ":" in path.parts[0]):
        raise UserError(f"{archive} contains the absolute path {name!r}; refusing to extract it, "
                        f"re-create the archive with relative paths (nnUNetv2_export_model_to_zip does)")
    if ".." in path.parts:
        raise UserError(f"{archive} contains the entry {name!r} that points outside the archive folder; "
                        f"refusing to extract it, re-create the archive without '..' in paths")
    return path


MAX_EXPANSION = 100  # uncompressed / compressed size; model checkpoints barely compress
EXPANSION_FLOOR = 64 * 2**20  # archives expanding to less than this are never refused for their ratio


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB" if size < 2**30 else f"{size / 2**30:.1f} GiB"


def check_expansion(members: list[zipfile.ZipInfo], archive: Path, target: Path) -> int:
    """The archive's total uncompressed size; UserError for a ZIP bomb or when the disk cannot hold it."""
    total = sum(member.file_size for member in members)
    packed = archive.stat().st_size
    if total > max(MAX_EXPANSION * packed, EXPANSION_FLOOR):
        raise UserError(f"{archive} would expand from {_mib(packed)} to {_mib(total)} (over {MAX_EXPANSION} times "
                        f"its size), which no model export does; refusing it, check where the file came from")
    folder = target
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if total > free:
        raise UserError(f"{archive} expands to {_mib(total)} but {folder} has {_mib(free)} free; free disk space "
                        f"or set IMPROVED_NNUNET_MODELS to a folder on a larger disk")
    return total


def archive_members(archive: str | Path) -> list[PurePosixPath]:
    """The checked relative paths of every entry (UserError for unsafe or damaged archives)."""
    archive = Path(archive)
    try:
        with zipfile.ZipFile(archive) as zf:
            return [_checked_member_path(member.filename, archive) for member in zf.infolist()]
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise UserError(f"{archive} is not a readable ZIP archive ({exc}); download or export it again") from exc


def safe_extract(archive: str | Path, target: str | Path) -> Path:
    """Extract every file of ``archive`` under ``target``; a ``UserError`` for unsafe or damaged archives.

    Entries with absolute paths, drive letters or ``..`` components, symbolic links, archives that
    would expand over :data:`MAX_EXPANSION` times their size (ZIP bombs) or beyond the free disk
    space are refused before anything is written.
    """
    archive, target = Path(archive), Path(target)
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            check_expansion(members, archive, target)
            for member in members:
                _checked_member_path(member.filename, archive)
                if stat.S_ISLNK(member.external_attr >> 16):
                    raise UserError(f"{archive} contains the symbolic link {member.filename!r}; refusing to "
                                    f"extract it, re-create the archive with plain files")
            target.mkdir(parents=True, exist_ok=True)
            root = target.resolve()
            for member in members:
                destination = (root / _checked_member_path(member.filename, archive)).resolve()
                if root != destination and root not in destination.parents:
                    raise UserError(f"{archive} entry {member.filename!r} would be written outside {target}; "
                                    f"refusing to extract it")
                if member.is_dir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as source, open(destination, "wb") as sink:
                    while chunk := source.read(1 << 20):
                        sink.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise UserError(f"{archive} is not a readable ZIP archive ({exc}); download or export it again") from exc
    return target
