"""Dependency check and install arguments of the Slicer modules, against this real environment."""
import ast
import sys
from importlib import metadata
from pathlib import Path

import pytest

from ImprovedNNUNetLib.core import dependencies
from ImprovedNNUNetLib.core.errors import UserError

REPO = Path(__file__).resolve().parent.parent
LIBS = (REPO / "ImprovedNNUNet" / "ImprovedNNUNetLib", REPO / "ImprovedNNUNetTraining" / "ImprovedNNUNetTrainingLib")


def _third_party_imports() -> set[str]:
    """Top-level names of every module the two Lib packages import (anywhere in a file, so
    imports inside functions, which run later, count too), less the standard library and themselves."""
    names = set()
    for root in LIBS:
        for path in root.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and not n.startswith("ImprovedNNUNet")}


def test_the_installer_covers_exactly_what_the_libs_import():
    declared = {name for _, name in dependencies.REQUIREMENTS.values()}
    provided = {entry[1] for entry in dependencies.PROVIDED.values()}
    command_line = {name for _, name in dependencies.COMMAND_LINE_ONLY.values()}
    optional = {name for _, name in dependencies.OPTIONAL.values()}
    assert not declared & provided and not command_line & (declared | provided) and not optional & command_line
    assert _third_party_imports() == declared | provided | command_line | optional


def test_command_line_only_imports_stay_out_of_what_the_panels_load():
    """The study package imports submitit, matplotlib and yaml, the server and its command fastapi and uvicorn;
    nothing a panel imports does."""
    command_line = {name for _, name in dependencies.COMMAND_LINE_ONLY.values()}
    for root in LIBS:
        for path in root.rglob("*.py"):
            if {"study", "server"} & set(path.relative_to(root).parts) or path.name == "serve.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                names = {a.name.split(".")[0] for a in node.names} if isinstance(node, ast.Import) else \
                    {node.module.split(".")[0]} if isinstance(node, ast.ImportFrom) and node.level == 0 else set()
                assert not names & command_line, (path, names)


def _normal(name: str) -> str:
    return name.lower().replace("_", "-")


def test_import_names_belong_to_the_declared_distributions():
    owners = metadata.packages_distributions()
    for distribution, (_, module) in dependencies.REQUIREMENTS.items():
        assert _normal(distribution) in {_normal(d) for d in owners[module]}, (distribution, module)


def test_ranges_accept_the_projects_pins():
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep:
            pins[name.lower()] = version
    for name, (requirement, _) in dependencies.REQUIREMENTS.items():
        if name.lower() in pins:
            assert dependencies._specifier(requirement).contains(pins[name.lower()]), name
    assert dependencies._specifier(dependencies.TORCH_REQUIREMENT).contains(pins["torch"])
    assert not dependencies._specifier(dependencies.TORCH_REQUIREMENT).contains("2.9.1")  # nnU-Net excludes 2.9


def test_nothing_missing_in_the_project_environment():
    assert dependencies.missing_packages() == [] and dependencies.is_ready()
    assert dependencies.status_text().startswith("Ready: torch")


def test_a_copy_in_range_is_kept_and_one_out_of_range_is_missing(monkeypatch):
    monkeypatch.setitem(dependencies.REQUIREMENTS, "nnunetv2", (">=2.8,<2.9", "nnunetv2"))
    assert "nnunetv2" not in dependencies.missing_packages()  # 2.8.1 is installed: in range, kept
    monkeypatch.setitem(dependencies.REQUIREMENTS, "nnunetv2", (">=2.9", "nnunetv2"))
    assert "nnunetv2" in dependencies.missing_packages()


def test_install_holds_torch_numpy_and_simpleitk_at_their_installed_versions():
    requirements = dependencies.pip_requirements(["nnunetv2", "surface-distance"])
    assert requirements[:2] == ["nnunetv2>=2.8,<2.9", "surface-distance==0.1"]
    assert requirements[2:] == [f"{name}=={metadata.version(name)}" for name in ("torch", "numpy", "SimpleITK")]


def test_restart_needed_only_when_an_old_copy_is_imported(monkeypatch):
    import psutil  # noqa: F401  (imported: a new version could not replace it without a restart)

    assert dependencies.restart_needed(["psutil"])
    monkeypatch.delitem(sys.modules, "psutil")
    assert not dependencies.restart_needed(["psutil"])


def test_require_names_what_is_missing_and_the_fix(monkeypatch):
    dependencies.require()
    monkeypatch.setitem(dependencies.REQUIREMENTS, "no-such-package", (">=1.0", "no_such_package"))
    with pytest.raises(UserError, match=r"Missing: no-such-package>=1.0\. Open Dependencies and press Install"):
        dependencies.require()


def test_surface_distance_missing_is_reported_not_ready(monkeypatch):
    real = dependencies.installed_version
    monkeypatch.setattr(dependencies, "installed_version", lambda name: None if name == "surface-distance" else real(name))
    assert dependencies.missing_packages() == ["surface-distance"]
    assert dependencies.status_text().startswith("Missing: surface-distance==0.1")
