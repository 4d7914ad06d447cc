"""A TotalSegmentator-style folder of binary masks (one file per structure) as prediction or reference:
the real slicerio chest segmentation split into one file per segment."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from ImprovedNNUNetLib.cli.main import main
from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.imageio import write_image
from ImprovedNNUNetLib.evaluation.labelfiles import read_label_image
from ImprovedNNUNetLib.evaluation.runner import evaluate


@pytest.fixture(scope="module")
def split_chest(chest_segmentation, tmp_path_factory):
    """(reference .seg.nrrd, folder of masks named like TotalSegmentator's files, {name: value})."""
    reference = read_label_image(chest_segmentation)
    folder = tmp_path_factory.mktemp("totalseg") / "segmentations"
    for name, value in reference.names.items():
        mask = (reference.image.array == value).astype(np.uint8)
        write_image(reference.image.with_array(mask), folder / f"{name.replace(' ', '_')}.nii.gz")
    return chest_segmentation, folder, reference.names


def test_mask_folder_as_prediction_matches_by_name(split_chest, tmp_path):
    reference, masks, names = split_chest
    prediction = tmp_path / "segmentations"
    shutil.copytree(masks, prediction)
    (prediction / "lumbar_vertebral_column.nii.gz").unlink()
    (prediction / "thoracic_vertebral_column.nii.gz").rename(prediction / "Thoracic-Vertebral-Column.nii.gz")
    shutil.copy(prediction / "tissue.nii.gz", prediction / "spleen.nii.gz")  # a structure the reference lacks
    [case] = evaluate(prediction, reference)
    by_name = {m.name: m for m in case.metrics.labels.values()}
    assert set(by_name) == set(names)
    assert all(by_name[n].dice == 1.0 for n in names if n != "lumbar vertebral column")
    assert by_name["lumbar vertebral column"].status == "prediction empty"
    assert case.metrics.notes == ["structure masks that matched no label name: spleen.nii.gz"]


def test_mask_folder_as_reference_and_per_case_subfolders(split_chest, tmp_path, capsys):
    reference, masks, names = split_chest
    [case] = evaluate(reference, masks)
    assert {m.name for m in case.metrics.labels.values()} == set(names)
    assert all(m.dice == 1.0 and m.nsd == 1.0 for m in case.metrics.labels.values())
    for case_id in ("case_a", "case_b"):
        shutil.copytree(masks, tmp_path / "pred" / case_id)
        (tmp_path / "ref").mkdir(exist_ok=True)
        shutil.copy(reference, tmp_path / "ref" / f"{case_id}.seg.nrrd")
    assert main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "ref"), "--jobs", "2"]) == 0
    assert "mean over 2 case(s)" in capsys.readouterr().out


def test_mask_folder_without_label_names_says_what_to_pass(split_chest, tmp_path):
    reference, masks, _ = split_chest
    plain = tmp_path / "labels.nii.gz"
    write_image(read_label_image(reference).image, plain)
    with pytest.raises(UserError, match="structure masks .*pass --labels with a dataset.json"):
        evaluate(masks, plain)
    [case] = evaluate(masks, plain, labels={"right lung": 5, "left lung": 6})
    assert sorted(case.metrics.labels) == [5, 6] and case.metrics[5].dice == 1.0
