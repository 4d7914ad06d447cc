"""Draw the extension icon and the two module icons (128 x 128 PNG).

- ``ImprovedNNUNet.png`` (extension, top level) and ``ImprovedNNUNet/Resources/Icons/ImprovedNNUNet.png``:
  an axial slice of slicerio's chest CT with its lung and bone segments and the FP/FN overlay of
  the screenshots (Scripts/make_screenshots.py), rendered off-screen with VTK.
- ``ImprovedNNUNetTraining/Resources/Icons/ImprovedNNUNetTraining.png``: a drawing of a U-shaped
  network above a falling loss curve (matplotlib).

    python Scripts/make_icons.py [--overwrite]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from make_screenshots import REPO, compose, render_png, sample_data, shifted, views

ICON_SIZE = 128
SEGMENTATION_ICONS = (REPO / "ImprovedNNUNet.png", REPO / "ImprovedNNUNet" / "Resources" / "Icons" / "ImprovedNNUNet.png")
TRAINING_ICON = REPO / "ImprovedNNUNetTraining" / "Resources" / "Icons" / "ImprovedNNUNetTraining.png"


def segmentation_icon(path: Path) -> None:
    from ImprovedNNUNetLib.evaluation import error_maps
    from ImprovedNNUNetLib.panels.scene.error_segmentation import FN_COLOR, FP_COLOR

    ct, reference, segments = sample_data()
    shown = {name: value for value, (name, _) in segments.items() if name != "tissue"}
    maps = error_maps(reference.with_array(shifted(reference.array, (0, 2, 2))), reference, labels=shown)
    lungs = np.isin(reference.array, [v for n, v in shown.items() if "lung" in n])
    z = int(np.argmax(lungs.sum(axis=(1, 2))))
    layers = [views(volume, z, 0)["axial"] for volume in
              (ct.array, reference.array, maps.fp_labels != 0, maps.fn_labels != 0)]
    rgb = compose(*layers, {v: s for v, s in segments.items() if s[0] != "tissue"}, FP_COLOR, FN_COLOR)
    render_png(rgb, ct.spacing[:2], path, ICON_SIZE, [])


def training_icon(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    fig = plt.figure(figsize=(1.28, 1.28), dpi=ICON_SIZE / 1.28)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    ax.add_patch(FancyBboxPatch((0.03, 0.03), 0.94, 0.94, boxstyle="round,pad=0,rounding_size=0.12",
                                facecolor="#1d2b3a", edgecolor="none"))
    # encoder (down) and decoder (up) stages of a U-Net, widest at the top
    heights = [0.30, 0.22, 0.14, 0.08]
    for i, h in enumerate(heights):
        top = 0.90 - 0.09 * i
        for x, color in ((0.12 + 0.09 * i, "#4fc3f7"), (0.80 - 0.09 * i, "#ffd54f")):
            ax.add_patch(FancyBboxPatch((x, top - h), 0.07, h, boxstyle="round,pad=0,rounding_size=0.02",
                                        facecolor=color, edgecolor="none"))
    epochs = np.linspace(0, 1, 60)
    loss = 0.08 + 0.30 * np.exp(-4.5 * epochs) + 0.015 * np.sin(40 * epochs) * np.exp(-2 * epochs)
    ax.plot(0.12 + 0.76 * epochs, 0.08 + loss, color="#ef5350", linewidth=2.4, solid_capstyle="round")
    fig.savefig(path, dpi=ICON_SIZE / 1.28, transparent=True)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--overwrite", action="store_true", help="replace existing icons")
    args = parser.parse_args(argv)
    from ImprovedNNUNetLib.core.errors import UserError

    targets = [*SEGMENTATION_ICONS, TRAINING_ICON]
    existing = [p for p in targets if p.exists()]
    if existing and not args.overwrite:
        raise UserError(f"{existing[0]} exists; pass --overwrite to replace the icons")
    for path in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
    for path in SEGMENTATION_ICONS:
        segmentation_icon(path)
    training_icon(TRAINING_ICON)
    for path in targets:
        print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    from ImprovedNNUNetLib.core.errors import UserError

    try:
        sys.exit(main())
    except UserError as exc:
        print(f"{Path(__file__).name}: error: {exc}", file=sys.stderr)
        sys.exit(2)
