"""nnU-Net's dataset folder names, ``DatasetNNN_Name``, read one way everywhere (no nnU-Net import needed).

nnU-Net reads the id as the three characters after ``Dataset`` (``convert_dataset_name_to_id``:
``int(name[7:10])``), so a name is one of its datasets only with exactly three digits and an underscore
after them (``Dataset1234_X`` would be read as id 123). Ids run from 1 to 999.
"""
from __future__ import annotations

import re

DATASET_NAME = re.compile(r"^Dataset(\d{3})_(.+)$")


def dataset_id(name: str) -> int | None:
    """The id of a ``DatasetNNN_Name`` folder name, None for any other name."""
    match = DATASET_NAME.match(name)
    return int(match.group(1)) if match else None


def is_dataset_name(name: str) -> bool:
    return DATASET_NAME.match(name) is not None
