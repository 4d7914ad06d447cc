"""Test double of PythonQt's ``qt`` module: widgets built from a Qt Designer ``.ui`` file.

Full Slicer's Qt GUI cannot exist on a machine without a display and without Slicer itself,
so tests use these doubles. They model what the modules and Slicer's parameter-node GUI
connectors rely on, as Qt/CTK/qMRML define it:

- signals: a widget accepts a connection only to a signal its class really has
  (widget_signals.py); ``widget.signal.connect(slot)`` picks the first overload, as PythonQt
  does; a test ``emit``s a signal or acts as the user (``user_*`` methods).
- slots that raise: PythonQt prints the exception and the emitting code goes on
  (PythonQtSignalReceiver); here the exception is printed and kept in ``SLOT_ERRORS``.
- values: QSpinBox/QDoubleSpinBox clamp to their range and QDoubleSpinBox rounds to its
  decimals (qabstractspinbox.cpp); QComboBox selects its first item when filled and -1 when
  cleared, each change emitting currentIndexChanged/currentTextChanged (qcombobox.cpp);
  ctkPathLineEdit emits currentPathChanged only for input its validator accepts, synchronously while
  it is being set (CTK Libs/Widgets/ctkPathLineEdit.cpp; the validator comes from nameFilters,
  Libs/Core/ctkUtils.cpp); qMRMLNodeComboBox shows only nodes of
  its scene and of its nodeTypes (Libs/MRML/Widgets/qMRMLNodeComboBox.cxx).
- ``.ui`` loading: classes, names, simple properties, combo items, nesting and the
  ``<connections>`` (e.g. ``mrmlSceneChanged -> setMRMLScene``), as QUiLoader does.
Anything a module file needs beyond this is missing on purpose: add a double for it here.
"""
from __future__ import annotations

import inspect
import traceback
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from .widget_signals import WIDGET_CLASSES, normalise, signals_of

SLOT_ERRORS: list[BaseException] = []  # exceptions raised by slots, in order (PythonQt prints them)


def ordered_signals(class_name: str) -> list[str]:
    """The class's signals, its own first, then inherited ones, each in table order."""
    result, name = [], class_name
    while name is not None:
        base, own = WIDGET_CLASSES[name]
        result += [s for s in own if s not in result]
        name = base
    return result


def inherits(class_name: str, ancestor: str) -> bool:
    name = class_name
    while name is not None:
        if name == ancestor:
            return True
        name = WIDGET_CLASSES[name][0]
    return False


