"""Findings of reading Slicer's, CTK's and PythonQt's sources against the panels (second review): one test
each, on the Qt double (Testing/slicer_shim), which now models the rules these findings rest on: CTK path
fields signal synchronously while they are set and validate by nameFilters, Slicer's main thread holds the GIL
(slicer_shim.gil), QPlainTextEdit keeps maximumBlockCount lines, the application's override-cursor stack, and
Slicer 5.12's ``slicer.packaging.pip_install`` that shows its own error dialog. Scenes, nodes, child processes
and files are real. (The fresh-Slicer findings are Testing/test_fresh_slicer.py.)"""
import subprocess
import sys
import types

import pytest

from fresh_slicer.check_panels import add_two_cases
from slicer_shim.gil import main_thread_holds_gil


def _batch(parameter_node, **values):
    """Change several parameters in one Modified event, as a scene load (vtkMRMLScene::AddNode copying the
    singleton) or a scene close (ResetNodes) does."""
    node = parameter_node.parameterNode
    was = node.StartModify()
    for name, value in values.items():
        setattr(parameter_node, name, value)
    node.EndModify(was)


# 4 ------------------------------------------------------------------------------------------------
def test_compare_starts_no_python_thread_in_the_gui_process(training_panel, validation_layout):
    """With the main thread holding the GIL a Python thread barely runs (29 s for one case in such a host):
    the comparison is a child process, read by the poll timer."""
    _, widget = training_panel
    widget._parameterNode.dataset = "987"
    with main_thread_holds_gil() as starved:
        widget.ui.compareButton.click()
        assert starved == [], "a Python thread was started for the comparison"
        assert widget._comparison is not None and widget._comparison.running
        widget._comparison.wait(120)
        widget._comparePollTimer.emit("timeout()")
    table = widget.ui.comparisonTableView.mrmlTableNode
    assert table is not None and table.GetNumberOfRows() == 28


# 5 ------------------------------------------------------------------------------------------------
def test_scene_load_changing_every_folder_keeps_each_new_folder(training_panel):
    _, widget = training_panel
    _batch(widget._parameterNode, rawFolder="/old/raw", preprocessedFolder="/old/pre", resultsFolder="/old/res")
    _batch(widget._parameterNode, rawFolder="/new/raw", preprocessedFolder="/new/pre", resultsFolder="/new/res")
    parameters = widget._parameterNode
    assert (parameters.rawFolder, parameters.preprocessedFolder, parameters.resultsFolder) == \
        ("/new/raw", "/new/pre", "/new/res")
    assert widget.ui.preprocessedFolderPathLineEdit.currentPath == "/new/pre"
    _batch(widget._parameterNode, rawFolder="", preprocessedFolder="", resultsFolder="")  # as a scene close resets
    assert (parameters.rawFolder, parameters.preprocessedFolder, parameters.resultsFolder) == ("", "", "")


def test_scene_load_changing_both_paths_of_the_segment_panel(inference_panel):
    _, widget = inference_panel
    _batch(widget._parameterNode, modelFolder="/old/model", metricsCsv="/old/m.csv")
    _batch(widget._parameterNode, modelFolder="/new/model", metricsCsv="/new/m.csv")
    assert (widget._parameterNode.modelFolder, widget._parameterNode.metricsCsv) == ("/new/model", "/new/m.csv")


# 6 ------------------------------------------------------------------------------------------------
def test_case_list_follows_node_removal_and_scene_close(training_panel, slot_errors):
    import slicer

    module, widget = training_panel
    first, second = add_two_cases(module, widget)
    assert widget.ui.casesListWidget.count == 2
    slicer.mrmlScene.RemoveNode(first[0])
    assert widget.ui.casesListWidget.count == 1 and widget._pairs == [second]
    widget.ui.checkCasesButton.click()  # no 'NoneType' error from a removed node
    assert slot_errors == []
    slicer.mrmlScene.Clear(0)
    assert widget.ui.casesListWidget.count == 0 and widget._pairs == [] and not widget.ui.exportButton.enabled


# 7 ------------------------------------------------------------------------------------------------
def _sleeping_child():
    from ImprovedNNUNetLib.core.process import ChildProcess

    return ChildProcess.start([sys.executable, "-c", "import time; time.sleep(600)"])


