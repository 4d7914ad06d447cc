"""Checking a trained nnU-Net model folder and reading its parts.

A model folder is what nnU-Net writes to ``nnUNet_results/DatasetXXX/Trainer__Plans__config``:
``dataset.json``, ``plans.json`` and one ``fold_N`` (or ``fold_all``) folder per trained
fold holding the checkpoint. Every problem found here becomes a ``UserError`` that names
the file and what to do about it.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.folds import as_fold

DEFAULT_CHECKPOINT = "checkpoint_final.pth"
_FOLD_DIR = re.compile(r"^fold_(\d+|all)$")
_CHECKPOINT_KEYS = ("network_weights", "trainer_name", "init_args")


def channel_names(dataset_json: dict) -> list[str]:
    """The input channels of a dataset.json in channel order ("0", "1", ..., "10": by number, as nnU-Net
    reads them; ``modality`` is nnU-Net v1's name for the same)."""
    names = dataset_json.get("channel_names") or dataset_json.get("modality") or {}
    return [str(names[k]) for k in sorted(names, key=int)]


@dataclass(frozen=True)
class ModelFolder:
    """The readable metadata of a model folder (no checkpoint loaded)."""

    path: Path
    dataset_json: dict
    plans: dict
    checkpoint_name: str
    available_folds: tuple  # ints in ascending order, then "all" when fold_all exists

    @property
    def channel_names(self) -> list[str]:
        return channel_names(self.dataset_json)

    @property
    def labels(self) -> dict:
        return dict(self.dataset_json.get("labels", {}))

    @property
    def summary(self) -> str:
        """``trainer · plans (network) · configuration · folds`` from the folder name and plans.json, e.g.
        ``nnUNetTrainerMSF · nnUNetResEncUNetMPlans (residual encoder) · 3d_fullres · folds 0, 1``."""
        parts = self.path.name.split("__")
        trainer, configuration = (parts[0], parts[-1]) if len(parts) == 3 else ("", "")
        plans = self.plans.get("plans_name") or (parts[1] if len(parts) == 3 else "")
        network = ""
        configurations = self.plans.get("configurations", {})
        if configuration in configurations:
            arch = str(configurations[configuration].get("architecture", {}).get("network_class_name", ""))
            network = " (residual encoder)" if "ResidualEncoder" in arch else " (plain U-Net)" if arch else ""
        folds = ", ".join(str(f) for f in self.available_folds) or "none trained"
        text = " · ".join(p for p in (trainer, f"{plans}{network}", configuration, f"folds {folds}") if p.strip())
        card = card_summary(self.path)  # an exported model's card (models export)
        return text + (f"\n{card}" if card else "")

    def checkpoint_path(self, fold) -> Path:
        return self.path / f"fold_{fold}" / self.checkpoint_name


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"{path} is missing; a model folder needs dataset.json, plans.json and fold_N folders "
                        f"(copy the whole nnU-Net results folder Trainer__Plans__configuration)")
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path} is not valid JSON ({exc}); re-copy it from the trained model") from exc


def _fold_key(fold) -> tuple:
    return (1, 0) if fold == "all" else (0, fold)


def open_model_folder(path: str | Path, checkpoint_name: str = DEFAULT_CHECKPOINT) -> ModelFolder:
    """Validate the folder layout and read ``dataset.json`` and ``plans.json``."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise UserError(f"model folder {path} does not exist; give the folder that holds dataset.json, "
                        f"plans.json and fold_N, or the name of an imported model (improved-nnunet models list)")
    dataset_json = _read_json(path / "dataset.json")
    plans = _read_json(path / "plans.json")
    if "labels" not in dataset_json or not ("channel_names" in dataset_json or "modality" in dataset_json):
        raise UserError(f"{path / 'dataset.json'} lacks 'labels' or 'channel_names'; it is not an nnU-Net v2 "
                        f"dataset.json, re-copy it from the trained model")
    folds = []
    for child in path.iterdir():
        match = _FOLD_DIR.match(child.name)
        if match and (child / checkpoint_name).is_file():
            folds.append("all" if match.group(1) == "all" else int(match.group(1)))
    if not folds:
        raise UserError(f"{path} has no fold_N/{checkpoint_name}; train the model to the end or choose another "
                        f"checkpoint file name")
    return ModelFolder(path, dataset_json, plans, checkpoint_name, tuple(sorted(folds, key=_fold_key)))


def select_folds(folder: ModelFolder, folds=None) -> list:
    """The folds to use: ``None`` means every numbered fold (or ``fold_all`` when it is the only one)."""
    if folds is None:
        numbered = [f for f in folder.available_folds if f != "all"]
        return numbered or ["all"]
    if isinstance(folds, (int, str)):
        folds = [folds]
    chosen = []
    for fold in folds:
        fold = as_fold(fold)
        if fold not in folder.available_folds:
            raise UserError(f"fold {fold} does not exist in {folder.path} (it has folds "
                            f"{', '.join(map(str, folder.available_folds))}); choose among those")
        if fold not in chosen:
            chosen.append(fold)
    if not chosen:
        raise UserError("no fold chosen; give at least one fold or leave folds out to use all of them")
    return chosen


def load_checkpoint(path: Path) -> dict:
    """Load a checkpoint on the CPU; an unreadable or truncated file becomes a ``UserError``."""
    import torch

    try:
        checkpoint = torch.load(path, map_location=torch.device("cpu"), weights_only=False)
    except Exception as exc:  # torch raises many types for damaged files (zip, pickle, EOF, runtime)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path} is unreadable or truncated ({reason}); copy or export the model again") from exc
    if not isinstance(checkpoint, dict) or any(key not in checkpoint for key in _CHECKPOINT_KEYS):
        raise UserError(f"{path} is not an nnU-Net v2 checkpoint (it lacks {', '.join(_CHECKPOINT_KEYS)}); "
                        f"give the checkpoint nnU-Net wrote during training")
    return checkpoint


CARD = "model_card.json"  # written by `models export` beside dataset.json


def card_summary(path: Path) -> str | None:
    """One line about a model folder's model_card.json (the Segment panel shows it under the model), or None."""
    card_file = Path(path) / CARD
    if not card_file.is_file():
        return None
    try:
        card = json.loads(card_file.read_text())
    except ValueError:
        return None
    inference = card.get("inference") or {}
    timing = (f"; {inference.get('predict_s')} s per case on {inference.get('device')}" if inference else "")
    return (f"card: trained with {card.get('trained_with')} ({card.get('plans')}, {card.get('configuration')}), "
            f"folds {', '.join(card.get('folds', []))}, license {card.get('license')}{timing}")
