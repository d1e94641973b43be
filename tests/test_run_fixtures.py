"""Run folders written by the code before issue #12 still evaluate, score and resume.

The folders (`tests/fixtures/runs_v1/`, made by `tests/fixtures/make_runs_v1.py` at commit
d35fe99) are a finished fp32 run with a best epoch, a finished fp16 run (prompt tensors in
float16, as a GPU run stores them) and a standardised-head run interrupted in its second epoch.
`expected/` holds what that code produced from them: eval-only predictions, score.py scores and,
for the interrupted run, the results of the uninterrupted run it must reach on resume.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import score
import train
from run_fixtures import RUNS, expected, install_run, read_column
from tolerances import MOS_ATOL

# The expected files were computed on another CPU: fp32 reductions may be summed in another
# order there (vector width), which moves a MOS prediction (values 0..5) and the metrics by
# rounding only: MOS_ATOL (tests/tolerances.py), far below a real difference (> 1e-3).
ATOL = MOS_ATOL


def assert_close(got: dict[str, float], want: dict[str, float]) -> None:
    assert list(got) == list(want)
    for name in want:
        assert got[name] == pytest.approx(want[name], abs=ATOL), name


@pytest.mark.parametrize("name", sorted(RUNS))
def test_fixture_run_evaluates(name, tiny_assets, tiny_args, tmp_path):
    opts, epoch = RUNS[name]
    run = install_run(name, tmp_path / name, tiny_assets)
    flags = ["--eval-only", "--model-dir", str(run)]
    if epoch is not None:
        flags += ["--load-epoch", str(epoch)]
    out = tmp_path / "eval"
    train.main(tiny_args(out, *opts, flags=flags))
    assert_close(read_column(out / "predictions.csv", "pred"),
                 read_column(expected(name, "eval_predictions.csv"), "pred"))


@pytest.mark.parametrize("name", sorted(RUNS))
def test_fixture_run_scores(name, tiny_assets, tmp_path):
    _opts, epoch = RUNS[name]
    run = install_run(name, tmp_path / name, tiny_assets)
    csv_path = tmp_path / "scores.csv"
    argv = [str(run), str(Path(tiny_assets["root"]) / "AGIQA-3K"), "--output", str(csv_path), "--no-progress"]
    if epoch is not None:
        argv += ["--epoch", str(epoch)]
    assert score.main(argv) == 0
    assert_close(read_column(csv_path, "score"), read_column(expected(name, "scores.csv"), "score"))


def test_interrupted_fixture_resumes_to_the_uninterrupted_results(tiny_assets, tiny_args,
                                                                   tmp_path):
    opts, _epoch = RUNS["interrupted_std"]
    run = install_run("interrupted_std", tmp_path / "run", tiny_assets)
    results = train.main(tiny_args(run, *opts, epochs=2))
    want = json.loads(expected("interrupted_std", "resumed_results.json").read_text())
    assert results["last"]["epoch"] == want["last"]["epoch"] == 2
    for key, value in want["final"]["metrics"].items():
        assert results["final"]["metrics"][key] == pytest.approx(value, abs=ATOL), key
    assert_close(read_column(run / "predictions.csv", "pred"),
                 read_column(expected("interrupted_std", "resumed_predictions.csv"), "pred"))
