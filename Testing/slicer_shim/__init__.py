"""Test-only stand-in for the parts of full 3D Slicer that the PyPI ``slicer-core`` lacks.

THIS IS A TEST DOUBLE of Slicer's Qt GUI layer, which cannot exist here (no Slicer
application, no display, no PythonQt). It provides ``qt``, ``ctk``, ``slicer.app``,
``slicer.ScriptedLoadableModule``, ``slicer.parameterNodeWrapper`` and ``slicer.i18n`` so
that tests can import and exercise the module files (ImprovedNNUNet.py,
ImprovedNNUNetTraining.py). Everything slicer-core has stays real: MRML nodes, the scene
(``slicer.mrmlScene`` is a real ``vtkMRMLScene``), ``slicer.util`` (``loadUI`` and
``childWidgetVariables`` run unchanged on the ``qt`` doubles).

Usage in a test::

    import slicer_shim
    module = slicer_shim.load_module(REPO / "ImprovedNNUNet" / "ImprovedNNUNet.py")
    logic = module.ImprovedNNUNetLogic()
"""
from __future__ import annotations

import importlib.util
import sys
import tempfile
import types
from pathlib import Path


class Application:
    """Stands for ``slicer.app`` started in testing mode: no event loop, no main window; message
    boxes of ``slicer.util`` (``errorDisplay`` ...) are logged instead of shown."""

    applicationName = "Slicer"

    def __init__(self):
        self.connections: list[tuple[str, object]] = []
        self.temporaryPath = tempfile.gettempdir()

    def connect(self, signature: str, slot) -> None:
        self.connections.append((signature, slot))

    def processEvents(self) -> None:
        pass

    # qSlicerApplication is a QApplication: the override cursor is the application's (see qt.QApplication)
    def setOverrideCursor(self, cursor) -> None:
        from .qt import QApplication

        QApplication.setOverrideCursor(cursor)

    def restoreOverrideCursor(self) -> None:
        from .qt import QApplication

        QApplication.restoreOverrideCursor()

    def testingEnabled(self) -> bool:
        return True


def install():
    """Register the doubles (once) and return the ``slicer`` package."""
    import slicer

    if getattr(slicer, "app", None) is not None:
        return slicer
    from . import ScriptedLoadableModule, ctk, i18n, parameterNodeWrapper, qt

    sys.modules.setdefault("qt", qt)
    sys.modules.setdefault("ctk", ctk)
    for name, module in (
        ("ScriptedLoadableModule", ScriptedLoadableModule),
        ("parameterNodeWrapper", parameterNodeWrapper),
        ("i18n", i18n),
    ):
        sys.modules[f"slicer.{name}"] = module
        setattr(slicer, name, module)
    slicer.app = Application()
    if getattr(slicer, "mrmlScene", None) is None:
        slicer.mrmlScene = slicer.vtkMRMLScene()
    slicer.modules = types.SimpleNamespace()
    return slicer


def load_module(path: str | Path) -> types.ModuleType:
    """Import a scripted module file and register it as Slicer would.

    The module class is instantiated with a ``ModuleParent`` double, which becomes
    ``slicer.modules.<name in lower case>`` (so ``slicer.util.modulePath`` and the widget's
    ``resourcePath`` work).
    """
    slicer = install()
    from .ScriptedLoadableModule import ModuleParent

    path = Path(path).resolve()
    name = path.stem
    # Slicer puts each scripted module's folder on sys.path (not on PYTHONPATH, so children of
    # the application do not inherit it): qSlicerScriptedLoadableModule / qSlicerCorePythonManager.
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    parent = ModuleParent(str(path))
    getattr(module, name)(parent)
    setattr(slicer.modules, name.lower(), parent)
    return module
