"""Dependency check and install arguments of the Slicer module, against this real environment."""
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

from ImprovedNNUNetLib import dependencies
from ImprovedNNUNetLib.errors import UserError

REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements.txt"


def _pins_in_requirements() -> dict[str, str]:
    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s#]+)", line.strip())
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def test_pins_are_the_projects_pins():
    pins = _pins_in_requirements()
    for name, (version, _) in dependencies.PINNED.items():
        assert pins[name.lower()] == version, name


def test_nothing_missing_in_the_pinned_environment():
    assert dependencies.missing_packages() == []


def test_install_keeps_torch_simpleitk_and_numpy_at_their_installed_versions():
    requirements = dependencies.pip_requirements(["nnunetv2"])
    assert requirements[0] == "nnunetv2==2.8.1"
    assert requirements[1:] == [f"{name}=={metadata.version(name)}" for name in ("torch", "SimpleITK", "numpy")]


def test_restart_needed_only_when_an_old_copy_is_imported(monkeypatch):
    import psutil  # noqa: F401  (imported: a new version could not replace it without a restart)

    assert dependencies.restart_needed(["psutil"])
    monkeypatch.delitem(sys.modules, "psutil")
    assert not dependencies.restart_needed(["psutil"])


def test_require_names_what_is_missing_and_the_fix(monkeypatch):
    dependencies.require()  # everything pinned is installed here
    monkeypatch.setitem(dependencies.PINNED, "no-such-package", ("1.0", "no_such_package"))
    with pytest.raises(UserError, match=r"Missing: no-such-package==1.0\. Open Dependencies and press Install"):
        dependencies.require()
