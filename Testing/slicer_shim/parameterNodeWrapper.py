"""Test double of ``slicer.parameterNodeWrapper`` that enforces the rules of Slicer's real one.

Written here (no Slicer code copied) from reading Slicer's
``Base/Python/slicer/parameterNodeWrapper/`` (branches 5.10, 5.12 and main agree on
everything below). Each rule names the file it comes from:

- wrapper.py ``_processClass``/``_initMethod``: the default is the class attribute, else an
  ``Annotated`` ``Default(...)``, else the serializer's default; constructing the wrapper
  writes every default that is not in the node yet, through the serializer and its validators.
- serializers.py: int/float (stored ``str(value)``; an int parameter refuses a float),
  str, pathlib types (default ``Path()``, i.e. ``.``), bool (stored ``"True"``/``"False"``),
  MRML nodes (node reference; ``None`` allowed), enums, and unions (lists, tuples, dicts and
  parameter packs are not modelled: the modules do not use them): a
  ``Union`` whose members are all nodes has the first member's default, ``None``, which it can
  only write when ``None`` is a member ("Unable to write value 'None' ..."). Every type but
  nodes refuses ``None`` (``NotNone``), every value must be an instance of the type (``IsInstance``).
- validators.py: ``WithinRange``, ``Minimum``, ``Maximum``, ``Choice``, ``Exclude`` are checked
  on every write.
- guiConnectors.py ``createGuiConnector`` and each connector's ``canRepresent``/``__init__``:
  QCheckBox<->bool; QSpinBox/QSlider<->int, whose range becomes the annotation's
  (``WithinRange``/``Minimum``/``Maximum``) or -2^31..2^31-1 (a QSlider needs bounds);
  QDoubleSpinBox/ctkSliderWidget/ctkDoubleSpinBox<->float|int (range from the annotation when
  given, ``Decimals``/``SingleStep`` annotations); QComboBox/ctkComboBox<->int/float/str/bool
  only with a ``Choice`` annotation (else RuntimeError), replacing the combo's items by the
  choices; QComboBox<->Enum; QLineEdit/QLabel/QTextEdit<->str; ctkPathLineEdit and
  ctkDirectoryButton<->pathlib types (writes ``str(value)``); qMRMLNodeComboBox<->node or union
  of nodes (sets ``nodeTypes``). Anything else raises RuntimeError.
- wrapper.py ``_connectGui``/``_connectParametersToGui``/``_disconnectGui``: every widget of the
  ``ui`` object whose ``SlicerParameterName`` property is set is bound (an unknown name is a
  ValueError); binding writes the parameter to the widget; a widget change writes the
  parameter unless the GUI is being updated from the node; a node ModifiedEvent writes every
  bound parameter to its widgets; disconnecting removes both directions.
"""
from __future__ import annotations

import enum
import pathlib
import types
import typing

import slicer
import vtk

SLICER_PARAMETER_NAME = "SlicerParameterName"
PATH_TYPES = (pathlib.Path, pathlib.PosixPath, pathlib.WindowsPath, pathlib.PurePath, pathlib.PurePosixPath,
              pathlib.PureWindowsPath)


# -- annotations (validators.py, default.py, guiConnectors.py) --------------------------------------------
class Validator:
    def validate(self, value) -> None:
        raise NotImplementedError


class NotNone(Validator):
    def validate(self, value) -> None:
        if value is None:
            raise ValueError("Value must not be None")


class IsNone(Validator):
    def validate(self, value) -> None:
        if value is not None:
            raise ValueError("Value must be None")


class IsInstance(Validator):
    def __init__(self, classtype):
        self.classtype = classtype

    def validate(self, value) -> None:
        if value is not None and not isinstance(value, self.classtype):
            raise TypeError(f"Value must be of type '{self.classtype}', is type '{type(value)}' value '{value}'")


class WithinRange(Validator):
    def __init__(self, minimum, maximum):
        self.minimum, self.maximum = minimum, maximum

    def validate(self, value) -> None:
        if not self.minimum <= value <= self.maximum:
            raise ValueError(f"Value must be within range [{self.minimum}, {self.maximum}], is {value}")


