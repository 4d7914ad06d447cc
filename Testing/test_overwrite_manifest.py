"""`--overwrite` replaces exactly what the command wrote before: evaluate's maps of cases no longer
evaluated go, files the user put into the output folder stay (real evaluations of real files)."""
from __future__ import annotations

import shutil

import pytest

from ImprovedNNUNetLib.cli.main import main
from ImprovedNNUNetLib.core.manifest import Outputs


@pytest.fixture
def folders(tiny_dataset, tmp_path):
    labels = sorted((tiny_dataset.raw / "labelsTr").iterdir())[:3]
    for name in ("pred", "ref"):
        (tmp_path / name).mkdir()
        for label in labels:
            shutil.copy(label, tmp_path / name / label.name)
    return tmp_path, labels


def test_evaluate_overwrite_removes_its_earlier_outputs_only(folders, capsys):
    root, labels = folders
    out = root / "out"
    assert main(["evaluate", str(root / "pred"), str(root / "ref"), "--out", str(out), "--maps"]) == 0
    maps = sorted(p.name for p in (out / "maps").iterdir())
    assert len(maps) == 6  # FP and FN of 3 cases
    (out / "my_notes.txt").write_text("keep me")
    (out / "maps" / "my_drawing.png").write_bytes(b"png")

    assert main(["evaluate", str(root / "pred"), str(root / "ref"), "--out", str(out), "--maps"]) == 2
    assert "--overwrite" in capsys.readouterr().err

    one = labels[1].name
    assert main(["evaluate", str(root / "pred" / one), str(root / "ref" / one), "--out", str(out), "--maps",
                 "--overwrite"]) == 0
    case = one[: -len(".nii.gz")]
    assert sorted(p.name for p in (out / "maps").iterdir()) == sorted(
        [f"{case}_FN.nii.gz", f"{case}_FP.nii.gz", "my_drawing.png"])
    assert (out / "my_notes.txt").read_text() == "keep me"
    assert set(Outputs(out, "evaluate").files) == {"summary.json", "metrics.csv", f"maps/{case}_FN.nii.gz",
                                                   f"maps/{case}_FP.nii.gz"}


def test_a_file_edited_after_it_was_written_is_not_the_commands_any_more(tmp_path):
    outputs = Outputs(tmp_path, "evaluate")
    written, edited = tmp_path / "a.csv", tmp_path / "b.csv"
    written.write_text("1")
    edited.write_text("2")
    outputs.record(written, edited)
    outputs.save()
    edited.write_text("my change")
    assert Outputs(tmp_path, "evaluate").remove_previous() == [edited]
    assert not written.exists() and edited.read_text() == "my change"
