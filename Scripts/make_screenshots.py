"""Render the extension's screenshots from real data, headless (VTK off-screen).

Data: slicerio's chest CT (CTChest4.nrrd) and its 7-segment Segmentation.seg.nrrd. The
"prediction" is that reference shifted by one voxel in x and y (a stand-in for a model's
output, so that every structure shows both error types); its false positives and false
negatives come from the evaluation engine (``ImprovedNNUNetLib.evaluation.error_maps``)
and are drawn in the error segmentation's fixed colours (FP yellow, FN cyan).

    python Scripts/make_screenshots.py [--out Resources/Screenshots] [--overwrite]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "Resources" / "Screenshots"
CT_WINDOW = (-1350.0, 150.0)  # HU range shown from black to white (lung window)
SEGMENT_OPACITY = 0.45
HIDDEN_SEGMENTS = ("tissue",)  # the whole body: drawn and evaluated, it would hide everything else
SHIFT_VOXELS = (0, 1, 1)  # (z, y, x) shift that turns the reference into the stand-in prediction


def sample_data():
    """(CT Image, reference label Image, {label: (name, rgb)}) from slicerio's bundled files."""
    import slicerio

    from ImprovedNNUNetLib.core.imageio import read_image

    folder = Path(slicerio.__file__).parent / "data"
    segmentation = slicerio.read_segmentation(str(folder / "Segmentation.seg.nrrd"), skip_voxels=True)
    segments = {s["labelValue"]: (s["name"], tuple(s["color"])) for s in segmentation["segments"]}
    return read_image(folder / "CTChest4.nrrd"), read_image(folder / "Segmentation.seg.nrrd"), segments


def shifted(labels: np.ndarray, shift=SHIFT_VOXELS) -> np.ndarray:
    """``labels`` moved by ``shift`` voxels, background filling the vacated border."""
    out = np.zeros_like(labels)
    src = tuple(slice(0, n - s) if s > 0 else slice(None) for n, s in zip(labels.shape, shift))
    dst = tuple(slice(s, None) if s > 0 else slice(None) for s in shift)
    out[dst] = labels[src]
    return out


def grey(ct: np.ndarray, window=CT_WINDOW) -> np.ndarray:
    """CT values as an (…, 3) float RGB image in [0, 1]."""
    low, high = window
    value = np.clip((ct.astype(np.float32) - low) / (high - low), 0.0, 1.0)
    return np.repeat(value[..., None], 3, axis=-1)


def paint(rgb: np.ndarray, mask: np.ndarray, color, opacity: float) -> None:
    rgb[mask] = (1.0 - opacity) * rgb[mask] + opacity * np.asarray(color, dtype=np.float32)


def compose(ct, reference, fp, fn, segments, fp_color, fn_color) -> np.ndarray:
    """CT with translucent reference segments, then opaque FP and FN voxels, as uint8 RGB."""
    rgb = grey(ct)
    for label, (name, color) in segments.items():
        if name not in HIDDEN_SEGMENTS:
            paint(rgb, reference == label, color, SEGMENT_OPACITY)
    paint(rgb, fp, fp_color, 1.0)
    paint(rgb, fn, fn_color, 1.0)
    return (rgb * 255).round().astype(np.uint8)


