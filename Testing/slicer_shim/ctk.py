"""Test double of PythonQt's ``ctk`` module (the Qt GUI cannot exist in these tests).

CTK widgets come from ``.ui`` files as ``qt.Widget`` doubles; module files that build CTK
objects in code need a double added here.
"""


def __getattr__(name: str):
    raise AttributeError(f"the test double of ctk has no {name}; add a double for it in Testing/slicer_shim/ctk.py")