class Minimum(Validator):
    def __init__(self, minimum):
        self.minimum = minimum

    def validate(self, value) -> None:
        if value < self.minimum:
            raise ValueError(f"Value must be greater than {self.minimum}, is {value}")


class Maximum(Validator):
    def __init__(self, maximum):
        self.maximum = maximum

    def validate(self, value) -> None:
        if value > self.maximum:
            raise ValueError(f"Value must be less than {self.maximum}, is {value}")


class Choice(Validator):
    def __init__(self, choices):
        self.choices = choices

    def validate(self, value) -> None:
        if value not in self.choices:
            raise ValueError(f"Value is {value}, but must be in one of the following: {self.choices}")


class Exclude(Validator):
    def __init__(self, excludedValues):
        self.excludedValues = excludedValues

    def validate(self, value) -> None:
        if value in self.excludedValues:
            raise ValueError(f"Value is {value}, but must not be an excluded value: {self.excludedValues}")


class Default:
    def __init__(self, value=None, *, generator=None):
        self._value, self._generator = value, generator

    @property
    def value(self):
        return self._generator() if self._generator is not None else self._value


class Decimals:
    def __init__(self, value: int):
        self.value = value


class SingleStep:
    def __init__(self, value):
        self.value = value


def split_annotations(annotation):
    """(type, annotations) of ``Annotated[type, ...]``; (type, ()) of a plain type (util.py)."""
    if typing.get_origin(annotation) is typing.Annotated:
        args = typing.get_args(annotation)
        return args[0], tuple(args[1:])
    return annotation, ()


def _first(annotations, kind):
    return next((a for a in annotations if isinstance(a, kind)), None)


def _is_node_type(kind) -> bool:
    return isinstance(kind, type) and issubclass(kind, slicer.vtkMRMLNode)


def _union_args(kind):
    if typing.get_origin(kind) is typing.Union or isinstance(kind, types.UnionType):
        return typing.get_args(kind)
    return None


def is_node_or_union_of_nodes(kind) -> bool:
    """util.py ``isNodeOrUnionOfNodes``: a node type, or a Union of node types and None."""
    kind = split_annotations(kind)[0]
    if _is_node_type(kind):
        return True
    args = _union_args(kind)
    return args is not None and all(a is type(None) or _is_node_type(split_annotations(a)[0]) for a in args)


# -- serializers (serializers.py) ------------------------------------------------------------------------
class Serializer:
    """Stores one parameter in the node; ``validators`` run on every write (ValidatedSerializer)."""

    def __init__(self, kind, validators=()):
        self.kind, self.validators = kind, list(validators)

    def default(self):
        raise NotImplementedError

    def validate(self, value) -> None:
        for validator in self.validators:
            validator.validate(value)

    def isIn(self, node, name) -> bool:
        return node.HasParameter(name)

    def write(self, node, name, value) -> None:
        self.validate(value)
        self._store(node, name, value)

    def can_write(self, value) -> bool:
        raise NotImplementedError


class NumberSerializer(Serializer):
    def default(self):
        return 0

    def _store(self, node, name, value):
        node.SetParameter(name, str(value))

    def read(self, node, name):
        return self.kind(node.GetParameter(name))

    def can_write(self, value):
        return type(value) in (int, float)


class StringSerializer(Serializer):
    def default(self):
        return ""

    def _store(self, node, name, value):
        node.SetParameter(name, str(value))

    def read(self, node, name):
        return node.GetParameter(name)

    def can_write(self, value):
        return type(value) is str


class PathSerializer(Serializer):
    def default(self):
        return self.kind()

    def _store(self, node, name, value):
        node.SetParameter(name, str(value))

    def read(self, node, name):
        return self.kind(node.GetParameter(name))

    def can_write(self, value):
        return type(value) in PATH_TYPES


class BoolSerializer(Serializer):
    def default(self):
        return False

    def _store(self, node, name, value):
        node.SetParameter(name, "True" if value else "False")

    def read(self, node, name):
        return node.GetParameter(name) == "True"

    def can_write(self, value):
        return type(value) is bool


class EnumSerializer(Serializer):
    def default(self):
        return next(iter(self.kind))

    def _store(self, node, name, value):
        node.SetParameter(name, value.name)

    def read(self, node, name):
        return self.kind[node.GetParameter(name)]

    def can_write(self, value):
        return isinstance(value, enum.Enum)


