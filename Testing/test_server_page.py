"""The server's status page in a real headless Chromium (Debian's chromium; CI installs it with
Testing/browser/install.sh): with a key it lists that key's jobs, with a wrong one it says why."""
import os
import shutil
import subprocess
import time

import pytest

from ImprovedNNUNetLib.server.client import ServerClient

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MISSING = "no headless Chromium on this machine: run Testing/browser/install.sh as root (CI does)"


@pytest.fixture
def chromium():
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail(MISSING)  # CI installs it: there its absence is an error, not a skip
        pytest.skip(MISSING)
    return CHROMIUM


def page_dom(url: str, profile) -> str:
    """The page's DOM after its scripts ran (virtual time lets the fetch() calls answer)."""
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
                           "--virtual-time-budget=8000", "--dump-dom", url], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_status_page_lists_the_jobs_of_a_key(chromium, make_server, tmp_path):
    server = make_server()
    key, other = server.add_key("lab"), server.add_key("other")
    server.start()
    client = ServerClient(server.url, key)
    job = client.train("Dataset001_Missing")  # fails on the server: a job with a state and a message
    deadline = time.monotonic() + 60
    while client.job(job["id"])["state"] not in ("failed", "done") and time.monotonic() < deadline:
        time.sleep(0.2)
    ServerClient(server.url, other).train("Dataset002_Other")

    dom = page_dom(f"{server.url}/#key={key}", tmp_path / "profile1")
    assert "1 job(s)" in dom
    row = dom[dom.index("<tbody>"):dom.index("</tbody>")]
    assert f"<td>{job['id']}</td><td>lab</td><td>train</td><td>failed</td>" in row
    assert "Dataset001_Missing" in row and "Dataset002_Other" not in row  # only this key's jobs

    wrong = page_dom(f"{server.url}/#key=not-a-key", tmp_path / "profile2")
    assert "a valid API key is needed" in wrong and "<tbody></tbody>" in wrong
