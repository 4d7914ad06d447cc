"""Evaluating files or folders end to end: read, match labels, measure, write results."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tqdm import tqdm

from ..errors import UserError
from ..imageio import write_image
from .cases import CasePair, match_cases
from .errormaps import error_maps
from .labelfiles import match_segment_values, read_label_image
from .metrics import compute_metrics
from .summary import EvaluatedCase, check_outputs_free, write_summary

MAP_SUFFIX = ".nii.gz"


def evaluate_case(
    pair: CasePair, labels=None, tau_mm: float | Mapping = 1.0, maps_dir: Path | None = None,
    msf_radius: int | None = None, overwrite: bool = False,
) -> EvaluatedCase:
    """Evaluate one case; with ``maps_dir`` also write its FP/FN (and MSF) maps there."""
    ref = read_label_image(pair.reference)
    pred_image = match_segment_values(read_label_image(pair.prediction), ref)
    labels = labels if labels is not None else ref.names
    metrics = compute_metrics(pred_image, ref.image, labels, tau_mm)
    if maps_dir is not None:
        maps = error_maps(pred_image, ref.image, labels, msf_radius)
        for kind, image in maps.images().items():
            write_image(image, maps_dir / f"{pair.case_id}_{kind}{MAP_SUFFIX}", overwrite=overwrite)
    return EvaluatedCase(pair.case_id, str(pair.reference), str(pair.prediction), metrics)


def evaluate(
    prediction: str | Path, reference: str | Path, labels=None, tau_mm: float | Mapping = 1.0,
    out_dir: str | Path | None = None, maps: bool = False, msf_radius: int | None = None,
    overwrite: bool = False, progress: bool = False,
) -> list[EvaluatedCase]:
    """Evaluate a prediction file/folder against a reference file/folder.

    ``labels`` as in :func:`compute_metrics` (default: the reference's segment names for
    ``.seg.nrrd``, else every label present). With ``out_dir``, writes ``summary.json``
    and ``metrics.csv`` there, and with ``maps`` also ``maps/<case>_FP|FN[|MSF].nii.gz``.
    Existing outputs are only replaced with ``overwrite``.
    """
    if maps and out_dir is None:
        raise UserError("error maps need an output folder; give --out DIR")
    pairs = match_cases(prediction, reference)
    out_dir = Path(out_dir) if out_dir is not None else None
    if out_dir is not None:
        check_outputs_free(out_dir, overwrite)
    maps_dir = out_dir / "maps" if maps else None
    cases = []
    with tqdm(total=len(pairs), desc="evaluate", unit="case", disable=not progress) as bar:
        for pair in pairs:
            cases.append(evaluate_case(pair, labels, tau_mm, maps_dir, msf_radius, overwrite))
            bar.update()
    if out_dir is not None:
        write_summary(cases, out_dir, overwrite=overwrite)
    return cases
