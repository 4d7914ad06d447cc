"""Grouping input image files into cases by nnU-Net's channel naming (``CASE_0000``, ``CASE_0001``, ...), and DICOM
folders into cases of series (``inference/dicom_cases.py``)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.imageio import IMAGE_SUFFIXES, is_image_file, strip_suffix

_CHANNEL = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")


@dataclass(frozen=True)
class Case:
    """One case: its id and one file per model channel, in channel order; or, for DICOM input, one series per
    channel (``series``, with ``files`` empty)."""

    case_id: str
    files: tuple[Path, ...]
    series: tuple = ()  # DicomSeries per channel

    @property
    def suffix(self) -> str:
        """The image suffix of the first channel file (``.nii.gz``, ``.nrrd``, ...); ``.nii.gz`` for DICOM input."""
        if self.series:
            return ".nii.gz"
        name = self.files[0].name.lower()
        return next(s for s in IMAGE_SUFFIXES if name.endswith(s))


def read_case(case: Case) -> list:
    """The case's images, one per channel."""
    if case.series:
        from ImprovedNNUNetLib.core.dicom_series import read_series

        return [read_series(series) for series in case.series]
    from ImprovedNNUNetLib.core.imageio import read_image

    return [read_image(path) for path in case.files]


def _image_files(inputs: list[str | Path]) -> list[Path]:
    files = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if is_image_file(p))
            if not found:
                raise UserError(f"folder {item} holds no images ({', '.join(IMAGE_SUFFIXES)}) and no DICOM series; "
                                "check the path")
            files.extend(found)
        elif is_image_file(item):
            files.append(item)
        elif item.exists():
            raise UserError(f"{item} is not an image file ({', '.join(IMAGE_SUFFIXES)}); give images or a folder")
        else:
            raise UserError(f"{item}: no such file or folder; check the path")
    return files


def gather_cases(inputs: list[str | Path], channel_names: list[str]) -> list[Case]:
    """Cases from files and folders. Multi-channel models need ``CASE_0000``, ``CASE_0001``, ... names;
    for one-channel models ``CASE_0000.nii.gz`` is case ``CASE`` and any other name is a case of its own."""
    from ImprovedNNUNetLib.inference.dicom_cases import dicom_cases, split_dicom_inputs

    dicom, inputs = split_dicom_inputs(inputs)
    found = dicom_cases(dicom, channel_names) if dicom else []
    if not inputs:
        return found
    channels: dict[str, dict[int, Path]] = {}
    image_files = _image_files(inputs)
    stems = {strip_suffix(path.name) for path in image_files}
    for path in image_files:
        stem = strip_suffix(path.name)
        match = _CHANNEL.match(stem)
        if len(channel_names) == 1 and match and int(match.group("channel")) > 0 \
                and f"{match.group('case')}_0000" in stems:
            raise UserError(f"{path.name} looks like channel {int(match.group('channel'))} of case "
                            f"{match.group('case')!r} (beside {match.group('case')}_0000), but the model takes one "
                            f"channel ({channel_names[0]}); give only the {channel_names[0]} images")
        if match and (len(channel_names) > 1 or int(match.group("channel")) == 0):
            case_id, channel = match.group("case"), int(match.group("channel"))
        elif len(channel_names) == 1:
            case_id, channel = stem, 0
        else:
            raise UserError(f"{path.name}: the model expects {len(channel_names)} channels "
                            f"({', '.join(channel_names)}); name the files CASE_0000, CASE_0001, ... in that order")
        files = channels.setdefault(case_id, {})
        if channel in files:
            raise UserError(f"case {case_id!r} channel {channel} is given twice ({files[channel].name} and "
                            f"{path.name}); keep one file per channel")
        files[channel] = path
    cases = []
    for case_id, files in sorted(channels.items()):
        expected = set(range(len(channel_names)))
        if set(files) != expected:
            missing = sorted(expected - set(files))
            extra = sorted(set(files) - expected)
            problem = (f"lacks channel(s) {', '.join(f'_{c:04d} ({channel_names[c]})' for c in missing)}" if missing
                       else f"has channel(s) {', '.join(f'_{c:04d}' for c in extra)} the model does not take")
            raise UserError(f"case {case_id!r} {problem}; the model expects {len(channel_names)} channel(s) "
                            f"({', '.join(channel_names)}) named {case_id}_0000 .. {case_id}_{len(channel_names) - 1:04d}")
        cases.append(Case(case_id, tuple(files[c] for c in sorted(files))))
    clash = {c.case_id for c in cases} & {c.case_id for c in found}
    if clash:
        raise UserError(f"case {sorted(clash)[0]!r} is both an image file and a DICOM series; give them separately")
    return sorted(cases + found, key=lambda c: c.case_id)
