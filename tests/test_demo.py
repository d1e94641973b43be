"""scripts/demo.sh, the README's first command, runs offline from a clean folder."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_script_trains_and_reports_metrics(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, DEMO_DIR=str(tmp_path / "demo"),
               DEMO_IMAGES="40", DEMO_EPOCHS="2", CLIP_CACHE_DIR=str(tmp_path / "no-cache"),
               HF_HOME=str(tmp_path / "no-hf"))
    done = subprocess.run(["bash", str(REPO / "scripts/demo.sh")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "tiny-vit-random.pt (2 epochs)" in done.stdout
    results = json.loads((tmp_path / "demo/run/results.json").read_text())
    assert results["last"]["epoch"] == 2
    srcc = results["final"]["metrics"]["srcc"]
    assert f"SRCC {srcc:.3f}" in done.stdout
