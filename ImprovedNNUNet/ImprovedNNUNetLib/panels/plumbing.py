"""Plumbing both Slicer panels share: path fields kept in step with the parameter node, and reloading the Libs.

Plain Python (no ``qt`` import): it works on the widget objects the panel hands it.

The path parameters are plain text that the panel keeps in step itself: Slicer's Path connector shows an unset
``Path()`` as "." and rewrites the field on every keystroke. A ``ctkPathLineEdit`` emits
``currentPathChanged``/``validInputChanged`` synchronously inside ``setCurrentPath`` (ctkPathLineEdit.cpp,
``updateHasValidInput``), so while the panel writes several fields (a scene load or close changes several
parameters at once) the fields not written yet still show old values: storing must wait until all are written.
"""
from __future__ import annotations

import sys


def path_is_set(path) -> bool:
    """True for a chosen path ("" is unset; "." is what older scenes stored for an unset Path)."""
    return path is not None and str(path).strip() not in ("", ".")


def drop_lib_modules(packages) -> None:
    """Forget every imported module of ``packages`` so that the next import reads the files again, all of them
    together (reloading one by one leaves modules holding the previous copy of a class, and ``except UserError``
    then misses the errors other modules raise)."""
    for name in [n for n in sys.modules if n.split(".")[0] in packages]:
        del sys.modules[name]


class PathFields:
    """``{parameter name: ctkPathLineEdit name}`` of a panel's ``ui``, kept in step with its parameter node."""

    def __init__(self, ui, fields: dict[str, str]):
        self.ui = ui
        self.fields = dict(fields)
        self.writing = False

    def connect(self, slot) -> None:
        """``slot`` runs when the user changes a field (an emptied field included: validInputChanged)."""
        for widget_name in self.fields.values():
            field = getattr(self.ui, widget_name)
            field.connect("currentPathChanged(QString)", slot)
            field.connect("validInputChanged(bool)", slot)

    def store(self, parameters) -> None:
        """The fields as typed into ``parameters`` (not while :meth:`show` writes them)."""
        if parameters is None or self.writing:
            return
        for name, widget_name in self.fields.items():
            text = getattr(self.ui, widget_name).currentPath.strip()
            if getattr(parameters, name) != text:
                setattr(parameters, name, text)

    def show(self, parameters) -> None:
        """The fields from ``parameters``, each written only where it differs (typing is never disturbed)."""
        self.writing = True
        try:
            for name, widget_name in self.fields.items():
                value = getattr(parameters, name)
                field = getattr(self.ui, widget_name)
                if field.currentPath != value:
                    field.currentPath = value if path_is_set(value) else ""
        finally:
            self.writing = False
