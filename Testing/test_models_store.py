"""The user's models folder: import of nnU-Net export ZIPs and folders, safe extraction, list, remove, CLI."""
from __future__ import annotations

import shutil
import zipfile

import numpy as np
import pytest

from ImprovedNNUNetLib.cli.main import main
from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.inference.models import ENV_VAR, import_model, list_models, models_root, remove_model, resolve_model


@pytest.fixture
def store(tmp_path, monkeypatch):
    """An empty models folder selected through the environment variable, as a user would."""
    root = tmp_path / "models"
    monkeypatch.setenv(ENV_VAR, str(root))
    return root


@pytest.fixture
def exported_zip(trained_model, tmp_path, monkeypatch):
    """A ZIP written by nnU-Net's own exporter (nnUNetv2_export_model_to_zip) from a copy of the tiny model.

    The tiny fixture model skips the final validation, so the two files the exporter insists on
    (fold_0/validation/summary.json, fold_0/progress.png) are added to the copy when absent."""
    from nnunetv2.model_sharing.model_export import export_pretrained_model

    source = trained_model("baseline")
    results = tmp_path / "export_results"
    model = results / source.parent.name / source.name
    (model / "fold_0").mkdir(parents=True)
    for name in ("dataset.json", "plans.json", "dataset_fingerprint.json", "fold_0/checkpoint_final.pth"):
        shutil.copy(source / name, model / name)
    (model / "fold_0" / "validation").mkdir()
    (model / "fold_0" / "validation" / "summary.json").write_text("{}")
    (model / "fold_0" / "progress.png").write_bytes(b"")
    monkeypatch.setenv("nnUNet_results", str(results))
    archive = tmp_path / "model.zip"
    export_pretrained_model(source.parent.name, str(archive), configurations=("3d_fullres",),
                            trainer="nnUNetTrainer", folds=(0,))
    return archive


def test_default_root_is_in_the_home_folder(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert models_root() == tmp_path / ".improved-nnunet" / "models"


def test_import_nnunet_export_zip_then_predict_by_name(store, exported_zip, trained_model, baseline_model,
                                                       chest_volume):
    from ImprovedNNUNetLib.inference import load_model

    (imported,) = import_model(exported_zip)
    assert imported.name == "Dataset987_TinyChest__nnUNetTrainer__nnUNetPlans__3d_fullres"
    assert imported.path.parent == store
    assert imported.folds == ("0",) and imported.channel_names == ("CT",)
    assert [m.name for m in list_models()] == [imported.name]
    assert not [p for p in store.iterdir() if p.name.startswith(".")]  # no extraction leftovers
    model = load_model(resolve_model(imported.name), device="cpu")
    np.testing.assert_array_equal(model.predict(chest_volume).segmentation.array,
                                  baseline_model.predict(chest_volume).segmentation.array)


def test_import_folder_copies_and_never_replaces_without_force(store, trained_model):
    source = trained_model("baseline")
    (first,) = import_model(source, name="chest")
    assert (first.path / "dataset.json").read_bytes() == (source / "dataset.json").read_bytes()
    assert (source / "dataset.json").exists()  # the source stays
    marker = first.path / "dataset.json"
    marker.write_text('{"changed": true}')
    with pytest.raises(UserError, match="already exists.*--force"):
        import_model(source, name="chest")
    assert marker.read_text() == '{"changed": true}'
    import_model(source, name="chest", force=True)
    assert marker.read_bytes() == (source / "dataset.json").read_bytes()


def test_remove_and_unknown_names(store, trained_model):
    import_model(trained_model("baseline"), name="chest")
    assert remove_model("chest") == store / "chest"
    assert list_models() == []
    with pytest.raises(UserError, match="no imported model named 'chest'"):
        remove_model("chest")
    with pytest.raises(UserError, match="not allowed"):
        import_model(trained_model("baseline"), name="../outside")
    with pytest.raises(UserError, match="neither a folder nor an imported model"):
        resolve_model("chest")


@pytest.mark.parametrize("entry", ["../escape.txt", "/tmp/absolute.txt", "a/../../escape.txt"])
def test_unsafe_zip_entries_are_refused(store, tmp_path, entry):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("Dataset1_X/T__P__3d_fullres/dataset.json", "{}")
        zf.writestr(entry, "payload")
    with pytest.raises(UserError, match="refusing to extract"):
        import_model(archive)
    assert not (tmp_path / "escape.txt").exists()
    assert not list(store.rglob("escape.txt")) and not list(store.rglob("absolute.txt"))


def test_bad_sources(store, tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        import_model(tmp_path / "nothing.zip")
    (tmp_path / "notes.txt").write_text("text")
    with pytest.raises(UserError, match="neither a ZIP archive nor a folder"):
        import_model(tmp_path / "notes.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no trained model"):
        import_model(tmp_path / "empty")
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    with pytest.raises(UserError):
        import_model(tmp_path / "broken.zip")


def test_models_cli(store, trained_model, capsys):
    source = trained_model("baseline")
    assert main(["models", "list"]) == 0
    assert "no models in" in capsys.readouterr().out
    assert main(["models", "import", str(source), "--name", "chest"]) == 0
    assert "imported chest" in capsys.readouterr().out
    assert main(["models", "import", str(source), "--name", "chest"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["models", "list"]) == 0
    listing = capsys.readouterr().out
    assert "chest" in listing and "channels: CT" in listing and "5=right lung" in listing
    assert main(["models", "remove", "chest"]) == 0
    assert main(["models", "remove", "chest"]) == 2
    assert "no imported model named 'chest'" in capsys.readouterr().err


def test_the_store_lists_channels_in_the_order_the_model_reads_them(store):
    """Eleven channels: "10" comes after "9" in the store's listing as in the model folder (it sorted the keys
    as text before, giving 0, 1, 10, 2, ...)."""
    import json

    from ImprovedNNUNetLib.inference.model_folder import open_model_folder

    folder = store / "multi"
    (folder / "fold_0").mkdir(parents=True)
    (folder / "fold_0" / "checkpoint_final.pth").write_bytes(b"stand-in")
    (folder / "plans.json").write_text("{}")
    channels = {str(i): f"channel {i}" for i in range(11)}
    (folder / "dataset.json").write_text(json.dumps({"channel_names": channels, "labels": {"background": 0, "a": 1}}))
    listed = next(model for model in list_models() if model.name == "multi")
    assert list(listed.channel_names) == open_model_folder(folder).channel_names == [f"channel {i}" for i in range(11)]
