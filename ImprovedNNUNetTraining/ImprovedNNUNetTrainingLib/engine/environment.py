"""nnU-Net folder variables, dataset names and worker-pool sizes, with clear errors.

Kept free of torch and nnU-Net imports: ``size_worker_pools`` must run before nnU-Net is
imported, because nnU-Net reads ``nnUNet_def_n_proc`` once at import time.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from ImprovedNNUNetLib.core.dataset_names import DATASET_NAME
from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.process import cores_present  # noqa: F401  (re-exported for the runner)

FOLDER_VARIABLES = ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")


def size_worker_pools() -> int:
    """Set ``nnUNet_n_proc_DA`` and ``nnUNet_def_n_proc`` to the cores present unless the user set them;
    returns the number of cores."""
    cores = cores_present()
    os.environ.setdefault("nnUNet_n_proc_DA", str(cores))
    os.environ.setdefault("nnUNet_def_n_proc", str(cores))
    return cores


def folder_values(folders=None) -> dict:
    """nnU-Net's folder variables that are set: ``folders`` (e.g. the Training panel's fields) over this
    process's environment, which is never changed here."""
    given = {name: str(value) for name, value in (folders or {}).items() if value}
    return {name: given.get(name) or os.environ.get(name) for name in FOLDER_VARIABLES
            if given.get(name) or os.environ.get(name)}


def folder_variable(name: str, folders=None) -> Path:
    """The folder an nnU-Net variable names (``folders`` first, then the environment); UserError when unset."""
    value = folder_values(folders).get(name)
    if not value:
        raise UserError(f"{name} is not set; export {name}=/path/to/folder (nnU-Net's {name} folder)")
    return Path(value)


@contextmanager
def results_root(folder: str | Path):
    """``nnUNet_results`` set to ``folder`` inside the block (a study arm's or find-best's own root), restored
    (or unset again) after it."""
    before = os.environ.get("nnUNet_results")
    os.environ["nnUNet_results"] = str(folder)
    try:
        yield Path(folder)
    finally:
        if before is None:
            os.environ.pop("nnUNet_results", None)
        else:
            os.environ["nnUNet_results"] = before


def dataset_name(dataset: str, folders=None) -> str:
    """``DatasetNNN_Name`` of a dataset id ("1", "001") or name, looked up in the nnU-Net folders."""
    if DATASET_NAME.match(dataset):
        return dataset
    if not dataset.isdigit():
        raise UserError(f"dataset {dataset!r} is neither an id (e.g. 1) nor a name like Dataset001_Name; "
                        "pass one of those")
    prefix = f"Dataset{int(dataset):03d}_"
    names = sorted({p.name for value in folder_values(folders).values()
                    for p in Path(value).glob(prefix + "*") if p.is_dir()})
    if not names:
        raise UserError(f"no dataset with id {dataset} in {', '.join(FOLDER_VARIABLES)}; "
                        "check the id or the nnU-Net folder variables")
    if len(names) > 1:
        raise UserError(f"dataset id {dataset} is ambiguous ({', '.join(names)}); pass the full name")
    return names[0]
