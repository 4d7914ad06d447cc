"""The user's models folder: import trained nnU-Net models (ZIP or folder), list and remove them.

Each imported model is one sub-folder ``<models folder>/<name>/`` holding dataset.json,
plans.json and fold_N/ exactly as nnU-Net wrote them. The models folder is
``$IMPROVED_NNUNET_MODELS`` when set, else ``~/.improved-nnunet/models``.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ImprovedNNUNetLib.core.dataset_names import is_dataset_name
from ImprovedNNUNetLib.core.errors import UserError, full_disk_error
from ImprovedNNUNetLib.inference.model_folder import channel_names
from ImprovedNNUNetLib.inference.models.safe_zip import archive_members, safe_extract

ENV_VAR = "IMPROVED_NNUNET_MODELS"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class StoredModel:
    """An imported model: its name, folder, trained folds, input channels and labels."""

    name: str
    path: Path
    folds: tuple[str, ...]
    channel_names: tuple[str, ...]
    labels: dict


def models_root() -> Path:
    """The models folder (``$IMPROVED_NNUNET_MODELS`` or ``~/.improved-nnunet/models``)."""
    configured = os.environ.get(ENV_VAR, "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".improved-nnunet" / "models"


def is_model_folder(path: Path) -> bool:
    return ((path / "dataset.json").is_file() and (path / "plans.json").is_file()
            and any(child.is_dir() and child.name.startswith("fold_") for child in path.iterdir()))


def find_model_folders(folder: Path) -> list[Path]:
    """Every model folder at or below ``folder`` (an export ZIP may hold several configurations)."""
    if is_model_folder(folder):
        return [folder]
    return sorted(path.parent for path in folder.rglob("plans.json") if is_model_folder(path.parent))


def zip_model_folders(archive: Path) -> list[PurePosixPath]:
    """The model folders inside a ZIP, found from its entry names (nothing extracted)."""
    names = set(archive_members(archive))
    folders = {name.parent for name in names if name.name == "plans.json"}
    folds = {name.parent.parent for name in names if len(name.parts) >= 2 and name.parent.name.startswith("fold_")}
    return sorted(folder for folder in folders if folder / "dataset.json" in names and folder in folds)


def default_name(model_folder: Path | PurePosixPath) -> str:
    """``DatasetNNN_X__Trainer__Plans__config`` inside an nnU-Net results tree, else the folder name."""
    parent = model_folder.parent.name
    return f"{parent}__{model_folder.name}" if is_dataset_name(parent) else model_folder.name


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UserError(f"model name {name!r} is not allowed; use letters, digits, '.', '_' and '-' "
                        f"and start with a letter or digit")
    return name


def _describe(name: str, path: Path) -> StoredModel:
    try:
        dataset = json.loads((path / "dataset.json").read_text())
    except (OSError, json.JSONDecodeError):
        dataset = {}
    folds = sorted((child.name[len("fold_"):] for child in path.iterdir()
                    if child.is_dir() and child.name.startswith("fold_") and any(child.glob("*.pth"))),
                   key=lambda f: (not f.isdigit(), int(f) if f.isdigit() else 0, f))
    return StoredModel(name, path, tuple(folds), tuple(channel_names(dataset)),
                       dict(dataset.get("labels", {})))


def list_models(root: Path | None = None) -> list[StoredModel]:
    """The imported models, sorted by name (an absent models folder means none)."""
    root = models_root() if root is None else Path(root)
    if not root.is_dir():
        return []
    return [_describe(child.name, child) for child in sorted(root.iterdir())
            if child.is_dir() and _NAME.match(child.name) and is_model_folder(child)]


def import_model(source: str | Path, name: str | None = None, force: bool = False,
                 root: Path | None = None) -> list[StoredModel]:
    """Copy the model(s) in ``source`` (a ZIP, e.g. from ``nnUNetv2_export_model_to_zip``, or a folder).

    ``name`` applies when ``source`` holds a single model. An existing model of the same name is
    replaced only with ``force``. The source is never modified.
    """
    source = Path(source).expanduser()
    root = models_root() if root is None else Path(root)
    if not source.exists():
        raise UserError(f"{source} does not exist; give a model ZIP or a trained model folder")
    if source.is_file() and not zipfile.is_zipfile(source):
        raise UserError(f"{source} is neither a ZIP archive nor a folder; give a model ZIP or a model folder")
    if source.is_file():  # names and clashes are known from the entry names: refuse before extracting
        in_zip = zip_model_folders(source)
        if in_zip:
            _check_names(source, [_check_name(name)] if name is not None and len(in_zip) == 1
                         else [default_name(folder) for folder in in_zip], root, force)
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".import-", dir=root) as scratch:
        scratch = Path(scratch)
        unpacked = safe_extract(source, scratch / "unpacked") if source.is_file() else source.resolve()
        folders = find_model_folders(unpacked)
        if not folders:
            raise UserError(f"{source} holds no trained model (a folder with dataset.json, plans.json and "
                            f"fold_N/); export it with nnUNetv2_export_model_to_zip or give the results folder")
        if name is not None and len(folders) > 1:
            raise UserError(f"{source} holds {len(folders)} models; leave out the name so each gets its own")
        names = [_check_name(name)] if name is not None else [default_name(folder) for folder in folders]
        _check_names(source, names, root, force)
        imported = []
        for folder, model_name in zip(folders, names):
            staged = scratch / f"staged-{model_name}"
            try:
                shutil.copytree(folder, staged, symlinks=False)
            except shutil.Error as exc:  # one (source, target, reason) per file: say the first, as one line
                first = exc.args[0][0] if exc.args and exc.args[0] else ("", "", str(exc))
                full = full_disk_error(root)
                if full is not None:
                    raise full from None
                raise UserError(f"copying {first[0]} failed ({first[2]}) and {len(exc.args[0]) - 1} more; nothing was "
                                "imported") from None
            destination = root / model_name
            if destination.exists():
                shutil.rmtree(destination)
            staged.rename(destination)
            imported.append(_describe(model_name, destination))
    return imported


def _check_names(source: Path, names: list[str], root: Path, force: bool) -> None:
    if len(set(names)) != len(names):
        raise UserError(f"{source} holds several models that would share a name; import them one by one "
                        f"with a name each")
    for model_name in names:
        if (root / model_name).exists() and not force:
            raise UserError(f"model {model_name!r} already exists in {root}; remove it first, import with "
                            f"--force to replace it, or choose another name")


def remove_model(name: str, root: Path | None = None) -> Path:
    """Delete the imported model ``name`` from the models folder; returns the removed path."""
    root = models_root() if root is None else Path(root)
    path = root / _check_name(name)
    if not (path.is_dir() and is_model_folder(path)):
        known = ", ".join(m.name for m in list_models(root)) or "none"
        raise UserError(f"no imported model named {name!r} in {root} (imported: {known}); "
                        f"see improved-nnunet models list")
    shutil.rmtree(path)
    return path


def resolve_model(name_or_path: str | Path, root: Path | None = None) -> Path:
    """A model folder path, or the folder of the imported model of that name."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    root = models_root() if root is None else Path(root)
    if _NAME.match(str(name_or_path)) and (root / str(name_or_path)).is_dir():
        return root / str(name_or_path)
    known = ", ".join(m.name for m in list_models(root)) or "none"
    raise UserError(f"model {str(name_or_path)!r} is neither a folder nor an imported model (imported: {known}); "
                    f"give a model folder or import it with improved-nnunet models import")
