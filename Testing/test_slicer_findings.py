"""One test per finding of the Slicer review (both panels in real Slicer 5.10/5.12/main).

The panels run on Testing/slicer_shim, whose parameterNodeWrapper, widgets and process rules
follow Slicer's, CTK's and Qt's sources (each rule cites its file there). Scenes, nodes, child
processes and files are real. Tests that import or drop modules do so in a fresh Python.
"""
import ast
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Annotated, Union

import pytest

import slicer_shim
from fixtures.slicer_scene import run_poll_timer_until_done

REPO = Path(__file__).resolve().parent.parent
INFERENCE = REPO / "ImprovedNNUNet" / "ImprovedNNUNet.py"
TRAINING = REPO / "ImprovedNNUNetTraining" / "ImprovedNNUNetTraining.py"
TIMEOUT_S = 300


def _python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env={**os.environ, **env})


# 1 ------------------------------------------------------------------------------------------------
def test_1_a_node_union_without_none_cannot_be_constructed_and_the_modules_has_none():
    slicer = slicer_shim.install()
    from slicer.parameterNodeWrapper import parameterNodeWrapper

    @parameterNodeWrapper
    class Old:
        reference: Union[slicer.vtkMRMLSegmentationNode, slicer.vtkMRMLLabelMapVolumeNode]

    node = slicer.vtkMRMLScene().AddNewNodeByClass("vtkMRMLScriptedModuleNode")
    with pytest.raises(TypeError, match="Unable to write value 'None'"):
        Old(node)
    module = slicer_shim.load_module(INFERENCE)
    parameters = module.ImprovedNNUNetParameterNode(node)
    assert parameters.reference is None


# 2 ------------------------------------------------------------------------------------------------
def test_2_a_plain_str_on_a_combo_box_is_refused():
    from slicer_shim.parameterNodeWrapper import Choice, create_gui_connector
    from slicer_shim.qt import make_widget

    with pytest.raises(RuntimeError, match="requires the Choice annotation"):
        create_gui_connector(make_widget("QComboBox", "c"), str)
    connector = create_gui_connector(make_widget("QComboBox", "c"), Annotated[str, Choice(["a", "b"])])
    assert connector.widget.items == ["a", "b"]


def _bound(widget):
    return {w.property("SlicerParameterName") for w in vars(widget.ui).values() if w.property("SlicerParameterName")}


def test_2_the_inference_panel_binds_every_widget(inference_panel):
    _, widget = inference_panel
    assert _bound(widget) == set(next(iter(widget._parameterNode._guis.values())))
    widget.ui.deviceComboBox.user_choose("cpu")
    widget.ui.mirroringComboBox.user_choose("off")
    assert (widget._parameterNode.device, widget._parameterNode.mirroring) == ("cpu", "off")


def test_2_the_training_panel_binds_every_widget(training_panel):
    module, widget = training_panel
    assert _bound(widget) == set(next(iter(widget._parameterNode._guis.values())))
    assert widget.ui.variantComboBox.items == module.VARIANTS
    widget.ui.variantComboBox.user_choose("sdm")
    assert widget._parameterNode.variant == "sdm" and "sdm_weight = 1.0" in widget.ui.hyperparametersTextEdit.plainText


def test_2_the_combo_choices_are_the_libs_names():
    from ImprovedNNUNetLib.core.variants import CONFIGURATIONS, PLANNERS, VARIANT_NAMES

    training = slicer_shim.load_module(TRAINING)
    assert sorted(training.VARIANTS) == sorted(VARIANT_NAMES)
    assert training.CONFIGURATIONS == list(CONFIGURATIONS)
    assert training.PLANNERS == list(PLANNERS)


# 3 ------------------------------------------------------------------------------------------------
def test_3_slicer_5_10_or_newer_is_stated_and_no_lib_module_needs_more_than_python_3_10():
    readme = (REPO / "README.md").read_text() + (REPO / "docs" / "slicer.md").read_text()
    assert "5.8 or newer" not in readme and "Slicer 5.10 or newer" in readme
    assert 'requires-python = ">=3.10' in (REPO / "pyproject.toml").read_text()
    assert 'VERSION_LESS "5.10"' in (REPO / "CMakeLists.txt").read_text()
    for path in [*REPO.glob("ImprovedNNUNet*/ImprovedNNUNet*Lib/**/*.py"), INFERENCE, TRAINING]:
        ast.parse(path.read_text(), feature_version=(3, 10))  # no syntax newer than 3.10


