"""The server's HTTP API (FastAPI, served by uvicorn): keys, uploads, jobs, results, the models on the server.

Every route under ``/api`` needs ``Authorization: Bearer KEY`` (401 otherwise); a key sees and cancels only its
own jobs and uploads (another key's are 404), an admin key sees all. A client sends its API version in
``X-Improved-NNUNet-API``; another version is refused with 409 and a message naming both versions and the fix.
JSON bodies are small (1 MiB at most); an upload is a raw body of at most ``max_upload_bytes`` (413 beyond, and
nothing is kept); a client that disconnects mid-upload leaves nothing. Nothing a client sends is unpickled or
evaluated, and client names become paths only through :func:`~.files.safe_name`.
"""
from __future__ import annotations

import hashlib
import shutil
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.events import json_object, parse_event
from ImprovedNNUNetLib.server.files import ServerFolder, safe_name, sha256_of
from ImprovedNNUNetLib.server.scheduler import LOG, STEP_KEY, Scheduler
from ImprovedNNUNetLib.server.store import ENDED, Store

API_VERSION = 1
API_HEADER = "X-Improved-NNUNet-API"
JSON_LIMIT = 1 << 20
INPUT_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")


def server_version() -> str:
    from ImprovedNNUNetLib.cli.main import package_version

    return package_version()


def add_raw_dataset(archive: Path, raw: Path) -> str:
    """Extract a ZIP holding one raw dataset folder into ``raw``; returns the dataset's name. The archive is
    extracted beside its final place first, so a failure leaves no half dataset."""
    import tempfile

    from ImprovedNNUNetLib.core.dataset_names import is_dataset_name
    from ImprovedNNUNetLib.inference.models.safe_zip import safe_extract

    raw.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=raw, prefix=".upload-") as scratch:
        safe_extract(archive, scratch)
        entries = [p for p in Path(scratch).iterdir() if not p.name.startswith(".")]
        if len(entries) != 1 or not entries[0].is_dir() or not is_dataset_name(entries[0].name):
            raise UserError("the ZIP must hold one folder named like Dataset001_Name (the raw dataset)")
        name = safe_name(entries[0].name, "dataset")
        if not (entries[0] / "dataset.json").is_file():
            raise UserError(f"{name} has no dataset.json; zip the whole raw dataset folder")
        target = raw / name
        same_id = sorted(p.name for p in raw.glob(name.split("_", 1)[0] + "_*"))
        if target.exists() or same_id:
            raise UserError(f"{', '.join(same_id) or name} is already on the server; give the new dataset another id")
        entries[0].rename(target)
    return name


class Server:
    """What the routes share: the store, the folder, the scheduler and the limits."""

    def __init__(self, folder, slots, folders, max_upload_bytes, max_jobs):
        self.store = Store(folder)
        self.files = ServerFolder(folder)
        self.scheduler = Scheduler(self.store, self.files, slots, folders)
        self.folders = folders
        self.max_upload_bytes = max_upload_bytes
        self.max_jobs = max_jobs


def fail(status: int, message: str):
    raise HTTPException(status_code=status, detail=message)


def server(request: Request) -> Server:
    return request.app.state.server


def caller(request: Request, authorization: str | None = Header(default=None),
           api: str | None = Header(default=None, alias=API_HEADER)):
    """The key of the request (401 without a valid one; 409 for a client of another API version)."""
    scheme, _, key = (authorization or "").partition(" ")
    found = server(request).store.check_key(key.strip()) if scheme.lower() == "bearer" else None
    if found is None:
        raise HTTPException(401, "a valid API key is needed: send 'Authorization: Bearer KEY' (the server's admin "
                                 "creates keys with 'improved-nnunet serve keys add NAME')",
                            headers={"WWW-Authenticate": "Bearer"})
    if api is not None and api != str(API_VERSION):
        fail(409, f"this client speaks API version {api} and the server ({server_version()}) version "
                  f"{API_VERSION}; install the same improved-nnunet version on both")
    return found


def own_job(state: Server, job_id: int, key):
    job = state.store.job(job_id)
    if job is None or (job.owner != key.name and not key.admin):
        fail(404, f"job {job_id}: no such job of this key")
    return job


def own_upload(state: Server, upload_id: str, key) -> Path:
    owner = state.store.upload_owner(upload_id)
    if owner is None or (owner != key.name and not key.admin):
        fail(404, f"upload {upload_id!r}: no such upload of this key")
    return state.files.upload(upload_id)


async def request_object(request: Request) -> dict:
    """The request's JSON object (422 for anything else: a body that is not JSON, or not an object)."""
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        fail(422, "the request's body must be a JSON object")
    return body


api = APIRouter(prefix="/api")


@api.get("/version")
def version(request: Request, key=Depends(caller)):
    return {"server": server_version(), "api": API_VERSION, "slots": server(request).scheduler.slots,
            "key": key.name, "admin": key.admin}


@api.get("/models")
def models(key=Depends(caller)):
    from ImprovedNNUNetLib.inference.models import list_models

    return [{"name": m.name, "folds": list(m.folds), "channels": list(m.channel_names), "labels": m.labels}
            for m in list_models()]