def render_png(rgb: np.ndarray, pixel_mm: tuple[float, float], path: Path, width: int, legend: list[str]) -> None:
    """Draw an (rows, columns, 3) image, row 0 at the top, with its physical pixel size, and a legend."""
    import vtk
    from vtk.util.numpy_support import numpy_to_vtk

    rows, columns = rgb.shape[:2]
    image = vtk.vtkImageData()
    image.SetDimensions(columns, rows, 1)
    image.SetSpacing(pixel_mm[0], pixel_mm[1], 1.0)
    flat = np.ascontiguousarray(rgb[::-1]).reshape(-1, 3)  # VTK's first row is the bottom one
    image.GetPointData().SetScalars(numpy_to_vtk(flat, deep=True, array_type=vtk.VTK_UNSIGNED_CHAR))
    actor = vtk.vtkImageActor()
    actor.GetMapper().SetInputData(image)

    renderer = vtk.vtkRenderer()
    renderer.SetBackground(0.0, 0.0, 0.0)
    renderer.AddActor(actor)
    text = vtk.vtkTextActor()
    text.SetInput("\n".join(legend))
    text.GetTextProperty().SetFontSize(max(12, width // 45))
    text.GetTextProperty().SetColor(1.0, 1.0, 1.0)
    text.GetTextProperty().SetBackgroundColor(0.0, 0.0, 0.0)
    text.GetTextProperty().SetBackgroundOpacity(0.6 if legend else 0.0)
    text.SetPosition(8, 8)
    renderer.AddViewProp(text)

    extent_x, extent_y = columns * pixel_mm[0], rows * pixel_mm[1]
    height = int(round(width * extent_y / extent_x))
    window = vtk.vtkRenderWindow()
    window.SetOffScreenRendering(1)
    window.SetSize(width, height)
    window.AddRenderer(renderer)
    camera = renderer.GetActiveCamera()
    camera.ParallelProjectionOn()
    center = ((columns - 1) * pixel_mm[0] / 2, (rows - 1) * pixel_mm[1] / 2, 0.0)
    camera.SetFocalPoint(*center)
    camera.SetPosition(center[0], center[1], 1000.0)
    camera.SetViewUp(0.0, 1.0, 0.0)
    camera.SetParallelScale(extent_y / 2)
    renderer.ResetCameraClippingRange()
    window.Render()

    grab = vtk.vtkWindowToImageFilter()
    grab.SetInput(window)
    grab.Update()
    writer = vtk.vtkPNGWriter()
    writer.SetFileName(str(path))
    writer.SetInputConnection(grab.GetOutputPort())
    writer.Write()
    window.Finalize()


def views(volume: np.ndarray, axial_z: int, coronal_y: int) -> dict[str, np.ndarray]:
    """Axial and coronal slices of a (z, y, x) volume in this data set's LPS layout, displayed as in
    Slicer: patient right on the left of the screen, anterior / superior at the top."""
    return {
        "axial": volume[axial_z, ::-1, ::-1],
        "coronal": volume[::-1, coronal_y, ::-1],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default Resources/Screenshots)")
    parser.add_argument("--width", type=int, default=900, help="image width in pixels (default 900)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing screenshots")
    args = parser.parse_args(argv)

    from ImprovedNNUNetLib.core.errors import UserError
    from ImprovedNNUNetLib.evaluation import error_maps
    from ImprovedNNUNetLib.panels.scene.error_segmentation import FN_COLOR, FP_COLOR

    ct, reference, segments = sample_data()
    prediction = reference.with_array(shifted(reference.array))
    shown = {name: value for value, (name, _) in segments.items() if name not in HIDDEN_SEGMENTS}
    maps = error_maps(prediction, reference, labels=shown)
    fp, fn = maps.fp_labels != 0, maps.fn_labels != 0

    lungs = np.isin(reference.array, [v for v, (n, _) in segments.items() if "lung" in n])
    axial_z = int(np.argmax(lungs.sum(axis=(1, 2))))
    coronal_y = int(np.argmax(lungs.sum(axis=(0, 2))))
    sx, sy, sz = ct.spacing
    pixel_mm = {"axial": (sx, sy), "coronal": (sx, sz)}
    layers = {name: views(volume, axial_z, coronal_y)
              for name, volume in (("ct", ct.array), ("ref", reference.array), ("fp", fp), ("fn", fn))}
    legend = ["ImprovedNNUNet: segmentation errors (slicerio CTChest4)",
              "yellow = false positive, cyan = false negative"]

    args.out.mkdir(parents=True, exist_ok=True)
    for view in ("axial", "coronal"):
        path = args.out / f"segmentation_errors_{view}.png"
        if path.exists() and not args.overwrite:
            raise UserError(f"{path} exists; pass --overwrite to replace it")
        rgb = compose(layers["ct"][view], layers["ref"][view], layers["fp"][view], layers["fn"][view],
                      segments, FP_COLOR, FN_COLOR)
        render_png(rgb, pixel_mm[view], path, args.width, legend)
        print(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    return 0


if __name__ == "__main__":
    from ImprovedNNUNetLib.core.errors import UserError

    try:
        sys.exit(main())
    except UserError as exc:
        print(f"{Path(__file__).name}: error: {exc}", file=sys.stderr)
        sys.exit(2)
