"""`improved-nnunet evaluate`: per-label metrics of predictions against references."""
from __future__ import annotations

import argparse
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError

SHOWN_KEYS = ("Dice", "IoU", "HD95", "ASSD", "NSD")
OPTIONAL_KEYS = ("clDice", "ECE")  # shown when computed (the tubular profile or cldice; --probabilities)


def add_parser(sub):
    parser = sub.add_parser(
        "evaluate",
        help="compare predicted segmentations with references (Dice, IoU, HD95, NSD, ...)",
        description=(
            "Compare predicted segmentations with reference segmentations, per label: Dice, IoU, "
            "sensitivity, specificity, HD, HD95, HD99.9, ASSD, NSD and volumes. PRED and REF are each a "
            "label image (NIfTI, NRRD, .seg.nrrd, MHA) or a folder of them, matched by case id."
        ),
    )
    parser.add_argument("pred", metavar="PRED", help="predicted label image or folder")
    parser.add_argument("ref", metavar="REF", help="reference label image or folder")
    parser.add_argument(
        "--labels", "-djfile", metavar="DATASET_JSON|VALUES",
        help="labels to evaluate: an nnU-Net dataset.json (names and values) or values such as 1,2,3 "
        "(default: segment names of a .seg.nrrd reference, else every label present)",
    )
    parser.add_argument(
        "--plans-file", "-pfile", metavar="PLANS_JSON",
        help="nnU-Net's plans.json given with -djfile (nnUNetv2_evaluate_folder's pair); checked and accepted: "
        "nnU-Net uses it only to choose its image reader, and this command reads NIfTI/NRRD/MHA itself",
    )
    parser.add_argument("--tau", default=None, metavar="MM|LABEL=MM,...",
                        help="NSD tolerance in mm: one value (default 1.0; the profile's with --profile), or per label "
                             "as 1=2.0,2=1.0 (a bare number among them sets the others)")
    parser.add_argument(
        "--tau-label", action="append", default=[], metavar="LABEL=MM",
        help="NSD tolerance for one label (value or name), repeatable; overrides --tau for that label",
    )
    parser.add_argument("--region", action="append", default=[], metavar="NAME=1,2,3",
                        help="evaluate a region: the union of these label values on both sides (nnU-Net's region-"
                             "based labels, e.g. BraTS whole tumour), repeatable; a region-based dataset.json given to "
                             "--labels brings its regions itself")
    parser.add_argument("--profile", choices=("organ", "lesion", "tubular"),
                        help="the metrics of a task (Metrics Reloaded): organ = overlap, distances, NSD at 2 mm; "
                             "lesion = those at 1 mm plus lesion-wise metrics; tubular = those plus clDice")
    parser.add_argument("--metrics", metavar="GROUPS",
                        help="metric groups to compute, replacing the profile's: overlap, distance, nsd, cldice, "
                             "instances, calibration (e.g. overlap,nsd leaves out the costly distances)")
    lesions = parser.add_argument_group("lesion-wise (instance) metrics")
    lesions.add_argument("--instances", action="store_true",
                         help="lesion-wise metrics: connected components matched one-to-one; writes lesions.csv")
    lesions.add_argument("--connectivity", type=int, metavar="N",
                         help="lesion connectivity: 6, 18, 26 in 3-D, 4 or 8 in 2-D (default 26 / 8)")
    lesions.add_argument("--match-iou", type=float, default=0.5, metavar="IOU",
                         help="a predicted and a reference lesion match at this IoU or more (default 0.5, panoptica's)")
    lesions.add_argument("--size-bins", default="0.1,1,10", metavar="ML,...",
                         help="edges of the lesion size bins of the detection rates, in ml (default 0.1,1,10)")
    lesions.add_argument("--brats-dilation", type=int, default=3, metavar="N",
                         help="BraTS-style lesion-wise Dice: reference lesions dilated N times for matching (3; "
                              "BraTS-MET: 1)")
    lesions.add_argument("--brats-min-volume", type=float, default=50.0, metavar="MM3",
                         help="BraTS-style lesion-wise Dice: leave out reference lesions of at most this volume "
                              "(50 mm³; BraTS-MET: 2)")
    parser.add_argument("--probabilities", metavar="FOLDER|NPZ",
                        help="predicted probabilities (nnU-Net's CASE.npz, or CASE_prob_K images from predict "
                             "--probabilities): adds ECE, Brier score and NLL per label")
    parser.add_argument("--out", metavar="DIR", help="write summary.json and metrics.csv (and lesions.csv) here")
    parser.add_argument("--maps", action="store_true", help="also write FP/FN maps to DIR/maps (needs --out)")
    parser.add_argument(
        "--msf", nargs="?", type=int, const=2, metavar="RADIUS",
        help="with --maps, also write the MSF region (dilation radius in voxels, default 2)",
    )
    parser.add_argument("--overwrite", action="store_true",
                        help="replace what an earlier evaluate wrote in DIR (only that: other files are kept)")
    parser.add_argument("--jobs", "-np", type=int, metavar="N",
                        help="cases evaluated at once in worker processes (default: the cores available; "
                             "nnU-Net's -np)")
    parser.add_argument("--chill", action="store_true",
                        help="evaluate only the cases that have a prediction (as nnU-Net's --chill); by default a "
                             "prediction folder must cover every reference case")
    from ImprovedNNUNetLib.cli.remote import add_server_arguments

    add_server_arguments(parser)


