"""Signals of the Qt, CTK and Slicer widget classes the module panels use.

Each class names its base class and the signals it declares itself; ``signals_of`` adds the
inherited ones. Signatures are written as PythonQt's ``connect("name(args)", slot)`` expects
them (Qt 5, normalised: no spaces, no ``const``/``&``). Used by the UI checker
(Testing/ui_check.py) and by the test-double widgets of the Slicer shim.
"""
from __future__ import annotations

WIDGET_CLASSES: dict[str, tuple[str | None, tuple[str, ...]]] = {
    # Qt
    "QObject": (None, ("destroyed()", "destroyed(QObject*)", "objectNameChanged(QString)")),
    "QTimer": ("QObject", ("timeout()",)),
    "QWidget": ("QObject", ("customContextMenuRequested(QPoint)", "windowTitleChanged(QString)",
                            "windowIconChanged(QIcon)")),
    "QFrame": ("QWidget", ()),
    "QLabel": ("QFrame", ("linkActivated(QString)", "linkHovered(QString)")),
    "QAbstractButton": ("QWidget", ("clicked()", "clicked(bool)", "pressed()", "released()", "toggled(bool)")),
    "QPushButton": ("QAbstractButton", ()),
    "QToolButton": ("QAbstractButton", ("triggered(QAction*)",)),
    "QCheckBox": ("QAbstractButton", ("stateChanged(int)",)),
    "QRadioButton": ("QAbstractButton", ()),
    "QComboBox": ("QWidget", ("activated(int)", "activated(QString)", "currentIndexChanged(int)",
                              "currentIndexChanged(QString)", "currentTextChanged(QString)",
                              "editTextChanged(QString)", "highlighted(int)", "highlighted(QString)",
                              "textActivated(QString)", "textHighlighted(QString)")),
    "QAbstractSpinBox": ("QWidget", ("editingFinished()",)),
    "QSpinBox": ("QAbstractSpinBox", ("valueChanged(int)", "valueChanged(QString)", "textChanged(QString)")),
    "QDoubleSpinBox": ("QAbstractSpinBox", ("valueChanged(double)", "valueChanged(QString)",
                                            "textChanged(QString)")),
    "QLineEdit": ("QWidget", ("cursorPositionChanged(int,int)", "editingFinished()", "inputRejected()",
                              "returnPressed()", "selectionChanged()", "textChanged(QString)",
                              "textEdited(QString)")),
    "QAbstractSlider": ("QWidget", ("actionTriggered(int)", "rangeChanged(int,int)", "sliderMoved(int)",
                                    "sliderPressed()", "sliderReleased()", "valueChanged(int)")),
    "QSlider": ("QAbstractSlider", ()),
    "QProgressBar": ("QWidget", ("valueChanged(int)",)),
    "QAbstractScrollArea": ("QFrame", ()),
    "QPlainTextEdit": ("QAbstractScrollArea", ("blockCountChanged(int)", "copyAvailable(bool)",
                                               "cursorPositionChanged()", "modificationChanged(bool)",
                                               "redoAvailable(bool)", "selectionChanged()", "textChanged()",
                                               "undoAvailable(bool)", "updateRequest(QRect,int)")),
    "QTextEdit": ("QAbstractScrollArea", ("copyAvailable(bool)", "currentCharFormatChanged(QTextCharFormat)",
                                          "cursorPositionChanged()", "redoAvailable(bool)", "selectionChanged()",
                                          "textChanged()", "undoAvailable(bool)")),
    "QGroupBox": ("QWidget", ("clicked()", "clicked(bool)", "toggled(bool)")),
    "QTabWidget": ("QWidget", ("currentChanged(int)", "tabBarClicked(int)", "tabBarDoubleClicked(int)",
                               "tabCloseRequested(int)")),
    "QStackedWidget": ("QFrame", ("currentChanged(int)", "widgetRemoved(int)")),
    "QAbstractItemView": ("QAbstractScrollArea", ("activated(QModelIndex)", "clicked(QModelIndex)",
                                                  "doubleClicked(QModelIndex)", "entered(QModelIndex)",
                                                  "iconSizeChanged(QSize)", "pressed(QModelIndex)",
                                                  "viewportEntered()")),
    "QListView": ("QAbstractItemView", ("indexesMoved(QModelIndexList)",)),
    "QListWidget": ("QListView", ("currentItemChanged(QListWidgetItem*,QListWidgetItem*)", "currentRowChanged(int)",
                                  "currentTextChanged(QString)", "itemActivated(QListWidgetItem*)",
                                  "itemChanged(QListWidgetItem*)", "itemClicked(QListWidgetItem*)",
                                  "itemDoubleClicked(QListWidgetItem*)", "itemEntered(QListWidgetItem*)",
                                  "itemPressed(QListWidgetItem*)", "itemSelectionChanged()")),
    "QTableView": ("QAbstractItemView", ()),
    "QTableWidget": ("QTableView", ("cellActivated(int,int)", "cellChanged(int,int)", "cellClicked(int,int)",
                                    "cellDoubleClicked(int,int)", "cellEntered(int,int)", "cellPressed(int,int)",
                                    "currentCellChanged(int,int,int,int)",
                                    "currentItemChanged(QTableWidgetItem*,QTableWidgetItem*)",
                                    "itemActivated(QTableWidgetItem*)", "itemChanged(QTableWidgetItem*)",
                                    "itemClicked(QTableWidgetItem*)", "itemDoubleClicked(QTableWidgetItem*)",
                                    "itemEntered(QTableWidgetItem*)", "itemPressed(QTableWidgetItem*)",
                                    "itemSelectionChanged()")),
    # CTK
    "ctkCollapsibleButton": ("QAbstractButton", ("contentsCollapsed(bool)",)),
    "ctkCollapsibleGroupBox": ("QGroupBox", ()),
    "ctkCheckBox": ("QCheckBox", ()),
    "ctkComboBox": ("QComboBox", ()),
    "ctkCheckableComboBox": ("ctkComboBox", ("checkedIndexesChanged()",)),
    "ctkMenuButton": ("QPushButton", ()),
    "ctkPathLineEdit": ("QWidget", ("currentPathChanged(QString)", "validInputChanged(bool)")),
    "ctkDirectoryButton": ("QWidget", ("directoryChanged(QString)", "directorySelected(QString)")),
    "ctkDoubleSpinBox": ("QWidget", ("decimalsChanged(int)", "editingFinished()", "valueChanged(double)",
                                     "valueChanged(QString)")),
    "ctkSliderWidget": ("QWidget", ("decimalsChanged(int)", "rangeChanged(double,double)", "valueChanged(double)",
                                    "valueIsChanging(double)")),
    "ctkRangeWidget": ("QWidget", ("maximumValueChanged(double)", "maximumValueIsChanging(double)",
                                   "minimumValueChanged(double)", "minimumValueIsChanging(double)",
                                   "rangeChanged(double,double)", "valuesChanged(double,double)")),
    # Slicer (MRML widgets)
    "qMRMLWidget": ("QWidget", ("mrmlSceneChanged(vtkMRMLScene*)",)),
    "qSlicerWidget": ("QWidget", ("mrmlSceneChanged(vtkMRMLScene*)",)),
    "qMRMLNodeComboBox": ("QWidget", ("currentNodeChanged(vtkMRMLNode*)", "currentNodeChanged(bool)",
                                      "currentNodeIDChanged(QString)", "currentNodeRenamed(QString)",
                                      "mrmlSceneChanged(vtkMRMLScene*)", "nodeAboutToBeAdded(vtkMRMLNode*)",
                                      "nodeAboutToBeEdited(vtkMRMLNode*)", "nodeAboutToBeRemoved(vtkMRMLNode*)",
                                      "nodeActivated(vtkMRMLNode*)", "nodeAdded(vtkMRMLNode*)",
                                      "nodeAddedByUser(vtkMRMLNode*)")),
    "qMRMLCheckableNodeComboBox": ("qMRMLNodeComboBox", ("checkedNodesChanged()",)),
    "qMRMLSegmentSelectorWidget": ("qMRMLWidget", ("currentNodeChanged(vtkMRMLNode*)", "currentNodeChanged(bool)",
                                                   "currentSegmentChanged(QString)", "nodeAboutToBeEdited(vtkMRMLNode*)",
                                                   "segmentSelectionChanged(QStringList)")),
    "qMRMLSliderWidget": ("ctkSliderWidget", ()),
    "qMRMLSpinBox": ("ctkDoubleSpinBox", ()),
    "qMRMLSubjectHierarchyComboBox": ("ctkComboBox", ("currentItemChanged(vtkIdType)",
                                                      "currentItemModified(vtkIdType)")),
    "qMRMLSubjectHierarchyTreeView": ("QTreeView", ("currentItemChanged(vtkIdType)", "currentItemModified(vtkIdType)",
                                                    "currentItemsChanged(QList<vtkIdType>)")),
    "QTreeView": ("QAbstractItemView", ("collapsed(QModelIndex)", "expanded(QModelIndex)")),
    "qMRMLTableView": ("QTableView", ("selectionChanged()",)),
    "qMRMLPlotView": ("QWidget", ("dataSelected(vtkStringArray*,vtkCollection*)", "mrmlSceneChanged(vtkMRMLScene*)")),
}


def normalise(signature: str) -> str:
    """A signal signature as Qt normalises it: no spaces, no const, no references."""
    text = signature.replace("const ", "").replace("&", "")
    return "".join(text.split())


def signals_of(class_name: str) -> set[str]:
    """All signals of ``class_name``, inherited ones included; KeyError for a class not in the table."""
    signals: set[str] = set()
    name: str | None = class_name
    if name not in WIDGET_CLASSES:
        raise KeyError(class_name)
    while name is not None:
        base, own = WIDGET_CLASSES[name]
        signals.update(own)
        name = base
    return signals


def signal_names_of(class_name: str) -> set[str]:
    """The bare signal names of ``class_name`` (``clicked`` for ``clicked(bool)``)."""
    return {signature.split("(", 1)[0] for signature in signals_of(class_name)}