class BoundSignal:
    """``widget.clicked`` in ``widget.clicked.connect(slot)``: the first overload of that name."""

    def __init__(self, widget: "Widget", signature: str):
        self._widget, self._signature = widget, signature

    def connect(self, slot) -> None:
        self._widget._slots.setdefault(self._signature, []).append(slot)

    def disconnect(self, slot=None) -> None:
        slots = self._widget._slots.get(self._signature, [])
        if slot is not None and slot not in slots:
            raise TypeError(f"{self._signature}: the slot to disconnect is not connected")
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
        self.__dict__["_class_name"] = class_name
        self._properties: dict = {}
        self._children: list[Widget] = []
        self._parent: Widget | None = None
        self._slots: dict[str, list] = {}
        self._layout = Layout()
        self.name = name
        self.enabled = True
        self.visible = True
        self.toolTip = ""
        self.text = ""
        for key, value in (properties or {}).items():
            self.setProperty(key, value)

    # -- QObject ---------------------------------------------------------------------------------
    def className(self) -> str:
        return self._class_name

    def isWidgetType(self) -> bool:
        return True

    def children(self) -> list["Widget"]:
        return list(self._children)

    def parent(self):
        return self._parent

    def findChildren(self, kind=None) -> list["Widget"]:
        found = []
        for child in self._children:
            found += [child, *child.findChildren(kind)]
        return found

    def layout(self) -> Layout:
        return self._layout

    def property(self, name: str):
        return self._properties.get(name)

    def setProperty(self, name: str, value) -> None:
        """Designer properties: Qt properties become attributes, dynamic ones (SlicerParameterName) stay properties."""
        self._properties[name] = value
        if name != "SlicerParameterName":
            setattr(self, name, value)

    def setMRMLScene(self, scene) -> None:
        self.mrmlScene = scene
        if "mrmlSceneChanged(vtkMRMLScene*)" in signals_of(self._class_name):
            self.emit("mrmlSceneChanged(vtkMRMLScene*)", scene)

    # -- signals ---------------------------------------------------------------------------------
    def connect(self, signature: str, slot) -> None:
        """PythonQt's ``widget.connect("signal(args)", slot)``; refuses signals the class lacks."""
        signature = normalise(signature)
        if signature not in signals_of(self._class_name):
            raise AttributeError(f"{self._class_name} '{self.name}' has no signal {signature}")
        self._slots.setdefault(signature, []).append(slot)

    def _signature(self, signal: str) -> str:
        if "(" in signal:
            return normalise(signal)
        for signature in ordered_signals(self._class_name):
            if signature.split("(", 1)[0] == signal:
                return signature
        raise AttributeError(f"{self._class_name} '{self.name}' has no signal {signal}")

    def emit(self, signal: str, *args) -> None:
        """Call the slots connected to ``signal`` (a signature, or a name for its first overload)
        as PythonQt does: a slot that takes fewer arguments gets the first ones; an exception
        in a slot is printed and kept in SLOT_ERRORS, and the other slots still run."""
        for slot in list(self._slots.get(self._signature(signal), [])):
            try:
                slot(*args[:_accepted_arguments(slot, len(args))])
            except Exception as exc:  # PythonQt prints it; the emitter is not told
                traceback.print_exc()
                SLOT_ERRORS.append(exc)

    def _emit_all(self, name: str, **by_type) -> None:
        """Emit every overload of ``name``; ``by_type`` gives the argument per parameter type."""
        for signature in ordered_signals(self._class_name):
            if signature.split("(", 1)[0] == name:
                kinds = signature[len(name) + 1:-1]
                args = [by_type[k] for k in kinds.split(",")] if kinds else []
                self.emit(signature, *args)

    def __getattr__(self, name: str):
        if not name.startswith("_") and any(s.split("(", 1)[0] == name for s in signals_of(self._class_name)):
            return BoundSignal(self, self._signature(name))
        raise AttributeError(f"{self._class_name} double '{self.__dict__.get('name', '')}' has no attribute {name}")

    def __repr__(self) -> str:
        return f"<{self._class_name} double '{self.name}'>"


def _accepted_arguments(slot, available: int) -> int:
    try:
        parameters = inspect.signature(slot).parameters.values()
    except (TypeError, ValueError):
        return available
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters):
        return available
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return min(available, sum(p.kind in positional for p in parameters))


QWidget = Widget


class Button(Widget):
    """QAbstractButton: ``checked`` (when ``checkable``), click() as the user does."""

    def __init__(self, *args, **kwargs):
        self.__dict__["_checked"] = False
        super().__init__(*args, **kwargs)
        self.checkable = self.__dict__.get("checkable", inherits(self._class_name, "QCheckBox"))

    @property
    def checked(self) -> bool:
        return self._checked

    @checked.setter
    def checked(self, value: bool) -> None:
        value = bool(value)
        if value != self._checked:
            self.__dict__["_checked"] = value
            self.emit("toggled(bool)", value)
            if inherits(self._class_name, "QCheckBox"):
                self.emit("stateChanged(int)", 2 if value else 0)

    def setChecked(self, value: bool) -> None:
        self.checked = value

    def isChecked(self) -> bool:
        return self._checked

    def click(self) -> None:
        if not self.enabled:
            return
        if self.checkable:
            self.checked = not self._checked
        self._emit_all("clicked", bool=self._checked)


