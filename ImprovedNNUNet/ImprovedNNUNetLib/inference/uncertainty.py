"""Where a prediction is unsure, and which cases to review first.

* entropy map: the entropy of the mean probabilities (over folds), normalised to [0, 1] — for label models
  −Σ_c p_c log p_c / log C over the C outputs, for region models (one sigmoid per region) the mean over
  regions of the binary entropy / log 2;
* disagreement map (several folds): the fraction of folds whose own label at the voxel (argmax; per region
  p > 0.5, averaged over regions) differs from the ensemble's, computed on the network grid and resampled to
  the image like nnU-Net's probabilities;
* review score of a case: the uncertain volume, Σ entropy × voxel volume in ml — large when much tissue is
  unsure, whatever the image size — with the mean entropy and disagreement inside the predicted foreground
  beside it. ``uncertainty.csv`` ranks cases by it: review the first ones first.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

SCORE_SUFFIX = "_uncertainty.json"


def fold_vote(logits, regions: bool) -> np.ndarray:
    """One fold's (or the ensemble's) label per voxel on the network grid: argmax, or for regions p > 0.5."""
    array = logits.numpy() if hasattr(logits, "numpy") else np.asarray(logits)
    return array > 0 if regions else np.argmax(array, axis=0).astype(np.int16)


def disagreement_of(votes: list[np.ndarray], ensemble: np.ndarray) -> np.ndarray:
    """Fraction of folds that differ from the ensemble at each voxel (regions: averaged over regions)."""
    total = np.zeros(ensemble.shape[-3:] if ensemble.ndim == 4 else ensemble.shape, np.float32)
    for vote in votes:
        differs = vote != ensemble
        total += differs.mean(axis=0) if differs.ndim == 4 else differs
    return total / len(votes)


def entropy(probabilities: np.ndarray, regions: bool) -> np.ndarray:
    """Normalised entropy (module docstring) of (C, z, y, x) probabilities."""
    p = np.clip(probabilities.astype(np.float32, copy=False), 1e-12, 1.0)
    if regions:
        q = np.clip(1.0 - p, 1e-12, 1.0)
        return (-(p * np.log(p) + q * np.log(q)) / np.log(2.0)).mean(axis=0).astype(np.float32)
    channels = max(p.shape[0], 2)
    return (-(p * np.log(p)).sum(axis=0) / np.log(channels)).astype(np.float32)


def case_score(entropy_map: np.ndarray, segmentation: np.ndarray, spacing, disagreement=None) -> dict:
    """The review score of one case (module docstring)."""
    voxel_ml = float(np.prod(spacing)) / 1000.0
    foreground = segmentation != 0
    inside = entropy_map[foreground]
    return {
        "uncertain_volume_ml": float(entropy_map.sum(dtype=np.float64) * voxel_ml),
        "mean_entropy_foreground": float(inside.mean()) if inside.size else 0.0,
        "mean_disagreement_foreground": (float(disagreement[foreground].mean()) if foreground.any() else 0.0)
        if disagreement is not None else None,
        "foreground_ml": float(np.count_nonzero(foreground) * voxel_ml),
    }


def add_uncertainty(result, probabilities: np.ndarray, disagreement, template, regions: bool) -> None:
    """Entropy map, disagreement map and review score into a PredictionResult."""
    entropy_map = entropy(probabilities, regions)
    result.uncertainty = template.with_array(entropy_map)
    if disagreement is not None:
        result.disagreement = template.with_array(np.ascontiguousarray(disagreement, dtype=np.float32))
    result.uncertainty_score = case_score(entropy_map, result.segmentation.array, template.spacing, disagreement)


def write_score(path: Path, case_id: str, score: dict) -> None:
    from ImprovedNNUNetLib.core.safe_write import write_text_verified

    write_text_verified(path, json.dumps({"case_id": case_id, **score}, indent=1) + "\n")


COLUMNS = ("rank", "case_id", "uncertain_volume_ml", "mean_entropy_foreground", "mean_disagreement_foreground",
           "foreground_ml")


def write_ranking(folder: Path) -> Path | None:
    """``uncertainty.csv`` in ``folder``: every case's review score found there, the most uncertain first."""
    from ImprovedNNUNetLib.core.safe_write import write_text_verified

    scores = []
    for path in sorted(folder.glob(f"*{SCORE_SUFFIX}")):
        try:
            scores.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    if not scores:
        return None
    scores.sort(key=lambda s: -s["uncertain_volume_ml"])
    handle = io.StringIO(newline="")
    writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for rank, score in enumerate(scores, start=1):
        writer.writerow({"rank": rank, **{k: ("" if v is None else v) for k, v in score.items()}})
    target = folder / "uncertainty.csv"
    write_text_verified(target, handle.getvalue())
    return target
