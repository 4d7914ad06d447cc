"""PNG pictures of a prediction and its mis-segmentations on a T1 slice (matplotlib, no display).

Panels, side by side: the reference labels, the predicted labels (with each label's Dice over the
whole case), then one panel per label with that label's false positives and false negatives *in this
slice*, semi-transparent over the T1 in the fixed FP/FN colours the Slicer module uses. Slices are
drawn as Slicer shows an axial view: anterior up and the patient's right on the left of the picture
(the demo's images have RAS-ordered axes, so index x grows to the left).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ImprovedNNUNetLib.core.imageio import Image
from ImprovedNNUNetLib.evaluation import ErrorMaps
from ImprovedNNUNetLib.panels.scene.error_segmentation import FN_COLOR, FP_COLOR

LABEL_COLORS = {1: (0.20, 0.80, 0.30), 2: (0.95, 0.45, 0.10)}  # grey matter green, white matter orange
LABEL_ALPHA = 0.45  # predicted labels: the T1 shows through
ERROR_ALPHA = 0.6  # FP/FN: the anatomy shows through


def _rgba_layer(label_slice: np.ndarray, colors: dict[int, tuple[float, float, float]], alpha: float) -> np.ndarray:
    """RGBA image: each listed label in its colour with ``alpha``, everything else transparent."""
    rgba = np.zeros(label_slice.shape + (4,), dtype=float)
    for value, color in colors.items():
        rgba[label_slice == value] = (*color, alpha)
    return rgba


def case_dice(prediction: np.ndarray, reference: np.ndarray, label: int) -> float:
    """Dice of one label over the whole case (1 when both are empty)."""
    p, g = prediction == label, reference == label
    total = int(p.sum() + g.sum())
    return 2 * int((p & g).sum()) / total if total else 1.0


def busiest_slice(all_maps: list[ErrorMaps]) -> int:
    """Axial index with the most FP+FN voxels over all the maps given (the first slice when
    there are none), so the pictures of several predictions of one case show the same slice."""
    counts = sum(((m.fp_labels != 0) | (m.fn_labels != 0)).sum(axis=(1, 2)) for m in all_maps)
    return int(np.argmax(counts))


def _draw_slice(axes, t1_slice: np.ndarray, layer: np.ndarray, aspect: float, title: str, legend: list) -> None:
    # x reversed: the patient's right (low RAS x) on the left, as Slicer's axial view shows it
    extent = (t1_slice.shape[1] - 0.5, -0.5, -0.5, t1_slice.shape[0] - 0.5)
    axes.imshow(t1_slice, cmap="gray", origin="lower", aspect=aspect, interpolation="nearest", extent=extent)
    axes.imshow(layer, origin="lower", aspect=aspect, interpolation="nearest", extent=extent)
    axes.set_axis_off()
    axes.set_title(title, fontsize=10)
    axes.legend(handles=legend, loc="upper center", bbox_to_anchor=(0.5, -0.02), fontsize=8, frameon=False, ncol=2)


def overlay_png(
    t1: Image,
    prediction: Image,
    maps: ErrorMaps,
    path: Path,
    title: str,
    label_names: dict[int, str],
    slice_index: int | None = None,
    reference: Image | None = None,
) -> Path:
    """Draw axial ``slice_index`` (default: the one with most errors) into ``path`` (PNG).

    Panels: the prediction, then one per label with that label's FP and FN (a voxel given the
    wrong tissue is an FP of the predicted label and an FN of the reference label).
    """
    z = busiest_slice([maps]) if slice_index is None else slice_index
    t1_slice = t1.array[z].astype(float)
    aspect = t1.spacing[1] / t1.spacing[0]
    labels = sorted(label_names)
    if reference is None:  # the reference is the prediction without its FPs, with its FNs
        reference = np.where(maps.fn_labels != 0, maps.fn_labels, np.where(maps.fp_labels != 0, 0, prediction.array))
    else:
        reference = reference.array
    figure = Figure(figsize=(3.4 * (2 + len(labels)), 5.4), dpi=100, layout="constrained")
    panels = figure.subplots(1, 2 + len(labels))
    label_legend = [Patch(color=LABEL_COLORS[v], label=label_names[v]) for v in labels]
    _draw_slice(panels[0], t1_slice, _rgba_layer(reference[z], LABEL_COLORS, LABEL_ALPHA), aspect,
                "reference", label_legend)
    dice = ", ".join(f"{label_names[v]} {case_dice(prediction.array, reference, v):.3f}" for v in labels)
    _draw_slice(panels[1], t1_slice, _rgba_layer(prediction.array[z], LABEL_COLORS, LABEL_ALPHA), aspect,
                f"prediction\nDice (whole case): {dice}", label_legend)
    error_legend = [Patch(color=FP_COLOR, label="false positive"), Patch(color=FN_COLOR, label="false negative")]
    for axes, label in zip(panels[2:], labels):
        fp, fn = maps.fp(label)[z], maps.fn(label)[z]
        errors = np.where(fp, 1, np.where(fn, 2, 0))
        _draw_slice(axes, t1_slice, _rgba_layer(errors, {1: FP_COLOR, 2: FN_COLOR}, ERROR_ALPHA), aspect,
                    f"{label_names[label]} errors\nin this slice: {int(fp.sum())} FP, {int(fn.sum())} FN pixels",
                    error_legend)
    height = t1.origin[2] + z * t1.spacing[2]
    figure.suptitle(f"{title}: axial slice {z + 1} of {t1.array.shape[0]} (z = {height:.0f} mm); "
                    "anterior up, patient right on the left (as in Slicer)", fontsize=12)
    figure.get_layout_engine().set(h_pad=0.12)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path
