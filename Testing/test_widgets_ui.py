"""Module widgets against their .ui files: statically (ui_check) and by running them on the shim.

The Qt GUI cannot exist here, so the runtime half uses the test doubles of
Testing/slicer_shim (widgets built from the .ui file, strict about signals) together with
real slicer-core scenes and nodes.
"""
import unittest
from pathlib import Path

import pytest

import slicer_shim
from ui_check import check_widget_ui, signal_connections, ui_references, ui_widgets

REPO = Path(__file__).resolve().parent.parent
MODULES = ["ImprovedNNUNet", "ImprovedNNUNetTraining"]


# The module file and the Lib files that hold the panel's behaviour (they use the module's ui).
PANEL_FILES = {"ImprovedNNUNet": ["ImprovedNNUNet/ImprovedNNUNetLib/panels/segment_panel.py"],
               "ImprovedNNUNetTraining": ["ImprovedNNUNetTraining/ImprovedNNUNetTrainingLib/panels/training_panel.py"]}
PLUMBING = "ImprovedNNUNet/ImprovedNNUNetLib/panels/plumbing.py"


def module_files(name):
    return REPO / name / f"{name}.py", REPO / name / "Resources" / "UI" / f"{name}.ui"


def python_files(name):
    return [module_files(name)[0], *(REPO / f for f in PANEL_FILES[name]), REPO / PLUMBING]


@pytest.mark.parametrize("name", MODULES)
def test_widget_matches_its_ui_file(name):
    assert check_widget_ui(python_files(name), module_files(name)[1]) == []


@pytest.mark.parametrize("name", MODULES)
def test_checker_sees_the_widgets_uses(name):
    """Guards against a checker that passes because it finds nothing to check."""
    import ast

    _, ui_file = module_files(name)
    trees = [ast.parse(f.read_text()) for f in python_files(name)]
    assert {"applyButton", "progressBar", "logTextEdit"} <= {r.name for tree in trees for r in ui_references(tree)}
    assert any(c.widget == "applyButton" and c.signal == "clicked(bool)" for tree in trees
               for c in signal_connections(tree))
    assert ui_widgets(ui_file)["applyButton"] == "QPushButton"


BROKEN_UI = """<?xml version="1.0" encoding="UTF-8"?>
<ui version="4.0">
 <widget class="qMRMLWidget" name="Broken">
  <layout class="QVBoxLayout">
   <item>
    <widget class="QPushButton" name="applyButton"/>
   </item>
   <item>
    <widget class="ctkSliderWidget" name="thresholdSlider"/>
   </item>
   <item>
    <widget class="QFancyWidget" name="fancy"/>
   </item>
   <item>
    <widget class="QSpinBox" name="epochsSpinBox">
     <property name="SlicerParameterName" stdset="0">
      <string>epoch</string>
     </property>
    </widget>
   </item>
  </layout>
 </widget>
</ui>
"""

BROKEN_WIDGET = '''
from slicer.parameterNodeWrapper import parameterNodeWrapper


@parameterNodeWrapper
class BrokenParameterNode:
    epochs: int = 10


class BrokenWidget:
    def setup(self):
        self.ui.applyButton.connect("clicked(bool)", self.onApply)         # fine
        self.ui.applyButton.connect("clikced(bool)", self.onApply)         # misspelt signal
        self.ui.thresholdSlider.connect("valueChanged(int)", self.onApply)  # ctkSliderWidget sends double
        self.ui.thresholdSlider.valueChanged.connect(self.onApply)          # fine
        self.ui.applyButton.currentNodeChanged.connect(self.onApply)       # a combo box signal
        self.ui.fancy.connect("clicked()", self.onApply)                   # class not in the table
        self.ui.missingButton.enabled = False                              # not in the .ui file

    def onApply(self, *args):
        ui = self.ui
        ui.progressBar.value = 0                                           # not in the .ui file
'''


def test_checker_reports_every_mismatch(tmp_path):
    ui_file = tmp_path / "Broken.ui"
    ui_file.write_text(BROKEN_UI)
    py_file = tmp_path / "Broken.py"
    py_file.write_text(BROKEN_WIDGET)
    problems = check_widget_ui(py_file, ui_file)
    text = "\n".join(problems)
    assert "QPushButton 'applyButton' has no signal clikced(bool)" in text
    assert "ctkSliderWidget 'thresholdSlider' has no signal valueChanged(int)" in text
    assert "QPushButton 'applyButton' has no signal currentNodeChanged" in text
    assert "QFancyWidget of 'fancy' is not in the signal table" in text
    assert "ui.missingButton is not a widget" in text
    assert "ui.progressBar is not a widget" in text
    assert "'epochsSpinBox' is bound to 'epoch'" in text
    assert len(problems) == 7


