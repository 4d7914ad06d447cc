"""nnU-Net dataset folders: free dataset ids and existing raw datasets."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ImprovedNNUNetLib.core.dataset_names import DATASET_NAME
from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetTrainingLib.engine.environment import folder_values

FIRST_NEW_ID = 500  # new datasets start here, clear of the ids public dataset collections use
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")


def used_dataset_ids(extra_folders=(), folders=None) -> set[int]:
    """Ids of every ``DatasetXXX_*`` folder under the nnU-Net folders that are set (``folders`` over the
    environment), plus ``extra_folders``."""
    roots = [Path(v) for v in folder_values(folders).values()] + [Path(f) for f in extra_folders]
    ids = set()
    for root in roots:
        if root.is_dir():
            for child in root.iterdir():
                match = DATASET_NAME.match(child.name.lstrip("."))
                if match and child.is_dir():
                    ids.add(int(match.group(1)))
    return ids


def next_free_dataset_id(extra_folders=(), folders=None) -> int:
    """The lowest id from 500 upward that no dataset folder uses (checked in raw, preprocessed and results)."""
    used = used_dataset_ids(extra_folders, folders)
    candidate = FIRST_NEW_ID
    while candidate in used:
        candidate += 1
    if candidate > 999:
        raise UserError("dataset ids 500-999 are all used; pass a free dataset id explicitly")
    return candidate


def check_dataset_name(name: str) -> str:
    if not NAME_PATTERN.match(name or ""):
        raise UserError(f"dataset name '{name}' is not allowed; use letters, digits and '-' only (e.g. ChestCT)")
    return name


@dataclass
class RawDataset:
    """An nnU-Net raw dataset folder and the parts of its dataset.json the panel shows."""

    folder: Path
    dataset_id: int
    name: str
    channel_names: dict[str, str]
    labels: dict[str, int]
    num_training: int

    @property
    def full_name(self) -> str:
        return self.folder.name


def open_raw_dataset(folder: str | Path) -> RawDataset:
    """Read an existing ``DatasetXXX_Name`` raw folder; clear errors for anything nnU-Net would reject."""
    folder = Path(folder)
    match = DATASET_NAME.match(folder.name)
    if not folder.is_dir() or not match:
        raise UserError(f"{folder} is not an nnU-Net raw dataset folder; pick a folder named DatasetXXX_Name")
    json_path = folder / "dataset.json"
    if not json_path.is_file():
        raise UserError(f"{folder} has no dataset.json; pick a complete nnU-Net raw dataset folder")
    try:
        info = json.loads(json_path.read_text())
        channels = info.get("channel_names", info.get("modality"))
        return RawDataset(folder, int(match.group(1)), match.group(2), dict(channels),
                          {k: v for k, v in info["labels"].items()}, int(info["numTraining"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{json_path} is not a valid nnU-Net dataset.json ({exc}); fix or regenerate it") from exc


def use_raw_dataset(folder: str | Path, folders=None) -> RawDataset:
    """Open a raw dataset folder for training. When ``nnUNet_raw`` is set (``folders`` over the environment)
    it must be the dataset's parent (nnU-Net finds datasets only there); when unset, the caller makes the
    parent its raw folder (``RawDataset.folder.parent``). Nothing here changes the environment."""
    dataset = open_raw_dataset(folder)
    parent = dataset.folder.resolve().parent
    current = folder_values(folders).get("nnUNet_raw")
    if current and Path(current).resolve() != parent:
        raise UserError(f"{dataset.folder} is not inside nnUNet_raw ({current}); set the raw folder to {parent} "
                        "or move the dataset into nnUNet_raw")
    return dataset
