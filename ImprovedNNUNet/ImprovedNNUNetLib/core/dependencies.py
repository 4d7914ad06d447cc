"""Which Python packages the Slicer modules still need, and the pip arguments that add them.

``REQUIREMENTS`` lists every third-party distribution the two Lib packages import at run time
(a test compares it with their import statements), each with the range of versions that
works, not one exact pin: a copy that another extension (SlicerNNUNet, TotalSegmentator)
installed is kept when it is in range. ``PROVIDED`` are imported too but come from Slicer
itself or from Slicer's PyTorch extension (which picks the torch build that fits the GPU
driver); they are never installed here, and the installed versions are held in the pip
command so that installing nnU-Net never replaces them.
"""
from __future__ import annotations

import sys
from importlib import metadata

from ImprovedNNUNetLib.core.errors import UserError

# distribution -> (version range, import name). Kept in step with pyproject.toml.
REQUIREMENTS = {
    "nnunetv2": (">=2.8,<2.9", "nnunetv2"),
    "acvl-utils": (">=0.2.6,<0.3", "acvl_utils"),
    "batchgeneratorsv2": (">=0.3.2", "batchgeneratorsv2"),
    "scipy": (">=1.10", "scipy"),
    "edt": (">=3.0", "edt"),
    "tqdm": (">=4.60", "tqdm"),
    "psutil": (">=5.9", "psutil"),
    "surface-distance": ("==0.1", "surface_distance"),
    "slicerio": (">=1.0", "slicerio"),
    "scikit-image": (">=0.22", "skimage"),  # clDice skeletons (nnU-Net needs it too)
    "highdicom": (">=0.28,<0.29", "highdicom"),  # DICOM SEG: the Segment panel's export, predict's dicom_seg output
}
# distribution -> (version range, import name, who provides it)
PROVIDED = {
    "torch": (">=2.1.2,!=2.9.*", "torch", "the PyTorch extension"),
    "numpy": (">=1.24", "numpy", "Slicer"),
    "SimpleITK": (">=2.2.1", "SimpleITK", "Slicer"),
    "vtk": ("", "vtk", "Slicer"),
    "slicer-core": ("", "slicer", "Slicer"),
    "packaging": ("", "packaging", "Slicer"),
    "pip": ("", "pip", "Slicer"),
    "requests": ("", "requests", "Slicer"),  # the server client
    "urllib3": ("", "urllib3", "Slicer"),  # the server client's retries (requests' own transport)
    "pydicom": (">=3.0", "pydicom", "Slicer"),  # DICOM series headers (DICOM input)
    "DICOMLib": ("", "DICOMLib", "Slicer"),  # Slicer's DICOM module (the Segment panel's import into its database)
}
# distribution -> (version range, import name): imported only by command-line features the Slicer panels
# do not offer (studies: SLURM submission, report plots, YAML study files; the server: FastAPI and uvicorn);
# installed with the package's `study` or `server` extra (`pip install improved-nnunet[study]`), never by the
# panels' installer.
COMMAND_LINE_ONLY = {
    "submitit": (">=1.5", "submitit"),
    "matplotlib": (">=3.7", "matplotlib"),
    "PyYAML": ("", "yaml"),
    "fastapi": (">=0.165", "fastapi"),
    "uvicorn": (">=0.55", "uvicorn"),
}
EXTRAS = {"fastapi": "server", "uvicorn": "server"}  # the extra that installs each; the others: study
# Opt-in packages, imported only when the user turns the feature on (never installed by the panels' installer):
# MLflow experiment tracking, on when MLFLOW_TRACKING_URI is set (pip install 'improved-nnunet[tracking]'); the
# RTSTRUCT writer and reader, for `predict --output-type dicom_rtstruct` and evaluating such files.
OPTIONAL = {"mlflow-skinny": (">=2.10", "mlflow"),
            # RTSTRUCT output and reading ('improved-nnunet[dicom]'; it brings OpenCV); DICOM series input needs it not
            "rt-utils": (">=1.2.7", "rt_utils")}
TORCH_REQUIREMENT = PROVIDED["torch"][0]  # what the PyTorch extension is asked for (nnU-Net excludes 2.9)
# What the panels' actions need beyond the packages a fresh Slicer bundles (numpy, scipy, SimpleITK, packaging,
# requests, pydicom): dataset export and checks need nothing more; Compute metrics needs surface-distance (the
# NSD surfel-area table); training, segmentation and comparing runs need everything (``require()``).
EVALUATION_PACKAGES = ("surface-distance",)


class InstallFailureShown(UserError):
    """pip failed and Slicer's ``slicer.packaging.pip_install`` (Slicer 5.12 and newer) has already shown the
    error with pip's log in a dialog: the caller logs this one line instead of a second dialog."""