def test_application_exit_ends_a_running_training_on_the_main_thread(training_panel):
    """cleanup() at exit: a thread started there never runs, so the stop must be signalled synchronously."""
    import psutil

    from ImprovedNNUNetTrainingLib.panels.training_job import JobStatus, TrainingJob

    _, widget = training_panel
    job = TrainingJob.__new__(TrainingJob)
    job.status, job.process, job.log, job._cancel_requested = JobStatus(state="running"), _sleeping_child(), [], False
    job._log_reported = 0
    widget._job = job
    process = psutil.Process(job.process.pid)
    with main_thread_holds_gil():
        widget.cleanup()
    assert not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    assert job.status.state == "cancelled"


def test_application_exit_ends_a_running_segmentation_on_the_main_thread(segmenting):
    import psutil

    _, widget = segmenting
    process = psutil.Process(widget._job.process.pid)
    with main_thread_holds_gil():
        widget.cleanup()
    assert not process.is_running() or process.status() == psutil.STATUS_ZOMBIE


def test_cancel_without_a_thread_escalates_from_poll():
    """The GUI's Cancel: SIGTERM at once on the caller's thread; SIGKILL for a child that ignores SIGTERM
    comes from a later poll() once the grace period is over; no thread is involved."""
    import time

    from ImprovedNNUNetLib.core.process import ChildProcess

    child = ChildProcess.start([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
                                "signal.SIG_IGN); print('ready', flush=True); time.sleep(600)"])
    while "ready" not in child.log:
        child.poll()
        time.sleep(0.05)
    with main_thread_holds_gil() as starved:
        child.cancel_in_background(grace_s=0.5)
        assert starved == []
        deadline = time.monotonic() + 20
        while not child.poll().finished:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert child.returncode == -9 and child.cancel_report.killed == [child.pid]


# 8 ------------------------------------------------------------------------------------------------
def test_a_csv_name_without_csv_is_stored_and_export_says_what_it_waits_for(inference_panel):
    from slicer_shim.qt import name_filters_expression

    _, widget = inference_panel
    field = widget.ui.metricsCsvPathLineEdit
    assert name_filters_expression(field.__dict__.get("nameFilters") or []) == ".+"  # any name is acceptable
    field.user_type("/tmp/metrics.txt")
    assert widget._parameterNode.metricsCsv == "/tmp/metrics.txt"
    assert not widget.ui.exportCsvButton.enabled and "Compute metrics first" in widget.ui.exportCsvButton.toolTip


def test_the_double_refuses_names_that_cta_name_filters_refuse():
    """The rule the previous finding rests on (ctkUtils.cpp nameFiltersToRegularExpression): with
    "CSV files (*.csv)" a name ending in .txt is never acceptable, so currentPathChanged never comes."""
    from slicer_shim import qt

    field = qt.make_widget("ctkPathLineEdit", "f", {"nameFilters": ["CSV files (*.csv)"]})
    seen = []
    field.connect("currentPathChanged(QString)", seen.append)
    field.user_type("/tmp/m.txt")
    assert seen == []
    field.user_type("/tmp/m.csv")
    assert seen[-1] == "/tmp/m.csv"


