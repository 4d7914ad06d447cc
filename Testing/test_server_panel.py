"""The Training panel with Run on: server, on the Qt double with real scenes, against a real server: start a
training there (the raw dataset is sent because the server lacks it), close the panel (Slicer closing) while it
runs, open a new panel, connect and find the training with its curves continuing, cancel it, resume it, and
segment a scene volume on the server through the Segment panel (Run on: server) with that model installed there."""
import time

import numpy as np

from fixtures.slicer_panels import INFERENCE, TRAINING, open_panel
from fixtures.training import DATASET_NAME, LABELS
from ImprovedNNUNetLib.server.client import ServerClient

EPOCHS = 12


def poll_until(widget, condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        if widget._pollTimer.isActive():
            widget._pollTimer.emit("timeout()")
        time.sleep(0.3)


def epochs_in_table(widget):
    curves = widget._job.curves.get("0")
    return 0 if curves is None else curves.table.GetNumberOfRows()


def open_training_panel():
    import slicer_shim

    slicer_shim.load_module(INFERENCE)
    return open_panel(TRAINING, "ImprovedNNUNetTrainingWidget")


def test_train_on_a_server_leave_come_back_cancel_resume_and_segment(make_server, tiny_dataset, tmp_path, slot_errors,
                                                                    monkeypatch):
    import slicer

    from slicer_shim import qt

    nnunet = {"nnUNet_raw": tmp_path / "server-raw", "nnUNet_preprocessed": tiny_dataset.preprocessed.parent,
              "nnUNet_results": tmp_path / "server-results"}
    server = make_server(nnunet=nnunet)
    key = server.add_key("laptop")
    server.start()
    qt.SETTINGS.clear()
    monkeypatch.setenv("nnUNet_raw", str(tiny_dataset.raw.parent))  # the laptop's own raw folder

    panel = open_training_panel()
    module, widget = next(panel)
    widget.ui.serverUrlLineEdit.user_type(server.url)
    widget.ui.serverKeyLineEdit.user_type(key)
    parameters = widget._parameterNode
    parameters.runOn = "server"
    parameters.dataset = DATASET_NAME
    parameters.variant = "baseline"
    parameters.folds = "0"
    parameters.epochs, parameters.iterationsPerEpoch, parameters.validationIterationsPerEpoch = EPOCHS, 2, 1
    widget.ui.serverConnectButton.click()
    assert widget._job is None and "no training of yours is running" in widget.ui.logTextEdit.plainText
    widget.ui.applyButton.click()
    assert slot_errors == [] and widget._job is not None and widget._job.job_id is not None
    job_id = widget._job.job_id
    poll_until(widget, lambda: epochs_in_table(widget) >= 6, 240, "six epochs on the server")
    assert (tmp_path / "server-raw" / DATASET_NAME / "dataset.json").is_file()  # sent, as the server lacked it

    next(panel, None)  # Slicer closes: the panel is cleaned up; the training goes on on the server
    client = ServerClient(server.url, key)
    assert client.job(job_id)["state"] == "running"

    panel = open_training_panel()  # Slicer started again: address, key and the followed job come from the settings
    module, widget = next(panel)
    assert widget.ui.serverUrlLineEdit.text == server.url and widget.ui.serverKeyLineEdit.text == key
    assert widget._job is not None and widget._job.job_id == job_id  # followed again without asking
    assert widget._parameterNode.dataset == DATASET_NAME and widget._parameterNode.variant == "baseline"
    assert key not in slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScriptedModuleNode").GetParameterNames() and \
        all(key not in widget._parameterNode.parameterNode.GetParameter(name)
            for name in widget._parameterNode.parameterNode.GetParameterNames())  # never in the scene
    widget.ui.serverConnectButton.click()  # while it follows a running training, Connect changes nothing
    assert widget._job.job_id == job_id
    seen = epochs_in_table(widget)
    poll_until(widget, lambda: epochs_in_table(widget) > max(seen, 7), 240, "more epochs after re-attaching")
    assert epochs_in_table(widget) >= 8  # the curves hold the epochs from before the panel closed, and go on

    widget.ui.applyButton.click()  # Cancel
    poll_until(widget, lambda: not widget._job.running, 120, "the cancel")
    assert widget._job.status.state == "cancelled" and client.job(job_id)["state"] == "cancelled"

    next(panel, None)  # another Slicer that never followed it: Connect finds the newest unfinished training
    qt.SETTINGS.pop("ImprovedNNUNet/ServerTrainingJob")
    panel = open_training_panel()
    module, widget = next(panel)
    assert widget._job is None
    widget.ui.serverConnectButton.click()
    assert widget._job is not None and widget._job.job_id == job_id
    poll_until(widget, lambda: not widget._job.running, 60, "the stopped training's state")
    assert widget._job.status.state == "cancelled" and epochs_in_table(widget) >= 8
    widget.ui.resumeButton.click()
    assert widget._job.job_id == job_id  # the same server job continues
    poll_until(widget, lambda: not widget._job.running, 300, "the resumed training")
    assert widget._job.status.state == "done", widget.ui.logTextEdit.plainText[-3000:]
    assert epochs_in_table(widget) >= EPOCHS

    # the Segment panel, Run on: server, with that model installed on the server
    from fixtures.server import cli
    from fixtures.slicer_scene import run_poll_timer_until_done
    from ImprovedNNUNetLib.core.imageio import read_image
    from ImprovedNNUNetLib.panels.scene.labelmaps import export_label_image, segment_infos
    from ImprovedNNUNetLib.panels.scene.volumes import add_volume_from_image

    model_folder = tmp_path / "server-results" / DATASET_NAME / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    assert cli("models", "import", str(model_folder), "--name", "chest-on-server", env=server.env).returncode == 0
    next(panel, None)
    segment_panel = open_panel(INFERENCE, "ImprovedNNUNetWidget")
    _, segment = next(segment_panel)
    assert segment.ui.serverUrlLineEdit.text == server.url  # one address and key for both panels
    image = read_image(tiny_dataset.raw / "imagesTr" / "chest_000_0000.nii.gz")
    volume = add_volume_from_image(slicer.mrmlScene, image, "CT crop")
    parameters = segment._parameterNode
    parameters.runOn = "server"
    segment.ui.refreshModelsButton.click()
    assert segment.ui.modelComboBox.findText("chest-on-server") > 0, "the server's models are listed"
    parameters.installedModel, parameters.inputVolume0, parameters.folds = "chest-on-server", volume, "0"
    parameters.uncertaintyMap = True
    assert segment.ui.applyButton.enabled and "on the server" in segment.ui.modelSummaryLabel.text
    segment.ui.applyButton.click()
    assert slot_errors == [] and segment._job is not None
    run_poll_timer_until_done(segment, 300)
    result = parameters.outputSegmentation
    assert result is not None, segment.ui.logTextEdit.plainText
    labels = export_label_image(result, segment_infos(result)).array
    assert labels.shape == image.array.shape and set(np.unique(labels)) <= set(range(8))
    assert {info.name for info in segment_infos(result)} <= set(LABELS)
    uncertainty = slicer.mrmlScene.GetFirstNodeByName(f"{result.GetName()} uncertainty")  # made on the server
    assert uncertainty is not None and slicer.util.arrayFromVolume(uncertainty).shape == image.array.shape
    assert uncertainty.GetDisplayNode().GetColorNodeID() == "vtkMRMLPETProceduralColorNodePET-Heat"
    next(segment_panel, None)
    qt.SETTINGS.clear()


