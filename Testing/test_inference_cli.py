"""`improved-nnunet predict` on real files: folders and files, nnU-Net channel naming, outputs, overwriting."""
from __future__ import annotations

import numpy as np
import pytest

from ImprovedNNUNetLib.cli.main import main
from ImprovedNNUNetLib.core.imageio import read_image, write_image


@pytest.fixture
def case_folder(tmp_path, chest_volume):
    """Two cases in nnU-Net naming (chest_a_0000.nrrd, chest_b_0000.nii.gz)."""
    folder = tmp_path / "images"
    write_image(chest_volume, folder / "chest_a_0000.nrrd")
    write_image(chest_volume.with_array(np.ascontiguousarray(chest_volume.array[::-1])), folder / "chest_b_0000.nii.gz")
    return folder


def predict(*args) -> int:
    return main(["predict", *map(str, args)])


def test_folder_in_folder_out_with_input_geometry(trained_model, baseline_model, case_folder, tmp_path, capsys):
    out = tmp_path / "out"
    assert predict("-i", case_folder, "-o", out, "-m", trained_model("baseline"), "--folds", "0",
                   "--device", "cpu") == 0
    assert sorted(p.name for p in out.iterdir()) == ["chest_a.nrrd", "chest_b.nii.gz"]
    for name, source in (("chest_a.nrrd", "chest_a_0000.nrrd"), ("chest_b.nii.gz", "chest_b_0000.nii.gz")):
        written, image = read_image(out / name), read_image(case_folder / source)
        assert written.same_grid(image)
        np.testing.assert_array_equal(written.array, baseline_model.predict(image).segmentation.array)
    assert "chest_a: " in capsys.readouterr().out


def test_never_overwrites_without_flag(trained_model, case_folder, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "chest_b.nii.gz").write_text("user data")
    model = trained_model("baseline")
    assert predict("-i", case_folder, "-o", out, "-m", model, "--device", "cpu") == 2
    assert "chest_b.nii.gz exists" in capsys.readouterr().err
    assert (out / "chest_b.nii.gz").read_text() == "user data"
    assert not (out / "chest_a.nrrd").exists()  # nothing written when any output is in the way
    assert predict("-i", case_folder, "-o", out, "-m", model, "--device", "cpu", "--overwrite") == 0
    assert read_image(out / "chest_b.nii.gz").array.shape == read_image(case_folder / "chest_b_0000.nii.gz").array.shape


def test_single_file_to_named_output_with_probabilities(trained_model, baseline_model, case_folder, tmp_path):
    out = tmp_path / "result" / "seg.nii.gz"
    source = case_folder / "chest_a_0000.nrrd"
    assert predict("-i", source, "-o", out, "-m", trained_model("baseline"), "--folds", "0", "--device", "cpu", "--no-tta",
                   "--step", "0.5", "--probabilities") == 0
    expected = baseline_model.predict(read_image(source), probabilities=True)
    np.testing.assert_array_equal(read_image(out).array, expected.segmentation.array)
    for index, image in enumerate(expected.probabilities.values()):
        written = read_image(tmp_path / "result" / f"seg_prob_{index}.nii.gz")
        np.testing.assert_allclose(written.array, image.array, atol=1e-6)


def test_sdm_output_files(trained_model, case_folder, tmp_path):
    out = tmp_path / "out"
    assert predict("-i", case_folder / "chest_a_0000.nrrd", "-o", out, "-m", trained_model("sdm"),
                   "--device", "cpu", "--sdm") == 0
    labels = range(1, 8)  # the tiny chest dataset's seven foreground labels
    assert sorted(p.name for p in out.iterdir()) == sorted(["chest_a.nrrd", *[f"chest_a_sdm_{v}.nrrd" for v in labels]])
    assert read_image(out / "chest_a_sdm_1.nrrd").same_grid(read_image(case_folder / "chest_a_0000.nrrd"))


def test_channel_naming_errors(trained_model, case_folder, tmp_path, capsys):
    model = trained_model("baseline")
    (tmp_path / "notes.txt").write_text("not an image")
    assert predict("-i", tmp_path / "notes.txt", "-o", tmp_path / "out", "-m", model) == 2
    assert "notes.txt is not an image file" in capsys.readouterr().err
    assert predict("-i", tmp_path / "missing", "-o", tmp_path / "out", "-m", model) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert predict("-i", case_folder, "-o", tmp_path / "out", "-m", "not-a-model") == 2
    assert "neither a folder nor an imported model" in capsys.readouterr().err
    assert predict("-i", case_folder / "chest_b_0000.nii.gz", "-o", tmp_path / "out", "-m", model, "--sdm") == 2
    assert "sdm variant" in capsys.readouterr().err


