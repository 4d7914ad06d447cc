"""Benchmark: work through a loopback `improved-nnunet serve` against the same work here.

1. Segmentation of a 256×256×128 volume (CT-like, 3.05×3.05×10 mm) with the tiny baseline model that
   bench_predict.py trains: through the server (upload, job, wait, checked download) vs the same
   `improved-nnunet predict` in a local child process. Target: server ≤ 1.2× local.
2. Upload and download throughput of a 256 MiB file on loopback (upload: the client's streamed PUT with
   its SHA-256; download: a job's result, checked). Target: ≥ 100 MB/s each.
3. A training's mean epoch time (tiny plans, 2 iterations per epoch) on the server with 8 clients polling
   its progress every 0.2 s vs with none. Target: ≤ 5 % slower.

Run: ``.venv/bin/python Testing/benchmarks/bench_server.py``
"""
from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def ct_like(path: Path) -> None:
    import numpy as np

    from ImprovedNNUNetLib.core.imageio import Image, write_image

    rng = np.random.default_rng(0)
    z, y, x = np.mgrid[:128, :256, :256]
    body = ((x - 128) ** 2 + (y - 128) ** 2) < 110 ** 2
    array = np.where(body, 40, -1000).astype(np.int16) + rng.normal(0, 20, body.shape).astype(np.int16)
    write_image(Image(array, (3.05, 3.05, 10.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1)), path)


def mean_epoch_time(client, job_id: int) -> float:
    events, _ = client.events(job_id)
    times = [e["epoch_time_s"] for e in events if e["stage"] == "training" and e.get("epoch_time_s")]
    return sum(times[1:]) / max(1, len(times) - 1)  # the first epoch warms up


def train_on_server(client, dataset: str, pollers: int, epochs: int) -> float:
    job = client.train(dataset, variant="baseline", folds=[0], epochs=epochs, iterations_per_epoch=2,
                       validation_iterations_per_epoch=1, overwrite=True)
    stop = threading.Event()

    def poll():
        from ImprovedNNUNetLib.server.client import ServerClient

        mine = ServerClient(client.url, client.key)
        after = 0
        while not stop.is_set():
            _, after = mine.events(job["id"], after)
            mine.job(job["id"])
            time.sleep(0.2)

    threads = [threading.Thread(target=poll, daemon=True) for _ in range(pollers)]
    for thread in threads:
        thread.start()
    done = client.wait(job["id"], poll_s=1.0)
    stop.set()
    for thread in threads:
        thread.join()
    assert done["state"] == "done", done
    return mean_epoch_time(client, job["id"])


def main() -> int:
    from bench_predict import train_tiny_model

    from fixtures.server import RunningServer, cli, server_environment
    from ImprovedNNUNetLib.core.process import ChildProcess, cli_command
    from ImprovedNNUNetLib.server.client import ServerClient

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "training").mkdir()
        model = train_tiny_model(root / "training")
        env = server_environment(root, {name: os.environ[name] for name in
                                        ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")})
        assert cli("models", "import", str(model), "--name", "tiny", env=env).returncode == 0
        server = RunningServer(root / "server", env)
        key = server.add_key("bench")
        server.start()
        client = ServerClient(server.url, key, timeout=300)
        try:
            image = root / "case_0000.nii.gz"
            ct_like(image)

            start = time.perf_counter()
            local = ChildProcess.start(cli_command("predict", "-i", str(image), "-o", str(root / "local"), "-m", "tiny",
                                                   "--folds", "0", "--device", "cpu"), env=env)
            assert local.wait() == 0, list(local.log)[-5:]
            local_s = time.perf_counter() - start

            start = time.perf_counter()
            job = client.segment("tiny", [image], folds=[0])
            assert client.wait(job["id"], poll_s=0.2)["state"] == "done"
            client.download(job["id"], root / "remote")
            server_s = time.perf_counter() - start
            print(f"segment 256x256x128: local child process {local_s:.1f} s, through the server {server_s:.1f} s, "
                  f"ratio {server_s / local_s:.2f} (target <= 1.2)")

            big = root / "big.nii.gz"
            with open(big, "wb") as handle:
                handle.write(os.urandom(256 << 20))
            start = time.perf_counter()
            upload = client.upload(big)
            upload_s = time.perf_counter() - start
            outputs = server.folder / "jobs" / str(job["id"]) / "outputs"
            (server.folder / "uploads" / upload / "big.nii.gz").replace(outputs / "big.nii.gz")
            start = time.perf_counter()
            client.download(job["id"], root / "downloaded")
            download_s = time.perf_counter() - start
            mb = (256 << 20) / 1e6
            print(f"256 MiB over loopback: upload {mb / upload_s:.0f} MB/s, download {mb / download_s:.0f} MB/s "
                  "(target >= 100 MB/s each)")

            dataset = Path(os.environ["nnUNet_raw"]).glob("Dataset*").__next__().name
            quiet = train_on_server(client, dataset, 0, epochs=15)
            busy = train_on_server(client, dataset, 8, epochs=15)
            print(f"training epoch time: alone {quiet:.3f} s, with 8 clients polling every 0.2 s {busy:.3f} s, "
                  f"ratio {busy / quiet:.3f} (target <= 1.05)")
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
