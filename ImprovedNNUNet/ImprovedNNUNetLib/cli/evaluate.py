"""`improved-nnunet evaluate`: per-label metrics of predictions against references."""
from __future__ import annotations

import argparse
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError

SHOWN_KEYS = ("Dice", "IoU", "HD95", "ASSD", "NSD")


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
    parser.add_argument("--tau", type=float, default=1.0, metavar="MM", help="NSD tolerance in mm (default 1.0)")
    parser.add_argument(
        "--tau-label", action="append", default=[], metavar="LABEL=MM",
        help="NSD tolerance for one label (value or name), repeatable; overrides --tau for that label",
    )
    parser.add_argument("--out", metavar="DIR", help="write summary.json and metrics.csv here")
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


def parse_tau(default: float, overrides: list[str]):
    """One float, or a dict with per-label values and the ``default``."""
    if not overrides:
        return default
    taus: dict = {"default": default}
    for item in overrides:
        label, _, value = item.rpartition("=")
        label = label.strip()
        try:
            mm = float(value)
        except ValueError:
            mm = None
        if not label or mm is None:
            raise UserError(f"--tau-label {item!r}: write LABEL=MM, for example 1=2.0 or liver=2.0")
        taus[int(label) if label.isdigit() else label] = mm
    return taus


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
    head = f"{'label':<28}" + "".join(f"{k:>10}" for k in SHOWN_KEYS) + f"{'cases':>7}{'empty':>7}"
    lines = [f"mean over {len(cases)} case(s), NSD tolerance {tolerance_text(summary)}", head]
    for value, means in summary["mean"].items():
        name = summary["labels"][value]
        title = f"{value} {name}" if name else value
        cells = "".join(f"{means[k]:>10.4f}" if means[k] is not None else f"{'-':>10}" for k in SHOWN_KEYS)
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

    checked_jobs(args.jobs)
    if args.plans_file is not None:
        check_plans_file(args.plans_file, args.labels)
    if args.msf is not None and not args.maps:
        raise UserError("--msf adds the MSF region to the error maps; give --maps too")
    cases = evaluate(
        args.pred, args.ref, labels=parse_labels(args.labels), tau_mm=parse_tau(args.tau, args.tau_label),
        out_dir=args.out, maps=args.maps, msf_radius=args.msf, overwrite=args.overwrite, progress=True,
        chill=args.chill, jobs=args.jobs,
    )
    print(format_table(cases))
    for case in cases:
        for note in case.metrics.notes:
            print(f"{case.case_id}: {note}")
    if args.out:
        print(f"wrote {Path(args.out) / 'summary.json'} and {Path(args.out) / 'metrics.csv'}")
    return 0
