"""The server's folder: where uploads, jobs and their files live, and the one rule for names a client sends.

A client-given name never becomes a path unchecked: :func:`safe_name` accepts a plain file name only
(letters, digits, ``.``, ``-``, ``_``; no separator, no ``..``, no leading dot, 128 characters at most), and
every path is built under the server folder and checked to stay there.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import uuid
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # matched whole (fullmatch: "$" would let a final newline in)
UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
CHUNK = 1 << 20


def safe_name(name: str, what: str = "name") -> str:
    """``name`` when it is a plain file name, else UserError (never a path)."""
    if not isinstance(name, str) or not NAME.fullmatch(name) or ".." in name:
        raise UserError(f"{what} {name!r}: use a plain name of letters, digits, '.', '-' and '_' (no folders)")
    return name


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


class ServerFolder:
    """``<folder>/uploads/<id>/<name>`` (complete uploads), ``<folder>/uploads/.partial/`` (being received),
    ``<folder>/jobs/<id>/`` (a job's inputs, outputs and log)."""

    def __init__(self, folder: str | Path):
        self.root = Path(folder).resolve()
        self.uploads = self.root / "uploads"
        self.partial = self.uploads / ".partial"
        self.jobs = self.root / "jobs"
        for path in (self.uploads, self.partial, self.jobs):
            path.mkdir(parents=True, exist_ok=True)
        for leftover in self.partial.iterdir():  # a server stopped mid-upload: nothing half-received stays
            shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(missing_ok=True)

    def inside(self, path: Path) -> Path:
        resolved = path.resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise UserError("that name points outside the server's folder")
        return resolved

    def new_partial(self) -> tuple[str, Path]:
        upload_id = uuid.uuid4().hex
        return upload_id, self.partial / upload_id

    def complete(self, upload_id: str, partial: Path, name: str) -> Path:
        """Move a fully received upload into place (one rename: a reader never sees half a file)."""
        folder = self.uploads / upload_id
        folder.mkdir()
        final = folder / safe_name(name, "file name")
        partial.replace(final)
        return final

    def upload(self, upload_id: str) -> Path:
        """The file of a complete upload."""
        if not isinstance(upload_id, str) or not UPLOAD_ID.fullmatch(upload_id):
            raise UserError(f"upload {upload_id!r}: not an upload id this server gave")
        folder = self.inside(self.uploads / upload_id)
        files = sorted(folder.iterdir()) if folder.is_dir() else []
        if len(files) != 1:
            raise UserError(f"upload {upload_id}: not found on the server; upload the file again")
        return files[0]

    def job_folder(self, job_id: int) -> Path:
        return self.jobs / str(int(job_id))

    def job_file(self, job_id: int, name: str) -> Path:
        return self.inside(self.job_folder(job_id) / "outputs" / safe_name(name, "file name"))
