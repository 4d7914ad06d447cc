"""What the server keeps, and for how long (``serve --keep-days``, ``serve purge``): a real uvicorn server, the
real client, real evaluation jobs; ages are moved back in the server's own database (the only way to make a file
ten days old in a test)."""
import sqlite3
import time

import numpy as np
import pytest

from fixtures.server import cli
from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.core.imageio import Image, write_image
from ImprovedNNUNetLib.server.client import ServerClient

DAY = 86400.0


def age(server, table: str, column: str, row_id, days: float) -> None:
    with sqlite3.connect(server.folder / "server.sqlite3") as db:
        db.execute(f"UPDATE {table} SET {column} = ? WHERE id = ?", (time.time() - days * DAY, row_id))


def test_old_uploads_and_job_files_go_records_and_resumable_trainings_stay(make_server, tmp_path):
    labels = np.zeros((6, 12, 12), np.uint8)
    labels[2:4, 3:9, 3:9] = 1
    image = write_image(Image(labels, (1.0, 1.0, 2.0)), tmp_path / "case.nii.gz")
    server = make_server()
    key = server.add_key("lab")
    server.start()
    client = ServerClient(server.url, key)
    old_job, new_job = (client.evaluate(image, image) for _ in range(2))
    for job in (old_job, new_job):
        assert client.wait(job["id"], timeout=120, poll_s=0.2)["state"] == "done"
    kept_upload = client.upload(image)
    server.stop()

    from ImprovedNNUNetLib.server.store import Store

    store = Store(server.folder)  # a training that was cancelled ten days ago stays resumable: its files stay
    training = store.add_job("lab", "train", {"dataset": "Dataset001_X"})
    store.finish(training.id, "cancelled", "cancelled")
    (server.folder / "jobs" / str(training.id)).mkdir(parents=True)
    for job in (old_job, training):
        age(server, "jobs", "ended", job["id"] if isinstance(job, dict) else job.id, 10)
    old_uploads = [upload for upload in old_job["spec"].values() if isinstance(upload, str) and len(upload) == 32]
    for upload in old_uploads:
        age(server, "uploads", "created", upload, 10)

    dry = cli("serve", "purge", "--older-than-days", "7", "--dry-run", "--folder", str(server.folder), env=server.env)
    assert dry.returncode == 0 and "would remove 2 upload(s) and the files of 1 ended job(s)" in dry.stdout, dry.stdout
    assert (server.folder / "jobs" / str(old_job["id"])).is_dir()  # a dry run removes nothing

    server.extra = ("--keep-days", "7")
    server.start()  # the retention is applied when the server starts
    client = ServerClient(server.url, key)  # a new port
    deadline = time.monotonic() + 30
    while (server.folder / "jobs" / str(old_job["id"])).exists():
        assert time.monotonic() < deadline, "".join(server.output)
        time.sleep(0.1)
    assert not any((server.folder / "uploads" / upload).exists() for upload in old_uploads)
    with pytest.raises(UserError, match="removed after 7 days"):
        client.download(old_job["id"], tmp_path / "old")
    assert "removed after 7 days" in client.job(old_job["id"])["message"]  # the record stays
    assert {p.name for p in client.download(new_job["id"], tmp_path / "new")} == {"summary.json", "metrics.csv"}
    assert (server.folder / "jobs" / str(training.id)).is_dir()
    assert (server.folder / "uploads" / kept_upload).is_dir()
    with pytest.raises(UserError, match="upload"):
        client._call("POST", "/api/jobs", json={"kind": "evaluate", "prediction": old_uploads[0],
                                                "reference": kept_upload})
    assert any("retention 7 days: removed 2 upload(s)" in line for line in server.output)


@pytest.mark.parametrize("command", [("serve", "--keep-days", "0"), ("serve", "purge", "--older-than-days", "-1")])
def test_a_retention_that_is_no_number_of_days_is_one_line(command, tmp_path, make_server):
    server = make_server()
    server.add_key("lab")  # a server folder
    done = cli(*command, "--folder", str(server.folder), env=server.env)
    assert done.returncode == 2 and "give a positive number of days" in done.stderr and done.stderr.count("\n") == 1