class SpinBox(Widget):
    """QSpinBox / QDoubleSpinBox / ctkSliderWidget / ctkDoubleSpinBox: value clamped to the
    range; the double ones round to ``decimals`` (Qt's default range 0..99, 2 decimals)."""

    def __init__(self, class_name: str, *args, **kwargs):
        integer = class_name in ("QSpinBox", "QSlider")
        self.__dict__.update(_integer=integer, _minimum=0, _maximum=99, _value=0, _decimals=0 if integer else 2)
        super().__init__(class_name, *args, **kwargs)
        self.singleStep = self.__dict__.get("singleStep", 1)

    def _fit(self, value):
        value = min(max(value, self._minimum), self._maximum)
        return int(value) if self._integer else round(float(value), self._decimals)

    @property
    def value(self):
        return self._value

    @value.setter
    def value(self, value) -> None:
        value = self._fit(value)
        if value != self._value:
            self.__dict__["_value"] = value
            self._emit_all("valueChanged", int=value, double=value, QString=str(value))

    def setValue(self, value) -> None:
        self.value = value

    @property
    def minimum(self):
        return self._minimum

    @minimum.setter
    def minimum(self, value) -> None:
        self.setRange(value, max(value, self._maximum))

    @property
    def maximum(self):
        return self._maximum

    @maximum.setter
    def maximum(self, value) -> None:
        self.setRange(min(value, self._minimum), value)

    def setMinimum(self, value) -> None:
        self.minimum = value

    def setMaximum(self, value) -> None:
        self.maximum = value

    def setRange(self, minimum, maximum) -> None:
        convert = int if self._integer else float
        self.__dict__.update(_minimum=convert(minimum), _maximum=convert(maximum))
        self.value = self._value

    @property
    def decimals(self) -> int:
        return self._decimals

    @decimals.setter
    def decimals(self, value: int) -> None:
        self.__dict__["_decimals"] = int(value)
        self.value = self._value

    def user_set(self, value) -> None:
        """The user types a value and leaves the field."""
        self.value = value
        if "editingFinished()" in signals_of(self._class_name):
            self.emit("editingFinished()")


class ComboBox(Widget):
    """QComboBox / ctkComboBox: items, current index and text."""

    def __init__(self, *args, **kwargs):
        self.__dict__.update(_items=[], _index=-1)
        super().__init__(*args, **kwargs)

    @property
    def items(self) -> list[str]:
        return [text for text, _ in self._items]

    def count(self) -> int:
        return len(self._items)

    def itemText(self, index: int) -> str:
        return self._items[index][0] if 0 <= index < len(self._items) else ""

    def itemData(self, index: int):
        return self._items[index][1] if 0 <= index < len(self._items) else None

    def findText(self, text: str) -> int:
        return next((i for i, (t, _) in enumerate(self._items) if t == text), -1)

    def _set_index(self, index: int) -> None:
        if index != self._index:
            self.__dict__["_index"] = index
            self._emit_all("currentIndexChanged", int=index, QString=self.currentText)
            self.emit("currentTextChanged(QString)", self.currentText)

    def addItem(self, text: str, userData=None) -> None:
        self._items.append((str(text), userData))
        if self._index == -1:
            self._set_index(0)

    def addItems(self, texts) -> None:
        for text in texts:
            self.addItem(text)

    def clear(self) -> None:
        self._items.clear()
        self._set_index(-1)

    @property
    def currentIndex(self) -> int:
        return self._index

    @currentIndex.setter
    def currentIndex(self, index: int) -> None:
        self._set_index(index if -1 <= index < len(self._items) else -1)

    def setCurrentIndex(self, index: int) -> None:
        self.currentIndex = index

    @property
    def currentText(self) -> str:
        return self.itemText(self._index)

    def setCurrentText(self, text: str) -> None:
        index = self.findText(text)
        if index >= 0:
            self.currentIndex = index

    def currentData(self):
        return self.itemData(self._index)

    def user_choose(self, text: str) -> None:
        """The user picks the item ``text`` from the list."""
        index = self.findText(text)
        if index < 0:
            raise ValueError(f"{self.name} has no item {text!r}: {self.items}")
        self.currentIndex = index
        self._emit_all("activated", int=index, QString=text)


