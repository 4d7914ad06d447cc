"""`make demo`: end-to-end demonstration on real data shipped inside packages.

Run: ``python Scripts/demo.py --out demo_output [--overwrite]``

Steps run in order; each is a function taking the :class:`Demo` context:

- ``evaluation``: slicerio's real chest CT segmentation (7 named segments) against a perturbed
  copy; metrics table and FP/FN maps.
- ``brain`` (``demo_brain.py``): a 3-class brain-tissue dataset from nilearn's bundled MNI
  template, two variants trained on CPU demo schedules, held-out slabs predicted and evaluated,
  FP/FN pictures and ``report.md``.

An earlier demo's outputs are only replaced with ``--overwrite``, and then only the files the demo
wrote (recorded in the folder's output manifest); anything else in the folder is kept.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from demo_folder import claim_output, record_outputs
from ImprovedNNUNetLib.core.errors import UserError


@dataclass
class Demo:
    """Where a demo run writes, shared by all steps."""

    out: Path
    brain: object = None  # demo_brain.DemoSettings for the brain step

    def folder(self, name: str) -> Path:
        path = self.out / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def perturb_chest_segmentation(voxels, values: dict[str, int]):
    """A plausible imperfect segmentation of the chest: every kind of error once.

    ``voxels`` are indexed (i, j, k) as slicerio returns them. Lungs grown and tissue
    shrunk by one voxel within each slice, the thoracic spine moved by one voxel along j,
    the lumbar spine missing entirely (prediction empty).
    """
    import numpy as np
    from scipy import ndimage

    in_plane = np.zeros((3, 3, 3), bool)
    in_plane[:, :, 1] = ndimage.generate_binary_structure(2, 1)  # slicerio voxels are (i, j, k): keep k
    out = voxels.copy()
    for name in ("right lung", "left lung"):
        out[ndimage.binary_dilation(voxels == values[name], in_plane)] = values[name]
    tissue = voxels == values["tissue"]
    out[tissue & ~ndimage.binary_erosion(tissue, in_plane)] = 0
    spine = out == values["thoracic vertebral column"]
    out[spine] = 0
    out[np.roll(spine, 1, axis=1)] = values["thoracic vertebral column"]
    out[out == values["lumbar vertebral column"]] = 0
    return out


def step_evaluation(demo: Demo) -> None:
    """Evaluate the real chest segmentation against a perturbed copy; write table and maps."""
    import slicerio

    from ImprovedNNUNetLib.cli.evaluate import format_table
    from ImprovedNNUNetLib.evaluation.runner import evaluate

    reference = Path(slicerio.__file__).parent / "data" / "Segmentation.seg.nrrd"
    segmentation = slicerio.read_segmentation(str(reference))
    values = {s["name"]: int(s["labelValue"]) for s in segmentation["segments"]}
    segmentation["voxels"] = perturb_chest_segmentation(segmentation["voxels"], values)
    prediction = demo.folder("evaluation/prediction") / "Segmentation.seg.nrrd"
    slicerio.write_segmentation(str(prediction), segmentation)
    results = demo.out / "evaluation"
    cases = evaluate(prediction, reference, out_dir=results, maps=True, msf_radius=2, progress=True)
    print(format_table(cases))
    print(f"metrics: {results / 'metrics.csv'}, {results / 'summary.json'}")
    print(f"FP/FN/MSF maps: {results / 'maps'}")


def add_chest_section(out: Path) -> None:
    """When both steps ran, the report also explains the chest-CT evaluation step."""
    import json

    from demo_report import chest_section

    report, summary = out / "report.md", out / "evaluation" / "summary.json"
    if report.is_file() and summary.is_file():
        text = report.read_text(encoding="utf-8")
        report.write_text(text + "\n" + "\n".join(chest_section(json.loads(summary.read_text()))), encoding="utf-8")


def step_brain(demo: Demo) -> None:
    """Train two variants on the MNI brain-tissue slabs, predict the held-out slabs, evaluate, report."""
    from demo_brain import run_brain_demo

    run_brain_demo(demo.out, demo.brain)


STEPS = [
    ("evaluation", step_evaluation),
    ("brain", step_brain),
]


def brain_settings(args):
    """The brain step's settings from the command line, checked before anything is written."""
    from demo_brain import DemoSettings
    from ImprovedNNUNetTrainingLib.engine.registry import get_variant

    for variant in args.variants:
        get_variant(variant)  # UserError naming the valid variants
    if args.epochs < 1 or args.iterations < 1:
        raise UserError("--epochs and --iterations must be at least 1")
    return DemoSettings(variants=tuple(args.variants), epochs=args.epochs, iterations=args.iterations)


def main(argv: list[str] | None = None) -> int:
    from demo_brain import DemoSettings

    defaults = DemoSettings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo_output", type=Path, help="output folder (default demo_output)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier demo run's files in the output folder (never anything else)")
    parser.add_argument(
        "--steps", nargs="+", choices=[name for name, _ in STEPS], default=[name for name, _ in STEPS],
        help="steps to run (default: all)",
    )
    parser.add_argument("--epochs", type=int, default=defaults.epochs,
                        help=f"brain step: epochs per variant (default {defaults.epochs})")
    parser.add_argument("--iterations", type=int, default=defaults.iterations,
                        help=f"brain step: training iterations per epoch (default {defaults.iterations})")
    parser.add_argument("--variants", nargs="+", default=list(defaults.variants),
                        help=f"brain step: variants to train (default {' '.join(defaults.variants)})")
    args = parser.parse_args(argv)
    try:
        demo = Demo(args.out, brain=brain_settings(args))
        before = claim_output(args.out, args.overwrite)
        try:
            for name, step in STEPS:
                if name in args.steps:
                    print(f"== demo step: {name}", flush=True)
                    step(demo)
            add_chest_section(args.out)
        finally:
            record_outputs(args.out, before)  # also after a failed step, so --overwrite can clean it
    except UserError as exc:
        sys.exit(f"demo: error: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