class NodeSerializer(Serializer):
    def default(self):
        return None

    def _store(self, node, name, value):
        node.SetParameter(name, "")
        node.SetNodeReferenceID(name, value.GetID() if value is not None else None)

    def read(self, node, name):
        return node.GetNodeReference(name)

    def can_write(self, value):
        return isinstance(value, slicer.vtkMRMLNode)


class NoneSerializer(Serializer):
    def default(self):
        return None

    def _store(self, node, name, value):
        node.SetParameter(name, "True")

    def read(self, node, name):
        return None

    def can_write(self, value):
        return value is None


class UnionSerializer(Serializer):
    """Each member stored under ``name.index``; writing picks the first member that takes the value."""

    def __init__(self, kind, members, validators=()):
        super().__init__(kind, validators)
        self.members = members

    def default(self):
        if len(self.members) == 2 and isinstance(self.members[1], NoneSerializer):
            return None
        return self.members[0].default()

    def isIn(self, node, name) -> bool:
        return any(m.isIn(node, f"{name}.{i}") for i, m in enumerate(self.members))

    def _store(self, node, name, value):
        error = None
        for index, member in enumerate(self.members):
            if member.can_write(value):
                try:
                    member.validate(value)
                except Exception as exc:
                    error = exc
                    continue
                for other in range(len(self.members)):
                    node.UnsetParameter(f"{name}.{other}")
                    node.RemoveNodeReferenceIDs(f"{name}.{other}")
                member.write(node, f"{name}.{index}", value)
                return
        if error is not None:
            raise error
        raise TypeError(f"Unable to write value '{value}' of type '{type(value)}'")

    def read(self, node, name):
        for index, member in enumerate(self.members):
            if member.isIn(node, f"{name}.{index}"):
                return member.read(node, f"{name}.{index}")
        raise KeyError(f"Unable to find value for name: {name}")


def create_serializer(annotation) -> Serializer:
    kind, annotations = split_annotations(annotation)
    validators = [a for a in annotations if isinstance(a, Validator)]
    members = _union_args(kind)
    if members is not None:
        return UnionSerializer(kind, [create_serializer(m) for m in members], validators)
    if kind in (int, float):
        base = [NotNone(), IsInstance((int, float) if kind is float else int)]
        return NumberSerializer(kind, base + validators)
    if kind is str:
        return StringSerializer(kind, [NotNone(), IsInstance(str)] + validators)
    if kind in PATH_TYPES:
        return PathSerializer(kind, [NotNone(), IsInstance(kind)] + validators)
    if kind is bool:
        return BoolSerializer(kind, [NotNone(), IsInstance(bool)] + validators)
    if kind is type(None):
        return NoneSerializer(kind, [IsNone()])
    if _is_node_type(kind):
        return NodeSerializer(kind, [IsInstance(kind)] + validators)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return EnumSerializer(kind, [IsInstance(kind)] + validators)
    raise Exception(f"Unable to create serializer for type: {kind}")


# -- GUI connectors (guiConnectors.py) ---------------------------------------------------------------------
class Connector:
    """Reads and writes one widget as the parameter's type; ``signal`` tells of user changes."""

    def __init__(self, widget, signal, read, write):
        self.widget, self.signal, self.read, self.write = widget, signal, read, write
        self._callback = None

    def on_changed(self, callback) -> None:
        if self._callback is not None:
            getattr(self.widget, self.signal).disconnect(self._callback)
        self._callback = callback
        if callback is not None:
            getattr(self.widget, self.signal).connect(callback)


def _set_int_range(widget, annotations):
    within, low, high = (_first(annotations, k) for k in (WithinRange, Minimum, Maximum))
    bounded = within is not None or (low is not None and high is not None)
    if widget.className() == "QSlider" and not bounded:
        raise RuntimeError("Cannot have a connection to QSlider where the int type is unbounded.")
    if within is not None:
        widget.setRange(within.minimum, within.maximum)
        return
    widget.setMinimum(low.minimum if low is not None else -(2 ** 31))
    widget.setMaximum(high.maximum if high is not None else 2 ** 31 - 1)


