"""`improved-nnunet predict`: segment image files with a trained model, one case after another in memory."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.imageio import IMAGE_SUFFIXES
from ImprovedNNUNetLib.core.safe_write import PARTIAL_PREFIX, write_text_verified, write_verified


def add_parser(sub):
    parser = sub.add_parser(
        "predict",
        help="segment images with a trained (imported) model",
        description=(
            "Segment images with a trained nnU-Net model of any ImprovedNNUNet variant or stock nnU-Net. "
            "Multi-channel cases are files named CASE_0000, CASE_0001, ... (nnU-Net's naming). Writes "
            "OUT/CASE<suffix of the input> with the input's exact geometry; never replaces an existing "
            "file without --overwrite."
        ),
    )
    parser.add_argument("--output-type", dest="output_types", nargs="+", default=["nifti"], metavar="TYPE",
                        choices=("nifti", "dicom_seg", "dicom_rtstruct"),
                        help="nifti (default), dicom_seg (CASE.seg.dcm) and/or dicom_rtstruct (CASE.rtstruct.dcm); the "
                             "DICOM outputs need DICOM input and reference its series")
    parser.add_argument("-i", "--input", nargs="+", required=True, metavar="FILE|FOLDER",
                        help="image file(s) and/or folder(s) of images")
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="output folder (or an output file name when there is a single case)")
    parser.add_argument("-m", "--model", metavar="MODEL",
                        help="model folder (dataset.json, plans.json, fold_N/) or the name of an imported model; "
                             "or address it as nnU-Net does with -d/-c/-tr|--variant/-p")
    parser.add_argument("-d", dest="dataset", metavar="DATASET",
                        help="nnU-Net addressing: dataset id or name in nnUNet_results")
    parser.add_argument("-c", dest="configuration", default="3d_fullres", metavar="CONFIG",
                        help="with -d: configuration (default 3d_fullres)")
    parser.add_argument("-tr", dest="trainer", metavar="TRAINER",
                        help="with -d: trainer class name (default nnUNetTrainer)")
    parser.add_argument("--variant", metavar="V", help="with -d: this project's variant name instead of -tr")
    parser.add_argument("-p", dest="plans", default="nnUNetPlans", metavar="PLANS",
                        help="with -d: plans identifier (default nnUNetPlans)")
    parser.add_argument("--folds", "-f", nargs="+", metavar="FOLD",
                        help="folds to ensemble, e.g. 0 1 2, or 'all' for the fold_all model (default: every "
                             "trained fold)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available, else CPU), cpu, cuda, "
                                                         "cuda:N or mps (default auto)")
    tta = parser.add_mutually_exclusive_group()
    tta.add_argument("--tta", dest="tta", action="store_true", default=None,
                     help="test-time mirroring (default: on with CUDA, off on the CPU)")
    tta.add_argument("--no-tta", "--disable_tta", dest="tta", action="store_false", help="no test-time mirroring")
    parser.add_argument("--step", "-step_size", type=float, default=0.5,
                        help="tile step as a fraction of the patch size, in (0, 1] (default 0.5)")
    parser.add_argument("--probabilities", action="store_true",
                        help="also write OUT/CASE_prob_K images (one map per network output K; K = label value)")
    parser.add_argument("--save_probabilities", "--npz", dest="npz", action="store_true",
                        help="also write OUT/CASE.npz + CASE.pkl as nnU-Net does (and dataset.json, plans.json), "
                             "for `improved-nnunet ensemble` and nnUNetv2_ensemble")
    parser.add_argument("--read-workers", "-npp", dest="read_workers", type=int, default=2, metavar="N",
                        help="threads reading the next cases while one is segmented (default 2)")
    parser.add_argument("--write-workers", "-nps", dest="write_workers", type=int, default=2, metavar="N",
                        help="threads writing results while the next case is segmented (default 2)")
    parser.add_argument("--uncertainty", action="store_true",
                        help="also write CASE_uncertainty (entropy of the mean probabilities, 0-1) and, with several "
                             "folds, CASE_disagreement (fraction of folds that disagree), and uncertainty.csv ranking "
                             "the cases to review first")
    parser.add_argument("--sdm", action="store_true",
                        help="also write OUT/CASE_sdm_L, the signed-distance map of label L (sdm models only)")
    parser.add_argument("--checkpoint", "-chk", default="checkpoint_final.pth",
                        help="checkpoint file name in fold_N (default checkpoint_final.pth)")
    done = parser.add_mutually_exclusive_group()
    done.add_argument("--overwrite", action="store_true", help="replace existing output files")
    done.add_argument("--continue", "--continue_prediction", dest="continue_prediction", action="store_true",
                      help="skip cases whose segmentation already exists (resume an interrupted folder)")
    parser.add_argument("--num-parts", "-num_parts", type=int, default=1, metavar="N",
                        help="split the cases into N parts (several GPUs or cluster jobs share a folder)")
    parser.add_argument("--part-id", "-part_id", type=int, default=0, metavar="K",
                        help="with --num-parts: predict part K (0..N-1)")
    from ImprovedNNUNetLib.cli.remote import add_server_arguments

    add_server_arguments(parser)


def _output_base(case, output: Path, single_case: bool) -> tuple[Path, str]:
    """(path without suffix, image suffix) of a case's segmentation file."""
    suffix = next((s for s in IMAGE_SUFFIXES if output.name.lower().endswith(s)), None)
    if single_case and suffix:
        return output.with_name(output.name[: -len(suffix)]), output.name[-len(suffix):]
    return output / case.case_id, case.suffix


