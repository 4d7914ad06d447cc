"""`improved-nnunet serve`: a real uvicorn server on a loopback port, the real client, real files.

The security battery: no key, a wrong key, a revoked key -> 401; another key's job -> 404; an oversize upload
-> 413 and nothing stored; names that would be paths refused; malformed and truncated payloads; a non-loopback
address without TLS refused; a client of another API version told which versions meet.
"""
import http.client
import json
import socket
import zipfile
from urllib.parse import urlsplit

import pytest
import requests

from fixtures.server import cli, server_environment
from ImprovedNNUNetLib.core.errors import UserError
from ImprovedNNUNetLib.server import app as server_app
from ImprovedNNUNetLib.server import client as server_client
from ImprovedNNUNetLib.server.client import ServerClient


def call(server, method, path, key=None, **kwargs):
    headers = kwargs.pop("headers", {})
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return requests.request(method, server.url + path, headers=headers, timeout=30, **kwargs)


def uploads_on_disk(server):
    folder = server.folder / "uploads"
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def served(make_server):
    server = make_server("--max-upload-mb", "0.05")  # 52 kB: small enough to test the limit
    keys = {name: server.add_key(name) for name in ("alice", "bob")}
    keys["boss"] = server.add_key("boss", admin=True)
    return server.start(), keys


def test_client_and_server_speak_one_api_version():
    assert server_client.API_VERSION == server_app.API_VERSION


def test_keys_are_shown_once_and_stored_hashed(make_server):
    server = make_server()
    key = server.add_key("carol")
    database = (server.folder / "server.sqlite3").read_bytes()
    assert len(key) >= 40 and key.encode() not in database
    listed = cli("serve", "keys", "list", "--folder", str(server.folder), env=server.env)
    assert "carol\tuser\tactive" in listed.stdout and key not in listed.stdout
    again = cli("serve", "keys", "add", "carol", "--folder", str(server.folder), env=server.env)
    assert again.returncode == 2 and "exists" in again.stderr


def test_every_request_needs_a_valid_key(served):
    server, keys = served
    assert call(server, "GET", "/api/version").status_code == 401
    assert call(server, "GET", "/api/jobs", key="not-a-key").status_code == 401
    assert call(server, "GET", "/api/jobs", headers={"Authorization": keys["alice"]}).status_code == 401  # no scheme
    assert call(server, "GET", "/api/version", key=keys["alice"]).json()["key"] == "alice"
    revoked = cli("serve", "keys", "revoke", "bob", "--folder", str(server.folder), env=server.env)
    assert revoked.returncode == 0
    answer = call(server, "GET", "/api/jobs", key=keys["bob"])
    assert answer.status_code == 401 and "serve keys add" in answer.json()["detail"]
    with pytest.raises(UserError, match="HTTP 401"):
        ServerClient(server.url, keys["bob"]).jobs()


def test_another_api_version_is_one_clear_message(served):
    server, keys = served
    answer = call(server, "GET", "/api/jobs", key=keys["alice"], headers={"X-Improved-NNUNet-API": "99"})
    assert answer.status_code == 409 and "install the same improved-nnunet version" in answer.json()["detail"]


def test_a_key_sees_only_its_own_jobs_and_uploads(served, tmp_path):
    server, keys = served
    alice, bob, boss = (ServerClient(server.url, keys[n]) for n in ("alice", "bob", "boss"))
    job = alice.train("Dataset001_Missing")  # accepted and queued; it fails on the server (no such dataset)
    assert job["state"] in ("queued", "running", "failed")
    assert [j["id"] for j in alice.jobs()] == [job["id"]] and bob.jobs() == []
    assert [j["id"] for j in boss.jobs()] == [job["id"]]  # an admin key sees every job
    for path in (f"/api/jobs/{job['id']}", f"/api/jobs/{job['id']}/events", f"/api/jobs/{job['id']}/files"):
        assert call(server, "GET", path, key=keys["bob"]).status_code == 404
    assert call(server, "POST", f"/api/jobs/{job['id']}/cancel", key=keys["bob"]).status_code == 404
    image = tmp_path / "case.nii.gz"
    image.write_bytes(b"x" * 100)
    upload = alice.upload(image)
    answer = call(server, "POST", "/api/jobs", key=keys["bob"], json={"kind": "segment", "model": "m", "inputs": [upload]})
    assert answer.status_code == 404  # bob cannot use alice's upload
    ended = alice.wait(job["id"], timeout=60, poll_s=0.2)
    assert ended["state"] == "failed" and "Dataset001_Missing" in ended["message"]


def test_an_oversize_upload_is_refused_and_nothing_is_kept(served, tmp_path):
    server, keys = served
    big = tmp_path / "big.nii.gz"
    big.write_bytes(b"\0" * 200_000)
    with pytest.raises(UserError, match="HTTP 413"):
        ServerClient(server.url, keys["alice"]).upload(big)
    chunks = (b"\0" * 10_000 for _ in range(20))  # no Content-Length: the server counts while it reads
    answer = call(server, "PUT", "/api/uploads/big.nii.gz", key=keys["alice"], data=chunks)
    assert answer.status_code == 413
    assert uploads_on_disk(server) == []


