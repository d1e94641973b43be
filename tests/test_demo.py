"""scripts/demo.sh, the README's first command, runs offline from a clean folder and reaches
the figures the README promises; its flags (--dir, --images, --epochs, --force) work."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def run_demo(tmp_path: Path, *flags: str, **env: str) -> subprocess.CompletedProcess:
    """``bash scripts/demo.sh FLAGS`` from ``tmp_path`` with no CLIP weights cached anywhere."""
    environ = dict(os.environ, PYTHON=sys.executable, CLIP_CACHE_DIR=str(tmp_path / "no-cache"),
                   HF_HOME=str(tmp_path / "no-hf"), **env)
    return subprocess.run(["bash", str(REPO / "scripts/demo.sh"), *flags], cwd=tmp_path,
                          env=environ, capture_output=True, text=True, timeout=1800)


def ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_demo_defaults_reach_the_readme_figures(tmp_path):
    out = ok(run_demo(tmp_path, "--dir", "demo"))
    assert "tiny-vit-random.pt (20 epochs)" in out
    run = tmp_path / "demo" / "run"
    metrics = json.loads((run / "results.json").read_text())["final"]["metrics"]
    assert f"SRCC {metrics['srcc']:.3f}, PLCC {metrics['plcc']:.3f}" in out
    # About 15 short lines: what it does, progress, the figures, where the files are, next steps
    # (train.py's own output, 130 lines, is in the run's log.txt).
    lines = out.strip().splitlines()
    assert len(lines) <= 30 and all(line.startswith("[demo] ") for line in lines), out
    said = dict(line[len("[demo] "):].split(": ", 1) for line in lines if ": " in line)
    assert said["report page"] == str(run.resolve() / "report.html")
    assert said["run folder"].startswith(str(run))
    assert "Next steps" in said["next steps"]
    assert "epoch 20/20" in said and "epoch [" not in out
    log = (run / "log.txt").read_text()
    assert "epoch [20/20]" in log and "Checkpoint saved" in log
    assert (run / "report.html").is_file()
    # The README promises SRCC and PLCC of at least 0.8 on the demo's 40 test images.
    assert metrics["srcc"] >= 0.8 and metrics["plcc"] >= 0.8, metrics
    table = pd.read_csv(run / "predictions.csv")
    assert len(table) == 40
    # Predictions follow the scores, not a near-constant guess (the upstream-like demo had a
    # prediction spread of 0.024 MOS against 1.38).
    assert table["pred"].std() > 0.25 * table["mos"].std()
    assert np.corrcoef(table["pred"], table["mos"])[0, 1] >= 0.8

    refused = run_demo(tmp_path, "--dir", "demo", "--epochs", "3")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "add --force" in refused.stderr and "--dir" in refused.stderr
    again = ok(run_demo(tmp_path, "--dir", "demo"))  # same settings: the finished run
    assert f"SRCC {metrics['srcc']:.3f}" in again and "[demo] epoch" not in again


def test_a_demo_folder_that_cannot_be_made_is_one_error_line(tmp_path):
    (tmp_path / "notes.txt").write_text("a file where the folder would go")
    for folder in ("notes.txt", "notes.txt/sub"):
        bad = run_demo(tmp_path, "--dir", folder)
        assert bad.returncode == 2, bad.stderr
        assert bad.stderr.strip().splitlines() == [
            f"error: --dir {folder}: cannot make that folder (a file is in the way, or it is "
            "not writable)"]


@pytest.mark.slow
def test_demo_environment_settings_and_force(tmp_path):
    first = ok(run_demo(tmp_path, DEMO_DIR=str(tmp_path / "small"), DEMO_IMAGES="40",
                        DEMO_EPOCHS="1"))
    assert "writing 40 synthetic images" in first and "(1 epochs)" in first
    run = tmp_path / "small" / "run"
    assert json.loads((run / "results.json").read_text())["last"]["epoch"] == 1
    forced = ok(run_demo(tmp_path, "--dir", "small", "--images", "40", "--epochs", "2", "--force"))
    assert "writing 40 synthetic images" in forced and "(2 epochs)" in forced
    assert "epoch [2/2] batch" not in forced and "[demo] epoch 2/2: mean training loss" in forced
    assert json.loads((run / "results.json").read_text())["last"]["epoch"] == 2
    moved = [p for p in run.iterdir() if p.name.startswith("previous-")]
    assert len(moved) == 1 and (moved[0] / "results.json").is_file()  # moved aside, not deleted
    bad = run_demo(tmp_path, "--images", "many")
    assert bad.returncode == 2 and "--images must be a whole number" in bad.stderr
    assert ok(run_demo(tmp_path, "--help")).startswith("Usage: bash scripts/demo.sh")


@pytest.mark.slow
def test_demo_in_a_folder_whose_path_has_spaces(tmp_path):
    work = tmp_path / "my demo dir"
    out = ok(run_demo(tmp_path, "--dir", "my demo dir", "--images", "20", "--epochs", "1"))
    weights = work / "tiny-vit-random.pt"
    assert f"CLIP weights: {weights} (1 epochs)" in out
    results = json.loads((work / "run" / "results.json").read_text())
    assert results["last"]["epoch"] == 1
    # The run records the weights file by its absolute path (parsed, not matched as text: YAML
    # may quote or fold a path with spaces).
    recorded = yaml.safe_load((work / "run" / "config.yaml").read_text())["MODEL"]["BACKBONE"]["NAME"]
    assert os.path.isabs(recorded) and os.path.samefile(recorded, weights)
    # The same settings, read back from the folder: nothing to train; --verbose (or VERBOSE=1)
    # shows train.py's own lines.
    again = ok(run_demo(tmp_path, "--dir", "my demo dir", "--images", "20", "--epochs", "1",
                        "--verbose"))
    assert "epoch [" not in again
    assert any(line.startswith("already finished: ") for line in again.splitlines())
    quiet = ok(run_demo(tmp_path, "--dir", "my demo dir", "--images", "20", "--epochs", "1"))
    assert any(line.startswith("[demo] already finished: ") for line in quiet.splitlines())
    assert ok(run_demo(tmp_path, "--dir", "my demo dir", "--images", "20", "--epochs", "1",
                       VERBOSE="1")).splitlines() == again.splitlines()
