"""The command line's client of an `improved-nnunet serve` server: `predict --server`, `evaluate --server`, `train --server` and
`improved-nnunet jobs` (list, follow, cancel, resume, download the jobs of a key)."""
from __future__ import annotations

import sys
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError


def add_server_arguments(parser) -> None:
    group = parser.add_argument_group("on a server (improved-nnunet serve)")
    group.add_argument("--server", metavar="URL", help="run on this server instead of here, e.g. http://127.0.0.1:8765 "
                                                       "(an SSH tunnel's end) or https://gpu.lab:8765")
    group.add_argument("--api-key", metavar="KEY", help="the server key (default: $IMPROVED_NNUNET_API_KEY)")


def client_of(args):
    from ImprovedNNUNetLib.server.client import ServerClient

    return ServerClient(args.server, args.api_key)


def follow(client, job_id: int, poll_s: float = 2.0) -> dict:
    """Print the job's progress (one line per epoch of a training) until it ends; Ctrl+C leaves it running."""
    import time

    after = 0
    try:
        while True:
            events, after = client.events(job_id, after)
            for event in events:
                if event.get("stage") == "training" and event.get("epoch_time_s") is not None:
                    print(f"job {job_id}: epoch {event['epoch'] + 1}: train loss {event.get('train_loss'):.4f}, "
                          f"validation loss {event.get('val_loss'):.4f}, pseudo Dice {event.get('pseudo_dice')}",
                          flush=True)
            job = client.job(job_id)
            if job["state"] in ("done", "failed", "cancelled", "interrupted"):
                return job
            time.sleep(poll_s)
    except KeyboardInterrupt:
        print(f"\nstopped following; job {job_id} goes on on the server: improved-nnunet jobs wait {job_id} "
              f"--server {client.url}", file=sys.stderr)
        raise SystemExit(130) from None


def ended(job: dict) -> int:
    if job["state"] != "done":
        raise UserError(f"job {job['id']} {job['state']}: {job['message'] or 'see the server'}")
    return 0


def series_as_files(case, folder: Path) -> list[Path]:
    """A DICOM case's series written as NIfTI channel files in ``folder`` (what the server's upload takes; the series
    are checked and read here, so only their voxels and geometry leave this computer)."""
    from ImprovedNNUNetLib.core.dicom_series import read_series
    from ImprovedNNUNetLib.core.imageio import write_image

    return [write_image(read_series(series), folder / f"{case.case_id}_{index:04d}.nii.gz")
            for index, series in enumerate(case.series)]


def remote_predict(args) -> int:
    """Each case of ``-i`` (grouped by the server model's channels) segmented on the server into ``-o``."""
    import json
    import tempfile

    from ImprovedNNUNetLib.inference.cases import gather_cases
    from ImprovedNNUNetLib.inference.uncertainty import SCORE_SUFFIX, write_ranking, write_score

    if not args.model:
        raise UserError("with --server, -m names a model installed on the server ('improved-nnunet jobs models' "
                        "lists them)")
    client = client_of(args)
    models = {m["name"]: m for m in client.models()}
    if args.model not in models:
        raise UserError(f"the server has no model {args.model!r}; it has: {', '.join(models) or 'none'}")
    if any(kind != "nifti" for kind in getattr(args, "output_types", ["nifti"])):
        raise UserError("with --server, predict writes NIfTI; write DICOM SEG or RTSTRUCT by predicting on this "
                        "computer (or evaluate the NIfTI against the series)")
    cases = gather_cases(args.input, models[args.model]["channels"])
    output = Path(args.output)
    for case in cases:
        target = output / f"{case.case_id}{case.suffix}"
        if target.exists() and not args.overwrite:
            raise UserError(f"{target} exists; choose another output folder or pass --overwrite")
        with tempfile.TemporaryDirectory(prefix="dicom-case-") as converted:
            files = case.files or series_as_files(case, Path(converted))  # a DICOM series travels as NIfTI
            job = client.segment(args.model, files, folds=args.folds, tta=args.tta, sdm=args.sdm,
                                 probabilities=args.probabilities, uncertainty=args.uncertainty)
        print(f"{case.case_id}: job {job['id']} on {client.url}", flush=True)
        ended(follow(client, job["id"], poll_s=1.0))
        with tempfile.TemporaryDirectory(dir=output.parent if output.parent.exists() else None) as scratch:
            for path in client.download(job["id"], scratch):
                if not path.name.startswith("case"):
                    continue  # the job's own uncertainty.csv: the ranking of all cases is written below
                name = f"{case.case_id}{path.name[len('case'):]}"
                if name.endswith(SCORE_SUFFIX):  # the review score names the case as the server saw it
                    write_score(path, case.case_id, {k: v for k, v in json.loads(path.read_text()).items()
                                                     if k != "case_id"})
                destination = output / name
                destination.parent.mkdir(parents=True, exist_ok=True)
                if destination.exists() and not args.overwrite:
                    raise UserError(f"{destination} exists; choose another output folder or pass --overwrite")
                path.replace(destination)
                print(f"wrote {destination}", flush=True)
    if args.uncertainty and (ranking := write_ranking(output)) is not None:
        print(f"wrote {ranking}: the cases to review first at the top", flush=True)
    return 0


