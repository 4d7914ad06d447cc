"""Test double of PythonQt's ``qt`` module: widgets built from a Qt Designer ``.ui`` file.

Full Slicer's Qt GUI cannot exist on a machine without a display and without Slicer itself,
so tests use these doubles. A ``Widget`` knows its class name, object name, designer
properties and children; it accepts a connection only to a signal its class really has
(Testing/slicer_shim/widget_signals.py) and lets a test ``emit`` that signal. Anything a
module file needs beyond this is missing on purpose: add a double for it here.
"""
from __future__ import annotations

import inspect
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from .widget_signals import WIDGET_CLASSES, normalise, signal_names_of, signals_of


class BoundSignal:
    """``widget.clicked`` in ``widget.clicked.connect(slot)``."""

    def __init__(self, widget: "Widget", name: str):
        self._widget, self._name = widget, name

    def connect(self, slot) -> None:
        self._widget._slots.setdefault(self._name, []).append(slot)

    def disconnect(self, slot=None) -> None:
        slots = self._widget._slots.get(self._name, [])
        slots[:] = [] if slot is None else [s for s in slots if s != slot]


class Layout:
    """A layout that only remembers what was added to it."""

    def __init__(self):
        self.items: list = []

    def addWidget(self, widget, *args) -> None:
        self.items.append(widget)

    def addStretch(self, *args) -> None:
        self.items.append(None)


class Widget:
    """A widget of a given Qt/CTK/Slicer class, with strict signal connections."""

    def __init__(self, class_name: str = "QWidget", name: str = "", properties: dict | None = None):
        if class_name not in WIDGET_CLASSES:
            raise TypeError(f"{class_name} is not in the widget signal table; add it to widget_signals.py")
        self._class_name = class_name
        self._properties = dict(properties or {})
        self._children: list[Widget] = []
        self._slots: dict[str, list] = {}
        self._layout = Layout()
        self.name = name
        self.enabled = True
        self.visible = True
        for key, value in self._properties.items():
            setattr(self, key, value)

    def className(self) -> str:
        return self._class_name

    def children(self) -> list["Widget"]:
        return list(self._children)

    def layout(self) -> Layout:
        return self._layout

    def property(self, name: str):
        return self._properties.get(name)

    def setProperty(self, name: str, value) -> None:
        self._properties[name] = value

    def setMRMLScene(self, scene) -> None:
        self.mrmlScene = scene

    # Content of item and text widgets (QComboBox items, QPlainTextEdit text), kept for tests to read.
    def addItem(self, text: str, userData=None) -> None:
        self.items = [*self.__dict__.get("items", []), text]

    def clear(self) -> None:
        self.items = []
        self.plainText = ""

    def appendPlainText(self, text: str) -> None:
        previous = self.__dict__.get("plainText", "")
        self.plainText = f"{previous}\n{text}" if previous else text

    def connect(self, signature: str, slot) -> None:
        """PythonQt's ``widget.connect("signal(args)", slot)``; refuses signals the class lacks."""
        signature = normalise(signature)
        if signature not in signals_of(self._class_name):
            raise AttributeError(f"{self._class_name} '{self.name}' has no signal {signature}")
        self._slots.setdefault(signature.split("(", 1)[0], []).append(slot)

    def emit(self, signal: str, *args) -> None:
        """Call the slots connected to ``signal`` (a name or a signature) as PythonQt does: a slot
        that takes fewer arguments than the signal carries gets only the first ones."""
        for slot in list(self._slots.get(signal.split("(", 1)[0], [])):
            slot(*args[:_accepted_arguments(slot, len(args))])

    def __getattr__(self, name: str):
        if not name.startswith("_") and name in signal_names_of(self._class_name):
            return BoundSignal(self, name)
        raise AttributeError(f"{self._class_name} double '{self.__dict__.get('name', '')}' has no attribute {name}")


def _accepted_arguments(slot, available: int) -> int:
    parameters = inspect.signature(slot).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters):
        return available
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return min(available, sum(p.kind in positional for p in parameters))


QWidget = Widget


class QTimer(Widget):
    """A timer that fires only when a test calls ``emit("timeout()")``."""

    def __init__(self, parent=None):
        super().__init__("QTimer")
        self.interval = 0
        self.active = False

    def start(self, msec: int | None = None) -> None:
        self.interval = self.interval if msec is None else msec
        self.active = True

    def stop(self) -> None:
        self.active = False

    def isActive(self) -> bool:
        return self.active


class QMessageBox:
    """Button and icon constants only: the application double runs in testing mode, where
    ``slicer.util.errorDisplay`` and friends log the message instead of showing a box."""

    Ok, Cancel, Yes, No = 0x400, 0x400000, 0x4000, 0x10000
    Information, Warning, Critical, Question = 1, 2, 3, 4


class QFile:
    """Just enough of QFile for ``slicer.util.loadUI``."""

    ReadOnly = 1

    def __init__(self, path):
        self.path = Path(str(path))

    def exists(self) -> bool:
        return self.path.is_file()

    def open(self, mode) -> bool:
        return self.exists()


class QUiLoader:
    """Builds ``Widget`` doubles from a ``.ui`` file: classes, names, simple properties, nesting."""

    def load(self, qfile: QFile) -> Widget:
        root = ElementTree.parse(qfile.path).getroot().find("widget")
        return _build(root)


def _property_value(element):
    for kind, convert in (("string", str), ("bool", lambda t: t == "true"), ("number", int), ("double", float)):
        child = element.find(kind)
        if child is not None:
            return convert(child.text or "")
    return None


def _build(element) -> Widget:
    properties = {}
    for prop in element.findall("property"):
        value = _property_value(prop)
        if value is not None:
            properties[prop.get("name")] = value
    widget = Widget(element.get("class"), element.get("name", ""), properties)
    widget._children = [_build(child) for child in _child_widgets(element)]
    return widget


def _child_widgets(element):
    """The widgets directly inside ``element``, looking through layouts and layout items."""
    for child in element:
        if child.tag == "widget":
            yield child
        elif child.tag in ("layout", "item"):
            yield from _child_widgets(child)


def __getattr__(name: str):
    raise AttributeError(f"the test double of qt has no {name}; add a double for it in Testing/slicer_shim/qt.py")
