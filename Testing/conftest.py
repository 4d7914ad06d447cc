"""Shared pytest configuration.

Fixtures live in Testing/fixtures/, one module per area, and are loaded here as
plugins so that every test module can use them.
"""
import os

# nnU-Net reads these at import time; keep worker pools to the 2 cores CI has.
os.environ.setdefault("nnUNet_n_proc_DA", "2")
os.environ.setdefault("nnUNet_def_n_proc", "2")

pytest_plugins = [
    "fixtures.data",
    "fixtures.slicer_scene",
    "fixtures.slicer_panels",
    "fixtures.evaluation",
    "fixtures.slicer_training",
    "fixtures.training",
    "fixtures.inference",
    "fixtures.server",
]