class LineEdit(Widget):
    """QLineEdit: ``text``; each change emits textChanged, user typing also textEdited."""

    @property
    def text(self) -> str:
        return self.__dict__.get("_text", "")

    @text.setter
    def text(self, value: str) -> None:
        value = str(value)
        if value != self.__dict__.get("_text", ""):
            self.__dict__["_text"] = value
            self.emit("textChanged(QString)", value)

    def setText(self, value: str) -> None:
        self.text = value

    def user_type(self, text: str) -> None:
        """The user clears the field and types ``text`` one key at a time."""
        self.text = ""
        for index in range(1, len(text) + 1):
            self.text = text[:index]
            self.emit("textEdited(QString)", self.text)
        self.emit("editingFinished()")


class PathLineEdit(Widget):
    """ctkPathLineEdit: ``currentPath`` is the line edit's text, set whatever it is; currentPathChanged only
    for text its validator accepts.

    CTK Libs/Widgets/ctkPathLineEdit.cpp: ``setCurrentPath`` calls ``LineEdit->setText``, whose
    textChanged runs ``updateHasValidInput`` **synchronously** (before setCurrentPath returns): it emits
    currentPathChanged when ``hasAcceptableInput()`` and validInputChanged when acceptability flips. The
    validator is a QRegularExpressionValidator built by ``ctk::nameFiltersToRegularExpression``
    (Libs/Core/ctkUtils.cpp) from ``nameFilters``: ``*.csv`` becomes ``.*\\.csv?$``; no usable filter
    gives ``.+`` (any non-empty text)."""

    @property
    def currentPath(self) -> str:
        return self.__dict__.get("_path", "")

    @currentPath.setter
    def currentPath(self, value: str) -> None:
        value = str(value)
        previous_valid = self.__dict__.get("_valid", False)
        self.__dict__["_path"] = value
        valid = self.acceptable(value)
        self.__dict__["_valid"] = valid
        if valid:
            self.emit("currentPathChanged(QString)", value)
        if valid != previous_valid:
            self.emit("validInputChanged(bool)", valid)

    def acceptable(self, text: str) -> bool:
        """QRegularExpressionValidator's Acceptable: the whole text matches the nameFilters' expression."""
        import re

        return re.fullmatch(name_filters_expression(self.__dict__.get("nameFilters") or []), text) is not None

    def setCurrentPath(self, value: str) -> None:
        self.currentPath = value

    def user_type(self, text: str) -> None:
        """The user empties the field and types ``text`` one key at a time."""
        for index in range(0, len(text) + 1):
            self.currentPath = text[:index]


def name_filters_expression(name_filters) -> str:
    """ctk::nameFiltersToRegularExpression (Libs/Core/ctkUtils.cpp): each ``*.ext`` of each filter (the part
    in parentheses of "CSV files (*.csv)", or the filter itself) becomes ``.*\\.ext?$``, joined with ``|``;
    none gives ``.+``."""
    import re

    if isinstance(name_filters, str):
        name_filters = [name_filters]
    parts = []
    for name_filter in name_filters:
        match = re.match(r"^(.*)\(([a-zA-Z0-9_.*? +;#\-\[\]@\{\}/!<>\$%&=^~:\|]*)\)$", name_filter)
        extensions = match.group(2).split() if match else [name_filter]
        for extension in extensions:
            found = re.search(r"\*\.(\w+)", extension)
            if found:
                parts.append(f".*\\.{found.group(1)}?$")
    return "(" + "|".join(parts) + ")" if parts else ".+"


