"""`--help` of the entry points is answered before torch is imported (issue 25, first day).

Each command runs in a fresh interpreter as `__main__` with `--help`; the test then checks which
modules that interpreter loaded. Not timed: the wall time is measured by benchmarks/bench_help.py.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAVY = ("torch", "pandas")
PROBE = """
import runpy, sys
script = sys.argv[1]
sys.argv = [script, "--help"]
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit as exc:
    code = exc.code
else:
    code = "no exit"
print("EXIT", code)
print("LOADED", " ".join(name for name in {heavy!r} if name in sys.modules))
"""


@pytest.mark.parametrize("script", ["train.py", "score.py", "scripts/sweep.py"])
def test_help_does_not_import_heavy_packages(script: str) -> None:
    result = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), script], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    lines = dict(line.split(" ", 1) if " " in line else (line, "")
                 for line in result.stdout.splitlines() if line.startswith(("EXIT", "LOADED")))
    assert "usage:" in result.stdout, result.stdout + result.stderr
    assert lines.get("EXIT") == "0", result.stdout + result.stderr
    assert lines.get("LOADED") == "", f"{script} --help imported {lines.get('LOADED')}"
