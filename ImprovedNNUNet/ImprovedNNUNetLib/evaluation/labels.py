"""Which labels to evaluate, their names, and checks that an array is a label image."""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ImprovedNNUNetLib.core.errors import UserError

INTENSITY_LIKE_VALUES = 255  # more distinct values than an 8-bit label image can hold: an intensity image


def as_label_array(array: np.ndarray, what: str = "image") -> np.ndarray:
    """The array as non-negative integers; UserError for intensity or probability images."""
    array = np.asarray(array)
    if array.ndim != 3:
        raise UserError(f"{what}: a 3-D label image is expected, got {array.ndim} dimensions; pass one 3-D volume")
    if array.dtype == bool:
        return array.view(np.uint8)
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            raise UserError(
                f"{what}: has non-integer values, so it is not a label image; "
                "pass a segmentation (integer labels), not an intensity or probability image"
            )
        array = array.astype(np.int64)
    elif array.dtype.kind not in "iu":
        raise UserError(f"{what}: voxel type {array.dtype} is not a label type; save it with integer voxels")
    if array.dtype.kind == "i" and array.size and array.min() < 0:
        distinct = np.unique(array).size
        if distinct > INTENSITY_LIKE_VALUES:  # a CT (-1024 ... 3000) or an MR given as a segmentation
            raise UserError(f"{what}: holds {distinct} distinct values, negative ones among them: it looks like an "
                            "intensity image, not a segmentation; pass the label image")
        raise UserError(f"{what}: has negative label values; label values must be 0 (background) or positive")
    if array.dtype.itemsize > 4 or array.dtype == np.uint32:
        if array.size and array.max() > np.iinfo(np.int32).max:
            raise UserError(f"{what}: label values above 2^31 are not supported; renumber the labels")
        array = array.astype(np.int32)
    return array


def isin_labels(array: np.ndarray, values) -> np.ndarray:
    """``np.isin(array, values)`` for a label array, by a lookup table when its values are small (a full CT's
    label map: one pass instead of numpy's sort-based isin, about 10× faster); the same result otherwise."""
    values = np.asarray(list(values), dtype=np.int64)
    if array.dtype.kind in "ui" and array.size:
        low, high = int(array.min()), int(array.max())
        if low >= 0 and high < 2**20:
            table = np.zeros(high + 1, dtype=bool)
            table[values[(values >= 0) & (values <= high)]] = True
            return table[array]
    return np.isin(array, values)


def label_pair(pred: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays checked as label images and required to share one grid."""
    pred = np.ascontiguousarray(as_label_array(pred, "prediction"))  # results never depend on memory layout
    ref = np.ascontiguousarray(as_label_array(ref, "reference"))
    if pred.shape != ref.shape:
        raise UserError(
            f"prediction shape {pred.shape} differs from reference shape {ref.shape}; "
            "pass Images so the prediction can be resampled, or arrays on one grid"
        )
    return pred, ref


def resolve_labels(labels, present) -> dict:
    """``{label key: name or None}`` from None (the ``present`` values), values, or {name: value}.

    A key is a label value, or for a region (nnU-Net's region-based labels, e.g. BraTS whole tumour = 1, 2, 3)
    the sorted tuple of the values it unites: a list or tuple given as a value, as in a region-based
    dataset.json; its summary key is the tuple's text, ``(1, 2, 3)``, as in nnU-Net's summary.json.
    """
    if labels is None:
        return {int(v): None for v in sorted(present) if v != 0}
    if isinstance(labels, Mapping):
        pairs = [(_label_key(v, name), str(name)) for name, v in labels.items()]
    else:
        pairs = [(_label_key(v, v), None) for v in labels]
    result: dict = {}
    for key, name in pairs:
        if key == 0 or key == (0,):
            continue  # background is never a structure to evaluate
        if key in result:
            raise UserError(f"label {format_key(key)} is listed twice; give each label or region once")
        result[key] = name
    return result


def _label_key(value, what):
    if isinstance(value, (list, tuple)):
        values = sorted({_label_value(v, what) for v in value})
        if not values:
            raise UserError(f"region {what!r} lists no label values; give the values it unites, e.g. 1,2,3")
        return tuple(values)
    return _label_value(value, what)


def format_key(key) -> str:
    """A label key as summary.json and metrics.csv write it: ``3``, or ``(1, 2, 3)`` for a region (nnU-Net's
    ``label_or_region_to_key``)."""
    return str(key)


def key_order(key):
    """Sort key for label keys: plain labels by value first, then regions."""
    return (0, (key,)) if isinstance(key, int) else (1, tuple(key))


def is_region(key) -> bool:
    return isinstance(key, tuple)


def region_values(key) -> tuple[int, ...]:
    """The label values a key stands for: one for a label, several for a region."""
    return tuple(key) if isinstance(key, tuple) else (key,)


def _label_value(value, what) -> int:
    if isinstance(value, (list, tuple)):
        raise UserError(f"label {what!r}: a region cannot list another region ({value!r}); give label values")
    if isinstance(value, (float, np.floating)) and not float(value).is_integer():
        raise UserError(f"label {what!r}: value {value!r} is not an integer; give integer label values")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise UserError(f"label {what!r}: value {value!r} is not an integer; give integer label values") from None
    if number < 0:
        raise UserError(f"label {what!r}: value {number} is negative; label values are 0 or positive")
    return number


DEFAULT_TAU_MM = 1.0


def resolve_tau(tau_mm, labels: Mapping[int, str | None]) -> dict[int, float]:
    """Tolerance (mm) per label from one float or a dict keyed by label value or name.

    In a dict, the key ``"default"`` sets the tolerance of the labels it does not list
    (1 mm otherwise).
    """
    if not isinstance(tau_mm, Mapping):
        return {v: _positive_tau(tau_mm) for v in labels}
    by_name = {name: v for v, name in labels.items() if name is not None}
    default = _positive_tau(tau_mm.get("default", DEFAULT_TAU_MM))
    result = {v: default for v in labels}
    for key, tau in tau_mm.items():
        if key == "default":
            continue
        value = by_name.get(key, key)
        if not isinstance(value, tuple):
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise UserError(f"tau given for unknown label {key!r}; use a label value or name") from None
        if value not in labels:
            raise UserError(f"tau given for label {key!r}, which is not evaluated; use one of {sorted(labels)}")
        result[value] = _positive_tau(tau)
    return result


def _positive_tau(tau) -> float:
    try:
        tau = float(tau)
    except (TypeError, ValueError):
        raise UserError(f"tau {tau!r} is not a number; give the tolerance in mm") from None
    if not tau >= 0 or tau == float("inf"):
        raise UserError(f"tau {tau} mm is invalid; give a finite, non-negative tolerance in mm")
    return tau


def labels_from_dataset_json(path: str | Path) -> dict:
    """Foreground labels ``{name: value}`` of an nnU-Net ``dataset.json`` (background and ``ignore`` left out);
    in a region-based dataset a region's value is the tuple of the label values it unites."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file; pass the dataset.json of the dataset")
    try:
        labels = json.loads(path.read_text())["labels"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UserError(
            f"{path}: not an nnU-Net dataset.json with a 'labels' entry ({exc}); pass a valid dataset.json"
        ) from None
    if not isinstance(labels, dict):
        raise UserError(f"{path}: 'labels' must map names to values; fix the dataset.json")
    resolved = resolve_labels({k: v for k, v in labels.items() if k != "ignore"}, ())
    return {name: value for value, name in resolved.items()}