LOCAL_ONLY_EVALUATE = (("--probabilities", "probabilities"), ("--maps", "maps"), ("--msf", "msf"))


def remote_evaluate(args) -> int:
    """``evaluate --server``: one prediction file against one reference file on the server (what evaluate takes:
    labels and regions, profile, metric groups, lesion settings, τ by label value); its summary.json,
    metrics.csv (and lesions.csv) come back into ``--out``."""
    from ImprovedNNUNetLib.cli.evaluate import labels_of, parse_bins, parse_tau
    from ImprovedNNUNetLib.evaluation.summary import RESULT_FILES, check_outputs_free

    for side, path in (("prediction", args.pred), ("reference", args.ref)):
        if not Path(path).is_file():
            raise UserError(f"with --server, evaluate takes one {side} file ({path} is not a file); evaluate "
                            "folders on this computer")
    if not args.out:
        raise UserError("with --server, give --out DIR for the results the server sends back")
    check_outputs_free(args.out, args.overwrite)  # before anything is sent
    local = [flag for flag, name in LOCAL_ONLY_EVALUATE if getattr(args, name) not in (None, False)]
    if args.brats_dilation != 3 or args.brats_min_volume != 50.0:
        local.append("--brats-dilation/--brats-min-volume")
    if local:
        raise UserError(f"with --server, evaluate leaves out {', '.join(local)}; evaluate on this computer for those")
    tau = parse_tau(args.tau, args.tau_label)
    if isinstance(tau, dict) and any(not (isinstance(k, int) or k == "default") for k in tau):
        raise UserError("with --server, give per-label tolerances by label value (--tau 1=2.0,2=1.0)")
    labels = labels_of(args)
    if isinstance(labels, list):
        labels = {str(value): value for value in labels}
    settings = {"profile": args.profile, "metrics": args.metrics.split(",") if args.metrics else None,
                "instances": bool(args.instances), "connectivity": args.connectivity, "match_iou": args.match_iou,
                "size_bins": list(parse_bins(args.size_bins))}
    client = client_of(args)
    job = client.evaluate(args.pred, args.ref, labels=labels,
                          tau={str(k): v for k, v in tau.items()} if isinstance(tau, dict) else tau, **settings)
    print(f"job {job['id']} on {client.url}: evaluating {Path(args.pred).name} against {Path(args.ref).name}",
          flush=True)
    ended(follow(client, job["id"], poll_s=0.5))
    import tempfile

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".download-") as scratch:  # checked files, then moved in
        downloaded = client.download(job["id"], scratch)
        for stale in set(RESULT_FILES) - {path.name for path in downloaded}:
            (out / stale).unlink(missing_ok=True)  # --overwrite: an earlier evaluate's lesions.csv does not stay
        for path in downloaded:
            path.replace(out / path.name)
            print(f"wrote {out / path.name}")
    return 0


