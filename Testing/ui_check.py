"""Static check of a Slicer module widget file against its Qt Designer ``.ui`` file.

``check_widget_ui(py_file, ui_file)`` returns a list of problems (empty when all is well):

- the widget file does not compile;
- ``self.ui.<name>`` / ``ui.<name>`` names a widget the ``.ui`` file lacks;
- ``self.ui.x.connect("signal(args)", slot)`` or ``self.ui.x.signal.connect(slot)`` names a
  signal that the widget's class (inherited signals included) does not have, or the class
  is missing from the signal table (Testing/slicer_shim/widget_signals.py);
- a widget's ``SlicerParameterName`` names no member of the module's
  ``@parameterNodeWrapper`` class.
"""
from __future__ import annotations

import ast
import py_compile
import tempfile
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

from slicer_shim.widget_signals import normalise, signal_names_of, signals_of


@dataclass(frozen=True)
class UiReference:
    name: str
    line: int


@dataclass(frozen=True)
class Connection:
    widget: str
    signal: str  # a full signature ("clicked(bool)") or a bare name ("clicked")
    line: int

    @property
    def by_signature(self) -> bool:
        return "(" in self.signal


def ui_widgets(ui_file: str | Path) -> dict[str, str]:
    """Object name -> class name of every widget in a ``.ui`` file."""
    root = ElementTree.parse(ui_file).getroot()
    return {w.get("name"): w.get("class") for w in root.iter("widget") if w.get("name")}


def ui_parameter_names(ui_file: str | Path) -> dict[str, str]:
    """Widget name -> its ``SlicerParameterName`` dynamic property, for widgets that have one."""
    root = ElementTree.parse(ui_file).getroot()
    names = {}
    for widget in root.iter("widget"):
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName" and prop.find("string") is not None:
                names[widget.get("name")] = prop.find("string").text
    return names


def _ui_name(node: ast.AST) -> str | None:
    """``X`` when ``node`` is ``self.ui.X`` or ``ui.X``."""
    if not isinstance(node, ast.Attribute):
        return None
    owner = node.value
    if isinstance(owner, ast.Name) and owner.id == "ui":
        return node.attr
    if (isinstance(owner, ast.Attribute) and owner.attr == "ui"
            and isinstance(owner.value, ast.Name) and owner.value.id == "self"):
        return node.attr
    return None


def ui_references(tree: ast.AST) -> list[UiReference]:
    return [UiReference(name, node.lineno) for node in ast.walk(tree) if (name := _ui_name(node))]


def signal_connections(tree: ast.AST) -> list[Connection]:
    """Every ``<ui widget>.connect("sig(...)", ...)`` and ``<ui widget>.sig[...].connect(...)``."""
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "connect"):
            continue
        target = node.func.value
        widget = _ui_name(target)
        if widget is not None:
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.append(Connection(widget, node.args[0].value, node.lineno))
            continue
        if isinstance(target, ast.Subscript):  # overload selection: ui.x.valueChanged[int].connect
            target = target.value
        if isinstance(target, ast.Attribute) and (widget := _ui_name(target.value)) is not None:
            found.append(Connection(widget, target.attr, node.lineno))
    return found


def parameter_members(tree: ast.AST) -> set[str] | None:
    """Annotated members of the ``@parameterNodeWrapper`` classes; None when there is none."""
    members = None
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and any(
            (isinstance(d, ast.Name) and d.id == "parameterNodeWrapper")
            or (isinstance(d, ast.Attribute) and d.attr == "parameterNodeWrapper")
            for d in node.decorator_list
        ):
            members = (members or set()) | {
                s.target.id for s in node.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)
            }
    return members


def _signal_problem(connection: Connection, class_name: str) -> str | None:
    try:
        if connection.by_signature:
            known = signals_of(class_name)
            wanted = normalise(connection.signal)
        else:
            known = signal_names_of(class_name)
            wanted = connection.signal
    except KeyError:
        return f"widget class {class_name} of '{connection.widget}' is not in the signal table (widget_signals.py)"
    if wanted not in known:
        return f"{class_name} '{connection.widget}' has no signal {connection.signal}"
    return None


def check_widget_ui(py_files, ui_file: str | Path) -> list[str]:
    """Problems found between a module's Python files (its module file, and the Lib files holding the panel's
    behaviour) and its ``.ui`` file, as ``file:line: message`` strings."""
    py_files = [Path(py_files)] if isinstance(py_files, (str, Path)) else [Path(f) for f in py_files]
    trees = {}
    for py_file in py_files:
        with tempfile.TemporaryDirectory() as scratch:  # keeps the byte code out of the source tree
            try:
                py_compile.compile(str(py_file), cfile=str(Path(scratch) / "module.pyc"), doraise=True)
            except py_compile.PyCompileError as exc:
                return [f"{py_file}: does not compile: {exc.msg.strip().splitlines()[-1]}"]
        trees[py_file] = ast.parse(py_file.read_text(), str(py_file))
    widgets = ui_widgets(ui_file)
    problems = []
    for py_file, tree in trees.items():
        for ref in ui_references(tree):
            if ref.name not in widgets:
                problems.append(f"{py_file}:{ref.line}: ui.{ref.name} is not a widget of {Path(ui_file).name}")
        for connection in signal_connections(tree):
            if connection.widget in widgets:
                problem = _signal_problem(connection, widgets[connection.widget])
                if problem:
                    problems.append(f"{py_file}:{connection.line}: {problem}")
    members = next((m for m in map(parameter_members, trees.values()) if m is not None), None)
    for widget, parameter in ui_parameter_names(ui_file).items():
        if members is None or parameter not in members:
            problems.append(f"{ui_file}: widget '{widget}' is bound to '{parameter}', "
                            f"which is no member of the module's @parameterNodeWrapper class")
    return sorted(set(problems), key=problems.index)