def _set_float_options(widget, annotations):
    decimals, step = _first(annotations, Decimals), _first(annotations, SingleStep)
    if decimals is not None:
        widget.decimals = decimals.value
    if step is not None:
        widget.singleStep = step.value
    within, low, high = (_first(annotations, k) for k in (WithinRange, Minimum, Maximum))
    if within is not None:
        widget.setRange(within.minimum, within.maximum)
    else:
        if low is not None:
            widget.setMinimum(low.minimum)
        if high is not None:
            widget.setMaximum(high.maximum)


def create_gui_connector(widget, annotation) -> Connector:
    kind, annotations = split_annotations(annotation)
    cls = widget.className()
    if cls == "QCheckBox" and kind is bool:
        return Connector(widget, "toggled", lambda: widget.checked, lambda v: setattr(widget, "checked", v))
    if cls in ("QSlider", "QSpinBox") and kind is int:
        _set_int_range(widget, annotations)
        return Connector(widget, "valueChanged", lambda: widget.value, lambda v: setattr(widget, "value", v))
    if cls in ("QDoubleSpinBox", "ctkSliderWidget", "ctkDoubleSpinBox", "qMRMLSliderWidget", "qMRMLSpinBox") \
            and kind in (float, int):
        _set_float_options(widget, annotations)
        return Connector(widget, "valueChanged", lambda: kind(widget.value), lambda v: setattr(widget, "value", v))
    if cls in ("QComboBox", "ctkComboBox") and kind in (int, float, str, bool):
        choice = _first(annotations, Choice)
        if choice is None:
            raise RuntimeError("ComboBoxToStringableConnector requires the Choice annotation to be used.")
        widget.clear()
        for c in choice.choices:
            widget.addItem(str(c))

        def write_choice(value):
            if value not in choice.choices:
                raise ValueError(f"Unable to find value {value} in choices {choice.choices}")
            widget.currentIndex = list(choice.choices).index(value)

        return Connector(widget, "currentIndexChanged", lambda: choice.choices[widget.currentIndex], write_choice)
    if cls in ("QComboBox", "ctkComboBox") and isinstance(kind, type) and issubclass(kind, enum.Enum):
        widget.clear()
        for member in kind:
            widget.addItem(member.name)
        return Connector(widget, "currentIndexChanged", lambda: list(kind)[widget.currentIndex],
                         lambda v: setattr(widget, "currentIndex", list(kind).index(v)))
    if cls == "QLineEdit" and kind is str:
        def write_text(value):
            if value != widget.text:  # the real connector keeps the cursor when nothing changes
                widget.text = value

        return Connector(widget, "textChanged", lambda: widget.text, write_text)
    if cls == "QLabel" and kind is str:
        return Connector(widget, "linkActivated", lambda: widget.text, lambda v: setattr(widget, "text", v))
    if cls == "QTextEdit" and kind is str:
        return Connector(widget, "textChanged", lambda: widget.plainText, lambda v: setattr(widget, "plainText", v))
    if cls == "ctkPathLineEdit" and kind in PATH_TYPES:
        return Connector(widget, "currentPathChanged", lambda: kind(widget.currentPath),
                         lambda v: setattr(widget, "currentPath", str(v)))
    if cls == "ctkDirectoryButton" and kind in PATH_TYPES:
        return Connector(widget, "directoryChanged", lambda: kind(widget.directory),
                         lambda v: setattr(widget, "directory", str(v)))
    if cls == "qMRMLNodeComboBox" and is_node_or_union_of_nodes(annotation):
        members = _union_args(kind) or (kind,)
        widget.nodeTypes = [m().GetClassName() for m in members if m is not type(None)]
        return Connector(widget, "currentNodeChanged", widget.currentNode, widget.setCurrentNode)
    raise RuntimeError(f"Unable to create GUI connector from datatype '{annotation}' to widget type '{cls}'.")


# -- the wrapper (wrapper.py) -----------------------------------------------------------------------------
def _member(name: str):
    def get(self):
        return self.getValue(name)

    def set(self, value):
        self.setValue(name, value)

    return property(get, set)


