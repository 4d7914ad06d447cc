"""Which Python packages the Slicer module still needs, and the pip arguments that add them.

torch itself comes from Slicer's PyTorch extension (it picks the build that fits the
GPU driver); everything else is installed with the project's pins. Packages Slicer or
the PyTorch extension already provide (torch, SimpleITK, numpy) are pinned to their
installed versions in the same pip command, so installing nnU-Net never replaces them.
"""
from __future__ import annotations

import sys
from importlib import metadata

from .errors import UserError

# distribution name -> (pinned version, import name)
PINNED = {
    "nnunetv2": ("2.8.1", "nnunetv2"),
    "psutil": ("7.2.2", "psutil"),
}
KEPT = ("torch", "SimpleITK", "numpy")
TORCH_REQUIREMENT = ">=2.1"  # what the PyTorch extension is asked for


def installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def missing_packages() -> list[str]:
    """Pinned distributions that are absent or at another version."""
    return [name for name, (version, _) in PINNED.items() if installed_version(name) != version]


def pip_requirements(distributions: list[str]) -> list[str]:
    """Requirement strings for one pip command installing ``distributions`` at their pins."""
    wanted = [f"{name}=={PINNED[name][0]}" for name in distributions]
    kept = [f"{name}=={version}" for name in KEPT if (version := installed_version(name))]
    return wanted + kept


def restart_needed(distributions: list[str]) -> bool:
    """True when an older copy of a package being installed is already imported in this process."""
    return any(PINNED[name][1] in sys.modules for name in distributions if installed_version(name) is not None)


def status_text() -> str:
    """One line for the panel: what is installed, or what is missing and how to add it."""
    torch = installed_version("torch")
    missing = missing_packages()
    if torch and not missing:
        return f"Ready: torch {torch}, " + ", ".join(f"{name} {PINNED[name][0]}" for name in PINNED) + "."
    absent = ([] if torch else ["torch"]) + [f"{name}=={PINNED[name][0]}" for name in missing]
    return f"Missing: {', '.join(absent)}. Press Install dependencies (a restart may follow)."


def require() -> None:
    """`UserError` naming what is missing, before anything that needs torch or nnU-Net starts."""
    if installed_version("torch") is None or missing_packages():
        raise UserError(status_text().replace("Press", "Open Dependencies and press"))