class NodeComboBox(Widget):
    """qMRMLNodeComboBox: the scene's nodes of ``nodeTypes``; ``currentNode()``."""

    def __init__(self, *args, **kwargs):
        self.__dict__.update(_node=None, nodeTypes=[], mrmlScene=None, noneEnabled=False)
        super().__init__(*args, **kwargs)

    def setProperty(self, name: str, value) -> None:
        if name == "nodeTypes" and isinstance(value, str):
            value = [v for v in value.split() if v]
        super().setProperty(name, value)

    def setMRMLScene(self, scene) -> None:
        self.mrmlScene = scene
        self.emit("mrmlSceneChanged(vtkMRMLScene*)", scene)
        if self._node is not None and self._node.GetScene() is not scene:
            self.setCurrentNode(None)

    def _accepts(self, node) -> bool:
        return (node is not None and self.mrmlScene is not None and node.GetScene() is self.mrmlScene
                and any(node.IsA(kind) for kind in self.nodeTypes))

    def currentNode(self):
        if self._node is not None and self._node.GetScene() is not self.mrmlScene:
            self.__dict__["_node"] = None  # removed from the scene meanwhile
        return self._node

    def currentNodeID(self) -> str:
        node = self.currentNode()
        return node.GetID() if node is not None else ""

    def setCurrentNode(self, node) -> None:
        node = node if self._accepts(node) else None
        if node is not self._node:
            self.__dict__["_node"] = node
            self.emit("currentNodeChanged(vtkMRMLNode*)", node)
            self.emit("currentNodeChanged(bool)", node is not None)
            self.emit("currentNodeIDChanged(QString)", node.GetID() if node is not None else "")

    def setCurrentNodeID(self, node_id: str) -> None:
        self.setCurrentNode(self.mrmlScene.GetNodeByID(node_id) if self.mrmlScene and node_id else None)


class SubjectHierarchyComboBox(Widget):
    def __init__(self, *args, **kwargs):
        self.__dict__["_item"] = 0
        super().__init__(*args, **kwargs)

    def currentItem(self) -> int:
        return self._item

    def setCurrentItem(self, item: int) -> None:
        if item != self._item:
            self.__dict__["_item"] = item
            self.emit("currentItemChanged(vtkIdType)", item)


class TextEdit(Widget):
    """QPlainTextEdit / QTextEdit: ``plainText``; a positive ``maximumBlockCount`` (QPlainTextEdit) keeps only
    the last that many lines, as qplaintextedit.cpp removes the first blocks beyond it."""

    def __init__(self, *args, **kwargs):
        self.__dict__["_text"] = ""
        super().__init__(*args, **kwargs)

    @property
    def plainText(self) -> str:
        return self._text

    @plainText.setter
    def plainText(self, value: str) -> None:
        self.__dict__["_text"] = str(value)
        self.emit("textChanged()")

    def setPlainText(self, value: str) -> None:
        self.plainText = value

    def toPlainText(self) -> str:
        return self._text

    def appendPlainText(self, text: str) -> None:
        value = f"{self._text}\n{text}" if self._text else str(text)
        limit = int(self.__dict__.get("maximumBlockCount", 0) or 0)
        if limit > 0:
            value = "\n".join(value.split("\n")[-limit:])
        self.plainText = value

    def clear(self) -> None:
        self.plainText = ""


class ListWidget(Widget):
    def __init__(self, *args, **kwargs):
        self.__dict__["items"] = []
        super().__init__(*args, **kwargs)

    def addItem(self, text: str) -> None:
        self.items.append(str(text))

    def clear(self) -> None:
        self.items.clear()

    @property
    def count(self) -> int:
        return len(self.items)


class TableView(Widget):
    def setMRMLTableNode(self, node) -> None:
        self.mrmlTableNode = node


_KINDS = (("QAbstractButton", Button), ("QComboBox", ComboBox), ("QLineEdit", LineEdit),
          ("ctkPathLineEdit", PathLineEdit), ("qMRMLSubjectHierarchyComboBox", SubjectHierarchyComboBox),
          ("qMRMLNodeComboBox", NodeComboBox), ("QPlainTextEdit", TextEdit), ("QTextEdit", TextEdit),
          ("QListWidget", ListWidget), ("qMRMLTableView", TableView))
_NUMBERS = ("QSpinBox", "QDoubleSpinBox", "QSlider", "ctkSliderWidget", "ctkDoubleSpinBox")


def make_widget(class_name: str, name: str = "", properties: dict | None = None) -> Widget:
    """The double for a widget of ``class_name`` (chosen by its nearest modelled base class)."""
    if class_name not in WIDGET_CLASSES:
        raise TypeError(f"{class_name} is not in the widget signal table; add it to widget_signals.py")
    for number in _NUMBERS:
        if inherits(class_name, number):
            return SpinBox(class_name, name, properties)
    for base, kind in _KINDS:
        if inherits(class_name, base):
            return kind(class_name, name, properties)
    return Widget(class_name, name, properties)


