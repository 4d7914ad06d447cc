"""The Slicer extension packaging: CMake lists, ExtensionsIndex entry, icons, license."""
import json
import re
import struct
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MODULES = ["ImprovedNNUNet", "ImprovedNNUNetTraining"]
REQUIRED_EXTENSION_FIELDS = [
    "EXTENSION_HOMEPAGE",
    "EXTENSION_CATEGORY",
    "EXTENSION_CONTRIBUTORS",
    "EXTENSION_DESCRIPTION",
    "EXTENSION_ICONURL",
    "EXTENSION_SCREENSHOTURLS",
    "EXTENSION_DEPENDS",
]


def cmake_set(text: str, variable: str) -> list[str]:
    """Items of ``set(VARIABLE item item ...)`` in a CMake file (quoted strings count as one item)."""
    match = re.search(rf"set\(\s*{variable}\b(.*?)\)", text, re.S)
    assert match, f"set({variable} ...) not found"
    body = re.sub(r"#[^\n]*", "", match.group(1))
    return [q if q else w for q, w in re.findall(r'"([^"]*)"|(\S+)', body)]


def module_files(folder: Path) -> tuple[set[str], set[str]]:
    """(Python files, other files) under a module folder, relative to it, build artefacts left out."""
    scripts, resources = set(), set()
    for path in folder.rglob("*"):
        if path.is_dir() or "__pycache__" in path.parts or path.suffix == ".pyc" or path.name == "CMakeLists.txt":
            continue
        rel = path.relative_to(folder).as_posix()
        (scripts if path.suffix == ".py" else resources).add(rel)
    return scripts, resources


def listed(name: str, variable: str) -> set[str]:
    text = (REPO / name / "CMakeLists.txt").read_text()
    assert re.search(rf"set\(\s*MODULE_NAME\s+{name}\s*\)", text)
    return {item.replace("${MODULE_NAME}", name) for item in cmake_set(text, variable)}


@pytest.mark.parametrize("name", MODULES)
def test_every_module_file_is_listed_in_its_cmakelists(name):
    scripts, resources = module_files(REPO / name)
    assert f"{name}.py" in scripts
    missing_scripts = sorted(scripts - listed(name, "MODULE_PYTHON_SCRIPTS"))
    missing_resources = sorted(resources - listed(name, "MODULE_PYTHON_RESOURCES"))
    assert missing_scripts == [], f"add to MODULE_PYTHON_SCRIPTS in {name}/CMakeLists.txt"
    assert missing_resources == [], f"add to MODULE_PYTHON_RESOURCES in {name}/CMakeLists.txt"


@pytest.mark.parametrize("name", MODULES)
def test_every_listed_file_exists(name):
    for variable in ("MODULE_PYTHON_SCRIPTS", "MODULE_PYTHON_RESOURCES"):
        absent = sorted(f for f in listed(name, variable) if not (REPO / name / f).is_file())
        assert absent == [], f"{name}/CMakeLists.txt lists files that do not exist"


@pytest.mark.parametrize("name", MODULES)
def test_module_is_built_as_a_scripted_module(name):
    text = (REPO / name / "CMakeLists.txt").read_text()
    call = re.search(r"slicerMacroBuildScriptedModule\((.*?)\)", text, re.S).group(1)
    assert "NAME ${MODULE_NAME}" in call
    assert "SCRIPTS ${MODULE_PYTHON_SCRIPTS}" in call
    assert "RESOURCES ${MODULE_PYTHON_RESOURCES}" in call


def test_top_level_cmakelists_describes_the_extension():
    text = (REPO / "CMakeLists.txt").read_text()
    for field in REQUIRED_EXTENSION_FIELDS:
        values = cmake_set(text, field)
        assert values and all(v.strip() for v in values), f"{field} is empty"
    assert cmake_set(text, "EXTENSION_CATEGORY") == ["Segmentation"]
    assert cmake_set(text, "EXTENSION_DEPENDS") == ["PyTorch"]
    assert re.search(r"project\(\s*ImprovedNNUNet\s*\)", text)
    assert re.search(r"find_package\(\s*Slicer\s+REQUIRED\s*\)", text)
    assert "include(${Slicer_USE_FILE})" in text
    for name in MODULES:
        assert re.search(rf"add_subdirectory\(\s*{name}\s*\)", text), f"{name} is not added"
    assert text.index("${Slicer_EXTENSION_GENERATE_CONFIG}") < text.index("${Slicer_EXTENSION_CPACK}")