async def receive(request: Request, partial: Path, limit: int) -> tuple[int, str]:
    """The request's body into ``partial``: its size and SHA-256 (413 beyond ``limit``)."""
    digest, size = hashlib.sha256(), 0
    with open(partial, "wb") as handle:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                fail(413, f"the upload is larger than this server takes ({limit} bytes)")
            handle.write(chunk)
            digest.update(chunk)
    return size, digest.hexdigest()


async def upload(name: str, request: Request, key=Depends(caller)):
    """One file as the raw request body; checked against the ``X-SHA256`` header when sent."""
    state = server(request)
    safe_name(name, "file name")
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > state.max_upload_bytes:
        fail(413, f"the upload is {int(length)} bytes; this server takes at most {state.max_upload_bytes}")
    upload_id, partial = state.files.new_partial()
    try:
        size, sha256 = await receive(request, partial, state.max_upload_bytes)
        expected = request.headers.get("x-sha256")
        if expected is not None and expected.lower() != sha256:
            fail(400, "the upload arrived damaged (its SHA-256 differs from the one sent); upload it again")
        final = state.files.complete(upload_id, partial, name)
    finally:
        partial.unlink(missing_ok=True)  # moved into place when complete; else nothing half-received stays
    state.store.add_upload(upload_id, key.name, final.name, size, sha256)
    return {"upload": upload_id, "name": final.name, "size": size, "sha256": sha256}


@api.get("/datasets")
def datasets(request: Request, key=Depends(caller)):
    """The raw datasets on the server (names), so a client uploads only what is missing."""
    raw = Path(server(request).folders["nnUNet_raw"])
    return sorted(p.name for p in raw.iterdir() if p.is_dir() and (p / "dataset.json").is_file())


@api.post("/datasets")
async def dataset(request: Request, key=Depends(caller)):
    """A raw dataset from an uploaded ZIP of its folder (``DatasetXXX_Name/dataset.json, imagesTr, labelsTr``),
    extracted safely into the server's nnUNet_raw; an existing dataset of that id is never replaced."""
    state = server(request)
    body = await request_object(request)
    archive = own_upload(state, str(body.get("upload", "")), key)
    return {"dataset": add_raw_dataset(archive, Path(state.folders["nnUNet_raw"]))}


def segment_model(state: Server, body: dict, key) -> tuple[str, str]:
    """(name, folder) of the model a segmentation uses: one installed on the server (``model``), or the model
    a finished training job of this key made (``training_job``)."""
    from ImprovedNNUNetLib.inference.models import resolve_model

    if body.get("training_job") is not None:
        training = own_job(state, int(body["training_job"]), key)
        if training.kind != "train" or training.state != "done":
            fail(409, f"job {training.id} is a {training.kind} job that is {training.state}; segment with a "
                      "finished training")
        return f"job {training.id}", str(state.scheduler.training_request(training.spec).model_folder())
    name = safe_name(str(body.get("model", "")), "model name")
    return name, str(resolve_model(name))


def segment_spec(state: Server, body: dict, key) -> dict:
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) for i in inputs):
        fail(422, "'inputs': the upload ids of the case's channel images, in channel order")
    for upload_id in inputs:
        if not own_upload(state, upload_id, key).name.endswith(INPUT_SUFFIXES):
            fail(422, "give NIfTI (.nii.gz, .nii), NRRD or MetaImage (.mha) images")
    name, folder = segment_model(state, body, key)
    from ImprovedNNUNetLib.inference.model_folder import open_model_folder

    labels = open_model_folder(folder).labels  # checked here: a folder that is no model is refused now
    folds = body.get("folds")
    if folds is not None and not (isinstance(folds, list) and all(str(f).isdigit() or f == "all" for f in folds)):
        fail(422, "'folds': a list such as [0, 1] or ['all']")
    return {"model": name, "_model_path": folder, "labels": labels, "inputs": inputs, "folds": folds,
            "tta": body.get("tta"), "sdm": bool(body.get("sdm")), "probabilities": bool(body.get("probabilities"))}


TRAIN_SETTINGS = {"dataset", "variant", "configuration", "folds", "epochs", "iterations_per_epoch",
                  "validation_iterations_per_epoch", "hyperparameters", "overwrite", "planner"}


def train_spec(state: Server, body: dict) -> dict:
    safe_name(str(body.get("dataset", "")), "dataset")
    unknown = sorted(set(body) - TRAIN_SETTINGS)
    if unknown:
        fail(422, f"unknown training settings: {', '.join(unknown)}")
    request = state.scheduler.training_request(body)
    request.check()  # the Training panel's own checks: variant, planner, folds, schedule, the dataset's name
    request.model_folder()
    return dict(body)


def link_inputs(state: Server, job_id: int, inputs: list[str], key) -> None:
    """The case's channel images in the job's folder, named as nnU-Net expects (``case_0000.nii.gz``...)."""
    folder = state.files.job_folder(job_id) / "inputs"
    folder.mkdir(parents=True)
    for channel, upload_id in enumerate(inputs):
        source = own_upload(state, upload_id, key)
        target = folder / f"case_{channel:04d}{next(s for s in INPUT_SUFFIXES if source.name.endswith(s))}"
        try:
            target.hardlink_to(source)
        except OSError:  # another file system
            shutil.copyfile(source, target)


