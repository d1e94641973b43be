"""The README's "Next steps" commands run as printed: they are read from between the README's
``next-steps`` markers and run one by one in a temporary folder laid out like the repository
(its top-level entries linked), with ``python`` the interpreter running the tests."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
WRITTEN = {"output", "synthetic", "weights", "data"}  # what the commands write: not linked


def next_steps_commands() -> list[str]:
    """The command lines of the bash block between the markers, without trailing comments."""
    text = README.read_text(encoding="utf-8")
    assert text.count("<!-- next-steps:start -->") == text.count("<!-- next-steps:end -->") == 1
    inside = text.split("<!-- next-steps:start -->")[1].split("<!-- next-steps:end -->")[0]
    blocks = re.findall(r"```bash\n(.*?)```", inside, flags=re.S)
    assert len(blocks) == 1
    return [re.sub(r"\s+#.*$", "", line).strip() for line in blocks[0].splitlines()
            if line.strip()]


def test_the_next_steps_are_short_and_name_the_promised_commands():
    text = README.read_text(encoding="utf-8")
    inside = text.split("<!-- next-steps:start -->")[1].split("<!-- next-steps:end -->")[0]
    assert len(re.findall(r"\w+", re.sub(r"```.*?```", "", inside, flags=re.S))) <= 150
    commands = next_steps_commands()
    for start in ("python -m datasets.synthetic ", "python -m clip.random_weights ",
                  "DATA=synthetic bash scripts/main.sh ", "python scripts/sweep.py ",
                  "python -m datasets.fetch "):
        assert any(c.startswith(start) for c in commands), start
    # The run page it points to is where the demo writes it by default.
    assert "`output/demo/run/report.html`" in inside
    assert 'WORK=${DEMO_DIR:-$REPO/output/demo}' in (REPO / "scripts/demo.sh").read_text()


@pytest.mark.slow
def test_the_next_steps_run_as_printed(tmp_path):
    work = tmp_path / "clip-agiqa"
    work.mkdir()
    for entry in REPO.iterdir():
        if entry.name not in WRITTEN and not entry.name.startswith("."):
            (work / entry.name).symlink_to(entry)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("python", "python3"):  # a wrapper, not a link: a venv's python stays in it
        (bin_dir / name).write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        (bin_dir / name).chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
               CLIP_CACHE_DIR=str(tmp_path / "no-cache"), HF_HOME=str(tmp_path / "no-hf"))
    env.pop("DATA", None)
    env.pop("PYTHON", None)
    outputs = {}
    for command in next_steps_commands():
        done = subprocess.run(["bash", "-c", command], cwd=work, env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        outputs[command] = done.stdout
    labels = pd.read_csv(work / "synthetic" / "AGIQA-3K" / "data.csv")
    assert len(labels) == 60
    assert (work / "weights" / "tiny-vit.pt").stat().st_size > 0
    [trained] = (work / "output" / "AGIQA").rglob("results.json")
    assert json.loads(trained.read_text())["last"]["epoch"] == 2
    results = pd.read_csv(work / "output" / "try-sweep" / "results.csv")
    assert results["variant"].tolist() == ["vit_b16_ep100", "nctx4"]
    assert (results["status"] == "done").all()
    [status] = [out for c, out in outputs.items() if c.endswith(" --status")]
    assert status.splitlines()[-1] == "2 run(s): 0 new, 0 queued, 0 running, 2 done, 0 failed"
    [listing] = [out for c, out in outputs.items() if c.startswith("python -m datasets.fetch")]
    assert listing.startswith("AGIQA-3K (AGIQA")