class QTimer(Widget):
    """A timer that fires only when a test calls ``emit("timeout()")``."""

    def __init__(self, parent=None):
        super().__init__("QTimer")
        self.interval = 0
        self.active = False
        self.singleShot = False

    def start(self, msec: int | None = None) -> None:
        self.interval = self.interval if msec is None else msec
        self.active = True

    def stop(self) -> None:
        self.active = False

    def isActive(self) -> bool:
        return self.active


class QSettings:
    """The application's settings (Qt's qsettings.h: ``value(key, defaultValue)``, ``setValue(key, value)``,
    ``remove(key)``). Slicer's ``QSettings()`` is its one settings file per user, so what one module widget
    writes, a widget made later (a Slicer started again) reads: here one store per test process, which
    ``SETTINGS.clear()`` empties. PythonQt returns a stored string as ``str`` and the default when unset."""

    def value(self, key: str, defaultValue=None):
        return SETTINGS.get(key, defaultValue)

    def setValue(self, key: str, value) -> None:
        SETTINGS[key] = value

    def remove(self, key: str) -> None:
        SETTINGS.pop(key, None)


SETTINGS: dict = {}


class QMessageBox:
    """Button and icon constants only: the application double runs in testing mode, where
    ``slicer.util.errorDisplay`` and friends log the message instead of showing a box."""

    Ok, Cancel, Yes, No, Retry, Close = 0x400, 0x400000, 0x4000, 0x10000, 0x80000, 0x200000
    Information, Warning, Critical, Question = 1, 2, 3, 4


class Qt:
    WaitCursor = 3


OVERRIDE_CURSORS: list = []  # the application's override-cursor stack (QGuiApplication keeps one)
CURSOR_LOG: list = []  # ("set", cursor) / ("restore", cursor) in order, for tests


class QApplication:
    """QGuiApplication's override cursor (qguiapplication.cpp): ``setOverrideCursor`` pushes onto a stack,
    ``restoreOverrideCursor`` pops it; ``slicer.util.WaitCursor`` uses these, ``tryWithErrorDisplay(waitCursor=
    True)`` the same through ``slicer.app``."""

    @staticmethod
    def setOverrideCursor(cursor) -> None:
        OVERRIDE_CURSORS.append(cursor)
        CURSOR_LOG.append(("set", cursor))

    @staticmethod
    def restoreOverrideCursor() -> None:
        if OVERRIDE_CURSORS:
            CURSOR_LOG.append(("restore", OVERRIDE_CURSORS.pop()))

    @staticmethod
    def overrideCursor():
        return OVERRIDE_CURSORS[-1] if OVERRIDE_CURSORS else None


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
    """Builds widget doubles from a ``.ui`` file: classes, names, simple properties, combo
    items, nesting, and the signal/slot connections of ``<connections>``."""

    def load(self, qfile: QFile) -> Widget:
        document = ElementTree.parse(qfile.path).getroot()
        root = _build(document.find("widget"))
        by_name = {w.name: w for w in [root, *root.findChildren()]}
        for connection in document.iter("connection"):
            sender, receiver = by_name[connection.findtext("sender")], by_name[connection.findtext("receiver")]
            slot_name = connection.findtext("slot").split("(", 1)[0]
            sender.connect(connection.findtext("signal"), getattr(receiver, slot_name))
        return root


def _property_value(element):
    for kind, convert in (("string", str), ("bool", lambda t: t == "true"), ("number", int), ("double", float),
                          ("set", str), ("enum", str)):
        child = element.find(kind)
        if child is not None:
            return convert(child.text or "")
    child = element.find("stringlist")
    if child is not None:
        return [s.text or "" for s in child.findall("string")]
    return None


def _build(element) -> Widget:
    properties = {}
    for prop in element.findall("property"):
        value = _property_value(prop)
        if value is not None:
            properties[prop.get("name")] = value
    widget = make_widget(element.get("class"), element.get("name", ""), properties)
    for item in element.findall("item"):
        text = item.find("property/string")
        widget.addItem(text.text if text is not None else "")
    widget._children = [_build(child) for child in _child_widgets(element)]
    for child in widget._children:
        child._parent = widget
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
