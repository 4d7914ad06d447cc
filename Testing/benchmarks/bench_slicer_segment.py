"""Benchmark: the Slicer module's child-process segmentation against in-process prediction.

Peer: what a module that predicts in Slicer's own process does (SlicerTotalSegmentator-style
blocking call): ``load_model(...).predict(...)`` on the volume, in the caller's thread.
Ours: ``SegmentJob`` on a real slicer-core scene holding the same volume (slicerio's whole
CTChest4), polled every 50 ms as the panel's timer does, until the segmentation node is in
the scene. Same model, fold 0, CPU (or ``--device``), default tile step, in this run.

Prints the wall time of each side and their ratio (ours/peer: the price of the child
process, mostly its start-up), the longest time the caller could not run (the GUI freeze:
the whole prediction for the peer, one poll or the result loading for ours) and their ratio,
and whether both label maps are identical.

The model: ``--model FOLDER``, or else the tiny baseline model that bench_predict.py trains.

Run: ``.venv/bin/python Testing/benchmarks/bench_slicer_segment.py [--model FOLDER] [--device cpu|cuda]``
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

POLL_S = 0.05


def peer(model_folder: Path, device: str, image):
    """In-process prediction; returns (label array, wall s, longest block s)."""
    from ImprovedNNUNetLib.inference import load_model

    start = time.perf_counter()
    result = load_model(model_folder, folds=[0], device=device).predict([image])
    wall = time.perf_counter() - start
    return result.segmentation.array, wall, wall


def ours(model_folder: Path, device: str, ct_path: Path):
    """Child-process prediction into a scene; returns (label array, wall s, longest block s)."""
    import slicer

    from ImprovedNNUNetLib.panels.scene.labelmaps import export_label_image, segment_infos
    from ImprovedNNUNetLib.panels.segment_job import SegmentJob

    scene = slicer.vtkMRMLScene()
    volume = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "CT")
    storage = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(str(ct_path))
    storage.ReadData(volume)

    start = time.perf_counter()
    longest = 0.0
    mark = time.perf_counter()
    job = SegmentJob([volume], model_folder, folds=[0], device=device)
    while True:
        longest = max(longest, time.perf_counter() - mark)
        time.sleep(POLL_S)
        mark = time.perf_counter()
        if job.poll().finished:
            break
    segmentation = job.load_result().segmentation
    longest = max(longest, time.perf_counter() - mark)
    wall = time.perf_counter() - start
    return export_label_image(segmentation, segment_infos(segmentation)).array, wall, longest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="trained model folder (default: train a tiny one)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import numpy as np
    import slicerio

    from ImprovedNNUNetLib.core.imageio import read_image

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_predict import train_tiny_model

    ct_path = Path(slicerio.__file__).parent / "data" / "CTChest4.nrrd"
    with tempfile.TemporaryDirectory(prefix="bench-slicer-segment-") as scratch:
        model = args.model or train_tiny_model(Path(scratch))
        peer_labels, peer_wall, peer_block = peer(model, args.device, read_image(ct_path))
        our_labels, our_wall, our_block = ours(model, args.device, ct_path)

    print(f"model: {model}")
    print(f"peer (in-process predict):  {peer_wall:7.2f} s wall, caller blocked up to {peer_block:7.2f} s")
    print(f"ours (child process + scene): {our_wall:7.2f} s wall, caller blocked up to {our_block:7.3f} s")
    print(f"wall-time ratio ours/peer: {our_wall / peer_wall:.2f}")
    print(f"longest-block ratio ours/peer: {our_block / peer_block:.4f}")
    print(f"identical label maps: {bool(np.array_equal(our_labels, peer_labels))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