def parameterNodeWrapper(classtype=None):
    """Class decorator: ``Wrapper(parameterNode)`` exposes the annotated members on that node."""

    def wrap(cls):
        hints = typing.get_type_hints(cls, include_extras=True)
        parameters = {}
        for name, annotation in hints.items():
            try:
                serializer = create_serializer(annotation)
            except Exception as exc:
                raise Exception(f"Unable to create serializer for {cls} member {name}") from exc
            annotations = split_annotations(annotation)[1]
            if hasattr(cls, name):
                default = Default(getattr(cls, name))
            else:
                default = _first(annotations, Default) or Default(serializer.default())
            parameters[name] = (serializer, default, annotation)
            setattr(cls, name, _member(name))
        for reserved in ("allParameters", "connectGui", "disconnectGui", "getValue", "setValue", "dataType"):
            if reserved in vars(cls):
                raise ValueError(f"Cannot use reserved name '{reserved}' in a parameterNodeWrapper")
        cls.allParameters = parameters

        def __init__(self, parameterNode):
            self.parameterNode = parameterNode
            self._guis: dict[int, dict] = {}
            self._observer_tags: dict[int, int] = {}
            self._next_tag = 0
            self._updating_gui = False
            for pname, (serializer, default, _) in parameters.items():
                if not serializer.isIn(parameterNode, pname):
                    serializer.write(parameterNode, pname, default.value)

        def _check(self, pname):
            if pname not in parameters:
                raise ValueError(f"Cannot find a param with the given name: {pname}")

        def getValue(self, pname):
            _check(self, pname)
            serializer, default, _ = parameters[pname]
            if not serializer.isIn(self.parameterNode, pname):
                serializer.write(self.parameterNode, pname, default.value)
            return serializer.read(self.parameterNode, pname)

        def setValue(self, pname, value):
            _check(self, pname)
            parameters[pname][0].write(self.parameterNode, pname, value)

        def _update_gui(self):
            if self._updating_gui:
                return
            self._updating_gui = True
            try:
                for mapping in self._guis.values():
                    for pname, connector in mapping.items():
                        connector.write(getValue(self, pname))
            finally:
                self._updating_gui = False

        def connectGui(self, ui):
            widgets = {}
            for widget in vars(ui).values():
                pname = widget.property(SLICER_PARAMETER_NAME)
                if pname:
                    widgets[pname] = widget
            for pname in widgets:
                _check(self, pname)
            mapping = {pname: create_gui_connector(w, parameters[pname][2]) for pname, w in widgets.items()}
            tag = self._next_tag
            self._next_tag += 1
            self._guis[tag] = mapping
            for pname, connector in mapping.items():
                connector.write(getValue(self, pname))

                def changed(*_, pname=pname, connector=connector):
                    was_modifying = self.parameterNode.StartModify()  # slicer.util.NodeModify
                    try:
                        if not self._updating_gui:
                            setValue(self, pname, connector.read())
                    finally:
                        self.parameterNode.EndModify(was_modifying)

                connector.on_changed(changed)
            self._observer_tags[tag] = self.parameterNode.AddObserver(
                vtk.vtkCommand.ModifiedEvent, lambda caller, event: _update_gui(self))
            return tag

        def disconnectGui(self, tag):
            for connector in self._guis.pop(tag, {}).values():
                connector.on_changed(None)
            if tag in self._observer_tags:
                self.parameterNode.RemoveObserver(self._observer_tags.pop(tag))

        cls.__init__ = __init__
        cls.getValue, cls.setValue = getValue, setValue
        cls.connectGui, cls.disconnectGui = connectGui, disconnectGui
        cls.dataType = staticmethod(lambda pname: parameters[pname][2])
        cls.default = lambda self, pname: parameters[pname][1]
        cls.StartModify = lambda self: self.parameterNode.StartModify()
        cls.EndModify = lambda self, wasModified: self.parameterNode.EndModify(wasModified)
        cls.AddObserver = lambda self, event, callback, priority=0.0: self.parameterNode.AddObserver(
            event, callback, priority)
        cls.RemoveObserver = lambda self, tag: self.parameterNode.RemoveObserver(tag)
        cls.Modified = lambda self: self.parameterNode.Modified()
        return cls

    return wrap if classtype is None else wrap(classtype)
