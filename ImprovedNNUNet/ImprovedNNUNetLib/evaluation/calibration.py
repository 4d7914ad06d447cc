"""How well predicted probabilities are calibrated, per label: ECE, Brier score, NLL.

Each label is scored one-vs-rest over every voxel of the image: p is the probability of the label's network
output, y whether the reference holds the label (for a region, any of its values).

* ECE (expected calibration error): ``N_BINS`` = 15 equal-width bins of p over [0, 1] (a voxel with p exactly
  on an edge goes to the upper bin, p = 1 to a bin of its own), Σ_bins n_b / N · |mean(y) − mean(p)|: the
  binary L1 calibration error of torchmetrics (``BinaryCalibrationError(n_bins=15, norm="l1")``);
* Brier score: mean (p − y)²;
* NLL: mean −[y log p + (1 − y) log(1 − p)], each log bounded below by −100 as PyTorch's binary cross-entropy.

The case also gets the top-label ECE of label models (confidence = the largest probability, correct = its
label is the reference's): torchmetrics' ``MulticlassCalibrationError(n_bins=15, norm="l1")``.
Background dominates voxel-wise scores of small structures: compare them between models on the same data.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.imageio import IMAGE_SUFFIXES, Image, read_image

N_BINS = 15
LOG_FLOOR = -100.0


def _bins(p: np.ndarray) -> np.ndarray:
    edges = np.linspace(0.0, 1.0, N_BINS + 1, dtype=np.float32)
    return np.searchsorted(edges, p, side="right") - 1


def calibration_error(p: np.ndarray, y: np.ndarray) -> float:
    """Binary L1 ECE of probabilities ``p`` against boolean outcomes ``y`` (module docstring)."""
    p = np.asarray(p, dtype=np.float32).ravel()
    y = np.asarray(y, dtype=bool).ravel()
    if p.size == 0:
        return float("nan")
    index = _bins(p)
    count = np.bincount(index, minlength=N_BINS + 1).astype(np.float64)
    confidence = np.bincount(index, weights=p, minlength=N_BINS + 1)
    accuracy = np.bincount(index, weights=y, minlength=N_BINS + 1)
    filled = count > 0
    gap = np.abs(accuracy[filled] - confidence[filled]) / count[filled]
    return float(np.sum(gap * count[filled]) / p.size)


def brier(p: np.ndarray, y: np.ndarray) -> float:
    p = np.asarray(p, dtype=np.float64).ravel()
    return float(np.mean((p - np.asarray(y, dtype=bool).ravel()) ** 2)) if p.size else float("nan")


def nll(p: np.ndarray, y: np.ndarray) -> float:
    p = np.asarray(p, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=bool).ravel()
    if not p.size:
        return float("nan")
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(p), LOG_FLOOR)
        log_q = np.maximum(np.log1p(-p), LOG_FLOOR)
    return float(-np.mean(np.where(y, log_p, log_q)))


def top_label_error(probabilities: np.ndarray, reference: np.ndarray) -> float:
    """Top-label L1 ECE of (C, ...) label-model probabilities against the reference label array."""
    confidence = probabilities.max(axis=0)
    correct = probabilities.argmax(axis=0) == reference
    return calibration_error(confidence, correct)


def check_probabilities(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise UserError(f"--probabilities {path}: no such file or folder; give the folder predict wrote with "
                        "--save_probabilities or --probabilities")
    return path


def probabilities_of(path: Path, case_id: str, prediction_id: str | None = None) -> np.ndarray:
    """(C, z, y, x) probabilities of a case: nnU-Net's ``CASE.npz`` (only its array is read; the ``.pkl`` beside
    it is not needed and never unpickled), or this project's maps ``CASE_prob_K.<suffix>`` (K = 0, 1, ...).
    ``prediction_id``: the prediction's own name, looked for too (two single files may be named apart; predict
    names the probabilities after the prediction)."""
    if path.is_file():
        return _npz(path)
    if prediction_id and prediction_id != case_id and _found(path, prediction_id):
        case_id = prediction_id
    npz = path / f"{case_id}.npz"
    if npz.is_file():
        return _npz(npz)
    maps = []
    for k in range(1024):
        found = next((path / f"{case_id}_prob_{k}{s}" for s in IMAGE_SUFFIXES
                      if (path / f"{case_id}_prob_{k}{s}").is_file()), None)
        if found is None:
            break
        maps.append(read_image(found).array.astype(np.float32, copy=False))
    if not maps:
        raise UserError(f"no probabilities for case {case_id} in {path} (looked for {case_id}.npz and "
                        f"{case_id}_prob_0.nii.gz ...); predict with --save_probabilities or --probabilities")
    return np.stack(maps)


def _found(folder: Path, case_id: str) -> bool:
    return (folder / f"{case_id}.npz").is_file() or any((folder / f"{case_id}_prob_0{s}").is_file()
                                                          for s in IMAGE_SUFFIXES)


def _npz(path: Path) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as data:
            return np.asarray(data["probabilities"], dtype=np.float32)
    except Exception as exc:  # noqa: BLE001 - a damaged file raises BadZipFile, KeyError, ValueError, ...
        raise UserError(f"{path} is not an nnU-Net probability file ({type(exc).__name__}); give the .npz "
                        "written by --save_probabilities") from None


def channel_of(keys: list, n_channels: int) -> dict:
    """Network output per evaluated label: label value k is output k (nnU-Net's consecutive labels, 0 the
    background); in a region model the regions are the outputs, in the order they are listed."""
    regions = [k for k in keys if isinstance(k, tuple)]
    if regions:
        if len(regions) != n_channels:
            raise UserError(f"the probabilities have {n_channels} outputs but {len(regions)} regions are evaluated; "
                            "evaluate the model's regions (--labels with its dataset.json)")
        return {k: i for i, k in enumerate(regions)}
    missing = [k for k in keys if k >= n_channels]
    if missing:
        raise UserError(f"the probabilities have {n_channels} outputs, too few for label(s) {missing}; give the "
                        "probabilities of the model that made this prediction")
    return {k: k for k in keys}


def add_calibration(metrics, probabilities: np.ndarray, reference: Image, labels=None) -> None:
    """ECE, Brier score and NLL of every evaluated label into ``metrics`` (a CaseMetrics), from (C, z, y, x)
    probabilities on the reference grid; the top-label ECE into its notes-free ``calibration``."""
    ref = reference.array
    if probabilities.ndim != ref.ndim + 1 or probabilities.shape[1:] != ref.shape:
        raise UserError(f"probabilities of shape {probabilities.shape[1:]} do not match the reference's "
                        f"{ref.shape}; give the probabilities predicted for this case's image")
    channels = channel_of(list(metrics.labels), probabilities.shape[0])
    for key, m in metrics.labels.items():
        p = probabilities[channels[key]]
        y = np.isin(ref, key) if isinstance(key, tuple) else ref == key
        m.ece, m.brier, m.nll = calibration_error(p, y), brier(p, y), nll(p, y)
    if not any(isinstance(k, tuple) for k in channels):
        metrics.calibration = {"ECE_top_label": top_label_error(probabilities, ref), "bins": N_BINS}