def distance_map_keys(label_manager) -> list:
    """What names each distance map file: the foreground label value, or for region models r0, r1, ... in the
    order of the regions in dataset.json."""
    if label_manager.has_regions:
        return [f"r{index}" for index in range(len(label_manager.foreground_regions))]
    return list(label_manager.foreground_labels)


def output_files(case, output: Path, single_case: bool, model, probabilities: bool, sdm: bool,
                 npz: bool = False, uncertainty: bool = False, output_types=("nifti",)) -> dict:
    """``{"segmentation": path, "prob_K": path, "sdm_L": path, "npz": path, "pkl": path, "dicom_seg": path, ...}``
    for one case; without ``nifti`` among the output types, the first DICOM output is the "segmentation" (the
    file written last, which ``--continue`` looks for)."""
    from ImprovedNNUNetLib.inference.dicom_output import SUFFIXES

    base, suffix = _output_base(case, output, single_case)
    files = {kind: base.with_name(base.name + SUFFIXES[kind]) for kind in output_types if kind in SUFFIXES}
    first = next(iter(files)) if "nifti" not in output_types and files else None
    files["segmentation"] = files.pop(first) if first else base.with_name(base.name + suffix)
    if npz:
        files["npz"], files["pkl"] = base.with_name(base.name + ".npz"), base.with_name(base.name + ".pkl")
    if probabilities:
        for index in range(model.label_manager.num_segmentation_heads):
            files[f"prob_{index}"] = base.with_name(f"{base.name}_prob_{index}{suffix}")
    if sdm:
        for value in distance_map_keys(model.label_manager):
            files[f"sdm_{value}"] = base.with_name(f"{base.name}_sdm_{value}{suffix}")
    if uncertainty:
        from ImprovedNNUNetLib.inference.uncertainty import SCORE_SUFFIX

        files["uncertainty"] = base.with_name(f"{base.name}_uncertainty{suffix}")
        if len(model.folds) > 1:
            files["disagreement"] = base.with_name(f"{base.name}_disagreement{suffix}")
        files["score"] = base.with_name(base.name + SCORE_SUFFIX)
    return files


def _check_free(planned: list[dict]) -> None:
    existing = [path for files in planned for path in files.values() if path.exists()]
    if existing:
        raise UserError(f"{existing[0]} exists ({len(existing)} output file(s) in the way); "
                        f"choose another output or add --overwrite")


def check_output(output: Path, cases) -> None:
    """The output names a file only for one case, and a folder is not in the way of a file or vice versa."""
    names_file = output.name.lower().endswith(IMAGE_SUFFIXES)
    if names_file and len(cases) > 1:
        raise UserError(f"-o {output} names one image file but {len(cases)} cases are given; give an output folder")
    if names_file and output.is_dir():
        raise UserError(f"-o {output} is a folder; give a file name that is free, or the folder's parent")
    if not names_file and output.exists() and not output.is_dir():
        raise UserError(f"-o {output} exists and is not a folder; give an output folder")


def model_path_of(args) -> Path:
    """The model folder from -m, or from nnU-Net's -d/-c/-tr|--variant/-p addressing."""
    from ImprovedNNUNetLib.inference.models.store import resolve_model

    if args.model and args.dataset:
        raise UserError("give the model either with -m or with -d/-c/-tr, not both")
    if args.model:
        return resolve_model(args.model)
    if not args.dataset:
        raise UserError("no model given: pass -m MODEL_FOLDER|NAME, or -d DATASET [-c CONFIG] [-tr TRAINER|--variant V]")
    if args.trainer and args.variant:
        raise UserError("give -tr or --variant, not both")
    from ImprovedNNUNetLib.core.variants import TRAINER_NAMES
    from ImprovedNNUNetTrainingLib.engine.environment import dataset_name, folder_variable

    if args.variant and args.variant not in TRAINER_NAMES:
        raise UserError(f"unknown variant {args.variant!r}; choose one of {', '.join(TRAINER_NAMES)}")
    trainer = TRAINER_NAMES[args.variant] if args.variant else (args.trainer or "nnUNetTrainer")
    return (folder_variable("nnUNet_results") / dataset_name(str(args.dataset))
            / f"{trainer}__{args.plans}__{args.configuration}")


