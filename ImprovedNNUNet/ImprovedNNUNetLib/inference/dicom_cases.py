"""DICOM folders as prediction cases.

A folder given to ``predict -i`` that holds DICOM files (and no NIfTI/NRRD images) is searched, with its
subfolders, for image series (by SeriesInstanceUID). For a one-channel model each series is a case, named by its
SeriesDescription (letters, digits, ``-`` and ``_``; ``_s<SeriesNumber>`` is added when two series share a
description, and the SeriesInstanceUID when that is not enough). For a model of several channels the series of one study
(StudyInstanceUID) form a case: channel k is the one series whose SeriesDescription contains the model's k-th
channel name (``dataset.json`` ``channel_names``, case-insensitive), and the case is named after the study's first
series; a study where a channel matches no series or several is one error naming them.
"""
from __future__ import annotations

import re
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def split_dicom_inputs(inputs) -> tuple[list[Path], list]:
    """(DICOM folders, the other inputs): a folder is a DICOM folder when it holds no images but DICOM files."""
    from ImprovedNNUNetLib.core.dicom_series import holds_dicom
    from ImprovedNNUNetLib.core.imageio import is_image_file

    dicom, others = [], []
    for item in inputs:
        path = Path(item)
        if path.is_dir() and not any(is_image_file(p) for p in path.iterdir()) and holds_dicom(path):
            dicom.append(path)
        else:
            others.append(item)
    return dicom, others


def _name(text: str) -> str:
    return _UNSAFE.sub("_", text).strip("_")[:64]


def case_names(series: list) -> list[str]:
    """Each series' case name: its description; with the SeriesNumber (``_s3``) where descriptions repeat; with
    the SeriesInstanceUID where that still repeats (or there is no description)."""
    names = [_name(s.description) or "series" for s in series]
    numbered = [f"{name}_s{_name(s.number)}" if names.count(name) > 1 and s.number else name
                for name, s in zip(names, series)]
    return [name if numbered.count(name) == 1 else f"{name}_{s.uid}" for name, s in zip(numbered, series)]


def dicom_cases(folders: list[Path], channel_names: list[str]) -> list:
    """The cases of the series in ``folders`` (see the module text)."""
    from ImprovedNNUNetLib.core.dicom_series import find_series
    from ImprovedNNUNetLib.inference.cases import Case

    series = [s for folder in folders for s in find_series(folder)]
    if len(channel_names) == 1:
        return sorted((Case(name, (), (s,)) for name, s in zip(case_names(series), series)), key=lambda c: c.case_id)
    studies: dict[str, list] = {}
    for s in series:
        studies.setdefault(s.study_uid, []).append(s)
    cases = []
    for study_uid, members in sorted(studies.items()):
        chosen = []
        for channel in channel_names:
            matching = [s for s in members if channel.lower() in s.description.lower()]
            if len(matching) != 1:
                found = ", ".join(repr(s.description) for s in members)
                raise UserError(f"study {study_uid}: the model's channel {channel!r} matches "
                                f"{'no series' if not matching else f'{len(matching)} series'} by SeriesDescription "
                                f"({found}); give one folder per case with exactly one series per channel, its "
                                "description holding the channel name")
            chosen.append(matching[0])
        cases.append(Case(_name(chosen[0].description) or _name(study_uid), (), tuple(chosen)))
    return cases