def parse_labels(text: str | None):
    """None, ``{name: value}`` from a dataset.json, or a list of values from ``1,2,3``."""
    if text is None:
        return None
    from ImprovedNNUNetLib.evaluation import labels_from_dataset_json

    if text.lower().endswith(".json") or Path(text).is_file():
        return labels_from_dataset_json(text)
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--labels {text!r}: give a dataset.json file or integer values such as 1,2,3") from None


def check_plans_file(path: str, labels: str | None) -> None:
    """-pfile: a readable nnU-Net plans file, given together with -djfile as nnU-Net requires."""
    import json

    if labels is None:
        raise UserError("-pfile comes with -djfile DATASET_JSON (as in nnUNetv2_evaluate_folder); give both")
    plans = Path(path)
    try:
        content = json.loads(plans.read_text())
    except FileNotFoundError:
        raise UserError(f"-pfile {plans}: no such file; give the model's plans.json") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"-pfile {plans}: not a readable JSON file ({type(exc).__name__}); give the model's "
                        "plans.json") from None
    if not isinstance(content, dict) or "configurations" not in content:
        raise UserError(f"-pfile {plans}: not an nnU-Net plans file (no 'configurations'); give the model's plans.json")


def parse_tau(default, overrides: list[str]):
    """One float, or a dict with per-label values and the ``default``. ``default`` is ``--tau``'s text (a number,
    or LABEL=MM items separated by commas) or a number."""
    taus: dict = {}
    items = list(overrides)
    if isinstance(default, str):
        parts = [p.strip() for p in default.split(",") if p.strip()]
        default = None
        for part in parts:
            if "=" in part:
                items.append(part)
            else:
                default = _mm(part, "--tau")
    if default is not None:
        taus["default"] = float(default)
    for item in items:
        label, _, value = item.rpartition("=")
        label = label.strip()
        mm = _mm(value, None)
        if not label or mm is None:
            raise UserError(f"--tau {item!r}: write LABEL=MM, for example 1=2.0 or liver=2.0")
        taus[int(label) if label.isdigit() else label] = mm
    if set(taus) <= {"default"}:
        return taus.get("default")
    return taus


def _mm(text: str, what: str | None):
    try:
        return float(text)
    except ValueError:
        if what is None:
            return None
        raise UserError(f"{what} {text!r}: give a tolerance in mm such as 2.0, or LABEL=MM items") from None


def parse_regions(items: list[str]) -> dict:
    """``{name: (values...)}`` from ``NAME=1,2,3`` items."""
    regions = {}
    for item in items:
        name, _, values = item.partition("=")
        try:
            numbers = tuple(int(v) for v in values.split(",") if v.strip())
        except ValueError:
            numbers = ()
        if not name.strip() or not numbers:
            raise UserError(f"--region {item!r}: write NAME=VALUES, for example whole_tumour=1,2,3")
        regions[name.strip()] = numbers
    return regions