def this_part(cases: list, num_parts: int, part_id: int) -> list:
    """Every ``num_parts``-th case starting at ``part_id`` (nnU-Net's split of a folder into parts)."""
    if num_parts < 1 or not 0 <= part_id < num_parts:
        raise UserError(f"--part-id {part_id} --num-parts {num_parts}: give 0 <= part-id < num-parts")
    return cases[part_id::num_parts]


def run(args) -> int:
    if args.server:
        from ImprovedNNUNetLib.cli.remote import remote_predict

        return remote_predict(args)
    from ImprovedNNUNetLib.inference.cases import gather_cases
    from ImprovedNNUNetLib.inference.model_folder import open_model_folder

    # Everything that can be checked without torch is checked first, before the model loads.
    model_path = model_path_of(args)
    folder = open_model_folder(model_path, args.checkpoint)
    all_cases = gather_cases(args.input, folder.channel_names)
    dicom_only = [kind for kind in args.output_types if kind != "nifti"]
    if dicom_only and not all(case.series for case in all_cases):
        plain = next(case.case_id for case in all_cases if not case.series)
        raise UserError(f"--output-type {dicom_only[0]} references the DICOM series a case came from; case {plain!r} "
                        "is an image file: give DICOM series folders, or --output-type nifti")
    cases = this_part(all_cases, args.num_parts, args.part_id)
    output = Path(args.output)
    check_output(output, all_cases)
    single = len(all_cases) == 1
    if args.continue_prediction:
        from ImprovedNNUNetLib.core.safe_write import readable_whole

        existing = {case.case_id: path for case in cases
                    if (path := output_files(case, output, single, None, False, False,
                                             output_types=args.output_types)["segmentation"]).exists()}
        finished = {case_id for case_id, path in existing.items() if readable_whole(path)}
        if finished:
            print(f"--continue: {len(finished)} of {len(cases)} case(s) already have a segmentation; skipped",
                  file=sys.stderr)
        for case_id, path in existing.items():  # a file cut short (a disk that filled) is predicted again
            if case_id not in finished:
                print(f"--continue: {path} is incomplete; predicting {case_id} again", file=sys.stderr)
                path.unlink()
        cases = [c for c in cases if c.case_id not in finished]
        if not cases:
            return 0
    segmentations = [output_files(case, output, single, None, False, False, output_types=args.output_types)
                     for case in cases]
    if not args.overwrite:
        _check_free(segmentations)
    from ImprovedNNUNetLib.core.image_integrity import check_all_complete

    check_all_complete(path for case in cases for path in case.files)

    if args.read_workers < 1 or args.write_workers < 1:
        raise UserError("-npp/-nps: give at least 1 worker")
    if args.npz:
        from ImprovedNNUNetLib.inference.npz import check_npz_supported

        check_npz_supported(folder.plans)
        model_files = model_json_files(model_path, _output_base(cases[0], output, single)[0].parent, args.overwrite)
    with ReadAhead(cases, args.read_workers) as reads:  # the first cases are read while torch and the model load
        from ImprovedNNUNetLib.inference import load_model

        model = load_model(model_path, folds=args.folds, device=args.device, checkpoint_name=args.checkpoint)
        if args.sdm and not model.has_distance_head:
            raise UserError(f"--sdm needs a model trained with the sdm variant; this one used {model.trainer_name}")
        if model.device_note:
            print(f"note: {model.device_note}", file=sys.stderr)
        planned = [output_files(case, output, single, model, args.probabilities, args.sdm, args.npz,
                                args.uncertainty, args.output_types) for case in cases]
        if not args.overwrite:
            _check_free(planned)
        if args.npz:
            planned[0]["npz"].parent.mkdir(parents=True, exist_ok=True)
            for target, text in model_files.items():
                write_text_verified(target, text)
        remove_partial_files(planned)
        segment_all(model, cases, planned, args, reads)
    if args.uncertainty:
        from ImprovedNNUNetLib.inference.uncertainty import write_ranking

        ranking = write_ranking(planned[0]["score"].parent)
        print(f"review first: the top of {ranking} (cases ranked by uncertain volume)")
    return 0