def test_checker_reports_a_file_that_does_not_compile(tmp_path):
    ui_file = tmp_path / "Broken.ui"
    ui_file.write_text(BROKEN_UI)
    py_file = tmp_path / "Broken.py"
    py_file.write_text("class BrokenWidget:\n    def setup(self)\n        pass\n")
    problems = check_widget_ui(py_file, ui_file)
    assert len(problems) == 1 and "does not compile" in problems[0]


def test_inherited_signals_count():
    from slicer_shim.widget_signals import signals_of

    assert "clicked(bool)" in signals_of("ctkCollapsibleButton")  # from QAbstractButton
    assert "contentsCollapsed(bool)" in signals_of("ctkCollapsibleButton")
    assert "mrmlSceneChanged(vtkMRMLScene*)" in signals_of("qMRMLSegmentSelectorWidget")  # from qMRMLWidget
    assert "destroyed()" in signals_of("QProgressBar")  # from QObject
    assert "clicked(bool)" not in signals_of("QComboBox")


@pytest.mark.parametrize("name", MODULES)
def test_widget_sets_up_on_the_shim(name):
    """setup() runs for real: slicer.util.loadUI builds the .ui's widgets as strict doubles."""
    module = slicer_shim.load_module(REPO / name / f"{name}.py")
    widget = getattr(module, f"{name}Widget")()
    widget.setup()
    _, ui_file = module_files(name)
    assert set(vars(widget.ui)) == set(ui_widgets(ui_file))
    assert widget.ui.applyButton.enabled is False  # nothing chosen yet
    widget.cleanup()


@pytest.mark.parametrize("name", MODULES)
def test_module_self_test_passes_on_slicer_core(name):
    """The module's ScriptedLoadableModuleTest, run with real slicer-core nodes and the shim."""
    module = slicer_shim.load_module(REPO / name / f"{name}.py")
    result = unittest.TextTestRunner(verbosity=0).run(getattr(module, f"{name}Test")("runTest"))
    assert result.wasSuccessful(), result.errors + result.failures


@pytest.mark.parametrize("name", MODULES)
def test_module_describes_itself(name):
    import slicer

    slicer_shim.load_module(REPO / name / f"{name}.py")
    parent = getattr(slicer.modules, name.lower())
    assert parent.categories == ["Segmentation"]
    assert parent.title.startswith("Improved nnU-Net")
    assert parent.contributors and parent.helpText and parent.acknowledgementText



def test_shim_widgets_are_strict_about_signals():
    from slicer_shim.qt import Widget

    button = Widget("QPushButton", "applyButton")
    with pytest.raises(AttributeError, match="has no signal clikced"):
        button.connect("clikced(bool)", print)
    with pytest.raises(AttributeError, match="has no attribute currentNodeChanged"):
        button.currentNodeChanged.connect(print)


def test_shim_slots_get_the_arguments_they_accept():
    """As in PythonQt, a slot taking fewer arguments than the signal carries gets the first ones."""
    from slicer_shim.qt import Widget

    calls = []
    box = Widget("QCheckBox", "invertCheckBox")
    box.connect("toggled(bool)", lambda: calls.append("none"))
    box.connect("toggled(bool)", lambda checked: calls.append(checked))
    box.toggled.connect(lambda *args: calls.append(args))
    box.emit("toggled(bool)", True)
    assert calls == ["none", True, (True,)]


def test_shim_error_dialogs_are_logged(caplog):
    slicer = slicer_shim.install()
    slicer.util.errorDisplay("model folder has no fold_0")
    assert "model folder has no fold_0" in caplog.text


def test_shim_parameter_node_wrapper_stores_typed_values_in_a_real_node():
    from typing import Annotated

    slicer = slicer_shim.install()
    from slicer.parameterNodeWrapper import Default, WithinRange, parameterNodeWrapper

    @parameterNodeWrapper
    class Parameters:
        volume: slicer.vtkMRMLScalarVolumeNode
        tau: Annotated[float, WithinRange(0, 10), Default(1.0)]
        mirror: bool = True

    scene = slicer.vtkMRMLScene()
    node = scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode")
    parameters = Parameters(node)
    assert (parameters.volume, parameters.tau, parameters.mirror) == (None, 1.0, True)
    volume = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")
    parameters.volume, parameters.tau, parameters.mirror = volume, 2.5, False
    assert node.GetNodeReference("volume") is volume
    assert (node.GetParameter("tau"), node.GetParameter("mirror")) == ("2.5", "False")  # BoolSerializer's text
    assert (Parameters(node).tau, Parameters(node).mirror) == (2.5, False)
