"""Test double of ``slicer.ScriptedLoadableModule`` (full Slicer's Qt-based module base classes).

Module, widget, logic and test base classes with the attributes and methods module files
use. The logic's parameter node is a real ``vtkMRMLScriptedModuleNode`` in the real
slicer-core scene ``slicer.mrmlScene``; the widget's parent is a ``qt.Widget`` double.
"""
from __future__ import annotations

import logging
import os
import unittest

import slicer

from . import qt


class ModuleParent:
    """Stands for the qSlicerScriptedLoadableModule that Slicer passes to a module class."""

    def __init__(self, path: str):
        self.path = path
        self.title = ""
        self.categories: list[str] = []
        self.dependencies: list[str] = []
        self.contributors: list[str] = []
        self.helpText = ""
        self.acknowledgementText = ""
        self.icon = None
        self.hidden = False
        self.isEntered = False


class ScriptedLoadableModule:
    def __init__(self, parent: ModuleParent):
        self.parent = parent
        self.moduleName = type(self).__name__

    def getDefaultModuleDocumentationLink(self, docPage: str | None = None) -> str:
        return f'<p>See <a href="https://slicer.readthedocs.io/">the documentation</a> of {self.moduleName}.</p>'


class ScriptedLoadableModuleWidget:
    def __init__(self, parent=None):
        if parent is None:
            parent = qt.Widget("qSlicerWidget")  # stands for qSlicerScriptedLoadableModuleWidget
            parent.isEntered = False
        self.parent = parent
        self.layout = self.parent.layout()
        self.moduleName = type(self).__name__.removesuffix("Widget")
        self.developerMode = False

    def resourcePath(self, filename: str) -> str:
        """Path of ``Resources/<filename>`` next to the module file, as in Slicer."""
        return os.path.join(os.path.dirname(slicer.util.modulePath(self.moduleName)), "Resources", filename)

    def setup(self) -> None:
        pass

    def cleanup(self) -> None:
        pass

    def enter(self) -> None:
        pass

    def exit(self) -> None:
        pass

    def onReload(self) -> None:
        pass


class ScriptedLoadableModuleLogic:
    def __init__(self, parent=None):
        self.moduleName = type(self).__name__.removesuffix("Logic")

    def getParameterNode(self):
        """The module's singleton ``vtkMRMLScriptedModuleNode`` in ``slicer.mrmlScene`` (created if missing)."""
        scene = slicer.mrmlScene
        node = scene.GetSingletonNode(self.moduleName, "vtkMRMLScriptedModuleNode")
        if node is None:
            node = scene.CreateNodeByClass("vtkMRMLScriptedModuleNode")
            node.UnRegister(None)
            node.SetSingletonTag(self.moduleName)
            node.SetName(scene.GenerateUniqueName(self.moduleName))
            node = scene.AddNode(node)
        return node


class ScriptedLoadableModuleTest(unittest.TestCase):
    def delayDisplay(self, message: str, requestedDelay: int = 0) -> None:
        logging.info(message)

    def takeScreenshot(self, name: str, description: str, type=-1) -> None:
        logging.info("screenshot %s: %s", name, description)
