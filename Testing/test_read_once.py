"""An input is decompressed once for its checks and once by ITK, and reading starts before the model loads.

The integrity scan of a compressed NIfTI (``check_all_complete``, run before the model loads) also counts the
NaN and infinite voxels that ITK's reader would silently turn into 0; reading the same, unchanged file then
takes that count instead of decompressing the file again. A changed file is scanned anew.
"""
from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
import SimpleITK as sitk

from ImprovedNNUNetLib.core import image_integrity
from ImprovedNNUNetLib.core.errors import UserError


def float_volume(path, nan_at=()):
    """A float32 .nii.gz larger than one decompression piece (4 MiB), NaN/inf at the given flat indices."""
    array = np.random.default_rng(0).normal(0, 100, (40, 160, 200)).astype(np.float32)  # 5.1 MB of voxels
    flat = array.reshape(-1)
    for index, value in nan_at:
        flat[index] = value
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path))
    return path


def test_the_scan_counts_nonfinite_voxels_across_pieces_and_reading_reuses_it(tmp_path, monkeypatch):
    # one in the first piece, one straddling nothing in particular, one near the end (after the 4 MiB piece)
    path = float_volume(tmp_path / "ct.nii.gz", [(5, np.nan), (1_048_576, np.inf), (1_279_999, -np.inf)])
    image_integrity._SCANNED.clear()
    direct = image_integrity.nifti_nonfinite(path)  # reads the stored voxels itself
    assert direct == 3
    image_integrity.check_all_complete([path])
    opened = []  # decompressed bytes read through each opening
    real_open = image_integrity._open_nifti

    class Counting:
        def __init__(self, handle):
            self.handle = handle
            opened.append(0)

        def __enter__(self):
            self.handle.__enter__()
            return self

        def __exit__(self, *exc):
            return self.handle.__exit__(*exc)

        def read(self, *size):
            data = self.handle.read(*size)
            opened[-1] += len(data)
            return data

        def seek(self, *where):
            return self.handle.seek(*where)

    monkeypatch.setattr(image_integrity, "_open_nifti", lambda p: Counting(real_open(p)))
    assert image_integrity.nifti_nonfinite(path) == 3 and opened == []  # taken from the scan
    from ImprovedNNUNetLib.core.imageio import read_image

    with pytest.raises(UserError, match="3 of 1280000 voxels are NaN or infinite"):
        read_image(path)
    assert sum(opened) <= 544  # at most the header (the spacing check); the voxels are not decompressed again

    float_volume(path, [(7, np.nan)])  # the file changes: its own count, not the remembered one
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1))
    assert image_integrity.nifti_nonfinite(path) == 1 and sum(opened) > 5_000_000


def test_a_clean_float_file_and_an_integer_file_read_as_before(tmp_path):
    from ImprovedNNUNetLib.core.imageio import read_image

    clean = float_volume(tmp_path / "clean.nii.gz")
    labels = tmp_path / "labels.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.ones((4, 5, 6), np.uint8)), str(labels))
    image_integrity.check_all_complete([clean, labels])
    assert image_integrity.nifti_nonfinite(clean) == 0 and image_integrity.nifti_nonfinite(labels) == 0
    assert read_image(clean).array.shape == (40, 160, 200)
    assert read_image(labels).array.sum() == 120


def test_predict_reads_the_first_cases_before_the_model_loads(tmp_path, monkeypatch):
    """``ReadAhead`` starts reading when it is made (before ``load_model`` in ``predict``), and hands each
    case over once."""
    from ImprovedNNUNetLib.cli import predict
    from ImprovedNNUNetLib.inference.cases import Case

    files = [float_volume(tmp_path / f"case{i}_0000.nii.gz") for i in range(3)]
    cases = [Case(f"case{i}", (path,)) for i, path in enumerate(files)]
    started = threading.Event()
    import ImprovedNNUNetLib.core.imageio as imageio

    real_read = imageio.read_image
    monkeypatch.setattr(imageio, "read_image", lambda p: started.set() or real_read(p))
    with predict.ReadAhead(cases, 2) as reads:
        assert started.wait(30), "nothing was read before the first case was asked for"
        assert sorted(reads.pending) == [0, 1]
        assert reads.take(0)[0].array.shape == (40, 160, 200)
        assert sorted(reads.pending) == [1, 2]
        reads.take(1)
        reads.take(2)
        assert not reads.pending
