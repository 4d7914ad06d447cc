"""The Training panel's Study section on the Qt double (Testing/slicer_shim): Run study starts `improved-nnunet
study run` as a child process (no Python thread in Slicer's process), the poll timer fills the arms × folds ×
repeats status matrix as a real table node, Cancel stops the study's whole process tree, Open report opens the
report.html the study wrote. Scenes, the child processes, the trainings and the files are real."""
from __future__ import annotations

import time

from slicer_shim.gil import main_thread_holds_gil

DATASET = "Dataset987_TinyChest"


def _study_fields(widget, tmp_path, **values):
    parameters = widget._parameterNode
    parameters.dataset = DATASET
    parameters.resultsFolder = str(tmp_path / "results")
    parameters.folds, parameters.device = "0", "cpu"
    parameters.epochs, parameters.iterationsPerEpoch, parameters.validationIterationsPerEpoch = 1, 2, 1
    for name, value in values.items():
        setattr(parameters, name, value)


def _poll_until_ended(widget, limit_s=600):
    deadline = time.monotonic() + limit_s
    while widget._study.running and time.monotonic() < deadline:
        widget._studyPollTimer.emit("timeout()")
        time.sleep(0.5)
    widget._studyPollTimer.emit("timeout()")


def test_run_study_follows_the_matrix_and_opens_the_report(training_panel, tiny_dataset, tmp_path, monkeypatch,
                                                          slot_errors):
    _, widget = training_panel
    _study_fields(widget, tmp_path, studyArms="baseline", studyRepeats=2, studyName="panel")
    assert widget.ui.studyRepeatsSpinBox.value == 2 and widget.ui.studyArmsLineEdit.text.startswith("baseline")
    widget._parameterNode.studyRepeats = 1  # one training keeps the test short (repeats: test_study_arms_repeats)
    assert not widget.ui.studyReportButton.enabled
    with main_thread_holds_gil() as starved:
        widget.ui.studyRunButton.click()
        assert starved == [], "a Python thread was started for the study"
    assert widget._study is not None and widget._study.running and widget.ui.studyRunButton.text == "Cancel study"
    arguments = widget._study.request.arguments()
    assert "--arm=baseline" in arguments and arguments[arguments.index("--repeats") + 1] == "1"
    _poll_until_ended(widget)
    assert widget._study.process.returncode == 0, "\n".join(widget._study.process.log)
    assert slot_errors == []
    table = widget.ui.studyStatusTableView.mrmlTableNode
    assert table is not None and table.GetNumberOfRows() == 1
    assert [table.GetColumnName(i) for i in range(table.GetNumberOfColumns())] == ["arm", "fold 0"]
    assert [table.GetCellText(0, column) for column in range(2)] == ["baseline", "done"]
    assert widget.ui.studyRunButton.text == "Run study" and widget.ui.studyReportButton.enabled
    opened = []
    monkeypatch.setattr("webbrowser.open", lambda url, *a, **k: opened.append(url) or True)
    widget.ui.studyReportButton.click()
    report = tmp_path / "results" / DATASET / "studies" / "panel" / "report" / "report.html"
    assert opened == [report.resolve().as_uri()] and report.is_file()
    assert "Study panel" in report.read_text()


def test_cancel_stops_the_study_and_a_bad_arm_is_one_dialog(training_panel, tiny_dataset, tmp_path, caplog):
    _, widget = training_panel
    _study_fields(widget, tmp_path, studyArms="x=nnUNetTrainerNope")
    widget.ui.studyRunButton.click()
    assert widget._study is None and "unknown variant or trainer 'nnUNetTrainerNope'" in caplog.text

    _study_fields(widget, tmp_path, studyArms="baseline", studyName="cancelled", epochs=200)
    widget.ui.studyRunButton.click()
    fold = (tmp_path / "results" / DATASET / "studies" / "cancelled" / "arms" / "baseline" / DATASET
            / "nnUNetTrainer__nnUNetPlans__3d_fullres" / "fold_0")
    deadline = time.monotonic() + 300
    while not (fold / "checkpoint_latest.pth").is_file() and time.monotonic() < deadline:
        widget._studyPollTimer.emit("timeout()")
        time.sleep(0.5)
    widget.ui.studyRunButton.click()  # Cancel
    deadline = time.monotonic() + 120
    while widget._studyPollTimer.isActive() and time.monotonic() < deadline:  # until the training has ended too
        widget._studyPollTimer.emit("timeout()")
        time.sleep(0.5)
    assert not widget._study.running and widget.ui.studyRunButton.text == "Run study"
    assert widget.ui.studyStatusTableView.mrmlTableNode.GetCellText(0, 1) == "stopped"
    assert "Study cancelled stopped; Run study continues it" in widget.ui.logTextEdit.toPlainText()
