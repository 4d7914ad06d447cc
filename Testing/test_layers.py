"""The packages' layers point one way: core ← evaluation ← inference, training ← analysis ← faces.

Each module of the two Libs belongs to one layer (the table below, by package or module); an import of a
module of a higher layer, or of the other layer at the same height (inference ↔ training), fails this
test. Layers, lowest first (docs/developers.md draws the same map):

- core: errors, image I/O and integrity, safe writing, child processes, locks, manifests, dependencies,
  the torch-free variant table;
- evaluation: metrics and their runner;
- inference (models, prediction) and training (the variants' trainers and the run engine), side by side;
- analysis: comparing runs, finding the best configuration, studies;
- faces: the command line, the Slicer panels' logic and jobs, the scene (MRML) code.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBS = {"ImprovedNNUNetLib": ROOT / "ImprovedNNUNet" / "ImprovedNNUNetLib",
        "ImprovedNNUNetTrainingLib": ROOT / "ImprovedNNUNetTraining" / "ImprovedNNUNetTrainingLib"}
HEIGHT = {"core": 0, "evaluation": 1, "inference": 2, "training": 2, "analysis": 3, "faces": 4}
LAYERS = {
    "core": ["ImprovedNNUNetLib", "ImprovedNNUNetLib.core"],
    "evaluation": ["ImprovedNNUNetLib.evaluation"],
    "inference": ["ImprovedNNUNetLib.inference"],
    "training": ["ImprovedNNUNetTrainingLib", "ImprovedNNUNetTrainingLib.trainers", "ImprovedNNUNetTrainingLib.engine",
                 "ImprovedNNUNetTrainingLib.nnunet_ext"],
    "analysis": ["ImprovedNNUNetTrainingLib.analysis"],
    "faces": ["ImprovedNNUNetLib.cli", "ImprovedNNUNetLib.__main__", "ImprovedNNUNetLib.panels", "ImprovedNNUNetLib.server",
              "ImprovedNNUNetTrainingLib.cli", "ImprovedNNUNetTrainingLib.panels"],
}


def layer_of(module: str) -> str | None:
    """The layer of a dotted module name: the longest package or module prefix in the table."""
    best = None
    for layer, prefixes in LAYERS.items():
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[1])):
                best = (layer, prefix)
    return best[0] if best else None


def modules():
    """(dotted name, path) of every module of the two Libs."""
    for package, root in LIBS.items():
        for path in sorted(root.rglob("*.py")):
            parts = [package, *path.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join(parts), path


def imported(module: str, path: Path):
    """(line, absolute module name) of every import of the project's own packages in a module."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[:len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module is None or node.level and not node.module:
                for alias in node.names:  # from . import x: x may be a module
                    yield node.lineno, f"{target}.{alias.name}"
            else:
                yield node.lineno, target


def test_every_module_has_a_layer():
    assert [name for name, _ in modules() if layer_of(name) is None] == []


def test_no_import_points_up_or_across():
    upward = []
    for name, path in modules():
        own = layer_of(name)
        for line, target in imported(name, path):
            if not target.startswith(tuple(LIBS)):
                continue
            other = layer_of(target)
            if other is None or other == own:
                continue
            if HEIGHT[other] >= HEIGHT[own]:
                upward.append(f"{path.relative_to(ROOT)}:{line} ({own}) imports {target} ({other})")
    assert upward == []


@pytest.mark.parametrize("module,layer", [("ImprovedNNUNetLib.evaluation.metrics", "evaluation"),
                                          ("ImprovedNNUNetLib.cli.predict", "faces"),
                                          ("ImprovedNNUNetTrainingLib.analysis.study.report", "analysis")])
def test_the_table_places_modules_by_their_longest_prefix(module, layer):
    assert layer_of(module) == layer


MODULE_FILES = [ROOT / "ImprovedNNUNet" / "ImprovedNNUNet.py",
                ROOT / "ImprovedNNUNetTraining" / "ImprovedNNUNetTraining.py"]


@pytest.mark.parametrize("module_file", MODULE_FILES, ids=lambda p: p.name)
def test_module_files_are_thin_shells(module_file):
    """A module file holds the Slicer-facing shell (metadata, parameter node, loading the .ui, timers, the Logic
    class, the self-test entry); the panel's behaviour, logic and self-test live in the Lib's ``panels``."""
    assert len(module_file.read_text(encoding="utf-8").splitlines()) <= 250


def test_no_product_file_is_over_400_lines():
    large = [f"{path.relative_to(ROOT)}: {n} lines" for _, path in modules()
             if (n := len(path.read_text(encoding="utf-8").splitlines())) > 400]
    assert large == []
