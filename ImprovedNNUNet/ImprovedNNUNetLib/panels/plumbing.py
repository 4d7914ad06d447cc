"""Plumbing both Slicer panels share: the parameter node and path fields kept in step with the widgets, entering,
leaving and reloading, one way of showing errors, and the dependency installer.

No ``qt`` import: it works on the widget objects the panel hands it, through ``slicer.util`` and ``vtk``.

The path parameters are plain text that the panel keeps in step itself: Slicer's Path connector shows an unset
``Path()`` as "." and rewrites the field on every keystroke. A ``ctkPathLineEdit`` emits
``currentPathChanged``/``validInputChanged`` synchronously inside ``setCurrentPath`` (ctkPathLineEdit.cpp,
``updateHasValidInput``), so while the panel writes several fields (a scene load or close changes several
parameters at once) the fields not written yet still show old values: storing must wait until all are written.
"""
from __future__ import annotations

import sys


def _(text: str) -> str:
    """Slicer's translation of a message (the text itself outside Slicer)."""
    try:
        from slicer.i18n import tr
    except ImportError:
        return text
    return tr(text)


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


def guarded(action, what: str, waitCursor: bool = True):
    """Both panels' one way of running a user action: ``action()`` under a wait cursor; any error is shown in one
    dialog, ``what`` then the error's one line (the traceback under the dialog's details; Slicer's
    ``errorDisplay`` logs it instead in testing mode), and None is returned; else ``action``'s result."""
    import traceback

    import slicer.util

    try:
        with slicer.util.WaitCursor(show=waitCursor):
            return action()
    except Exception as exc:  # UserError and anything unexpected reach the user in one dialog
        slicer.util.errorDisplay(f"{what}\n\n{exc}", detailedText=traceback.format_exc())
        return None


def install_dependencies_interactively(logic, log) -> None:
    """Ask once, then install PyTorch (PyTorch extension) and the missing packages through ``logic`` (a
    ``SegmentPanelLogic``); errors in one dialog (none of ours when Slicer's pip_install showed its own, Slicer
    5.12+), ``log(line)`` for notes. Both panels' "Install dependencies" buttons call this."""
    import slicer.util

    from ImprovedNNUNetLib.core.dependencies import InstallFailureShown

    missing = logic.missingDependencies()
    question = _("Install PyTorch (through the PyTorch extension) if missing, then {packages}?").format(
        packages=", ".join(missing) or _("nothing else"))
    if not slicer.util.confirmOkCancelDisplay(question):  # the only question asked
        return

    def install():
        try:
            return logic.installDependencies()
        except InstallFailureShown as failure:  # Slicer's pip_install already showed it with pip's log
            log(str(failure))
            return False

    if guarded(install, _("Installing the dependencies failed.")):
        slicer.util.infoDisplay(_("Installed. Restart Slicer so that the new packages are used."))


class PanelPlumbing:
    """What both module widgets share: the parameter node connected to the ``ui`` (and observed), the path fields
    kept in step with it, entering and leaving the module, scene close, developer reload, the log and
    :func:`guarded`. Mixed in before ``ScriptedLoadableModuleWidget`` and ``VTKObservationMixin`` (whose
    ``addObserver`` it uses); the widget sets ``LIB_PACKAGES`` and ``PATH_FIELDS``, ``self.ui`` and ``self.logic``,
    and defines ``_updateGUI`` (called whenever the parameters change)."""

    LIB_PACKAGES: tuple = ()
    PATH_FIELDS: dict = {}
    _parameterNode = None
    _parameterNodeGuiTag = None
    _paths = None

    def connectPlumbing(self) -> None:
        """Called once from ``setup`` after ``self.ui`` and ``self.logic`` exist."""
        import slicer

        self._paths = PathFields(self.ui, self.PATH_FIELDS)
        self._paths.connect(self._storePathFields)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

    def enter(self):
        self.initializeParameterNode()

    def exit(self):
        self.setParameterNode(None)

    def onSceneStartClose(self, caller, event):
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def onReload(self):
        """Developer mode: forget the Lib packages' modules (imported afresh), then reload the module."""
        drop_lib_modules(self.LIB_PACKAGES)
        super().onReload()

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())

    def setParameterNode(self, parameterNode):
        import vtk

        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateGUI)
        self._parameterNode = parameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateGUI)
        self._updateGUI()

    def _storePathFields(self, *args):
        """The path fields as typed (an emptied field included) into the parameter node."""
        self._paths.store(self._parameterNode)

    def _log(self, text):
        self.ui.logTextEdit.appendPlainText(text)

    # -- Run on: a server ------------------------------------------------------------------------------------
    # The widget provides ``settings`` (Slicer's application settings, ``qt.QSettings()``) and the ui's
    # ``serverUrlLineEdit`` / ``serverKeyLineEdit``; both panels share one address and key, never in a scene.
    settings = None

    def connectServerFields(self) -> None:
        self.ui.serverUrlLineEdit.text = self.settings.value("ImprovedNNUNet/ServerURL", "") or ""
        self.ui.serverKeyLineEdit.text = self.settings.value("ImprovedNNUNet/ServerKey", "") or ""
        self.ui.serverUrlLineEdit.connect("editingFinished()", self.onServerSettingsEdited)
        self.ui.serverKeyLineEdit.connect("editingFinished()", self.onServerSettingsEdited)

    def onServerSettingsEdited(self):
        """The server's address and key go to Slicer's settings (never into the scene)."""
        self.settings.setValue("ImprovedNNUNet/ServerURL", self.ui.serverUrlLineEdit.text.strip())
        self.settings.setValue("ImprovedNNUNet/ServerKey", self.ui.serverKeyLineEdit.text.strip())

    def _onServer(self) -> bool:
        return self._parameterNode is not None and self._parameterNode.runOn == "server"

    def _server(self):
        """A client of the server in the panel's fields (UserError naming what is missing); polls wait 5 s."""
        from ImprovedNNUNetLib.core.errors import UserError
        from ImprovedNNUNetLib.server.client import ServerClient

        url, key = self.ui.serverUrlLineEdit.text.strip(), self.ui.serverKeyLineEdit.text.strip()
        if not url or not key:
            raise UserError("Run on: server needs the server's address and your API key (Run on section)")
        return ServerClient(url, key, timeout=5.0)

    def _guarded(self, action, what, waitCursor=True):
        """:func:`guarded`, with the path fields stored first (the action reads the parameter node)."""

        def run():
            self._storePathFields()
            return action()

        return guarded(run, what, waitCursor)
