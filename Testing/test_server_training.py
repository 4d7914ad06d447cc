"""The server's promise end to end, through the real client on a real uvicorn server: upload a raw dataset,
train on the server, lose the server (kill -9) mid-training, restart it, find the job stopped, resume it from its
checkpoint, follow its curves, and segment with the model it made (result checked on download)."""
import json
import shutil
import time

import numpy as np
import pytest

from fixtures.server import cli
from fixtures.training import DATASET_NAME, SCHEDULE
from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.imageio import read_image
from ImprovedNNUNetLib.server.client import ServerClient

EPOCHS = 12  # checkpoints every 5 epochs: the kill comes after the first


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def epochs_seen(client, job_id):
    events, _ = client.events(job_id)
    return [e["epoch"] for e in events if e["stage"] == "training" and e.get("epoch_time_s") is not None]


def test_train_survive_a_server_kill_resume_and_segment(make_server, tiny_dataset, tmp_path):
    nnunet = {"nnUNet_raw": tmp_path / "raw", "nnUNet_preprocessed": tiny_dataset.preprocessed.parent,
              "nnUNet_results": tmp_path / "results"}
    server = make_server(nnunet=nnunet)
    key = server.add_key("lab")
    server.start()
    client = ServerClient(server.url, key)

    assert client.upload_dataset(tiny_dataset.raw) == DATASET_NAME  # the scene export's folder, zipped
    assert json.loads((tmp_path / "raw" / DATASET_NAME / "dataset.json").read_text())["numTraining"] == 6
    job = client.train(DATASET_NAME, variant="baseline", folds=[0], epochs=EPOCHS,
                       iterations_per_epoch=SCHEDULE["iters_per_epoch"], validation_iterations_per_epoch=1)
    fold = tmp_path / "results" / DATASET_NAME / "nnUNetTrainer__nnUNetPlans__3d_fullres" / "fold_0"
    wait_for(lambda: (fold / "checkpoint_latest.pth").is_file() and len(epochs_seen(client, job["id"])) >= 6,
             240, "the first checkpoint")

    server.kill()  # the server dies; its training child is orphaned
    server.start()  # a restart stops the orphan and records the job as stopped
    client = ServerClient(server.url, key)
    stopped = client.job(job["id"])
    assert stopped["state"] == "interrupted" and "resume" in stopped["message"]
    before = epochs_seen(client, job["id"])

    client.resume(job["id"])
    done = client.wait(job["id"], timeout=300, poll_s=0.5)
    assert done["state"] == "done", done
    after = epochs_seen(client, job["id"])
    assert after[-1] == EPOCHS - 1 and len(after) > len(before)
    resumed = after[len(before):]
    assert resumed[0] > 0  # the second run started from the checkpoint, not from epoch 0
    assert (fold / "checkpoint_final.pth").is_file()

    image = tiny_dataset.raw / "imagesTr" / "chest_000_0000.nii.gz"
    segmentation = client.segment(None, [image], training_job=job["id"], folds=[0])
    finished = client.wait(segmentation["id"], timeout=300, poll_s=0.5)
    assert finished["state"] == "done", finished
    written = client.download(segmentation["id"], tmp_path / "downloaded")
    assert [p.name for p in written] == ["case.nii.gz"]
    result, source = read_image(written[0]), read_image(image)
    assert result.array.shape == source.array.shape and result.spacing == source.spacing
    assert set(np.unique(result.array)) <= set(range(8))
    shutil.rmtree(tmp_path / "downloaded")

    # the command line's client: the model installed on the server, a case predicted there into a local folder
    model_folder = fold.parent
    imported = cli("models", "import", str(model_folder), "--name", "tiny-chest", env=server.env)
    assert imported.returncode == 0, imported.stderr
    remote = ("--server", server.url, "--api-key", key)
    listed = cli("jobs", "list", *remote, env=server.env)
    assert f"{job['id']}\ttrain\tdone" in listed.stdout
    assert "tiny-chest" in cli("jobs", "models", *remote, env=server.env).stdout
    two_cases = tmp_path / "two-cases"
    two_cases.mkdir()
    for case in ("chest_000", "chest_001"):
        shutil.copy(tiny_dataset.raw / "imagesTr" / f"{case}_0000.nii.gz", two_cases)
    predicted = cli("predict", "-i", str(two_cases), "-o", str(tmp_path / "remote"), "-m", "tiny-chest", "--folds",
                    "0", "--uncertainty", *remote, env=server.env)
    assert predicted.returncode == 0, predicted.stderr + "".join(server.output[-40:])
    remote_result = read_image(tmp_path / "remote" / "chest_000.nii.gz")
    np.testing.assert_array_equal(remote_result.array, result.array)  # same model, same case, same answer
    # the uncertainty made on the server: maps and review scores named by the local cases, one ranking of both
    for case in ("chest_000", "chest_001"):
        assert read_image(tmp_path / "remote" / f"{case}_uncertainty.nii.gz").array.shape == result.array.shape
        assert json.loads((tmp_path / "remote" / f"{case}_uncertainty.json").read_text())["case_id"] == case
    ranking = (tmp_path / "remote" / "uncertainty.csv").read_text().splitlines()
    assert len(ranking) == 3 and {row.split(",")[1] for row in ranking[1:]} == {"chest_000", "chest_001"}

    from fixtures.dicom import write_series  # a DICOM series reaches the server too (its voxels, as NIfTI)

    write_series(read_image(image), tmp_path / "series", description="CT chest")
    from_dicom = cli("predict", "-i", str(tmp_path / "series"), "-o", str(tmp_path / "remote-dicom"), "-m",
                     "tiny-chest", "--folds", "0", *remote, env=server.env)
    assert from_dicom.returncode == 0, from_dicom.stderr + "".join(server.output[-40:])
    np.testing.assert_array_equal(read_image(tmp_path / "remote-dicom" / "CT_chest.nii.gz").array, result.array)