# 4 ------------------------------------------------------------------------------------------------
def test_4_leaving_the_module_while_segmenting_still_delivers_the_result(segmenting, slot_errors):
    module, widget = segmenting
    widget.exit()
    run_poll_timer_until_done(widget, TIMEOUT_S)
    assert slot_errors == []
    output = module.ImprovedNNUNetLogic().getParameterNode().outputSegmentation
    assert output is not None and output.GetName() == "CT block segmentation"


def test_4_closing_the_scene_while_segmenting_cancels_the_run(segmenting, slot_errors):
    import slicer

    _, widget = segmenting
    slicer.mrmlScene.Clear(0)
    assert widget._job.stage in ("cancelling", "cancelled")
    run_poll_timer_until_done(widget, TIMEOUT_S)
    assert slot_errors == [] and widget._job.stage == "cancelled"
    assert "scene is closing" in widget.ui.logTextEdit.plainText
    assert widget.ui.applyButton.text == "Apply"


def test_4_an_input_volume_removed_meanwhile_is_a_clear_error(segmenting):
    import slicer

    from ImprovedNNUNetLib.core.errors import UserError

    _, widget = segmenting
    job = widget._job
    widget.exit()
    slicer.mrmlScene.RemoveNode(job.input_volume)
    while not job.poll().finished:
        time.sleep(0.1)
    with pytest.raises(UserError, match="left the scene while it was being segmented"):
        job.load_result()
    widget._pollTimer.stop()


# 5 ------------------------------------------------------------------------------------------------
def test_5_after_a_failed_segmentation_the_button_says_apply(segmenting, slot_errors, caplog):
    import psutil

    _, widget = segmenting
    psutil.Process(widget._job.process.pid).kill()  # the worker dies: the run fails
    run_poll_timer_until_done(widget, TIMEOUT_S)
    assert widget.ui.applyButton.text == "Apply"
    # one dialog (errorDisplay logs it in testing mode), as every action of both panels; nothing escapes the slot
    assert slot_errors == []
    assert "Segmentation failed.\n\nthe segmentation failed: exit status" in caplog.text