def install_failure(error) -> UserError:
    """The error to raise for a failed ``slicer.util.pip_install`` (``subprocess.CalledProcessError``).

    From Slicer 5.12 ``slicer.util.pip_install`` delegates to ``slicer.packaging.pip_install``, which shows an
    error dialog with the log before it raises (Base/Python/slicer/packaging.py, ``_pip_install_with_dialog``);
    Slicer 5.10 runs pip and raises without a dialog (Base/Python/slicer/util.py)."""
    text = (f"pip install failed (exit status {getattr(error, 'returncode', '?')}); the log is in the Python "
            "console; check the network or proxy and press Install dependencies again")
    # slicer.util.pip_install imports slicer.packaging when it delegates to it, so after the call it is loaded
    return InstallFailureShown(text) if "slicer.packaging" in sys.modules else UserError(text)


def _specifier(text: str):
    try:
        from packaging.specifiers import SpecifierSet
    except ModuleNotFoundError:  # Slicer's Python always has pip, which carries packaging
        from pip._vendor.packaging.specifiers import SpecifierSet
    return SpecifierSet(text)


def installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def satisfied(distribution: str, requirement: str) -> bool:
    version = installed_version(distribution)
    return version is not None and (not requirement or _specifier(requirement).contains(version, prereleases=True))


def missing_packages() -> list[str]:
    """Distributions of ``REQUIREMENTS`` that are absent or outside their range."""
    return [name for name, (requirement, _) in REQUIREMENTS.items() if not satisfied(name, requirement)]


def torch_ready() -> bool:
    return satisfied("torch", TORCH_REQUIREMENT)


def pip_requirements(distributions: list[str]) -> list[str]:
    """Requirement strings for one pip command installing ``distributions`` in their ranges while
    holding the packages Slicer and the PyTorch extension provide at their installed versions."""
    wanted = [f"{name}{REQUIREMENTS[name][0]}" for name in distributions]
    held = [f"{name}=={version}" for name in ("torch", "numpy", "SimpleITK")
            if (version := installed_version(name))]
    return wanted + held


def restart_needed(distributions: list[str]) -> bool:
    """True when an older copy of a package being installed is already imported in this process."""
    return any(REQUIREMENTS[name][1] in sys.modules for name in distributions if installed_version(name) is not None)


def status_text() -> str:
    """One line for the panels: ready (with versions), or what is missing and how to add it."""
    missing = missing_packages()
    if torch_ready() and not missing:
        return (f"Ready: torch {installed_version('torch')}, nnunetv2 {installed_version('nnunetv2')}, "
                f"surface-distance {installed_version('surface-distance')} and {len(REQUIREMENTS) - 2} more.")
    absent = ([] if torch_ready() else [f"torch{TORCH_REQUIREMENT}"]) + \
        [f"{name}{REQUIREMENTS[name][0]}" for name in missing]
    return f"Missing: {', '.join(absent)}. Press Install dependencies (a restart may follow)."


def is_ready() -> bool:
    return torch_ready() and not missing_packages()


def require_command_line_package(distribution: str, needed_for: str) -> None:
    """UserError naming the extra to install when a command-line-only package (``COMMAND_LINE_ONLY``) is absent,
    instead of a raw ModuleNotFoundError."""
    import importlib

    requirement, module = COMMAND_LINE_ONLY[distribution]
    try:
        importlib.import_module(module)
    except ImportError:
        raise UserError(f"{needed_for} needs {distribution}, which is not installed; pip install "
                        f"'improved-nnunet[{EXTRAS.get(distribution, 'study')}]' (or pip install "
                        f"'{distribution}{requirement}')") from None


def missing_text(distributions) -> str:
    """``"surface-distance==0.1"`` for each of ``distributions`` absent or out of range, comma-separated;
    empty when all are there."""
    return ", ".join(f"{name}{REQUIREMENTS[name][0]}" for name in distributions
                     if not satisfied(name, REQUIREMENTS[name][0]))


def require(distributions=None, action: str | None = None) -> None:
    """`UserError` naming what is missing and how to add it, before anything that needs it starts.

    ``distributions``: None for everything (torch, nnU-Net and the rest: training, segmentation); or the
    ``REQUIREMENTS`` names an action needs (``EVALUATION_PACKAGES``), with ``action`` naming it."""
    if distributions is None:
        if not is_ready():
            raise UserError(status_text().replace("Press", "Open Dependencies and press"))
        return
    missing = missing_text(distributions)
    if missing:
        raise UserError(f"{action or 'This'} needs {missing}, which Slicer does not bundle; press Install "
                        "dependencies (a restart may follow)")
