"""Messages of evaluate that must say what is wrong or what happened (real files)."""
from __future__ import annotations

import numpy as np

from ImprovedNNUNetLib.cli.main import main
from ImprovedNNUNetLib.core.imageio import Image, read_image, write_image
from ImprovedNNUNetLib.evaluation.geometry import align_to_reference


def test_resampling_note_names_what_differs(slicerio_data):
    ct = read_image(slicerio_data / "CTChest4.nrrd")
    labels = Image((ct.array > 0).astype(np.uint8), ct.spacing, ct.origin, ct.direction)
    shifted = Image(labels.array, labels.spacing, (ct.origin[0], ct.origin[1], ct.origin[2] + 10.0), ct.direction)
    _, note = align_to_reference(shifted, labels)
    assert "origin" in note and "spacing" not in note and "size" not in note
    assert f"{ct.origin[2] + 10.0:.6g}) vs (" in note
    angle = np.deg2rad(1.0)  # a slightly tilted acquisition: only the direction differs
    tilted = (1.0, 0.0, 0.0, 0.0, np.cos(angle), -np.sin(angle), 0.0, np.sin(angle), np.cos(angle))
    _, note = align_to_reference(Image(labels.array, labels.spacing, labels.origin, tilted), labels)
    assert note.count("direction") == 1 and "origin" not in note


def test_both_empty_without_labels_says_so(tmp_path, capsys):
    empty = Image(np.zeros((4, 5, 6), np.uint8))
    write_image(empty, tmp_path / "pred.nii.gz")
    write_image(empty, tmp_path / "ref.nii.gz")
    assert main(["evaluate", str(tmp_path / "pred.nii.gz"), str(tmp_path / "ref.nii.gz")]) == 0
    out = capsys.readouterr().out
    assert "no labels to evaluate in 1 case(s): prediction and reference hold background only" in out
    assert "Dice" not in out  # no empty table with a header