def test_a_damaged_or_interrupted_upload_leaves_nothing(served, tmp_path):
    server, keys = served
    answer = call(server, "PUT", "/api/uploads/a.nii.gz", key=keys["alice"], data=b"abc",
                  headers={"X-SHA256": "0" * 64})
    assert answer.status_code == 400 and "damaged" in answer.json()["detail"]
    address = urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:  # promises 40 kB, sends 5
        sock.sendall(f"PUT /api/uploads/cut.nii.gz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {keys['alice']}\r\n"
                     "Content-Length: 40000\r\n\r\n".encode() + b"12345")
    ServerClient(server.url, keys["alice"]).jobs()  # the server is still there, and has noticed the hang-up
    import time

    time.sleep(1.0)
    assert uploads_on_disk(server) == []


@pytest.mark.parametrize("name", ["..", ".hidden.nii.gz", "a b.nii.gz", "x" * 200, "case.nii.gz\n"])
def test_names_that_are_not_plain_file_names_are_refused(served, name):
    server, keys = served
    answer = call(server, "PUT", "/api/uploads/" + requests.utils.quote(name, safe=""), key=keys["alice"],
                  data=b"123")
    assert answer.status_code in (400, 404)
    assert uploads_on_disk(server) == []


def test_traversal_in_job_settings_and_archives_is_refused(served, tmp_path):
    server, keys = served
    alice = ServerClient(server.url, keys["alice"])
    for dataset in ("../../etc", "Dataset001_A/../../x", "/abs"):
        with pytest.raises(UserError, match="plain name"):
            alice.train(dataset)
    image = tmp_path / "case.nii.gz"
    image.write_bytes(b"x")
    upload = alice.upload(image)
    for model in ("../models", "a/b"):
        answer = call(server, "POST", "/api/jobs", key=keys["alice"],
                      json={"kind": "segment", "model": model, "inputs": [upload]})
        assert answer.status_code == 400 and "plain name" in answer.json()["detail"]
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("Dataset009_Evil/dataset.json", "{}")
        archive.writestr("../../escaped.txt", "x")
    answer = call(server, "POST", "/api/datasets", key=keys["alice"], json={"upload": alice.upload(evil)})
    assert answer.status_code == 400 and "outside" in answer.json()["detail"]
    assert not list(tmp_path.rglob("escaped.txt")) and not list(server.folder.parent.rglob("Dataset009_Evil"))


def test_malformed_requests_get_clear_answers(served):
    server, keys = served
    for body in (b"{not json", b"[]", json.dumps({"kind": "mine"}).encode(),
                 json.dumps({"kind": "train", "dataset": "Dataset001_A", "shell": "rm -rf /"}).encode()):
        answer = call(server, "POST", "/api/jobs", key=keys["alice"], data=body,
                      headers={"Content-Type": "application/json"})
        assert 400 <= answer.status_code < 500 and answer.json()["detail"], body
    answer = call(server, "POST", "/api/jobs", key=keys["alice"], data=b"{" + b" " * 2_000_000 + b"}",
                  headers={"Content-Type": "application/json"})
    assert answer.status_code == 413  # JSON bodies are small


def test_a_wide_address_needs_tls_or_an_explicit_choice(tmp_path):
    env = server_environment(tmp_path)
    refused = cli("serve", "--folder", str(tmp_path / "s"), "--host", "0.0.0.0", "--port", "0", env=env)
    assert refused.returncode == 2 and "--ssl-keyfile" in refused.stderr and "SSH tunnel" in refused.stderr
    half = cli("serve", "--folder", str(tmp_path / "s"), "--ssl-keyfile", "k.pem", env=env)
    assert half.returncode == 2 and "both" in half.stderr


def test_the_client_names_an_unreachable_server(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    with pytest.raises(UserError, match="cannot reach the server"):
        ServerClient(f"http://127.0.0.1:{port}", "key").jobs()
    with pytest.raises(UserError, match="no API key"):
        ServerClient("http://127.0.0.1:1", "")


def test_the_status_page_asks_for_a_key_and_calls_the_api(served):
    server, _ = served
    page = call(server, "GET", "/")
    assert page.status_code == 200 and 'type="password"' in page.text and "/api/jobs" in page.text
    connection = http.client.HTTPConnection(urlsplit(server.url).hostname, urlsplit(server.url).port, timeout=10)
    connection.request("GET", "/docs")
    assert connection.getresponse().status == 404  # no open API description on a server with patient data


def test_keys_never_start_with_a_dash(monkeypatch):
    """One key in 64 of token_urlsafe starts with "-", which `--api-key KEY` reads as an option (a CI run met it):
    such a draw is replaced."""
    from ImprovedNNUNetLib.server import store

    draws = iter(["-starts-with-a-dash", "Abc_def-1"])
    monkeypatch.setattr(store.secrets, "token_urlsafe", lambda n: next(draws))
    assert store.new_key() == "Abc_def-1"
