"""The server's records on its own disk: API keys (hashed) and jobs, in one SQLite database (standard library).

Keys: ``add`` makes a random key (``secrets.token_urlsafe(32)``), stores only its SHA-256 and returns the key
once; ``check`` hashes what a client sends and compares it in constant time (``hmac.compare_digest``) with
every stored hash; a revoked key stays in the table (its name is not reused) and is refused.

Jobs: a job's state is written before the work it describes starts and after it ends, so a server killed at
any point restarts into a true table: ``recover`` turns the jobs that were running into ``interrupted``
(resumable, for trainings), queued ones stay queued. WAL mode lets the status page and the API read while the
scheduler writes; "claim the next queued job" takes the write lock first (``BEGIN IMMEDIATE``).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError

DATABASE = "server.sqlite3"
STATES = ("new", "queued", "running", "done", "failed", "cancelled", "interrupted")  # new: inputs being placed
ENDED = ("done", "failed", "cancelled", "interrupted")
KINDS = ("segment", "train", "evaluate", "study")
SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (name TEXT PRIMARY KEY, hash TEXT NOT NULL, admin INTEGER NOT NULL,
                                 created REAL NOT NULL, revoked REAL);
CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, owner TEXT NOT NULL, kind TEXT NOT NULL,
                                 state TEXT NOT NULL, spec TEXT NOT NULL, created REAL NOT NULL, started REAL,
                                 ended REAL, message TEXT NOT NULL DEFAULT '', slot TEXT, pid INTEGER,
                                 returncode INTEGER);
CREATE TABLE IF NOT EXISTS uploads (id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, size INTEGER NOT NULL,
                                    sha256 TEXT NOT NULL, created REAL NOT NULL);
"""


def new_key() -> str:
    """A random key (``secrets.token_urlsafe(32)``, 256 bits) that does not start with "-": one in 64 would, and
    ``--api-key KEY`` would then read it as an option."""
    while True:
        key = secrets.token_urlsafe(32)
        if not key.startswith("-"):
            return key


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Key:
    name: str
    admin: bool


@dataclass
class Job:
    id: int
    owner: str
    kind: str
    state: str
    spec: dict
    created: float
    started: float | None
    ended: float | None
    message: str
    slot: str | None
    pid: int | None
    returncode: int | None

    def public(self) -> dict:
        """What a client sees (no process id, no paths of the server)."""
        return {"id": self.id, "owner": self.owner, "kind": self.kind, "state": self.state,
                "spec": {k: v for k, v in self.spec.items() if not k.startswith("_")}, "created": self.created,
                "started": self.started, "ended": self.ended, "message": self.message, "slot": self.slot}


