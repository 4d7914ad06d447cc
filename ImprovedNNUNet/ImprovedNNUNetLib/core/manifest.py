"""What a command wrote into a folder, so that re-running it replaces exactly that and nothing else.

Each output folder gets ``.improved-nnunet-outputs.json``: per command, the files it wrote with
their size and modification time. Replacing earlier outputs removes only files recorded there
that are unchanged since; files the user added or edited are kept and reported.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ImprovedNNUNetLib.core.safe_write import write_text_verified

FILE_NAME = ".improved-nnunet-outputs.json"


def _stamp(path: Path) -> list[int]:
    info = path.stat()
    return [info.st_size, info.st_mtime_ns]


class Outputs:
    """The files ``command`` wrote into ``folder`` (read from and saved to the folder's manifest)."""

    def __init__(self, folder: str | Path, command: str):
        self.folder = Path(folder)
        self.command = command
        self.path = self.folder / FILE_NAME
        self._all = self._load()
        self.files: dict[str, list[int]] = dict(self._all.get(command, {}))

    def _load(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def owns(self, path: str | Path) -> bool:
        """Whether ``path`` was written by this command and is unchanged since."""
        path = Path(path)
        key = self._key(path)
        try:
            return key in self.files and _stamp(path) == self.files[key]
        except OSError:
            return False

    def _key(self, path: Path) -> str:
        return Path(os.path.relpath(Path(path).absolute(), self.folder.absolute())).as_posix()

    def remove_previous(self) -> list[Path]:
        """Delete the files this command wrote earlier (unchanged ones); returns the recorded files that
        were kept because the user changed them. Folders left empty are removed."""
        kept = []
        for key in sorted(self.files):
            path = self.folder / key
            if not path.exists():
                continue
            if self.owns(path):
                path.unlink()
                _remove_empty_parents(path.parent, self.folder)
            else:
                kept.append(path)
        self.files = {}
        self.save()
        return kept

    def record(self, *paths: str | Path) -> None:
        for path in paths:
            path = Path(path)
            if path.is_file():
                self.files[self._key(path)] = _stamp(path)

    def save(self) -> None:
        self._all = self._load()
        if self.files:
            self._all[self.command] = self.files
        else:
            self._all.pop(self.command, None)
        if not self._all:
            self.path.unlink(missing_ok=True)
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        write_text_verified(self.path, json.dumps(self._all, indent=1, sort_keys=True))


def _remove_empty_parents(folder: Path, top: Path) -> None:
    while folder != top and top in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
