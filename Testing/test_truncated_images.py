"""Truncated image files (an interrupted copy or download), made by cutting real files, are refused
by every reader of the project with a one-line message; whole files still read."""
from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
import SimpleITK as sitk

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.image_integrity import check_complete
from ImprovedNNUNetLib.core.imageio import read_image

# (suffix, compressed): every format and encoding the project reads
FORMATS = [(".nii.gz", True), (".nii", False), (".nrrd", True), (".nrrd", False), (".mha", True),
           (".mha", False), (".seg.nrrd", True)]


def cut(path, fraction, target):
    data = path.read_bytes()
    target.write_bytes(data[:int(len(data) * fraction)])
    return target


@pytest.fixture(scope="module")
def chest_ct(slicerio_data):
    return sitk.ReadImage(str(slicerio_data / "CTChest4.nrrd"))


@pytest.mark.parametrize("suffix,compressed", FORMATS, ids=[f"{s}{'-compressed' if c else ''}" for s, c in FORMATS])
@pytest.mark.parametrize("fraction", [0.5, 0.9, 0.999])
def test_truncated_files_are_refused(chest_ct, tmp_path, suffix, compressed, fraction):
    whole = tmp_path / f"ct{suffix}"
    sitk.WriteImage(chest_ct, str(whole), useCompression=compressed)
    check_complete(whole)
    assert read_image(whole).array.shape == (34, 128, 128)
    truncated = cut(whole, fraction, tmp_path / f"cut{suffix}")
    with pytest.raises(UserError, match="is incomplete .*interrupted copy or download; copy or export the file again"):
        read_image(truncated)


@pytest.mark.parametrize("suffix", [".mhd", ".nhdr"])
def test_truncated_detached_data_files_are_refused(chest_ct, tmp_path, suffix):
    header = tmp_path / f"ct{suffix}"
    sitk.WriteImage(chest_ct, str(header), useCompression=False)
    data = next(p for p in tmp_path.iterdir() if p != header)
    cut(data, 0.9, data)
    with pytest.raises(UserError, match="is incomplete"):
        read_image(header)
    data.unlink()
    with pytest.raises(UserError, match="data file .* is missing"):
        read_image(header)


def test_multi_member_gzip_is_complete(chest_ct, tmp_path):
    """A .nii.gz written as several gzip members (e.g. by parallel gzip tools) is whole."""
    import gzip

    whole = tmp_path / "ct.nii"
    sitk.WriteImage(chest_ct, str(whole))
    data = whole.read_bytes()
    members = tmp_path / "ct.nii.gz"
    members.write_bytes(gzip.compress(data[:100000]) + gzip.compress(data[100000:]))
    assert np.array_equal(read_image(members).array, sitk.GetArrayFromImage(chest_ct))
    cut(members, 0.8, members)
    with pytest.raises(UserError, match="is incomplete"):
        read_image(members)


def test_evaluate_refuses_a_truncated_reference_before_evaluating(chest_segmentation, tmp_path, capsys):
    from ImprovedNNUNetLib.cli.main import main

    reference = tmp_path / "ref.seg.nrrd"
    cut(chest_segmentation, 0.9, reference)
    out = tmp_path / "out"
    assert main(["evaluate", str(chest_segmentation), str(reference), "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "ref.seg.nrrd is incomplete" in error
    assert not (out / "summary.json").exists()


def test_prepare_refuses_a_truncated_label_before_nnunet_reads_it(tiny_dataset, tmp_path, monkeypatch):
    from ImprovedNNUNetTrainingLib.engine.prepare import prepare_dataset
    from ImprovedNNUNetTrainingLib.engine.progress import ProgressReporter

    raw = tmp_path / "raw" / "Dataset988_Cut"
    shutil.copytree(tiny_dataset.raw, raw)
    cut(raw / "labelsTr" / "chest_003.nii.gz", 0.5, raw / "labelsTr" / "chest_003.nii.gz")
    monkeypatch.setenv("nnUNet_raw", str(tiny_dataset.raw.parent))  # prepare sets it from the folder argument
    with pytest.raises(UserError, match="chest_003.nii.gz is incomplete"):
        prepare_dataset(str(raw), ["3d_fullres"], reporter=ProgressReporter(stream=io.StringIO()))
    assert not (tiny_dataset.preprocessed.parent / "Dataset988_Cut").exists()


def test_prepare_names_the_file_nnunets_integrity_check_objects_to(tiny_dataset, tmp_path, monkeypatch):
    """nnU-Net prints the details from worker processes and says "check text output above"; the message
    names the file and what is wrong instead."""
    from ImprovedNNUNetLib.core.imageio import read_image, write_image
    from ImprovedNNUNetTrainingLib.engine.prepare import prepare_dataset
    from ImprovedNNUNetTrainingLib.engine.progress import ProgressReporter

    # nnU-Net reads its folder variables once, at import: the dataset goes into the session's folders
    raw = tiny_dataset.raw.parent / "Dataset989_BadLabel"
    shutil.copytree(tiny_dataset.raw, raw)
    monkeypatch.setenv("nnUNet_raw", str(tiny_dataset.raw.parent))
    label = raw / "labelsTr" / "chest_002.nii.gz"
    image = read_image(label)
    array = image.array.copy()
    array[0, 0, 0] = 9
    write_image(image.with_array(array), label, overwrite=True)
    try:
        with pytest.raises(UserError) as caught:
            prepare_dataset(str(raw), ["3d_fullres"], reporter=ProgressReporter(stream=io.StringIO()))
    finally:
        shutil.rmtree(raw)
        shutil.rmtree(tiny_dataset.preprocessed.parent / raw.name, ignore_errors=True)
    message = str(caught.value)
    assert "output above" not in message and "\n" not in message
    assert "labelsTr/chest_002.nii.gz" in message and "Unexpected labels" in message
