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
import json
import threading
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.events import json_object, parse_event
from ImprovedNNUNetLib.server.files import ServerFolder, safe_name, sha256_of
from ImprovedNNUNetLib.server.retention import was_purged
from ImprovedNNUNetLib.server.scheduler import LOG, STEP_KEY, Scheduler
from ImprovedNNUNetLib.server.specs import (
    add_raw_dataset,
    evaluate_spec,
    fail,
    link_inputs,
    own_job,
    own_upload,
    segment_spec,
    study_spec,
    train_spec,
)
from ImprovedNNUNetLib.server.store import ENDED, KINDS, Store

API_VERSION = 1
API_HEADER = "X-Improved-NNUNet-API"
JSON_LIMIT = 1 << 20


def server_version() -> str:
    from ImprovedNNUNetLib.cli.main import package_version

    return package_version()


class Server:
    """What the routes share: the store, the folder, the scheduler and the limits."""

    def __init__(self, folder, slots, folders, max_upload_bytes, max_jobs, keep_days=None):
        self.store = Store(folder)
        self.files = ServerFolder(folder)
        self.scheduler = Scheduler(self.store, self.files, slots, folders, keep_days)
        self.folders = folders
        self.max_upload_bytes = max_upload_bytes
        self.max_jobs = max_jobs
        self.events = {}  # job id -> JobEvents: what of its log was read already
        self.events_lock = threading.Lock()

    def job_events(self, job_id: int) -> list[dict]:
        """The job's events so far; each poll reads only what the log gained since the last one."""
        with self.events_lock:
            events = self.events.setdefault(job_id, JobEvents())
            events.read(self.files.job_folder(job_id) / LOG)
            return events.found


class JobEvents:
    """The events of one job's log, read on: ``offset`` bytes taken, the fold of the step being read."""

    def __init__(self):
        self.offset, self.fold, self.found = 0, None, []

    def read(self, log: Path) -> None:
        if not log.is_file():
            return
        with open(log, "rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        complete = data[:data.rfind(b"\n") + 1]  # a line still being written waits for the next poll
        self.offset += len(complete)
        for line in complete.decode("utf-8", errors="replace").splitlines():
            marker = json_object(line)
            if marker is not None and STEP_KEY in marker:
                self.fold = marker.get("fold")
                continue
            event = parse_event(line)
            if event is not None:
                self.found.append({**event, "fold": self.fold})


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


@api.post("/jobs")
async def submit(request: Request, key=Depends(caller)):
    state = server(request)
    body = await request_object(request)
    kind = body.pop("kind", None)
    if kind not in KINDS:
        fail(422, f"a job is a JSON object with kind {', '.join(KINDS)}")
    spec = {"segment": lambda: segment_spec(state, body, key), "train": lambda: train_spec(state, body),
            "evaluate": lambda: evaluate_spec(state, body, key), "study": lambda: study_spec(body)}[kind]()
    inputs = {f"case_{i:04d}": u for i, u in enumerate(spec["inputs"])} if kind == "segment" else \
        {"prediction": spec["prediction"], "reference": spec["reference"]} if kind == "evaluate" else {}
    job = state.store.add_job(key.name, kind, spec, max_open=state.max_jobs, queued=not inputs)
    if inputs:
        link_inputs(state, job.id, inputs, key)
        if spec.get("labels"):
            (state.files.job_folder(job.id) / "inputs" / "labels.json").write_text(json.dumps({"labels": spec["labels"]}))
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
    found = state.job_events(job_id)
    return {"events": found[max(0, after):], "next": len(found)}


@api.get("/jobs/{job_id}/study")
def study_status(job_id: int, request: Request, key=Depends(caller)):
    """A study job's arms × folds (× repeats) matrix, read from the study's files here (``study status``); empty
    before the study has written its study.json."""
    from ImprovedNNUNetTrainingLib.analysis.study.spec import load_study
    from ImprovedNNUNetTrainingLib.analysis.study.status import status_header, status_matrix

    state = server(request)
    job = own_job(state, job_id, key)
    if job.kind != "study":
        fail(409, f"job {job_id} is a {job.kind} job; only a study job has a status matrix")
    try:
        study = load_study(job.spec["dataset"], job.spec["name"], state.folders)
    except UserError:
        return {"header": [], "rows": []}
    return {"header": status_header(study), "rows": status_matrix(study)}


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
    job = own_job(state, job_id, key)
    if was_purged(job):
        fail(410, f"job {job_id}: {job.message}")
    outputs = state.files.job_folder(job_id) / "outputs"
    found = sorted(p for p in outputs.iterdir() if p.is_file() and not p.name.startswith(".")) if outputs.is_dir() else []
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
    return FileResponse(path)  # its size and SHA-256 are in the listing the client checks against


def create_app(folder: str | Path, slots: list[str], folders: dict[str, str], max_upload_bytes: int = 4 << 30,
               max_jobs: int = 20, keep_days: float | None = None) -> FastAPI:
    """The ASGI application of a server folder; its scheduler starts and stops with the application (and, with
    ``keep_days``, removes uploads and ended jobs' files older than that: :mod:`.retention`)."""
    state = Server(folder, slots, folders, max_upload_bytes, max_jobs, keep_days)

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
