"""`--help` of the entry points is answered before torch is imported (issue 25).

Each command runs as the user types it (``python train.py --help``, ``python -m datasets.fetch
--help``) with ``-X importtime``, which lists every module the interpreter imported; the test
checks that no heavy package is among them. Not timed: the wall time is measured by
benchmarks/bench_help.py, whose command list this test shares.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "benchmarks"))
from bench_help import COMMANDS  # noqa: E402

HEAVY = ("torch", "torchvision", "pandas")


def _imported(stderr: str) -> set[str]:
    """Top-level package names in ``-X importtime``'s report ("import time: self | total | name")."""
    return {line.rsplit("|", 1)[1].strip().split(".")[0]
            for line in stderr.splitlines() if line.startswith("import time:") and "|" in line}


@pytest.mark.parametrize("command", COMMANDS)
def test_help_does_not_import_heavy_packages(command: str) -> None:
    result = subprocess.run([sys.executable, "-X", "importtime", *command.split(), "--help"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "usage:" in result.stdout, result.stdout + result.stderr
    imported = _imported(result.stderr)
    assert "argparse" in imported  # the report is read correctly
    assert not imported & set(HEAVY), f"{command} --help imported {sorted(imported & set(HEAVY))}"


def test_importing_the_datasets_package_registers_every_dataset() -> None:
    """train.py relies on `import datasets` registering the loaders (the package's names load
    lazily so that `python -m datasets.<command> --help` stays light)."""
    code = ("import datasets\n"
            "from dassl.data.datasets import DATASET_REGISTRY\n"
            "print(' '.join(sorted(DATASET_REGISTRY.registered_names())))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.stdout.split() == ["AGIQA", "AGIQA1K", "AIGCIQA2023", "AIGIQA20K"], result.stderr