def test_screenshot_and_icon_urls_point_at_files_of_the_repository():
    text = (REPO / "CMakeLists.txt").read_text()
    homepage = cmake_set(text, "EXTENSION_HOMEPAGE")[0]
    raw_prefix = homepage.replace("https://github.com/", "https://raw.githubusercontent.com/") + "/main/"
    urls = cmake_set(text, "EXTENSION_ICONURL") + cmake_set(text, "EXTENSION_SCREENSHOTURLS")[0].split()
    for url in urls:
        assert url.startswith(raw_prefix), url
        assert (REPO / url[len(raw_prefix):]).is_file(), f"{url} names no file of the repository"


def test_extensions_index_entry_matches_the_cmakelists():
    entry = json.loads((REPO / "ImprovedNNUNet.json").read_text())
    text = (REPO / "CMakeLists.txt").read_text()
    assert sorted(entry["build_dependencies"]) == sorted(" ".join(cmake_set(text, "EXTENSION_DEPENDS")).split())
    assert entry["category"] == cmake_set(text, "EXTENSION_CATEGORY")[0]
    assert entry["scm_url"] == cmake_set(text, "EXTENSION_HOMEPAGE")[0]
    assert entry["build_subdirectory"] == "."
    assert entry["scm_revision"]
    assert "slicer-extension-catalog-entry-schema" in entry["$schema"]


def test_extensions_index_checks_pass():
    """The offline rules of Slicer/ExtensionsIndex scripts/check_description_files.py: the extension name (the
    .json's name) does not start with "Slicer", the git repository's name does (check_git_repository_name),
    the scm_url is a plain https GitHub URL, the file has LF line endings only; the icon and screenshot URLs
    point into that repository (checked above). The topic and URL downloads need the published repository
    (docs/developers.md lists those steps)."""
    path = REPO / "ImprovedNNUNet.json"
    entry = json.loads(path.read_text())
    assert not path.stem.lower().startswith("slicer")
    repository = entry["scm_url"].rstrip("/").removesuffix(".git").rsplit("/", 1)[-1]
    assert any(repository.startswith(prefix) for prefix in ("Slicer", "Slicer-", "Slicer_", "SlicerExtension-")), \
        repository
    assert entry["scm_url"].startswith("https://github.com/")
    assert b"\r" not in path.read_bytes()


def test_cmake_version_range_covers_slicers_extension_templates():
    """Slicer 5.10's extension template asks for 3.20.6...3.22.6, main's for 3.28.0 (Utilities/Templates/
    Extensions/Default/CMakeLists.txt): the range starts no lower than 5.10's and reaches main's."""
    first = (REPO / "CMakeLists.txt").read_text().splitlines()[0]
    assert first == "cmake_minimum_required(VERSION 3.20.6...3.28.0 FATAL_ERROR)"


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG file"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("icon", [
    "ImprovedNNUNet.png",
    "ImprovedNNUNet/Resources/Icons/ImprovedNNUNet.png",
    "ImprovedNNUNetTraining/Resources/Icons/ImprovedNNUNetTraining.png",
])
def test_icons_are_128_pixel_pngs(icon):
    assert png_size(REPO / icon) == (128, 128)


def test_screenshots_are_pngs():
    shots = sorted((REPO / "Resources" / "Screenshots").glob("*.png"))
    assert len(shots) >= 2
    for shot in shots:
        width, height = png_size(shot)
        assert width >= 400 and height >= 300


def test_license_exists():
    text = (REPO / "LICENSE.txt").read_text()
    assert len(text) > 200


def test_screenshot_script_renders_the_error_overlay(tmp_path):
    """Runs Scripts/make_screenshots.py headless on the real sample data and looks for FP/FN pixels."""
    import subprocess
    import sys

    import numpy as np
    from PIL import Image

    from ImprovedNNUNetLib.panels.scene.error_segmentation import FN_COLOR, FP_COLOR

    script = REPO / "Scripts" / "make_screenshots.py"
    run = subprocess.run([sys.executable, str(script), "--out", str(tmp_path), "--width", "400"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    for view in ("axial", "coronal"):
        pixels = np.asarray(Image.open(tmp_path / f"segmentation_errors_{view}.png").convert("RGB")).reshape(-1, 3)
        for color in (FP_COLOR, FN_COLOR):
            expected = np.round(np.asarray(color) * 255)
            assert (np.abs(pixels - expected).max(axis=1) <= 2).sum() > 50, f"{view}: no {color} pixels"
    again = subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 2 and "pass --overwrite" in again.stderr
