"""Evaluating files or folders end to end: read, match labels, measure, write results."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from tqdm import tqdm

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.folder_lock import FolderLock
from ImprovedNNUNetLib.core.image_integrity import check_all_complete
from ImprovedNNUNetLib.core.imageio import write_image
from ImprovedNNUNetLib.core.manifest import Outputs
from ImprovedNNUNetLib.core.process import cores_present
from ImprovedNNUNetLib.evaluation.calibration import add_calibration, check_probabilities, probabilities_of
from ImprovedNNUNetLib.evaluation.cases import CasePair, match_cases, strip_suffix
from ImprovedNNUNetLib.evaluation.distances import set_query_workers
from ImprovedNNUNetLib.evaluation.errormaps import error_maps
from ImprovedNNUNetLib.evaluation.labelfiles import LabelImage, match_segment_values, read_label_image
from ImprovedNNUNetLib.evaluation.metrics import compute_metrics
from ImprovedNNUNetLib.evaluation.options import MetricOptions
from ImprovedNNUNetLib.evaluation.structure_masks import mask_files, read_structure_masks
from ImprovedNNUNetLib.evaluation.summary import EvaluatedCase, check_outputs_free, write_summary

MAP_SUFFIX = ".nii.gz"


def evaluate_case(
    pair: CasePair, labels=None, tau_mm: float | Mapping = 1.0, maps_dir: Path | None = None,
    msf_radius: int | None = None, overwrite: bool = False, options: MetricOptions | None = None,
    probabilities: Path | None = None,
) -> EvaluatedCase:
    """Evaluate one case; with ``maps_dir`` also write its FP/FN (and MSF) maps there."""
    notes = []
    if pair.reference.is_dir():
        pred = read_label_image(pair.prediction)
        ref = read_masks(pair.reference, label_names(labels, pred.names, pair.reference), notes)
    else:
        ref = read_label_image(pair.reference)
        pred = read_masks(pair.prediction, label_names(labels, ref.names, pair.prediction), notes) \
            if pair.prediction.is_dir() else read_label_image(pair.prediction)
    pred, ref = on_full_grids(pred, ref, labels, notes)
    pred_image = match_segment_values(pred, ref)
    labels = labels if labels is not None else (ref.names or pred.names)  # a .seg.nrrd on either side names them
    metrics = compute_metrics(pred_image, ref.image, labels, tau_mm, options)
    metrics.notes.extend(notes)
    if probabilities is not None and (options is None or options.has("calibration")):
        add_calibration(metrics, probabilities_of(probabilities, pair.case_id, strip_suffix(pair.prediction.name)),
                        ref.image, labels)
    if maps_dir is not None:
        maps = error_maps(pred_image, ref.image, labels, msf_radius)
        for kind, image in maps.images().items():
            write_image(image, maps_dir / f"{pair.case_id}_{kind}{MAP_SUFFIX}", overwrite=overwrite)
    return EvaluatedCase(pair.case_id, str(pair.reference), str(pair.prediction), metrics)


def on_full_grids(pred: LabelImage, ref: LabelImage, labels, notes: list) -> tuple[LabelImage, LabelImage]:
    """DICOM sides made comparable: a SEG reference spanning only its frames is put onto the prediction's image grid
    (a SEG prediction goes onto the reference's grid as any prediction does); an RTSTRUCT's ROI values are matched
    to label values by name (``--labels`` or the other side's names)."""
    from ImprovedNNUNetLib.evaluation.geometry import align_to_reference

    if ref.partial_grid and not pred.partial_grid:
        ref.image, _ = align_to_reference(ref.image, pred.image)
        notes.append("the DICOM SEG reference was placed on the prediction's image grid (its frames span part of it)")
    if pred.kind is None and ref.kind is None:
        return pred, ref
    named = {str(k): int(v) for k, v in labels.items() if isinstance(v, int)} if isinstance(labels, Mapping) else None
    for side, other in ((pred, ref), (ref, pred)):
        if side.names is None and named and other.kind is not None:
            side.names = named
    if "rtstruct" in (pred.kind, ref.kind) and not (pred.names and ref.names):
        raise UserError("an RTSTRUCT's ROIs are matched to label values by name: pass --labels with the dataset.json "
                        "(or compare with a file that names its segments)")
    return pred, ref


def label_names(labels, other_names, folder: Path) -> dict[str, int]:
    """Names -> values for reading a folder of structure masks: ``--labels`` names, else the other side's."""
    if isinstance(labels, Mapping):
        return {str(name): int(value) for name, value in labels.items()}
    if other_names:
        return dict(other_names)
    raise UserError(f"{folder} is read as one case's structure masks (one file per structure), which needs label "
                    "names: pass --labels with a dataset.json, or compare with a .seg.nrrd that names its segments")


def read_masks(folder: Path, names: dict[str, int], notes: list) -> LabelImage:
    image, matched, unmatched = read_structure_masks(folder, names)
    if unmatched:
        notes.append(f"structure masks that matched no label name: {', '.join(unmatched)}")
    return LabelImage(image, matched)


def _pool_context():
    """fork where it is the platform's safe default (Linux: fast start), spawn elsewhere."""
    import multiprocessing
    import sys

    return multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")


def _start_worker(parent_pid: int) -> None:
    """Each evaluation worker: one query thread, and it ends when the command does (SIGTERM or SIGKILL to
    evaluate must not leave workers holding the caller's output pipe open)."""
    from ImprovedNNUNetLib.core.workers import end_with_parent

    set_query_workers(1)
    end_with_parent(parent_pid)


def evaluated_in_order(evaluate_one, pairs: list[CasePair], jobs: int, progress: bool):
    """Each pair evaluated, yielded in the order of ``pairs``; with ``jobs`` > 1 in a process pool.
    The first failure cancels the cases not started yet and is raised."""
    bar = dict(total=len(pairs), desc="evaluate", unit="case", disable=None if progress else True,
               leave=False)  # None: shown on a terminal only
    if jobs <= 1:
        with tqdm(**bar) as shown:
            for pair in pairs:
                yield evaluate_one(pair)
                shown.update()
        return
    from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

    with ProcessPoolExecutor(jobs, mp_context=_pool_context(), initializer=_start_worker,
                             initargs=(os.getpid(),)) as pool:
        futures = [pool.submit(evaluate_one, pair) for pair in pairs]
        try:
            with tqdm(**bar) as shown:
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                    shown.update(len(done))
                    for future in done:
                        future.result()  # raises the first failure
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        for future in futures:
            yield future.result()


def check_out_dir(out_dir: Path) -> None:
    """The output folder can be a folder (before anything is evaluated)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} is a file, not a folder; give a folder for summary.json and metrics.csv")
    out_dir.mkdir(parents=True, exist_ok=True)  # an unwritable place fails here, before the work


def check_files_complete(pairs: list[CasePair]) -> None:
    """Refuse truncated images among all inputs before the first case is evaluated."""
    paths = {path for pair in pairs for path in (pair.prediction, pair.reference)}
    check_all_complete(sorted({f for path in paths for f in (mask_files(path) if path.is_dir() else [path])}))


def evaluate(
    prediction: str | Path, reference: str | Path, labels=None, tau_mm: float | Mapping = 1.0,
    out_dir: str | Path | None = None, maps: bool = False, msf_radius: int | None = None,
    overwrite: bool = False, progress: bool = False, chill: bool = False, jobs: int | None = None,
    options: MetricOptions | None = None, probabilities: str | Path | None = None,
) -> list[EvaluatedCase]:
    """Evaluate a prediction file/folder against a reference file/folder.

    ``labels`` as in :func:`compute_metrics` (default: the reference's segment names for
    ``.seg.nrrd``, else every label present). With ``out_dir``, writes ``summary.json``
    and ``metrics.csv`` there, and with ``maps`` also ``maps/<case>_FP|FN[|MSF].nii.gz``.
    Existing outputs are only replaced with ``overwrite``, which first removes exactly what an
    earlier evaluate wrote there (files of other origin are kept). A prediction folder must cover
    every reference case unless ``chill`` (then only the predicted cases are evaluated).
    ``jobs`` cases are evaluated at once in worker processes (default: the cores available; one case
    per worker at a time, so peak memory is about ``jobs`` cases); results keep the folder order.
    ``options`` chooses the metric groups (:mod:`.options`: profiles, lesion metrics, clDice); with lesion
    metrics and ``out_dir``, ``lesions.csv`` holds one row per lesion. ``probabilities`` (a folder of nnU-Net's
    ``<case>.npz`` or of this project's probability maps) adds ECE, Brier score and NLL per label.
    """
    if maps and out_dir is None:
        raise UserError("error maps need an output folder; give --out DIR")
    pairs = match_cases(prediction, reference, allow_missing=chill)
    out_dir = Path(out_dir) if out_dir is not None else None
    settings = Settings(labels, tau_mm, maps, msf_radius, overwrite, options,
                        check_probabilities(probabilities) if probabilities is not None else None)
    if out_dir is None:
        return _evaluate_pairs(pairs, None, settings, progress, jobs)
    check_out_dir(out_dir)
    # one evaluate per output folder at a time: a second one would remove the first's manifest entries and
    # leave maps that a later --overwrite no longer knows
    lock = FolderLock(out_dir, "evaluate", lock_file=out_dir / OUTPUT_LOCK, doing="being written")
    held = False
    try:
        with lock:
            held = True
            return _evaluate_pairs(pairs, out_dir, settings, progress, jobs)
    finally:
        if held:  # ours: no file of this command stays in the user's folder
            (out_dir / OUTPUT_LOCK).unlink(missing_ok=True)


OUTPUT_LOCK = ".improved-nnunet-evaluate.lock"


@dataclass(frozen=True)
class Settings:
    """What every case of one evaluation is evaluated with."""

    labels: object = None
    tau_mm: float | Mapping = 1.0
    maps: bool = False
    msf_radius: int | None = None
    overwrite: bool = False
    options: MetricOptions | None = None
    probabilities: Path | None = None


def evaluate_pairs(pairs: list[CasePair], labels=None, tau_mm: float | Mapping = 1.0, jobs: int | None = None,
                   progress: bool = False, options: MetricOptions | None = None) -> list[EvaluatedCase]:
    """Evaluate cases already paired (``compare`` and the study report pair nnU-Net's validation outputs with
    the raw labels this way): the integrity pre-check of every input, ``jobs`` worker processes, ``.seg.nrrd``
    names and structure-mask folders, as :func:`evaluate`; nothing is written. Results keep the order of
    ``pairs``."""
    return _evaluate_pairs(pairs, None, Settings(labels, tau_mm, options=options), progress, jobs)


def _evaluate_pairs(pairs, out_dir, settings: Settings, progress, jobs):
    outputs = None
    overwrite = settings.overwrite
    if out_dir is not None:
        check_outputs_free(out_dir, overwrite)
        outputs = Outputs(out_dir, "evaluate")
    check_files_complete(pairs)
    if outputs is not None and overwrite:
        outputs.remove_previous()
    maps_dir = out_dir / "maps" if settings.maps else None
    jobs = min(max(1, jobs if jobs is not None else cores_present()), max(1, len(pairs)))
    try:
        evaluate_one = partial(evaluate_case, labels=settings.labels, tau_mm=settings.tau_mm, maps_dir=maps_dir,
                               msf_radius=settings.msf_radius, overwrite=overwrite, options=settings.options,
                               probabilities=settings.probabilities)
        cases = []
        for case in evaluated_in_order(evaluate_one, pairs, jobs, progress):
            cases.append(case)
            if maps_dir is not None:
                outputs.record(*sorted(maps_dir.glob(f"{case.case_id}_*{MAP_SUFFIX}")))
        if out_dir is not None:
            outputs.record(*write_summary(cases, out_dir, overwrite=overwrite, options=settings.options))
    finally:
        if outputs is not None:
            outputs.save()
    return cases