def remote_train(args) -> int:
    """The training on the server (its dataset there by name; ``--upload-dataset FOLDER`` sends one first)."""
    from ImprovedNNUNetLib.core.variants import PLANNERS
    from ImprovedNNUNetTrainingLib.engine.hyperparameters import parse_assignment

    planner = next((name for name, plans in PLANNERS.items() if plans == args.plans), None)
    if planner is None:
        raise UserError(f"--plans {args.plans}: the server plans with nnU-Net's planners ({', '.join(PLANNERS.values())})")
    client = client_of(args)
    dataset = client.upload_dataset(args.upload_dataset) if args.upload_dataset else args.dataset
    settings = dict(variant=args.variant, configuration=args.configuration, folds=list(args.fold), epochs=args.epochs,
                    iterations_per_epoch=args.iters_per_epoch, validation_iterations_per_epoch=args.val_iters_per_epoch,
                    hyperparameters=dict(parse_assignment(text) for text in args.hyperparameters),
                    overwrite=args.overwrite, planner=planner)
    job = client.train(dataset, **settings)
    print(f"job {job['id']} on {client.url}: training {dataset} ({args.variant}, folds "
          f"{', '.join(map(str, args.fold))})", flush=True)
    if args.detach:
        print(f"follow it with: improved-nnunet jobs wait {job['id']} --server {client.url}")
        return 0
    return ended(follow(client, job["id"]))


def remote_study(args) -> int:
    """``study run --server``: the study runs on the server (one of its slots, or its SLURM), its report comes
    back into ``./<name>-report`` when it ends."""
    if args.file or not args.dataset or not args.arm:
        raise UserError("with --server, give DATASET and the --arm options (a study file stays on this computer)")
    if args.seeds:
        raise UserError("with --server, the repeats take the seeds 0, 1, ...; leave out --seeds")
    client = client_of(args)
    settings = {"name": args.name, "folds": args.folds, "epochs": args.epochs, "iters_per_epoch": args.iters_per_epoch,
                "val_iters_per_epoch": args.val_iters_per_epoch, "configuration": args.configuration,
                "plans": args.plans, "executor": args.executor, "repeats": args.repeats}
    job = client.study(args.dataset, list(args.arm), **{k: v for k, v in settings.items() if v is not None})
    print(f"job {job['id']} on {client.url}: study {job['spec']['name']} of {args.dataset}", flush=True)
    if args.detach:
        print(f"follow it with: improved-nnunet jobs wait {job['id']} --server {client.url}")
        return 0
    ended(follow(client, job["id"], poll_s=5.0))
    for path in client.download(job["id"], Path(f"{job['spec']['name']}-report")):
        print(f"wrote {path}")
    return 0


def add_parser(sub):
    parser = sub.add_parser("jobs", help="the jobs of a key on an improved-nnunet server: list, wait, cancel, "
                                         "resume, download; and the server's models",
                            description="Follow work started on a server (improved-nnunet serve) from this computer.")
    parser.add_argument("action", choices=("list", "show", "wait", "cancel", "resume", "download", "models"))
    parser.add_argument("job", nargs="?", type=int, help="the job's number (all but list and models)")
    parser.add_argument("folder", nargs="?", type=Path, help="with download: where the results go")
    add_server_arguments(parser)


def run(args) -> int:
    import json

    if not args.server:
        raise UserError("give the server: --server URL")
    client = client_of(args)
    if args.action == "list":
        for job in client.jobs():
            print(f"{job['id']}\t{job['kind']}\t{job['state']}\t{job['owner']}\t{job['message']}")
        return 0
    if args.action == "models":
        for model in client.models():
            print(f"{model['name']}\tfolds {','.join(map(str, model['folds']))}\tchannels {', '.join(model['channels'])}")
        return 0
    if args.job is None:
        raise UserError(f"jobs {args.action} needs the job's number")
    if args.action == "show":
        print(json.dumps(client.job(args.job), indent=2))
    elif args.action == "wait":
        return ended(follow(client, args.job))
    elif args.action in ("cancel", "resume"):
        job = getattr(client, args.action)(args.job)
        print(f"job {job['id']}: {job['state']} {job['message']}".rstrip())
    else:
        if args.folder is None:
            raise UserError("jobs download JOB FOLDER: give the folder for the results")
        for path in client.download(args.job, args.folder):
            print(f"wrote {path}")
    return 0