class ReadAhead:
    """Reads cases in ``workers`` threads, at most ``workers`` cases ahead of the one being taken (ITK's reader
    and zlib release the GIL, so reading overlaps the imports, the model's loading and the network)."""

    def __init__(self, cases, workers: int):
        from concurrent.futures import ThreadPoolExecutor

        self.cases, self.workers = cases, workers
        self.pool = ThreadPoolExecutor(workers)
        self.pending = {}
        for index in range(workers):
            self._submit(index)

    def _submit(self, index: int) -> None:
        from ImprovedNNUNetLib.inference.cases import read_case

        if index < len(self.cases):
            self.pending[index] = self.pool.submit(read_case, self.cases[index])

    def take(self, index: int) -> list:
        """The images of case ``index`` (the next one is then read); they are not kept here."""
        images = self.pending.pop(index).result()
        self._submit(index + self.workers)
        return images

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.pool.shutdown(wait=True, cancel_futures=True)


MODEL_JSON_FILES = ("dataset.json", "plans.json")  # what nnUNetv2_ensemble reads beside the .npz files


def model_json_files(model_path: Path, folder: Path, overwrite: bool) -> dict:
    """``{target path: text}`` of the model's dataset.json and plans.json to write beside the .npz files.
    A file already there with the same text stays (a --continue or another part of the same prediction);
    one with other text is replaced only with --overwrite."""
    files = {}
    for name in MODEL_JSON_FILES:
        text = (model_path / name).read_text(encoding="utf-8")
        target = folder / name
        if target.is_file() and target.read_text(encoding="utf-8", errors="replace") == text:
            continue
        if target.exists() and not overwrite:
            raise UserError(f"{target} exists and is not this model's {name}; choose another output or add "
                            "--overwrite")
        files[target] = text
    return files


def remove_partial_files(planned: list[dict]) -> None:
    """Temporary files a killed run left behind for the cases about to be written."""
    for files in planned:
        for path in files.values():
            path.with_name(PARTIAL_PREFIX + path.name).unlink(missing_ok=True)


def write_outputs(model, result, files: dict, case=None) -> None:
    """Every output of a case, the segmentation last: a case whose segmentation exists is complete, which
    is what --continue relies on."""
    from ImprovedNNUNetLib.core.imageio import write_image
    from ImprovedNNUNetLib.inference.npz import write_probabilities, write_properties

    for index, image in enumerate((result.probabilities or {}).values()):  # only when --probabilities
        write_image(image, files[f"prob_{index}"], overwrite=True)  # temporary name, checked, renamed
    for value, image in zip(distance_map_keys(model.label_manager), (result.distance_maps or {}).values()):
        write_image(image, files[f"sdm_{value}"], overwrite=True)
    if result.uncertainty is not None:
        from ImprovedNNUNetLib.inference.uncertainty import SCORE_SUFFIX, write_score

        write_image(result.uncertainty, files["uncertainty"], overwrite=True)
        if result.disagreement is not None:
            write_image(result.disagreement, files["disagreement"], overwrite=True)
        write_score(files["score"], files["score"].name[: -len(SCORE_SUFFIX)], result.uncertainty_score)
    if "npz" in files:
        write_verified(files["pkl"], lambda t: write_properties(t, result.nnunet_properties))
        write_verified(files["npz"], lambda t: write_probabilities(t, result.probability_array))
    from ImprovedNNUNetLib.inference.dicom_output import write_dicom_outputs

    if not write_dicom_outputs(result.segmentation, case, model.labels, files):  # True: the last file was DICOM
        write_image(result.segmentation, files["segmentation"], overwrite=True)


def segment_all(model, cases, planned, args, reads: ReadAhead) -> None:
    """Segment the cases one after another; ``-npp`` threads read the next cases ahead (``reads``) and ``-nps``
    threads write finished ones, so reading and writing overlap the network."""
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    with ThreadPoolExecutor(args.write_workers) as writers:
        writes = []
        for index, (case, files) in enumerate(zip(cases, planned)):
            started = time.perf_counter()
            images = reads.take(index)
            while len([w for w in writes if not w.done()]) > args.write_workers:  # bound results held in memory
                next(w for w in writes if not w.done()).result()
            with tqdm(desc=case.case_id, unit="tile", file=sys.stderr, disable=None, leave=False) as bar:
                def progress(done, total, bar=bar):
                    bar.total = total
                    bar.update(done - bar.n)

                result = model.predict(images, probabilities=args.probabilities or args.npz, sdm=args.sdm,
                                       tta=args.tta, step=args.step, progress=progress,
                                       uncertainty=args.uncertainty)
            if not args.probabilities:
                result.probabilities = None
            writes.append(writers.submit(write_outputs, model, result, files, case))
            print(f"{case.case_id}: {files['segmentation']} ({time.perf_counter() - started:.1f} s)")
        for write in writes:
            write.result()