def test_evaluate_and_study_jobs_on_the_server(make_server, tiny_dataset, tmp_path):
    nnunet = {"nnUNet_raw": tiny_dataset.raw.parent, "nnUNet_preprocessed": tiny_dataset.preprocessed.parent,
              "nnUNet_results": tmp_path / "results"}
    server = make_server(nnunet=nnunet)
    key = server.add_key("lab")
    server.start()
    client = ServerClient(server.url, key)

    reference = tiny_dataset.raw / "labelsTr" / "chest_001.nii.gz"
    labels = {name: value for name, value in json.loads((tiny_dataset.raw / "dataset.json").read_text())["labels"].items()}
    evaluation = client.evaluate(reference, reference, labels=labels, tau=2.0)
    assert client.wait(evaluation["id"], timeout=120, poll_s=0.3)["state"] == "done"
    written = {p.name: p for p in client.download(evaluation["id"], tmp_path / "evaluation")}
    assert set(written) == {"summary.json", "metrics.csv"}
    summary = json.loads(written["summary.json"].read_text())
    assert summary["foreground_mean"]["Dice"] == 1.0 and summary["tau_mm"] == 2.0
    assert {summary["labels"][str(v)] for v in summary["mean"]} <= set(labels)
    with pytest.raises(UserError, match="only a study job has a status matrix"):
        client.study_status(evaluation["id"])

    # a training job of any trainer nnU-Net can find (as train --trainer), named by its class, never a path
    schedule = dict(folds=[0], epochs=1, iterations_per_epoch=2, validation_iterations_per_epoch=1)
    stock = client.train(DATASET_NAME, variant="nnUNetTrainerNoMirroring", **schedule)
    for variant, reason in (("../../x", "unknown variant '../../x'"), ("nnUNetTrainerNope", "unknown variant or trainer"),
                            ("nnUNetTrainerNoMirroring", "hyper-parameters are settable for the project's variants")):
        with pytest.raises(UserError, match=reason):
            client.train(DATASET_NAME, variant=variant, hyperparameters={"dice_weight": 1.0}
                         if variant == "nnUNetTrainerNoMirroring" else {}, **schedule)
    assert client.wait(stock["id"], timeout=300, poll_s=0.5)["state"] == "done", "".join(server.output[-30:])
    assert (tmp_path / "results" / DATASET_NAME / "nnUNetTrainerNoMirroring__nnUNetPlans__3d_fullres" / "fold_0"
            / "checkpoint_final.pth").is_file()

    # what evaluate takes on the command line: a profile, lesion settings, a region, a tolerance per label
    regions = {**labels, "lungs": [labels["right lung"], labels["left lung"]]}
    lesion_run = client.evaluate(reference, reference, labels=regions, tau={str(labels["ribs"]): 0.5},
                                 profile="lesion", match_iou=0.6, size_bins=[0.5, 5], connectivity=6)
    assert client.wait(lesion_run["id"], timeout=120, poll_s=0.3)["state"] == "done"
    written = {p.name: p for p in client.download(lesion_run["id"], tmp_path / "lesions")}
    assert set(written) == {"summary.json", "metrics.csv", "lesions.csv"}
    summary = json.loads(written["summary.json"].read_text())
    definitions = summary["definitions"]
    assert definitions["profile"] == "lesion" and "instances" in definitions["metric_groups"]
    assert definitions["instances"]["size_bins_ml"] == [0.5, 5.0] and "IoU >= 0.6" in definitions["instances"]["matching"]
    assert summary["tau_mm"][str(labels["ribs"])] == 0.5 and summary["tau_mm"][str(labels["left lung"])] == 1.0
    region_key = str((labels["right lung"], labels["left lung"]))  # nnU-Net's key of a region
    assert summary["labels"][region_key] == "lungs" and summary["mean"][region_key]["Dice"] == 1.0
    rows = written["lesions.csv"].read_text().splitlines()
    assert len(rows) > 1 and all(",matched," in row for row in rows[1:])  # the reference against itself
    remote = ("--server", server.url, "--api-key", key)
    via_cli = cli("evaluate", str(reference), str(reference), "--profile", "lesion", "--tau", "1=0.5,2",
                  "--out", str(tmp_path / "cli-evaluation"), *remote, env=server.env, cwd=tmp_path)
    assert via_cli.returncode == 0, via_cli.stderr + "".join(server.output[-30:])
    written = {p.name: p for p in (tmp_path / "cli-evaluation").iterdir()}
    assert set(written) == {"summary.json", "metrics.csv", "lesions.csv"}
    assert json.loads(written["summary.json"].read_text())["tau_mm"]["1"] == 0.5
    again = ("evaluate", str(reference), str(reference), "--out", str(tmp_path / "cli-evaluation"), *remote)
    refused = cli(*again, env=server.env, cwd=tmp_path)
    assert refused.returncode == 2 and "pass --overwrite" in refused.stderr  # before anything is sent
    replaced = cli(*again, "--overwrite", env=server.env, cwd=tmp_path)
    assert replaced.returncode == 0, replaced.stderr
    assert json.loads(written["summary.json"].read_text())["tau_mm"] == 1.0  # the new evaluation's
    assert not written["lesions.csv"].exists()  # the earlier evaluation's lesions do not stay beside it
    folder = cli("evaluate", str(tiny_dataset.raw / "labelsTr"), str(reference), "--out", str(tmp_path / "x"),
                 *remote, env=server.env, cwd=tmp_path)
    assert folder.returncode == 2 and "evaluate folders on this computer" in folder.stderr
    for bad, reason in (({"shell": "rm"}, "unknown evaluation settings"), ({"profile": "bone"}, "'profile'"),
                        ({"metrics": ["overlap", "--out=/"]}, "'metrics'"), ({"tau": {"ribs": 1.0}}, "'tau'"),
                        ({"size_bins": [5, 1]}, "'size_bins'"), ({"labels": {"x": "1; rm"}}, "'labels'")):
        with pytest.raises(UserError, match=reason):
            client.evaluate(reference, reference, **bad)

    studied = cli("study", "run", DATASET_NAME, "--arm", "baseline", "--name", "server-study", "--folds", "0",
                  "--epochs", "1", "--iters-per-epoch", "2", "--val-iters-per-epoch", "1",
                  "--server", server.url, "--api-key", key, env=server.env, cwd=tmp_path, timeout=400)
    assert studied.returncode == 0, studied.stderr + studied.stdout + "".join(server.output[-30:])
    report = tmp_path / "server-study-report"
    assert {"report.md", "table.csv"} <= {p.name for p in report.iterdir()}
    assert "Study server-study" in (report / "report.md").read_text()
    with pytest.raises(UserError, match="arms"):
        client.study(DATASET_NAME, ["--executor=slurm"])  # an arm can never pass for an option
    with pytest.raises(UserError, match="arms"):
        client.study(DATASET_NAME, ["baseline\n"])  # matched whole: "$" would have let a final newline in
