"""The user guide's runnable Python examples (``docs/``), run as a user would copy them.

Blocks are found by the ``<!-- example: NAME -->`` line in front of them, so editing an
example in the guide changes what is tested here. The Slicer-console examples need the Slicer
application and are covered by the module tests on the shim instead.
"""
from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def example(name: str) -> str:
    for page in PAGES:
        match = re.search(rf"<!-- example: {re.escape(name)} -->\n```python\n(.*?)\n```", page.read_text(), re.S)
        if match:
            return match.group(1)
    raise AssertionError(f"no page of README.md or docs/ has an example named {name!r}")


def run_in_process(code: str) -> list[str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README example", "exec"), {"__name__": "readme_example"})
    return out.getvalue().splitlines()


def test_evaluation_api_example_prints_what_its_comments_say():
    lines = run_in_process(example("evaluation_api"))
    assert re.fullmatch(r"box 0\.9 3\.0 0\.73\d* ok", lines[0]), lines
    assert lines[1] == "3.0"
    assert lines[2] == "False [] 1.0"
    assert lines[3].startswith("900 900 ") and int(lines[3].split()[2]) > 1800


def test_child_process_example_runs_the_cli_and_ends_cleanly():
    lines = run_in_process(example("child_process"))
    assert any(line.startswith("usage: improved-nnunet evaluate") for line in lines)
    assert lines[-1] == "0 None"


def test_headless_scene_example_segments_evaluates_and_shows_errors(trained_model, tmp_path):
    script = tmp_path / "headless.py"
    script.write_text(example("headless_scene"))
    run = subprocess.run([sys.executable, str(script), str(trained_model("baseline", (0,)))], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert lines[0] == "done CTChest4 segmentation"
    assert 0.0 <= float(lines[2]) <= 1.0
    assert lines[-1] == "CTChest4 segmentation errors 14"
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0]
    assert "Dice" in header and "HD95" in header
    assert len((tmp_path / "metrics.csv").read_text().splitlines()) == 8  # header + 7 labels