def test_a_study_from_the_panel_runs_on_the_server_and_its_report_comes_back(make_server, tiny_dataset, tmp_path,
                                                                             slot_errors, monkeypatch):
    """Run on: server + Run study: a study job through the server's client; the log follows its state, the report
    is downloaded into the results folder when it is done and Open report opens it."""
    from slicer_shim import qt

    nnunet = {"nnUNet_raw": tiny_dataset.raw.parent, "nnUNet_preprocessed": tiny_dataset.preprocessed.parent,
              "nnUNet_results": tmp_path / "server-results"}
    server = make_server(nnunet=nnunet)
    key = server.add_key("laptop")
    server.start()
    qt.SETTINGS.clear()
    panel = open_training_panel()
    _, widget = next(panel)
    widget.ui.serverUrlLineEdit.user_type(server.url)
    widget.ui.serverKeyLineEdit.user_type(key)
    parameters = widget._parameterNode
    parameters.runOn, parameters.dataset, parameters.folds = "server", DATASET_NAME, "0"
    parameters.resultsFolder = str(tmp_path / "laptop-results")
    parameters.epochs, parameters.iterationsPerEpoch, parameters.validationIterationsPerEpoch = 1, 2, 1
    parameters.studyArms, parameters.studyName = "nomirror=nnUNetTrainerNoMirroring", "remote"
    widget.ui.studyRunButton.click()
    assert widget._study is not None and widget._study.job_id is not None, widget.ui.logTextEdit.toPlainText()
    deadline = time.monotonic() + 400
    while widget._studyPollTimer.isActive():
        assert time.monotonic() < deadline, "".join(server.output[-30:])
        widget._studyPollTimer.emit("timeout()")
        time.sleep(0.5)
    log = widget.ui.logTextEdit.toPlainText()
    assert f"study job {widget._study.job_id} on the server: done" in log, log + "".join(server.output[-30:])
    report = tmp_path / "laptop-results" / "remote-report" / "report.html"
    assert report.is_file() and widget.ui.studyReportButton.enabled
    table = widget._studyTable  # the matrix, read by the server from the study's files there
    assert table is not None and widget.ui.studyStatusTableView.mrmlTableNode is table
    assert [table.GetColumnName(c) for c in range(table.GetNumberOfColumns())] == ["arm", "fold 0"]
    assert (table.GetCellText(0, 0), table.GetCellText(0, 1)) == ("nomirror", "done")
    opened = []
    monkeypatch.setattr("webbrowser.open", lambda url, *a, **k: opened.append(url) or True)
    widget.ui.studyReportButton.click()
    assert opened == [report.resolve().as_uri()]
    assert "nnUNetTrainerNoMirroring" in report.read_text()
    assert slot_errors == []
    next(panel, None)
