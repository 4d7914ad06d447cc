"""Evaluating files or folders end to end: read, match labels, measure, write results."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tqdm import tqdm

from ..errors import UserError
from ..image_integrity import check_complete
from ..imageio import write_image
from ..manifest import Outputs
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


def check_out_dir(out_dir: Path) -> None:
    """The output folder can be a folder (before anything is evaluated)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} is a file, not a folder; give a folder for summary.json and metrics.csv")
    out_dir.mkdir(parents=True, exist_ok=True)  # an unwritable place fails here, before the work


def check_files_complete(pairs: list[CasePair]) -> None:
    """Refuse truncated images among all inputs before the first case is evaluated."""
    from concurrent.futures import ThreadPoolExecutor

    files = sorted({path for pair in pairs for path in (pair.prediction, pair.reference)})
    with ThreadPoolExecutor(min(8, max(1, len(files)))) as pool:  # zlib releases the GIL
        list(pool.map(check_complete, files))


def evaluate(
    prediction: str | Path, reference: str | Path, labels=None, tau_mm: float | Mapping = 1.0,
    out_dir: str | Path | None = None, maps: bool = False, msf_radius: int | None = None,
    overwrite: bool = False, progress: bool = False, chill: bool = False,
) -> list[EvaluatedCase]:
    """Evaluate a prediction file/folder against a reference file/folder.

    ``labels`` as in :func:`compute_metrics` (default: the reference's segment names for
    ``.seg.nrrd``, else every label present). With ``out_dir``, writes ``summary.json``
    and ``metrics.csv`` there, and with ``maps`` also ``maps/<case>_FP|FN[|MSF].nii.gz``.
    Existing outputs are only replaced with ``overwrite``, which first removes exactly what an
    earlier evaluate wrote there (files of other origin are kept). A prediction folder must cover
    every reference case unless ``chill`` (then only the predicted cases are evaluated).
    """
    if maps and out_dir is None:
        raise UserError("error maps need an output folder; give --out DIR")
    pairs = match_cases(prediction, reference, allow_missing=chill)
    out_dir = Path(out_dir) if out_dir is not None else None
    outputs = None
    if out_dir is not None:
        check_out_dir(out_dir)
        check_outputs_free(out_dir, overwrite)
        outputs = Outputs(out_dir, "evaluate")
    check_files_complete(pairs)
    if outputs is not None and overwrite:
        outputs.remove_previous()
    maps_dir = out_dir / "maps" if maps else None
    cases = []
    try:
        with tqdm(total=len(pairs), desc="evaluate", unit="case", disable=None if progress else True,
                  leave=False) as bar:  # None: shown on a terminal only
            for pair in pairs:
                cases.append(evaluate_case(pair, labels, tau_mm, maps_dir, msf_radius, overwrite))
                if maps_dir is not None:
                    outputs.record(*sorted(maps_dir.glob(f"{pair.case_id}_*{MAP_SUFFIX}")))
                bar.update()
        if out_dir is not None:
            outputs.record(*write_summary(cases, out_dir, overwrite=overwrite))
    finally:
        if outputs is not None:
            outputs.save()
    return cases
