"""Both panels in a fresh Slicer: before "Install dependencies" only the packages Slicer bundles exist.

``make install`` builds ``.venv-fresh-slicer`` from Testing/fresh_slicer/requirements.txt (no psutil,
surface-distance, torch or nnU-Net); Testing/fresh_slicer/check_panels.py runs there: panels open, dataset
check and export work, Train/Resume/Compare/Compute metrics say what to install, the self-tests pass."""
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FRESH_PYTHON = REPO / ".venv-fresh-slicer" / "bin" / "python"


def test_panels_in_a_fresh_slicer():
    if not FRESH_PYTHON.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{FRESH_PYTHON} is missing; make install builds it")
        pytest.skip("the fresh-Slicer environment .venv-fresh-slicer is missing; run `make install` (CI runs this)")
    result = subprocess.run([str(FRESH_PYTHON), str(REPO / "Testing" / "fresh_slicer" / "check_panels.py")],
                            capture_output=True, text=True, timeout=300, cwd=REPO,
                            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "fresh Slicer: all checks passed" in result.stdout
