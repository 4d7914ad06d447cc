"""Cross-validation splits for small datasets.

nnU-Net creates a 5-fold split on first training and fails with scikit-learn's "Cannot have number of
splits n_splits=5 greater than the number of samples" when a dataset has fewer than 5 training cases
(what a Slicer user who labelled a few cases meets first). Such a dataset gets one fold per case
(leave-one-out), written to ``splits_final.json`` with nnU-Net's own seeded split function before the
trainer looks for it; a single case cannot be cross-validated (train ``--fold all``).
"""
from __future__ import annotations

import json
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.safe_write import write_text_verified

NNUNET_FOLDS = 5
SPLITS_FILE = "splits_final.json"


def training_cases(preprocessed: Path) -> int:
    """Number of training cases of a prepared dataset (``numTraining`` of its dataset.json)."""
    try:
        return int(json.loads((Path(preprocessed) / "dataset.json").read_text())["numTraining"])
    except (OSError, ValueError, KeyError, TypeError):
        return NNUNET_FOLDS


def number_of_splits(preprocessed: Path) -> int:
    """Folds in splits_final.json, or what the first training will create: 5, fewer for a small dataset."""
    splits = Path(preprocessed) / SPLITS_FILE
    if splits.is_file():
        return len(json.loads(splits.read_text()))
    return min(NNUNET_FOLDS, training_cases(preprocessed))


def default_folds(dataset: str) -> list[int]:
    """The folds of a prepared dataset's split (``DatasetNNN_Name``): 0-4, or one per case for 2-4 cases, as
    `train` splits it; 0-4 when the dataset is not prepared here."""
    import os

    root = os.environ.get("nnUNet_preprocessed")
    if not root or not (Path(root) / dataset).is_dir():
        return list(range(NNUNET_FOLDS))
    return list(range(max(1, number_of_splits(Path(root) / dataset))))


def check_cross_validation(preprocessed: Path, fold) -> None:
    if str(fold) != "all" and training_cases(preprocessed) < 2 and not (Path(preprocessed) / SPLITS_FILE).is_file():
        raise UserError(f"{Path(preprocessed).name} has 1 training case, too few for cross-validation; "
                        "train with --fold all, or add cases")


def write_small_dataset_splits(preprocessed: Path, data_folder: Path) -> str | None:
    """Write a leave-one-out split for a dataset with 2-4 cases (before nnU-Net would fail); returns a note."""
    preprocessed = Path(preprocessed)
    path = preprocessed / SPLITS_FILE
    cases = sorted({p.name.split(".")[0] for p in Path(data_folder).glob("*.pkl")})
    if path.is_file() or not 2 <= len(cases) < NNUNET_FOLDS:
        return None
    from nnunetv2.utilities.crossval_split import generate_crossval_split

    write_text_verified(path, json.dumps(generate_crossval_split(cases, seed=12345, n_splits=len(cases)), indent=4))
    return (f"{len(cases)} training cases: {len(cases)}-fold cross-validation (one validation case per fold, "
            f"folds 0..{len(cases) - 1}) written to {path}")
