"""`make demo`: end-to-end demonstration on real data shipped inside packages.

Run: ``python Scripts/demo.py --out demo_output``

Steps run in order; each is a function taking the :class:`Demo` context, so later
steps (training, inference) can be appended to ``STEPS``. Step ``evaluation``
evaluates slicerio's real chest CT segmentation (7 named segments) against a
perturbed copy and writes the metrics table and the FP/FN maps.

The output folder is only replaced when an earlier demo run made it.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

MARKER = ".improved-nnunet-demo"


@dataclass
class Demo:
    """Where a demo run writes, shared by all steps."""

    out: Path

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


STEPS = [
    ("evaluation", step_evaluation),
]


def prepare_output(out: Path) -> None:
    """Create the output folder; replace it only if an earlier demo run made it."""
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).exists():
            sys.exit(f"demo: {out} exists and was not made by the demo; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by Scripts/demo.py; rerunning the demo replaces this folder\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo_output", type=Path, help="output folder (default demo_output)")
    parser.add_argument(
        "--steps", nargs="+", choices=[name for name, _ in STEPS], default=[name for name, _ in STEPS],
        help="steps to run (default: all)",
    )
    args = parser.parse_args(argv)
    prepare_output(args.out)
    demo = Demo(args.out)
    for name, step in STEPS:
        if name in args.steps:
            print(f"== demo step: {name}")
            step(demo)
    return 0


if __name__ == "__main__":
    sys.exit(main())
