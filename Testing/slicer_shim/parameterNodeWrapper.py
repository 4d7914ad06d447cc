"""Test double of ``slicer.parameterNodeWrapper``: typed access to a real parameter node.

``@parameterNodeWrapper`` turns an annotated class into a wrapper around a real
``vtkMRMLScriptedModuleNode``: MRML node members are node references, ``bool``/``int``/
``float``/``str``/``Path`` members are string parameters, ``list`` members are stored as
JSON; class-level values (or ``Annotated[..., Default(value)]``) are the defaults; observer
and modify methods pass through to the node. ``connectGui`` checks that every widget whose
``SlicerParameterName`` property is set names a member (the real one also binds the widget
to it, which needs Qt). Annotation helpers (``WithinRange``, ``Default`` ...) are accepted
and ignored.
"""
from __future__ import annotations

import json
import typing
from pathlib import Path

import slicer


class _Marker:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class WithinRange(_Marker):
    pass


class Minimum(_Marker):
    pass


class Maximum(_Marker):
    pass


class Default(_Marker):
    pass


class Choice(_Marker):
    pass


class Decimals(_Marker):
    pass


class SingleStep(_Marker):
    pass


def _base_type(annotation):
    """``float`` for ``Annotated[float, ...]``, ``vtkMRMLNode`` for ``Optional[vtkMRMLNode]``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _base_type(typing.get_args(annotation)[0])
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        return _base_type(next(a for a in typing.get_args(annotation) if a is not type(None)))
    return origin or annotation


def _markers(annotation) -> tuple:
    """The metadata of ``Annotated[type, marker, ...]`` (empty for a plain type)."""
    return typing.get_args(annotation)[1:] if typing.get_origin(annotation) is typing.Annotated else ()


def _is_node_type(kind) -> bool:
    return isinstance(kind, type) and issubclass(kind, slicer.vtkMRMLNode)


def _decode(kind, text: str):
    if kind is bool:
        return text == "true"
    if kind is list:
        return json.loads(text)
    return kind(text)


def _encode(kind, value) -> str:
    if kind is bool:
        return "true" if value else "false"
    if kind is list:
        return json.dumps(list(value))
    return str(value)


def _member(name: str, kind, default):
    def get(self):
        node = self.parameterNode
        if _is_node_type(kind):
            return node.GetNodeReference(name)
        text = node.GetParameter(name)
        return _decode(kind, text) if text != "" else default

    def set(self, value):
        node = self.parameterNode
        if _is_node_type(kind):
            node.SetNodeReferenceID(name, value.GetID() if value is not None else None)
        else:
            node.SetParameter(name, _encode(kind, value))

    return property(get, set)


# Methods the wrapper passes on to its parameter node, as the real one does.
_FORWARDED = ("AddObserver", "RemoveObserver", "HasObserver", "StartModify", "EndModify", "Modified")


def _forward(method: str):
    return lambda self, *args: getattr(self.parameterNode, method)(*args)


def parameterNodeWrapper(cls):
    """Class decorator: ``Wrapper(parameterNode)`` exposes the annotated members on that node."""
    members = set()
    for name, annotation in typing.get_type_hints(cls, include_extras=True).items():
        kind = _base_type(annotation)
        default = next((m.args[0] for m in _markers(annotation) if isinstance(m, Default)), getattr(cls, name, None))
        if default is None and kind in (bool, int, float, str, list):
            default = kind()
        members.add(name)
        setattr(cls, name, _member(name, kind, default))

    def __init__(self, parameterNode):
        self.parameterNode = parameterNode
        self._guiTags: set[int] = set()

    def connectGui(self, ui) -> int:
        for widget in vars(ui).values():
            parameter = widget.property("SlicerParameterName") if hasattr(widget, "property") else None
            if parameter and parameter not in members:
                raise ValueError(f"widget '{widget.name}' is bound to unknown parameter '{parameter}'")
        tag = max(self._guiTags, default=0) + 1
        self._guiTags.add(tag)
        return tag

    def disconnectGui(self, tag) -> None:
        self._guiTags.discard(tag)

    cls.__init__ = __init__
    cls.connectGui = connectGui
    cls.disconnectGui = disconnectGui
    for method in _FORWARDED:
        setattr(cls, method, _forward(method))
    return cls
