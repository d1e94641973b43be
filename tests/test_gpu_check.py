"""benchmarks/gpu_check.sh on the CPU: stages, budgets, the JSON written after every stage.

The bench stages (`bench_train.py` subprocesses, minutes even with `--small`) are covered by the
summary arithmetic here; `bash benchmarks/gpu_check.sh --small` runs them all (README).
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from argparse import Namespace
from pathlib import Path

import pytest
import torch

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import gpu_check  # noqa: E402
from bench_report import summarize as bench_summary  # noqa: E402
from test_fast_benchmark import fake_run  # noqa: E402

SCRIPT = str(REPO / "benchmarks/gpu_check.sh")
CUDA_TESTS = str(REPO / "tests/test_precisions.py")


def check_argv(out: Path, *extra: str) -> list[str]:
    return ["bash", SCRIPT, "--small", "--out", str(out), "--root", str(out / "bench"),
            "--tests", CUDA_TESTS, *extra]


def read_report(out: Path) -> dict:
    return json.loads((out / "gpu_check.json").read_text())


def test_small_check_prints_versions_first_and_skips_the_cuda_tests_on_a_cpu(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen(check_argv(out, "--stages", "versions,install,cuda_tests",
                                       "--wheels", str(tmp_path / "no_wheels")),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # The JSON is rewritten when a stage starts and when it ends: catch cuda_tests running.
    seen_running = None
    while proc.poll() is None and seen_running is None:
        if (out / "gpu_check.json").is_file():
            stages = read_report(out)["stages"]
            if stages.get("cuda_tests", {}).get("status") == "running":
                seen_running = stages
        time.sleep(0.05)
    stdout = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, stdout[-3000:]
    assert seen_running is not None and seen_running["versions"]["status"] == "ok"
    assert seen_running["install"]["status"] == "ok"
    lines = stdout.splitlines()
    assert lines[0].startswith("== stage versions") and lines[1].startswith("  | VERSIONS ")
    report = read_report(out)
    assert report["small"] is True and report["failed_stages"] == []
    versions = report["versions"]
    assert versions["torch"] == torch.__version__ and versions["cuda"] == torch.version.cuda
    assert versions["cuda_available"] == torch.cuda.is_available()
    install = report["stages"]["install"]
    assert install["wheels"] == 0 and install["missing_imports"] == {} and "pip" not in install
    tests = report["stages"]["cuda_tests"]["tests"]
    assert tests["tests"] > 0 and tests["failures"] == tests["errors"] == 0
    if not torch.cuda.is_available():
        assert tests["skipped"] == tests["tests"]
    log = (out / "gpu_check.log").read_text()
    assert "== stage cuda_tests: ok" in log and "skipped" in log


def test_a_stage_past_its_budget_is_stopped_and_reported(tmp_path):
    out = tmp_path / "out"
    start = time.perf_counter()
    proc = subprocess.run(check_argv(out, "--stages", "versions,install", "--budget",
                                     "versions=0.2", "--wheels", str(tmp_path)),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    report = read_report(out)
    versions = report["stages"]["versions"]
    assert versions["status"] == "timeout" and versions["budget_s"] == 0.2
    assert versions["seconds"] < 0.2 + gpu_check.GRACE_S + 1
    assert report["stages"]["install"]["status"] == "ok"  # the next stage still ran
    assert report["failed_stages"] == ["versions"]
    assert time.perf_counter() - start < 60


@pytest.mark.parametrize("argv, message", [
    (["--budget", "bench=3"], "--budget 'bench=3'"),
    (["--stages", "versions,gpu"], "unknown ['gpu']"),
])
def test_bad_arguments_are_one_error_line(tmp_path, argv, message):
    proc = subprocess.run(check_argv(tmp_path, *argv), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and message in proc.stderr
    assert not (tmp_path / "gpu_check.json").exists()


def test_summary_combines_the_two_bench_stages():
    args = Namespace(n_images=2982, epochs=3)
    stages = {"bench_fast": {"summary": bench_summary({"fast": fake_run("fast", 0.4, 0.01)},
                                                      args)},
              "bench_reference": {"summary": bench_summary(
                  {"reference": fake_run("reference", 8.0, 1.99)}, args)}}
    summary = gpu_check.summarize(stages)
    # Float64 sums and ratios of the fake timings: a few FP64_EPS; approx's rel 1e-6 is far
    # above that and far below another stage's figure (>= 1 % away).
    assert summary["projected_100_epochs_s"] == pytest.approx(0.2 + 51.0 + 0.5)
    assert summary["eval_images_per_s"] == pytest.approx(2385 / 0.4)
    assert summary["speedup_per_epoch"]["total_s"] == pytest.approx(10.09 / 0.51)
    assert summary["peak_gpu_gib"] == pytest.approx(8.0)
    # One stage cut short: the other's figures are still reported, no speedup.
    assert "speedup_per_epoch" not in gpu_check.summarize({"bench_fast": stages["bench_fast"]})


def requirement_names(path: Path) -> set[str]:
    """Distribution names of a requirements file, lower case (comments and versions dropped)."""
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0].lower())
    return names


def test_every_runtime_requirement_is_carried_preinstalled_or_not_needed():
    """A requirement added to requirements.txt must reach the GPU machine: in the wheel list,
    or named on its `preinstalled:` / `not needed:` line; and each carried module is imported
    by the install stage."""
    text = gpu_check.WHEEL_LIST.read_text()
    named = {}
    for key in ("preinstalled", "not needed"):
        line = next(ln for ln in text.splitlines() if ln.startswith(f"# {key}:"))
        named[key] = {w.lower() for w in re.findall(r"[A-Za-z0-9_.-]+", line.split(":", 1)[1])}
    carried = requirement_names(gpu_check.WHEEL_LIST)
    missing = requirement_names(REPO / "requirements.txt") - carried - named["preinstalled"] \
        - named["not needed"]
    assert missing == set(), f"add {sorted(missing)} to benchmarks/gpu_wheels.txt"
    modules = {"pyyaml": "yaml"}
    assert {modules.get(name, name) for name in carried} <= set(gpu_check.RUNTIME_IMPORTS)
