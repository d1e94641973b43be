"""scripts/seeds_summary.py (main.sh with several seeds): mean, sample std and each seed's value
of the selected epoch per metric, from fake results.json files shaped as trainers/reporting.py
writes them."""
from __future__ import annotations

import csv
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from dassl.evaluation.metric_names import IQA_METRICS
from scripts import seeds_summary

REPO = Path(__file__).resolve().parents[1]


def write_run(folder: Path, seed: int, epoch: int, metrics: dict, last: dict | None = None) -> Path:
    folder.mkdir(parents=True)
    results = {"mode": "train", "seed": seed,
               "selected": {"epoch": epoch, "split": "test", "metrics": metrics},
               "last": {"epoch": 100, "split": "test", "metrics": last or metrics}}
    (folder / "results.json").write_text(json.dumps(results))
    return folder


def metrics_of(base: float) -> dict:
    return {name: base + i / 100 for i, name in enumerate(IQA_METRICS)}


def test_summary_reads_each_seeds_selected_epoch(tmp_path):
    seeds = {1: (0.80, 37), 2: (0.84, 52), 3: (0.83, 99)}
    dirs = [write_run(tmp_path / f"seed{s}", s, epoch, metrics_of(base),
                      last=metrics_of(0.1)) for s, (base, epoch) in seeds.items()]
    done = subprocess.run([sys.executable, str(REPO / "scripts/seeds_summary.py"),
                           *map(str, dirs)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "srcc" in done.stdout and "3 seeds" in done.stdout
    rows = {r["metric"]: r for r in csv.DictReader((tmp_path / "seeds_summary.csv").open())}
    assert list(rows) == [*IQA_METRICS, "selected_epoch"]
    for i, name in enumerate(IQA_METRICS):
        values = [base + i / 100 for base, _ in seeds.values()]  # the selected, not the last epoch
        assert [float(rows[name][f"seed{s}"]) for s in seeds] == values
        # Same formula (sample std) on the same floats: only summation order may differ.
        assert float(rows[name]["mean"]) == pytest.approx(statistics.mean(values), rel=1e-12)
        assert float(rows[name]["std"]) == pytest.approx(statistics.stdev(values), rel=1e-12)
        assert rows[name]["n"] == "3"
    assert [float(rows["selected_epoch"][f"seed{s}"]) for s in seeds] == [37, 52, 99]
    summary = json.loads((tmp_path / "seeds_summary.json").read_text())
    assert summary["seeds"] == ["1", "2", "3"]
    assert summary["metrics"]["plcc"]["per_seed"]["2"] == pytest.approx(0.85, rel=1e-12)


def test_unfinished_seed_is_named_and_left_out(tmp_path, capsys):
    good = write_run(tmp_path / "seed1", 1, 5, metrics_of(0.7))
    (tmp_path / "seed2").mkdir()  # interrupted: no results.json
    assert seeds_summary.main([str(good), str(tmp_path / "seed2")]) == 0
    err = capsys.readouterr().err
    assert "seed2" in err and "left out" in err
    rows = {r["metric"]: r for r in csv.DictReader((tmp_path / "seeds_summary.csv").open())}
    assert rows["srcc"]["n"] == "1" and rows["srcc"]["std"] == ""  # one seed: no std
    assert float(rows["srcc"]["mean"]) == pytest.approx(0.7, rel=1e-12)


def test_null_metric_propagates(tmp_path):
    a = write_run(tmp_path / "seed1", 1, 5, dict(metrics_of(0.7), srcc=None))
    b = write_run(tmp_path / "seed2", 2, 6, metrics_of(0.8))
    (tmp_path / "out").mkdir()
    assert seeds_summary.main([str(a), str(b), "--output", str(tmp_path / "out")]) == 0
    rows = {r["metric"]: r for r in csv.DictReader((tmp_path / "out" / "seeds_summary.csv").open())}
    # A seed's NaN SRCC makes the mean unknown instead of silently averaging the other seed.
    assert rows["srcc"]["seed1"] == "" and rows["srcc"]["mean"] == "" and rows["srcc"]["n"] == "2"
    assert float(rows["plcc"]["mean"]) == pytest.approx(0.76, rel=1e-12)
    summary = json.loads((tmp_path / "out" / "seeds_summary.json").read_text())  # NaN written as null
    assert summary["metrics"]["srcc"]["mean"] is None and summary["metrics"]["srcc"]["std"] is None


def test_no_finished_seed_is_an_error(tmp_path, capsys):
    (tmp_path / "seed1").mkdir()
    assert seeds_summary.main([str(tmp_path / "seed1")]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert [line for line in lines if line.startswith("error: ")] == lines[-1:]


FAKE_TRAIN = '''
import json, os, sys
args = sys.argv[1:]
seed, out = int(args[args.index("--seed") + 1]), args[args.index("--output-dir") + 1]
os.makedirs(out, exist_ok=True)
metrics = {name: seed / 10 for name in %r}
with open(os.path.join(out, "results.json"), "w") as f:
    json.dump({"mode": "train", "seed": seed, "selected": {"epoch": seed, "metrics": metrics},
               "last": {"epoch": 9, "metrics": metrics}}, f)
'''


def test_main_sh_with_several_seeds_ends_with_the_summary(tmp_path):
    """main.sh's wiring, without training: PYTHON runs the real interpreter except for train.py,
    which a stand-in replaces by writing each seed's results.json where main.sh points it."""
    (tmp_path / "fake_train.py").write_text(FAKE_TRAIN % (list(IQA_METRICS),))
    wrapper = tmp_path / "python"
    wrapper.write_text(f'#!/usr/bin/env bash\nif [[ "$1" == */train.py ]]; then shift; '
                       f'exec "{sys.executable}" "{tmp_path}/fake_train.py" "$@"; fi\n'
                       f'exec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    env = dict(os.environ, PYTHON=str(wrapper), DATA=str(tmp_path / "data"))
    done = subprocess.run(["bash", str(REPO / "scripts/main.sh"), "AGIQA", "vit_b16_ep100", "end",
                           "16", "1", "False", "1", "2", "4"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    folder = tmp_path / "output/AGIQA/CLIP_AGIQA/vit_b16_ep100_1shots/nctx16_cscFalse_ctpend"
    rows = {r["metric"]: r for r in csv.DictReader((folder / "seeds_summary.csv").open())}
    assert [float(rows["srcc"][f"seed{s}"]) for s in (1, 2, 4)] == [0.1, 0.2, 0.4]
    assert float(rows["srcc"]["mean"]) == pytest.approx(0.7 / 3, rel=1e-12)  # float sum order
    assert "Seeds summary" in done.stdout
