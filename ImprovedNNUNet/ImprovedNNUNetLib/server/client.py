"""The client of an ``improved-nnunet serve`` server: what the panels, the Python console and the command line
use to run work on a GPU computer elsewhere.

Torch-free and needing only ``requests`` (Slicer bundles it). Every call has a timeout, so a panel that polls
from a timer never hangs on a dead connection; every failure is one :class:`UserError` line naming the server
and the fix. The first call checks that client and server speak the same API version. Downloads are checked
(size and SHA-256) and written beside their final name first, so a broken transfer leaves no file.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.server.files import sha256_of

API_VERSION = 1  # the server's ``server.app.API_VERSION``; a test keeps them equal
API_HEADER = "X-Improved-NNUNet-API"
KEY_VARIABLE = "IMPROVED_NNUNET_API_KEY"
TIMEOUT_S = 30.0
CHUNK = 1 << 20


class ServerClient:
    """One server (``url``, e.g. ``http://127.0.0.1:8765``) and one key (default: ``$IMPROVED_NNUNET_API_KEY``)."""

    def __init__(self, url: str, key: str | None = None, timeout: float = TIMEOUT_S, verify: bool | str = True):
        import requests

        self.url = url.rstrip("/")
        if not self.url.startswith(("http://", "https://")):
            raise UserError(f"server {url!r}: give its address as http://HOST:PORT or https://HOST:PORT")
        self.key = key or os.environ.get(KEY_VARIABLE, "")
        if not self.key:
            raise UserError(f"no API key for {self.url}: pass it (--api-key) or set {KEY_VARIABLE}; the server's admin "
                            "creates one with 'improved-nnunet serve keys add NAME'")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.verify = verify
        # a connection the server closed while it sat in the pool (keep-alive ran out between two polls) is
        # tried again for reading calls only; sending calls are never repeated behind the caller's back
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        retry = Retry(total=3, connect=3, read=2, status=0, other=0, backoff_factor=0.1,
                      allowed_methods=frozenset({"GET"}), raise_on_status=False)
        for scheme in ("http://", "https://"):
            self.session.mount(scheme, HTTPAdapter(max_retries=retry))
        self.session.headers.update({"Authorization": f"Bearer {self.key}", API_HEADER: str(API_VERSION)})
        self._checked = False

    # -- plumbing ------------------------------------------------------------------------------------------
    def _call(self, method: str, path: str, stream: bool = False, **kwargs):
        import requests

        if not self._checked and path != "/api/version":
            self.check_version()
        try:
            response = self.session.request(method, self.url + path, timeout=self.timeout, stream=stream, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise UserError(f"{self.url}: the TLS certificate was not accepted ({exc.__class__.__name__}); give the "
                            "server's certificate (verify=PATH) or use an SSH tunnel") from None
        except requests.exceptions.RequestException as exc:
            raise UserError(f"cannot reach the server at {self.url} ({exc.__class__.__name__}); check the address, "
                            "that 'improved-nnunet serve' runs there, or your SSH tunnel") from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail")
            except ValueError:
                detail = None
            if response.status_code in (502, 503, 504):
                detail = detail or "a proxy between here and the server did not get an answer; try again"
            raise UserError(f"server {self.url}: {detail or response.reason} (HTTP {response.status_code})")
        return response

    def check_version(self) -> dict:
        """The server's versions; UserError when it speaks another API version than this client."""
        info = self._call("GET", "/api/version").json()
        if info.get("api") != API_VERSION:
            from ImprovedNNUNetLib.cli.main import package_version

            raise UserError(f"the server at {self.url} runs improved-nnunet {info.get('server')} (API "
                            f"{info.get('api')}) and this client {package_version()} (API {API_VERSION}); install "
                            "the same version on both")
        self._checked = True
        return info

    # -- uploads -------------------------------------------------------------------------------------------
    def upload(self, path: str | Path) -> str:
        """Upload one file; returns its upload id on the server (checked by its SHA-256 there)."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path}: no such file to upload")
        headers = {"X-SHA256": sha256_of(path), "Content-Type": "application/octet-stream"}
        with open(path, "rb") as handle:  # streamed, with its Content-Length
            return self._call("PUT", f"/api/uploads/{path.name}", data=handle, headers=headers).json()["upload"]

    def upload_dataset(self, folder: str | Path) -> str:
        """Upload a raw dataset folder (``DatasetXXX_Name`` with dataset.json, imagesTr, labelsTr) as a ZIP; the
        server adds it to its nnUNet_raw. Returns the dataset's name there."""
        import zipfile

        folder = Path(folder)
        if not (folder / "dataset.json").is_file():
            raise UserError(f"{folder}: not a raw dataset folder (no dataset.json)")
        with tempfile.TemporaryDirectory() as scratch:
            archive = Path(scratch) / f"{folder.name}.zip"
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as handle:  # images are compressed already
                for path in sorted(folder.rglob("*")):
                    if path.is_file():
                        handle.write(path, Path(folder.name) / path.relative_to(folder))
            upload = self.upload(archive)
        return self._call("POST", "/api/datasets", json={"upload": upload}).json()["dataset"]

    def datasets(self) -> list[str]:
        """The raw datasets on the server."""
        return self._call("GET", "/api/datasets").json()

    # -- jobs ----------------------------------------------------------------------------------------------
    def models(self) -> list[dict]:
        """The models installed on the server (``improved-nnunet models import`` there)."""
        return self._call("GET", "/api/models").json()

    def segment(self, model: str | None, images, folds=None, tta: bool | None = None, sdm: bool = False,
                probabilities: bool = False, training_job: int | None = None, uncertainty: bool = False) -> dict:
        """Start segmenting one case (its channel images in channel order) with a model installed on the
        server (``model``), or the model a finished training job of this key made (``training_job``); returns
        the job."""
        inputs = [self.upload(image) for image in ([images] if isinstance(images, (str, Path)) else images)]
        spec = {"kind": "segment", "model": model, "inputs": inputs, "folds": folds, "tta": tta, "sdm": sdm,
                "probabilities": probabilities, "training_job": training_job, "uncertainty": uncertainty}
        return self._call("POST", "/api/jobs", json=spec).json()

    def train(self, dataset: str, **settings) -> dict:
        """Start a training (the Training panel's settings: variant, configuration, folds, epochs,
        iterations_per_epoch, validation_iterations_per_epoch, hyperparameters, overwrite, planner)."""
        return self._call("POST", "/api/jobs", json={"kind": "train", "dataset": dataset, **settings}).json()

    def evaluate(self, prediction, reference, labels: dict | None = None, tau: float | dict | None = None,
                 **settings) -> dict:
        """Start evaluating a prediction against a reference (files) on the server; its results are
        summary.json, metrics.csv and, with lesion-wise metrics, lesions.csv (:meth:`download`). ``labels``:
        {name: value}, or {name: [values]} for a region; ``tau``: mm, or {label value: mm}; ``settings``: what
        ``improved-nnunet evaluate`` takes: profile ("organ", "lesion", "tubular"), metrics (a list of groups),
        instances, connectivity, match_iou, size_bins (ml)."""
        spec = {"kind": "evaluate", "prediction": self.upload(prediction), "reference": self.upload(reference),
                "labels": labels, "tau": tau, **settings}
        return self._call("POST", "/api/jobs", json=spec).json()

    def study(self, dataset: str, arms: list[str], **settings) -> dict:
        """Start a study on the server (``study run``: arms as on the command line, e.g. ``["baseline",
        "improved"]``; settings name, folds, epochs, iters_per_epoch, val_iters_per_epoch, configuration, plans,
        repeats, executor ``local`` or ``slurm``); its results are the report's files."""
        return self._call("POST", "/api/jobs", json={"kind": "study", "dataset": dataset, "arms": arms,
                                                      **settings}).json()

    def study_status(self, job_id: int) -> tuple[list[str], list[list[str]]]:
        """(header, rows) of a study job's arms × folds (× repeats) matrix as ``study status`` shows it on the
        server; ([], []) before the study has started writing."""
        answer = self._call("GET", f"/api/jobs/{int(job_id)}/study").json()
        return answer["header"], answer["rows"]

    def jobs(self) -> list[dict]:
        return self._call("GET", "/api/jobs").json()

    def job(self, job_id: int) -> dict:
        return self._call("GET", f"/api/jobs/{int(job_id)}").json()

    def events(self, job_id: int, after: int = 0) -> tuple[list[dict], int]:
        """The job's progress events from number ``after`` on, and the number to ask from next time."""
        answer = self._call("GET", f"/api/jobs/{int(job_id)}/events", params={"after": int(after)}).json()
        return answer["events"], answer["next"]

    def cancel(self, job_id: int) -> dict:
        return self._call("POST", f"/api/jobs/{int(job_id)}/cancel").json()

    def resume(self, job_id: int) -> dict:
        return self._call("POST", f"/api/jobs/{int(job_id)}/resume").json()

    def wait(self, job_id: int, timeout: float | None = None, poll_s: float = 1.0) -> dict:
        """Block until the job has ended (scripts; a panel polls :meth:`job` from a timer instead)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["state"] in ("done", "failed", "cancelled", "interrupted"):
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job['state']} after {timeout} s")
            time.sleep(poll_s)

    def download(self, job_id: int, folder: str | Path) -> list[Path]:
        """Every result file of a finished job into ``folder`` (each checked: size and SHA-256); an existing
        file is never replaced."""
        folder = Path(folder)
        listed = self._call("GET", f"/api/jobs/{int(job_id)}/files").json()
        targets = [folder / Path(item["name"]).name for item in listed]
        existing = [str(t) for t in targets if t.exists()]
        if existing:
            raise UserError(f"{', '.join(existing)} exist; choose another folder (nothing was downloaded)")
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for item, target in zip(listed, targets):
            partial = target.with_name(f".{target.name}.partial")
            digest, size = hashlib.sha256(), 0
            response = self._call("GET", f"/api/jobs/{int(job_id)}/files/{target.name}", stream=True)
            try:
                with open(partial, "wb") as handle:
                    for chunk in response.iter_content(CHUNK):
                        handle.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                if size != item["size"] or digest.hexdigest() != item["sha256"]:
                    raise UserError(f"{target.name} arrived damaged ({size} of {item['size']} bytes or another "
                                    "SHA-256); download it again")
                partial.replace(target)
            finally:
                partial.unlink(missing_ok=True)
            written.append(target)
        return written