class Store:
    """The database of one server folder."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / DATABASE
        db = sqlite3.connect(self.path, timeout=5.0)
        try:
            db.execute("PRAGMA journal_mode=WAL")  # kept by the database file
            db.executescript(SCHEMA)
        finally:
            db.close()
        self._local = threading.local()  # one connection per thread (the server's request threads, the scheduler)

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
            db.execute("PRAGMA busy_timeout=5000")
            self._local.db = db
        return db

    @contextmanager
    def _connect(self, immediate: bool = False):
        """A transaction on this thread's connection (``immediate``: with the write lock from its start)."""
        db = self._connection()
        db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # --- keys ------------------------------------------------------------------------------------------
    def add_key(self, name: str, admin: bool = False) -> str:
        """A new key called ``name``; returns the key itself (stored only as its hash)."""
        if not name or not name.replace("-", "").replace("_", "").isalnum() or len(name) > 64:
            raise UserError(f"key name {name!r}: use letters, digits, '-' and '_' (64 at most)")
        key = new_key()
        with self._connect(immediate=True) as db:
            if db.execute("SELECT 1 FROM keys WHERE name = ?", (name,)).fetchone():
                raise UserError(f"a key called {name!r} exists; choose another name (or revoke it first)")
            db.execute("INSERT INTO keys VALUES (?, ?, ?, ?, NULL)", (name, key_hash(key), int(admin), time.time()))
        return key

    def revoke_key(self, name: str) -> None:
        with self._connect(immediate=True) as db:
            if db.execute("UPDATE keys SET revoked = ? WHERE name = ? AND revoked IS NULL",
                          (time.time(), name)).rowcount == 0:
                raise UserError(f"no active key called {name!r}; 'improved-nnunet serve keys list' shows them")

    def keys(self) -> list[dict]:
        with self._connect() as db:
            rows = db.execute("SELECT name, admin, created, revoked FROM keys ORDER BY created").fetchall()
        return [{"name": n, "admin": bool(a), "created": c, "revoked": r} for n, a, c, r in rows]

    def check_key(self, key: str | None) -> Key | None:
        """The active key ``key`` is, or None (every stored hash compared in constant time)."""
        if not key:
            return None
        offered = key_hash(key)
        with self._connect() as db:
            rows = db.execute("SELECT name, hash, admin FROM keys WHERE revoked IS NULL").fetchall()
        found = None
        for name, stored, admin in rows:
            if hmac.compare_digest(offered, stored):
                found = Key(name, bool(admin))
        return found

    # --- uploads ---------------------------------------------------------------------------------------
    def add_upload(self, upload_id: str, owner: str, name: str, size: int, sha256: str) -> None:
        with self._connect(immediate=True) as db:
            db.execute("INSERT INTO uploads VALUES (?, ?, ?, ?, ?, ?)", (upload_id, owner, name, size, sha256, time.time()))

    def uploads_before(self, cutoff: float) -> list[str]:
        """Ids of the uploads received before ``cutoff`` (seconds since the epoch)."""
        with self._connect() as db:
            return [row[0] for row in db.execute("SELECT id FROM uploads WHERE created < ?", (cutoff,)).fetchall()]

    def delete_upload(self, upload_id: str) -> None:
        with self._connect(immediate=True) as db:
            db.execute("DELETE FROM uploads WHERE id = ?", (str(upload_id),))

    def upload_owner(self, upload_id: str) -> str | None:
        with self._connect() as db:
            row = db.execute("SELECT owner FROM uploads WHERE id = ?", (str(upload_id),)).fetchone()
        return row[0] if row else None

    # --- jobs ------------------------------------------------------------------------------------------
    def add_job(self, owner: str, kind: str, spec: dict, max_open: int | None = None, queued: bool = True) -> Job:
        """A new job (``queued``, or ``new`` until its inputs are in place and the caller queues it)."""
        if kind not in KINDS:
            raise UserError(f"job kind {kind!r}: one of {', '.join(KINDS)}")
        with self._connect(immediate=True) as db:
            if max_open is not None:
                open_jobs = db.execute("SELECT COUNT(*) FROM jobs WHERE owner = ? AND state IN ('new', 'queued', 'running')",
                                       (owner,)).fetchone()[0]
                if open_jobs >= max_open:
                    raise UserError(f"key {owner!r} has {open_jobs} jobs queued or running, the most allowed; "
                                    "wait for one to end or cancel one")
            cursor = db.execute("INSERT INTO jobs (owner, kind, state, spec, created) VALUES (?, ?, ?, ?, ?)",
                                (owner, kind, "queued" if queued else "new", json.dumps(spec), time.time()))
            job_id = cursor.lastrowid
        return self.job(job_id)

    def job(self, job_id: int) -> Job | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def jobs(self, owner: str | None = None) -> list[Job]:
        """Every job (``owner`` None: an admin's view), newest first."""
        with self._connect() as db:
            if owner is None:
                rows = db.execute("SELECT * FROM jobs ORDER BY id DESC").fetchall()
            else:
                rows = db.execute("SELECT * FROM jobs WHERE owner = ? ORDER BY id DESC", (owner,)).fetchall()
        return [_job(row) for row in rows]

    def ended_before(self, cutoff: float) -> list[Job]:
        """Jobs that ended before ``cutoff`` (seconds since the epoch), oldest first."""
        with self._connect() as db:
            rows = db.execute(f"SELECT * FROM jobs WHERE state IN ({', '.join('?' * len(ENDED))}) AND ended < ? "
                              "ORDER BY id", (*ENDED, cutoff)).fetchall()
        return [_job(row) for row in rows]

    def claim_next(self, slot: str) -> Job | None:
        """The oldest queued job, now ``running`` on ``slot`` (its process id is recorded by :meth:`started`)."""
        with self._connect(immediate=True) as db:
            row = db.execute("SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1").fetchone()
            if row is None:
                return None
            db.execute("UPDATE jobs SET state = 'running', slot = ?, started = ?, message = '' WHERE id = ?",
                       (slot, time.time(), row[0]))
        return self.job(row[0])

    def update(self, job_id: int, **fields) -> None:
        allowed = {"state", "message", "pid", "returncode", "ended", "slot", "spec", "started"}
        if not set(fields) <= allowed:
            raise ValueError(f"unknown job fields: {sorted(set(fields) - allowed)}")
        if "spec" in fields:
            fields["spec"] = json.dumps(fields["spec"])
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self._connect(immediate=True) as db:
            db.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*fields.values(), job_id))

    def finish(self, job_id: int, state: str, message: str = "", returncode: int | None = None) -> None:
        self.update(job_id, state=state, message=message, returncode=returncode, ended=time.time())

    def recover(self) -> list[int]:
        """After a restart: jobs recorded as running belong to a server that is gone; they become
        ``interrupted`` (a training is resumable from its last checkpoint). Returns their ids."""
        with self._connect(immediate=True) as db:
            ids = [row[0] for row in db.execute("SELECT id FROM jobs WHERE state = 'running'").fetchall()]
            db.execute("UPDATE jobs SET state = 'interrupted', ended = ?, message = "
                       "'the server stopped while this job ran; resume it' WHERE state = 'running'", (time.time(),))
            db.execute("UPDATE jobs SET state = 'failed', ended = ?, message = "
                       "'the server stopped while this job was being set up; submit it again' WHERE state = 'new'",
                       (time.time(),))
        return ids


def _job(row) -> Job:
    job_id, owner, kind, state, spec, created, started, ended, message, slot, pid, returncode = row
    return Job(job_id, owner, kind, state, json.loads(spec), created, started, ended, message, slot, pid, returncode)