def test_multi_channel_cases_are_grouped_by_suffix(tmp_path, chest_volume):
    from ImprovedNNUNetLib.core.errors import UserError
    from ImprovedNNUNetLib.inference.cases import gather_cases

    for name in ("b_0001.nrrd", "a_0000.nrrd", "a_0001.nrrd", "b_0000.nrrd"):
        write_image(chest_volume, tmp_path / name)
    cases = gather_cases([tmp_path], ["T1", "T2"])
    assert [(c.case_id, [f.name for f in c.files]) for c in cases] == [
        ("a", ["a_0000.nrrd", "a_0001.nrrd"]), ("b", ["b_0000.nrrd", "b_0001.nrrd"])]
    write_image(chest_volume, tmp_path / "a_0002.nrrd")
    with pytest.raises(UserError, match=r"case 'a' has channel\(s\) _0002 the model does not take"):
        gather_cases([tmp_path], ["T1", "T2"])
    (tmp_path / "a_0002.nrrd").unlink()
    (tmp_path / "b_0001.nrrd").unlink()
    with pytest.raises(UserError, match=r"case 'b' lacks channel\(s\) _0001 \(T2\)"):
        gather_cases([tmp_path], ["T1", "T2"])
    write_image(chest_volume, tmp_path / "plain.nrrd")
    with pytest.raises(UserError, match="name the files CASE_0000, CASE_0001"):
        gather_cases([tmp_path / "plain.nrrd"], ["T1", "T2"])
    assert [c.case_id for c in gather_cases([tmp_path / "plain.nrrd"], ["CT"])] == ["plain"]


def test_nnunet_addressing_parts_and_continue(trained_model, case_folder, tmp_path, capsys):
    """-d/-c/-tr address the same model as its folder; --num-parts/--part-id split the cases;
    --continue skips the cases already written (their files untouched)."""
    trained_model("baseline")
    out = tmp_path / "out"
    assert predict("-i", case_folder, "-o", out, "-d", "987", "-c", "3d_fullres", "-tr", "nnUNetTrainer",
                   "-f", "0", "--device", "cpu", "--num-parts", "2", "--part-id", "0") == 0
    assert sorted(p.name for p in out.iterdir()) == ["chest_a.nrrd"]
    first = (out / "chest_a.nrrd").stat().st_mtime_ns
    assert predict("-i", case_folder, "-o", out, "-d", "Dataset987_TinyChest", "--variant", "baseline",
                   "-f", "0", "--device", "cpu", "--continue") == 0
    assert sorted(p.name for p in out.iterdir()) == ["chest_a.nrrd", "chest_b.nii.gz"]
    assert (out / "chest_a.nrrd").stat().st_mtime_ns == first
    assert "1 of 2 case(s) already have a segmentation; skipped" in capsys.readouterr().err
    assert predict("-i", case_folder, "-o", out, "-d", "987", "--part-id", "2", "--num-parts", "2") == 2
    assert "give 0 <= part-id < num-parts" in capsys.readouterr().err
    assert predict("-i", case_folder, "-o", out) == 2
    assert "no model given" in capsys.readouterr().err


def test_version(capsys):
    import pytest as _pytest

    with _pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out.startswith("improved-nnunet ")


def test_addressing_by_dataset_equals_the_folder_and_parts_cover_every_case_once(trained_model, chest_volume,
                                                                                  tmp_path):
    model = trained_model("baseline")
    images = tmp_path / "images"
    for index in range(5):
        write_image(chest_volume.with_array(np.ascontiguousarray(np.roll(chest_volume.array, index, axis=1))),
                    images / f"c{index}_0000.nii.gz")
    by_folder, by_dataset = tmp_path / "by_folder", tmp_path / "by_dataset"
    assert predict("-i", images, "-o", by_folder, "-m", model, "-f", "0", "--device", "cpu") == 0
    for part in (0, 1):
        assert predict("-i", images, "-o", by_dataset, "-d", "987", "-c", "3d_fullres", "-tr", "nnUNetTrainer",
                       "-p", "nnUNetPlans", "-f", "0", "--device", "cpu", "-num_parts", "2", "-part_id", part) == 0
    written = sorted(p.name for p in by_dataset.glob("*.nii.gz"))
    assert written == sorted(p.name for p in by_folder.glob("*.nii.gz")) == [f"c{i}.nii.gz" for i in range(5)]
    for name in written:
        np.testing.assert_array_equal(read_image(by_dataset / name).array, read_image(by_folder / name).array)
    from ImprovedNNUNetLib.cli.predict import this_part

    parts = [this_part(list(range(5)), 2, k) for k in (0, 1)]
    assert sorted(parts[0] + parts[1]) == list(range(5)) and not set(parts[0]) & set(parts[1])
