"""`models export`: nnU-Net's model ZIP with a model card; --as-stock models run in stock nnU-Net unchanged."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ImprovedNNUNetLib.core.imageio import read_image

DATASET = "Dataset987_TinyChest"


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "ImprovedNNUNetLib", *args], capture_output=True, text=True,
                          env=env, timeout=900)


def test_as_stock_export_runs_in_stock_nnunet(trained_model, tiny_dataset, tmp_path):
    model = trained_model("loss")  # weighted Dice/CE: only the training differs from stock nnU-Net
    out = tmp_path / "loss.zip"
    done = cli("models", "export", str(model), "-o", str(out), "--as-stock", "--license", "CC-BY-4.0",
               "--raw", str(tiny_dataset.raw))
    assert done.returncode == 0, done.stderr
    names = zipfile.ZipFile(out).namelist()
    root = f"{DATASET}/nnUNetTrainer__nnUNetPlans__3d_fullres"
    assert f"{root}/fold_0/checkpoint_final.pth" in names and f"{root}/plans.json" in names
    card = json.loads(zipfile.ZipFile(out).read(f"{root}/model_card.json"))
    assert card["trainer"] == "nnUNetTrainer" and card["trained_with"] == "nnUNetTrainerLoss"
    assert card["license"] == "CC-BY-4.0" and card["software"]["nnunetv2"]
    ribs = next(label for label in card["labels"] if label["name"] == "ribs")
    assert ribs["value"] == 1 and ribs["terminology"]["type"] == "SCT^113197003^Rib"
    assert card["channels"] == [{"index": 0, "name": "CT"}] and card["training_data"]["cases"] == 6
    assert card["inference"]["predict_s"] > 0 and card["inference"]["peak_memory_mb"] > 0

    # nnU-Net's own installer and predictor, in a process whose nnUNet_results is the install target
    results = tmp_path / "results"
    env = dict(os.environ, nnUNet_results=str(results))
    installed = subprocess.run([sys.executable, "-c", "import sys; from nnunetv2.model_sharing.model_import import "
                                "install_model_from_zip_file as f; f(sys.argv[1])", str(out)],
                               capture_output=True, text=True, env=env, timeout=300)
    assert installed.returncode == 0, installed.stderr
    images = tmp_path / "in"
    images.mkdir()
    shutil.copy(tiny_dataset.raw / "imagesTr" / "chest_002_0000.nii.gz", images)
    predict = Path(sys.executable).parent / "nnUNetv2_predict"
    stock = subprocess.run([str(predict), "-i", str(images), "-o", str(tmp_path / "stock"), "-d", DATASET, "-c",
                            "3d_fullres", "-tr", "nnUNetTrainer", "-f", "0", "-device", "cpu", "--disable_tta",
                            "-npp", "1", "-nps", "1"], capture_output=True, text=True, env=env, timeout=600)
    assert stock.returncode == 0, stock.stderr[-3000:]
    ours = cli("predict", "-i", str(images), "-o", str(tmp_path / "ours"), "-m", str(model), "-f", "0",
               "--device", "cpu", "--no-tta")
    assert ours.returncode == 0, ours.stderr
    assert np.array_equal(read_image(tmp_path / "stock" / "chest_002.nii.gz").array,
                          read_image(tmp_path / "ours" / "chest_002.nii.gz").array)

    # imported here, the card is shown
    imported = cli("models", "import", str(out), "--name", "loss-stock",
                   env=dict(os.environ, IMPROVED_NNUNET_MODELS=str(tmp_path / "models")))
    assert imported.returncode == 0, imported.stderr
    assert "card: trained with nnUNetTrainerLoss" in imported.stdout and "license CC-BY-4.0" in imported.stdout
    from ImprovedNNUNetLib.inference.model_folder import open_model_folder

    shown = open_model_folder(tmp_path / "models" / "loss-stock").summary  # the Segment panel's model summary
    assert "folds 0\ncard: trained with nnUNetTrainerLoss" in shown


def test_sdm_export_carries_its_trainer_and_refuses_as_stock(trained_model, tmp_path):
    model = trained_model("sdm")
    refused = cli("models", "export", str(model), "-o", str(tmp_path / "x.zip"), "--as-stock")
    assert refused.returncode == 2 and "changes the network" in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "x.zip").exists()
    out = tmp_path / "sdm.zip"
    done = cli("models", "export", str(model), "-o", str(out))
    assert done.returncode == 0, done.stderr
    archive = zipfile.ZipFile(out)
    root = f"{DATASET}/nnUNetTrainerSDM__nnUNetPlans__3d_fullres"
    readme = archive.read(f"{root}/trainer/README.md").decode()
    assert "nnUNet_extTrainer" in readme and "-tr nnUNetTrainerSDM" in readme
    assert f"{root}/trainer/sdm.py" in archive.namelist() and f"{root}/trainer/signed_distance.py" in archive.namelist()
    again = cli("models", "export", str(model), "-o", str(out))
    assert again.returncode == 2 and "--overwrite" in again.stderr


@pytest.mark.parametrize("name", ["model.tar"])
def test_export_needs_a_zip_name(trained_model, tmp_path, name):
    refused = cli("models", "export", str(trained_model("baseline")), "-o", str(tmp_path / name))
    assert refused.returncode == 2 and "give the ZIP file" in refused.stderr