def parse_bins(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UserError(f"--size-bins {text!r}: give lesion volumes in ml separated by commas, e.g. 0.1,1,10") from None


def options_of(args):
    """The metric options and the NSD tolerance of the command line."""
    from ImprovedNNUNetLib.evaluation.options import InstanceOptions, metric_options

    lesions = InstanceOptions(connectivity=args.connectivity, match_iou=args.match_iou,
                              size_bins_ml=parse_bins(args.size_bins), brats_dilation=args.brats_dilation,
                              brats_min_volume_mm3=args.brats_min_volume)
    metrics = args.metrics.split(",") if args.metrics else None
    options, profile_tau = metric_options(args.profile, metrics, lesions, args.instances)
    tau = parse_tau(args.tau, args.tau_label)
    if tau is None:
        tau = profile_tau
    elif isinstance(tau, dict):
        tau.setdefault("default", profile_tau)
    return options, tau


def labels_of(args):
    """``--labels`` with the ``--region`` items added (with regions and no --labels: the regions only)."""
    labels = parse_labels(args.labels)
    regions = parse_regions(args.region)
    if not regions:
        return labels
    if labels is None:
        return regions
    if not isinstance(labels, dict):
        labels = {str(v): v for v in labels}
    return {**labels, **regions}


def tolerance_text(summary: dict) -> str:
    """``2 mm``, or with --tau-label ``2 mm (ribs: 3 mm)``: the value most labels have, then the others by name."""
    from collections import Counter

    tau = summary["tau_mm"]
    if not isinstance(tau, dict):
        return f"{tau:g} mm"
    common = Counter(float(mm) for mm in tau.values()).most_common(1)[0][0] if tau else 0.0
    others = [f"{summary['labels'].get(value) or value}: {float(mm):g} mm" for value, mm in tau.items()
              if float(mm) != common]
    return f"{common:g} mm" + (f" ({', '.join(others)})" if others else "")


def format_table(cases) -> str:
    """Mean per label over the cases, as aligned text."""
    from ImprovedNNUNetLib.evaluation.summary import summarize

    summary = summarize(cases)
    if not summary["mean"]:
        return (f"no labels to evaluate in {len(cases)} case(s): prediction and reference hold background only; "
                "pass --labels (values or a dataset.json) to score named structures as empty")
    shown = SHOWN_KEYS + tuple(k for k in OPTIONAL_KEYS if any(m.get(k) is not None for m in summary["mean"].values()))
    head = f"{'label':<28}" + "".join(f"{k:>10}" for k in shown) + f"{'cases':>7}{'empty':>7}"
    lines = [f"mean over {len(cases)} case(s), NSD tolerance {tolerance_text(summary)}", head]
    for value, means in summary["mean"].items():
        name = summary["labels"][value]
        title = f"{value} {name}" if name and name != value else value
        cells = "".join(f"{means[k]:>10.4f}" if means.get(k) is not None else f"{'-':>10}" for k in shown)
        empty = means["n_both_empty"] + means["n_one_side_empty"]
        lines.append(f"{title[:27]:<28}{cells}{means['n_cases']:>7}{empty:>7}")
    return "\n".join(lines)


def checked_jobs(jobs: int | None) -> int | None:
    """``--jobs`` as given (None: the default, the cores available), or the one-line error for a number below
    one (``evaluate``, ``compare`` and ``study report`` share it)."""
    if jobs is not None and jobs < 1:
        raise UserError(f"--jobs {jobs}: give 1 or more worker processes")
    return jobs


def run(args: argparse.Namespace) -> int:
    from ImprovedNNUNetLib.evaluation.runner import evaluate

    if getattr(args, "server", None):
        from ImprovedNNUNetLib.cli.remote import remote_evaluate

        return remote_evaluate(args)
    checked_jobs(args.jobs)
    if args.plans_file is not None:
        check_plans_file(args.plans_file, args.labels)
    if args.msf is not None and not args.maps:
        raise UserError("--msf adds the MSF region to the error maps; give --maps too")
    options, tau = options_of(args)
    cases = evaluate(
        args.pred, args.ref, labels=labels_of(args), tau_mm=tau,
        out_dir=args.out, maps=args.maps, msf_radius=args.msf, overwrite=args.overwrite, progress=True,
        chill=args.chill, jobs=args.jobs, options=options, probabilities=args.probabilities,
    )
    print(format_table(cases))
    if options.has("instances"):
        print(lesion_report(cases))
    for case in cases:
        for note in case.metrics.notes:
            print(f"{case.case_id}: {note}")
    if args.out:
        written = ["summary.json", "metrics.csv"] + (["lesions.csv"] if options.has("instances") else [])
        print(f"wrote {', '.join(str(Path(args.out) / name) for name in written)}")
    return 0


REVIEW_FIRST = 5


def lesion_report(cases) -> str:
    """Lesions per label over all cases (found, missed by size, false) and the missed lesions to look at first
    (the largest), with their centres in mm."""
    from ImprovedNNUNetLib.evaluation.summary import pooled_instances

    labels = {}
    for case in cases:
        for key, m in case.metrics.labels.items():
            labels.setdefault(key, m.name)
    lines = []
    for key, pooled in pooled_instances(cases, labels).items():
        name = next((n for k, n in labels.items() if str(k) == key and n), None)
        title = f"{key} {name}" if name and name != key else key
        f1 = "-" if pooled["f1"] is None else f"{pooled['f1']:.3f}"
        lines.append(f"lesions of {title}: {pooled['n_ref']} in the references, {pooled['n_pred']} predicted, "
                     f"{pooled['tp']} matched, {pooled['fn']} missed, {pooled['fp']} false; lesion F1 {f1}, "
                     f"BraTS-style lesion-wise Dice {pooled['brats_dice_mean']:.3f}")
        sizes = ", ".join(f"{_bin_text(b)}: {b['detected']}/{b['n_ref']}" for b in pooled["detection_by_size"]
                          if b["n_ref"])
        if sizes:
            lines.append(f"  detected by size: {sizes}")
    missed = sorted(((lesion.volume_ref_ml, case.case_id, key, lesion) for case in cases
                     for key, m in case.metrics.labels.items() if m.instances is not None
                     for lesion in m.instances.lesions if lesion.kind == "missed"), key=lambda t: -t[0])
    if missed:
        lines.append("missed lesions to look at first (largest):")
        for volume, case_id, key, lesion in missed[:REVIEW_FIRST]:
            where = ", ".join(f"{v:.1f}" for v in lesion.centre_mm) if lesion.centre_mm else "?"
            lines.append(f"  {case_id} label {key}: {volume:.3f} ml at ({where}) mm")
    return "\n".join(lines) if lines else "no lesions in any case"


def _bin_text(b: dict) -> str:
    return f">= {b['low_ml']:g} ml" if b["high_ml"] is None else f"{b['low_ml']:g}-{b['high_ml']:g} ml"
