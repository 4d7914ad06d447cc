"""Label selection, names, tolerances and label-image checks."""
import json

import numpy as np
import pytest

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.evaluation import compute_metrics_arrays, labels_from_dataset_json
from ImprovedNNUNetLib.evaluation.labelfiles import remap_values
from ImprovedNNUNetLib.evaluation.labels import as_label_array, resolve_labels, resolve_tau


def test_labels_from_values_and_names():
    a = {0, 3, 7}  # values present in the images
    assert resolve_labels(None, a) == {3: None, 7: None}
    assert resolve_labels([0, 7, 9], a) == {7: None, 9: None}
    assert resolve_labels({"background": 0, "liver": 3}, a) == {3: "liver"}
    with pytest.raises(UserError, match="twice"):
        resolve_labels([3, 3], a)
    assert resolve_labels({"tumour": [2, 1], "core": 2}, a) == {(1, 2): "tumour", 2: "core"}  # a region's key
    with pytest.raises(UserError, match="region"):
        resolve_labels({"tumour": [1, [2, 3]]}, a)
    with pytest.raises(UserError, match="not an integer"):
        resolve_labels([1.5], a)


def test_dataset_json(tmp_path):
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps({"labels": {"background": 0, "CSF": 1, "GM": 2, "WM": 3}}))
    assert labels_from_dataset_json(path) == {"CSF": 1, "GM": 2, "WM": 3}
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(UserError, match="labels"):
        labels_from_dataset_json(tmp_path / "bad.json")
    with pytest.raises(UserError, match="no such file"):
        labels_from_dataset_json(tmp_path / "missing.json")


def test_tau_per_label_by_value_name_and_default():
    labels = {1: "liver", 2: "spleen", 3: None}
    assert resolve_tau(2.0, labels) == {1: 2.0, 2: 2.0, 3: 2.0}
    assert resolve_tau({"liver": 3.0, 3: 0.5}, labels) == {1: 3.0, 2: 1.0, 3: 0.5}
    assert resolve_tau({"default": 2.0, 2: 4.0}, labels) == {1: 2.0, 2: 4.0, 3: 2.0}
    with pytest.raises(UserError, match="not evaluated"):
        resolve_tau({9: 1.0}, labels)
    with pytest.raises(UserError, match="invalid"):
        resolve_tau(-1.0, labels)


def test_tau_changes_nsd_only_for_its_label():
    a = np.zeros((6, 20, 20), np.uint8)
    a[1:5, 2:8, 2:8], a[1:5, 10:16, 10:16] = 1, 2
    b = np.roll(a, 2, axis=2)  # both shifted by 2 mm
    result = compute_metrics_arrays(b, a, (1.0, 1.0, 1.0), tau_mm={1: 2.0})
    assert result[1].nsd == 1.0 and result[1].tau_mm == 2.0
    assert result[2].nsd < 1.0 and result[2].tau_mm == 1.0


def test_label_image_checks():
    assert as_label_array(np.ones((2, 2, 2), np.float32) * 3).dtype.kind == "i"
    assert as_label_array(np.ones((2, 2, 2), bool)).dtype == np.uint8
    with pytest.raises(UserError, match="non-integer"):
        as_label_array(np.full((2, 2, 2), 0.5))
    with pytest.raises(UserError, match="negative"):
        as_label_array(np.full((2, 2, 2), -1, np.int16))
    with pytest.raises(UserError, match="3-D"):
        as_label_array(np.zeros((2, 2, 2, 2), np.uint8))


def test_remap_values():
    a = np.array([[[0, 1, 2, 3]]], np.uint8)
    np.testing.assert_array_equal(remap_values(a, {1: 5, 2: 1, 3: 3}), [[[0, 5, 1, 3]]])


def test_isin_labels_equals_numpy_isin():
    """The lookup-table membership test used on full-size label maps gives numpy's answer for every dtype,
    values outside the array's range, negative arrays and empty arrays."""
    import numpy as np

    from ImprovedNNUNetLib.evaluation.labels import isin_labels

    rng = np.random.default_rng(3)
    for dtype in (np.uint8, np.uint16, np.int16, np.int32, np.int64):
        array = rng.integers(0, 40, (6, 7, 8)).astype(dtype)
        for values in ([], [0], [3, 7, 39], [5, 400, -2], list(range(50))):
            np.testing.assert_array_equal(isin_labels(array, values), np.isin(array, values))
    negative = np.array([-3, 0, 2, 5], dtype=np.int16)
    np.testing.assert_array_equal(isin_labels(negative, [-3, 5]), [True, False, False, True])
    assert isin_labels(np.zeros(0, np.uint8), [1]).shape == (0,)