# 7 ------------------------------------------------------------------------------------------------
def test_7_children_import_the_module_folders_that_slicer_has_on_sys_path_only(tmp_path):
    """A copy of the extension, on sys.path only (as Slicer does), starts a child the way the
    panels do; the child must import the copy (not the repository's installed one)."""
    for folder in ("ImprovedNNUNet/ImprovedNNUNetLib", "ImprovedNNUNetTraining/ImprovedNNUNetTrainingLib"):
        shutil.copytree(REPO / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    result = _python(f"""
        import sys
        sys.path[:0] = [{str(tmp_path / 'ImprovedNNUNet')!r}, {str(tmp_path / 'ImprovedNNUNetTraining')!r}]
        from ImprovedNNUNetLib.core.process import ChildProcess, python_executable
        child = ChildProcess.start([python_executable(), "-c",
            "import ImprovedNNUNetLib, ImprovedNNUNetTrainingLib; "
            "print(ImprovedNNUNetLib.__file__); print(ImprovedNNUNetTrainingLib.__file__)"])
        child.wait(60)
        print("\\n".join(child.log))
    """, PYTHONPATH="")
    lines = [line for line in result.stdout.splitlines() if line.endswith("__init__.py")]
    assert len(lines) == 2 and all(line.startswith(str(tmp_path)) for line in lines), result.stdout + result.stderr


def test_7_the_training_job_and_the_worker_use_the_one_builder():
    from ImprovedNNUNetLib.core import process
    from ImprovedNNUNetLib.panels import segment_job
    from ImprovedNNUNetTrainingLib.panels import training_job

    assert process.cli_command("--help")[0] == process.python_executable()
    for module in (segment_job, training_job):
        source = Path(module.__file__).read_text()
        # ChildProcess.start's default environment, or child_environment with the panel's folders on top
        assert "os.environ" not in source
        assert source.count("env=") == source.count("env=child_environment(")


# 8 ------------------------------------------------------------------------------------------------
def test_8_children_on_windows_get_no_console_window(monkeypatch):
    from ImprovedNNUNetLib.core import process

    class StartupInfo:  # the fields of subprocess.STARTUPINFO that matter
        dwFlags, wShowWindow = 0, 1

    monkeypatch.setattr(process.sys, "platform", "win32")
    for name, value in (("STARTUPINFO", StartupInfo), ("STARTF_USESHOWWINDOW", 1),
                        ("CREATE_NEW_PROCESS_GROUP", 0x200), ("CREATE_NO_WINDOW", 0x08000000)):
        monkeypatch.setattr(process.subprocess, name, value, raising=False)
    options = process.platform_options()
    assert options["creationflags"] == 0x200 | 0x08000000
    assert options["startupinfo"].dwFlags & 1 and options["startupinfo"].wShowWindow == 0


def test_8_children_write_utf8_whatever_the_locale():
    from ImprovedNNUNetLib.core.process import ChildProcess, child_environment

    env = child_environment({"LC_ALL": "C", "LANG": "C"})
    child = ChildProcess.start([sys.executable, "-c", "print('Dice ≥ 0.9 at 0.7 µm, Zürich')"], env=env)
    assert child.wait(30) == 0 and list(child.log) == ["Dice ≥ 0.9 at 0.7 µm, Zürich"]
    assert env["PYTHONIOENCODING"] == "utf-8"


# 9 ------------------------------------------------------------------------------------------------
def test_9_the_panels_keep_torch_out_of_the_gui_process():
    result = _python("""
        import sys
        sys.path.insert(0, "Testing")
        import slicer_shim
        inference = slicer_shim.load_module("ImprovedNNUNet/ImprovedNNUNet.py")
        training = slicer_shim.load_module("ImprovedNNUNetTraining/ImprovedNNUNetTraining.py")
        inference.ImprovedNNUNetWidget().setup()
        panel = training.ImprovedNNUNetTrainingWidget()
        panel.setup()
        for variant in training.VARIANTS:
            panel.ui.variantComboBox.user_choose(variant)
        panel.ui.resetHyperparametersButton.click()
        panel._parameterNode.dataset = "Dataset001_Any"
        training.ImprovedNNUNetTrainingLogic.requestFromParameters(panel._parameterNode,
                                                                   panel.ui.hyperparametersTextEdit.plainText)
        print(sorted(m for m in ("torch", "nnunetv2") if m in sys.modules), slicer_shim.qt.SLOT_ERRORS)
    """)
    assert result.stdout.strip().splitlines()[-1] == "[] []", result.stdout + result.stderr


def test_9_missing_dependencies_show_in_the_panel_and_stop_train(training_panel, monkeypatch, caplog):
    from ImprovedNNUNetLib.core import dependencies

    module, widget = training_panel
    import slicer

    assert getattr(slicer.modules, "improvednnunettraining").dependencies == ["ImprovedNNUNet"]
    assert widget.ui.dependenciesStatusLabel.text.startswith("Ready")
    monkeypatch.setitem(dependencies.REQUIREMENTS, "nnunetv2", (">=9", "nnunetv2"))
    widget._parameterNode.dataset = "Dataset001_Any"
    widget.ui.applyButton.click()
    assert widget._job is None and "Missing: nnunetv2>=9" in caplog.text


# 10 -----------------------------------------------------------------------------------------------
def test_10_epoch_and_iteration_fields_keep_their_range(training_panel):
    _, widget = training_panel
    for name in ("epochsSpinBox", "iterationsSpinBox", "validationIterationsSpinBox"):
        box = getattr(widget.ui, name)
        assert box.minimum == 1 and box.maximum >= 10000
        box.user_set(0)
        assert box.value == 1
    with pytest.raises(ValueError, match="within range"):
        widget._parameterNode.epochs = 0


# 11 -----------------------------------------------------------------------------------------------
def test_11_an_unset_model_folder_shows_an_empty_field(inference_panel):
    _, widget = inference_panel
    assert widget.ui.modelFolderPathLineEdit.currentPath == ""  # unset: empty, never "."
    assert widget.ui.metricsCsvPathLineEdit.currentPath == ""


def test_11_path_fields_behave_like_normal_fields(training_panel):
    _, widget = training_panel
    field = widget.ui.rawFolderPathLineEdit
    assert field.currentPath == ""
    field.user_type("/data/nnUNet_raw/")
    assert field.currentPath == "/data/nnUNet_raw/"  # the trailing "/" stays while typing
    assert widget._parameterNode.rawFolder == "/data/nnUNet_raw/"
    field.user_type("")
    assert widget._parameterNode.rawFolder == ""  # an emptied field empties the parameter
    widget._parameterNode.resultsFolder = "/elsewhere"
    assert widget.ui.resultsFolderPathLineEdit.currentPath == "/elsewhere"


# 12 -----------------------------------------------------------------------------------------------
def test_12_developer_reload_keeps_one_error_class():
    result = _python("""
        import sys
        sys.path.insert(0, "Testing")
        import slicer_shim
        inference = slicer_shim.load_module("ImprovedNNUNet/ImprovedNNUNet.py")
        training = slicer_shim.load_module("ImprovedNNUNetTraining/ImprovedNNUNetTraining.py")
        import ImprovedNNUNetLib.panels.segment_job, ImprovedNNUNetTrainingLib.panels.training_request
        for module in (inference, training):
            panel = getattr(module, module.__name__ + "Widget")()
            panel.setup()
            panel.onReload()
        from ImprovedNNUNetLib.core.errors import UserError
        import ImprovedNNUNetLib.panels.segment_job as job, ImprovedNNUNetTrainingLib.panels.training_request as request
        print(job.UserError is UserError and request.UserError is UserError)
        try:
            request.parse_folds("zero")
        except UserError:
            print("caught")
    """)
    assert result.stdout.split() == ["True", "caught"], result.stdout + result.stderr


# 13 -----------------------------------------------------------------------------------------------
def test_13_install_asks_once_and_keeps_a_torch_in_range(inference_panel, monkeypatch):
    import types

    import slicer

    from ImprovedNNUNetLib.core import dependencies

    calls = []

    class PyTorchUtilsLogic:  # the API of the PyTorch extension's logic that the module uses
        def torchInstalled(self):
            return True

        def installTorch(self, askConfirmation=False, torchVersionRequirement=None, **kwargs):
            calls.append(("installTorch", askConfirmation, torchVersionRequirement))
            return object()

    monkeypatch.setitem(sys.modules, "PyTorchUtils", types.SimpleNamespace(PyTorchUtilsLogic=PyTorchUtilsLogic))
    monkeypatch.setattr(slicer.util, "confirmOkCancelDisplay", lambda *a, **k: calls.append("asked") or True)
    monkeypatch.setattr(slicer.util, "pip_install", lambda requirements: calls.append(("pip", requirements)))
    real = dependencies.installed_version
    monkeypatch.setattr(dependencies, "installed_version",
                        lambda name: {"torch": "2.9.0", "surface-distance": None}.get(name, real(name)))
    _, widget = inference_panel
    widget.ui.installDependenciesButton.click()
    assert calls[0] == "asked" and calls.count("asked") == 1
    assert calls[1] == ("installTorch", False, ">=2.1.2,!=2.9.*")  # 2.9 is out of nnU-Net's range
    assert calls[2][0] == "pip" and calls[2][1][0] == "surface-distance==0.1"
    assert "nnunetv2" not in " ".join(calls[2][1])  # the installed 2.8.1 is in range: kept


# 14 -----------------------------------------------------------------------------------------------
def test_14_cleanup_stops_polling_and_ends_the_run(segmenting):
    import psutil

    _, widget = segmenting
    tree = [psutil.Process(widget._job.process.pid)]
    widget.cleanup()
    assert not widget._pollTimer.isActive()
    _, alive = psutil.wait_procs(tree, timeout=10)
    assert alive == []


def test_14_comparing_runs_happens_off_the_gui_thread(training_panel, validation_layout):
    _, widget = training_panel
    widget._parameterNode.dataset = "987"
    widget.ui.compareButton.click()
    assert widget._comparison is not None and widget._comparePollTimer.isActive()
    assert not widget.ui.compareButton.enabled
    widget._comparison.wait(120)
    widget._comparePollTimer.emit("timeout()")
    assert not widget._comparePollTimer.isActive()
    table = widget.ui.comparisonTableView.mrmlTableNode
    assert table is not None and table.GetNumberOfRows() == 28
    assert "Dice (%)" in widget.ui.logTextEdit.plainText


# 15 -----------------------------------------------------------------------------------------------
def test_15_self_tests_need_no_network_and_no_extra_package():
    result = _python("""
        import sys, unittest
        sys.modules["slicerio"] = None  # not installed: the self-tests must not need it
        sys.path.insert(0, "Testing")
        import slicer_shim
        import slicer
        slicer.util.pip_install = lambda *a, **k: (_ for _ in ()).throw(AssertionError("pip_install in a self-test"))
        slicer_shim.load_module("ImprovedNNUNet/ImprovedNNUNet.py")
        for name in ("ImprovedNNUNet", "ImprovedNNUNetTraining"):
            module = slicer_shim.load_module(f"{name}/{name}.py")
            result = unittest.TextTestRunner(verbosity=0).run(getattr(module, name + "Test")("runTest"))
            print(name, result.wasSuccessful(), result.errors + result.failures)
    """)
    lines = [line for line in result.stdout.splitlines() if line.startswith("ImprovedNNUNet")]
    assert lines == ["ImprovedNNUNet True []", "ImprovedNNUNetTraining True []"], result.stdout + result.stderr