@api.post("/jobs")
async def submit(request: Request, key=Depends(caller)):
    state = server(request)
    body = await request_object(request)
    if body.get("kind") not in ("segment", "train"):
        fail(422, "a job is a JSON object with kind 'segment' or 'train'")
    kind = body.pop("kind")
    spec = segment_spec(state, body, key) if kind == "segment" else train_spec(state, body)
    job = state.store.add_job(key.name, kind, spec, max_open=state.max_jobs, queued=kind != "segment")
    if kind == "segment":
        link_inputs(state, job.id, spec["inputs"], key)
        state.store.update(job.id, state="queued")
    return state.store.job(job.id).public()


@api.get("/jobs")
def jobs(request: Request, key=Depends(caller)):
    return [job.public() for job in server(request).store.jobs(None if key.admin else key.name)]


@api.get("/jobs/{job_id}")
def job(job_id: int, request: Request, key=Depends(caller)):
    return own_job(server(request), job_id, key).public()


@api.get("/jobs/{job_id}/events")
def events(job_id: int, request: Request, after: int = 0, key=Depends(caller)):
    """The job's progress events (the training curves among them) from number ``after`` on."""
    state = server(request)
    own_job(state, job_id, key)
    log = state.files.job_folder(job_id) / LOG
    return events_of(log.read_text(encoding="utf-8", errors="replace").splitlines() if log.is_file() else [], after)


def events_of(lines: list[str], after: int = 0) -> dict:
    """The events among a job's log lines from number ``after`` on, each with the ``fold`` of the step that
    printed it (from the step markers the scheduler writes)."""
    found, fold = [], None
    for line in lines:
        marker = json_object(line)
        if marker is not None and STEP_KEY in marker:
            fold = marker.get("fold")
            continue
        event = parse_event(line)
        if event is not None:
            found.append({**event, "fold": fold})
    return {"events": found[max(0, after):], "next": len(found)}


@api.post("/jobs/{job_id}/cancel")
def cancel(job_id: int, request: Request, key=Depends(caller)):
    state = server(request)
    job = own_job(state, job_id, key)
    if job.state not in ENDED:
        state.scheduler.cancel(job)
    return state.store.job(job_id).public()


@api.post("/jobs/{job_id}/resume")
def resume(job_id: int, request: Request, key=Depends(caller)):
    state = server(request)
    job = own_job(state, job_id, key)
    if job.kind != "train" or job.state not in ("cancelled", "interrupted", "failed"):
        fail(409, f"job {job_id} is a {job.kind} job that is {job.state}; only a stopped training resumes")
    state.store.update(job_id, state="queued", spec={**job.spec, "resume": True}, message="resuming", ended=None)
    return state.store.job(job_id).public()


@api.get("/jobs/{job_id}/files")
def results(job_id: int, request: Request, key=Depends(caller)):
    state = server(request)
    own_job(state, job_id, key)
    outputs = state.files.job_folder(job_id) / "outputs"
    found = sorted(p for p in outputs.iterdir() if p.is_file()) if outputs.is_dir() else []
    return [{"name": p.name, "size": p.stat().st_size, "sha256": sha256_of(p)} for p in found]


@api.get("/jobs/{job_id}/files/{name}")
def result(job_id: int, name: str, request: Request, key=Depends(caller)):
    state = server(request)
    job = own_job(state, job_id, key)
    if job.state != "done":
        fail(409, f"job {job_id} is {job.state}; its results come when it is done")
    path = state.files.job_file(job_id, name)
    if not path.is_file():
        fail(404, f"job {job_id} has no result {name!r}")
    return FileResponse(path, headers={"X-SHA256": sha256_of(path)})


def create_app(folder: str | Path, slots: list[str], folders: dict[str, str], max_upload_bytes: int = 4 << 30,
               max_jobs: int = 20) -> FastAPI:
    """The ASGI application of a server folder; its scheduler starts and stops with the application."""
    state = Server(folder, slots, folders, max_upload_bytes, max_jobs)

    @asynccontextmanager
    async def lifespan(app):
        from ImprovedNNUNetLib.server.scheduler import stop_orphans

        stop_orphans(state.store, state.files, state.store.recover())
        state.scheduler.start()
        yield
        state.scheduler.stop()

    app = FastAPI(title="Improved nnU-Net server", version=server_version(), lifespan=lifespan,
                  max_body_size=JSON_LIMIT, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.server = state
    app.add_api_route("/api/uploads/{name}", upload, methods=["PUT"], max_body_size=max_upload_bytes)
    app.include_router(api)

    @app.exception_handler(UserError)
    async def user_error(request, exc):
        return JSONResponse(status_code=400, content={"detail": str(exc)})

    @app.get("/", response_class=HTMLResponse)
    def status_page():
        from ImprovedNNUNetLib.server.status_page import PAGE

        return PAGE

    return app