# 9 ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("slicer_version", ["5.10", "5.12"])
def test_a_failed_pip_install_shows_one_dialog(inference_panel, monkeypatch, slicer_version):
    """Slicer 5.12's slicer.packaging.pip_install shows the error with pip's log, then raises; 5.10's raises
    without a dialog. Either way the user sees one dialog."""
    import slicer
    import slicer.util

    from ImprovedNNUNetLib.core import dependencies

    dialogs = []
    monkeypatch.setattr(slicer.app, "testingEnabled", lambda: False)
    monkeypatch.setattr(slicer.util, "errorDisplay", lambda text, **kwargs: dialogs.append(text))
    monkeypatch.setattr(slicer.util, "confirmOkCancelDisplay", lambda *a, **k: True)

    def pip_install(requirements, **kwargs):
        if slicer_version == "5.12":  # Base/Python/slicer/packaging.py _pip_install_with_dialog
            monkeypatch.setitem(sys.modules, "slicer.packaging", types.ModuleType("slicer.packaging"))
            slicer.util.errorDisplay("Failed to install Python packages: ...pip log...")
        raise subprocess.CalledProcessError(1, "pip install")

    monkeypatch.setattr(slicer.util, "pip_install", pip_install)
    monkeypatch.delitem(sys.modules, "slicer.packaging", raising=False)
    monkeypatch.setattr(dependencies, "missing_packages", lambda: ["surface-distance"])
    monkeypatch.setattr(dependencies, "torch_ready", lambda: True)
    monkeypatch.setitem(sys.modules, "PyTorchUtils", types.SimpleNamespace(PyTorchUtilsLogic=object))
    _, widget = inference_panel
    widget.ui.installDependenciesButton.click()
    assert len(dialogs) == 1, dialogs
    if slicer_version == "5.12":
        assert "pip install failed" in widget.ui.logTextEdit.plainText
    else:
        assert "pip install failed" in dialogs[0]


# 10 -----------------------------------------------------------------------------------------------
def test_long_gui_thread_work_shows_a_wait_cursor(training_panel, tmp_path):
    from slicer_shim import qt

    module, widget = training_panel
    add_two_cases(module, widget)
    widget.ui.rawFolderPathLineEdit.currentPath = str(tmp_path)
    qt.CURSOR_LOG.clear()
    widget.ui.exportButton.click()
    assert qt.CURSOR_LOG == [("set", qt.Qt.WaitCursor), ("restore", qt.Qt.WaitCursor)]
    assert qt.OVERRIDE_CURSORS == []


# 11 -----------------------------------------------------------------------------------------------
def test_training_log_is_capped_like_the_segment_panels(training_panel):
    _, widget = training_panel
    for index in range(2500):
        widget._log(f"line {index}")
    lines = widget.ui.logTextEdit.plainText.splitlines()
    assert len(lines) == 2000 and lines[-1] == "line 2499"


def test_a_second_job_replaces_the_curve_nodes_and_a_closed_scene_gets_none(training_panel, tiny_dataset):
    import slicer

    from ImprovedNNUNetTrainingLib.panels.training_job import TrainingJob
    from ImprovedNNUNetTrainingLib.panels.training_request import TrainingRequest

    request = TrainingRequest(dataset=tiny_dataset.name, variant="baseline", folds=["0"], device="cpu")
    event = {"stage": "training", "epoch": 0, "epoch_time_s": 1.0, "train_loss": 1.0, "val_loss": 1.0}

    def tables():
        return [n for n in slicer.util.getNodesByClass("vtkMRMLTableNode") if n.GetName() == "baseline fold 0 curves"]

    for _ in range(2):
        job = TrainingJob(request, slicer.mrmlScene)
        job.status.fold = "0"
        job._curves_for("0").add_event(event)
    assert len(tables()) == 1
    assert len(slicer.util.getNodesByClass("vtkMRMLPlotChartNode")) == 2
    job.detach_scene()
    slicer.mrmlScene.Clear(0)
    job.status.fold = "1"
    job._take_events([{**event, "stage": "training"}])
    assert slicer.util.getNodesByClass("vtkMRMLTableNode") == []


def test_later_folds_do_not_switch_the_layout(training_panel, monkeypatch):
    import slicer

    _, widget = training_panel
    shown = []
    monkeypatch.setattr(slicer.modules, "plots", types.SimpleNamespace(
        logic=lambda: types.SimpleNamespace(ShowChartInLayout=shown.append)), raising=False)
    curves = types.SimpleNamespace(charts={"loss": slicer.mrmlScene.AddNewNodeByClass("vtkMRMLPlotChartNode")})
    view = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLPlotViewNode")
    widget._job = types.SimpleNamespace(curves={"0": curves, "1": curves}, status=types.SimpleNamespace(fold="0"),
                                        running=False)
    widget._showCurves()
    widget._job.status.fold = "1"
    widget._showCurves(switchLayout=False)
    assert shown == [curves.charts["loss"]]
    assert view.GetPlotChartNodeID() == curves.charts["loss"].GetID()
